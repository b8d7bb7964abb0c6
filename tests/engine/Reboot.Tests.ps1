# Exit code 5, "applied, reboot required" (issue 19 item 2), on the simulated Windows: the code
# the entry script exits with for each outcome, and the entry script itself run as a process
# (what Windows Installer, SCCM and Intune read), with the module's run replaced by fixed
# outcomes so that only the mapping is under test there.

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $env:DCOMC_ONLY = 'plant7-workgroup/SCADA01'
    $bundle = Get-TestBundle
    $module = Import-SimEngine -Engine $bundle.Engine
    function Use-Pc { $script:data = Initialize-SimPc -Module $module -Bundle $bundle }
    function Run { param([string] $Mode, [hashtable] $With = @{}) $With.Mode = $Mode; Invoke-Engine -Bundle $bundle -Data $script:data -With $With }
    function Code { param($Outcome, [string] $Mode) & $module { param($o, $m) Get-DcomcProcessExitCode -Outcome $o -Mode $m } $Outcome $Mode }
}

Describe 'Apply that changes machine DCOM settings' {
    It 'is exit code 5 on a fresh PC, 0 when run again (nothing changed), and Test stays 0' {
        Use-Pc
        $first = Run 'Apply'
        $first.ExitCode | Should -Be 0
        $first.RebootRequired | Should -BeTrue
        Code $first 'Apply' | Should -Be 5
        $again = Run 'Apply'
        $again.RebootRequired | Should -BeFalse
        Code $again 'Apply' | Should -Be 0
        Code (Run 'Test') 'Test' | Should -Be 0
    }

    It 'is never 5 for -WhatIf, a failed Apply, or a Rollback (an uninstall ignores the code)' {
        Use-Pc
        $whatIf = Run 'Apply' @{ WhatIf = $true }
        Code $whatIf 'Apply' | Should -Be 0
        $null = Run 'Apply'
        $rollback = Run 'Rollback'
        $rollback.RebootRequired | Should -BeTrue
        Code $rollback 'Rollback' | Should -Be 0
        foreach ($failed in 2, 3, 4) {
            Code ([pscustomobject] @{ ExitCode = $failed; RebootRequired = $true }) 'Apply' | Should -Be $failed
        }
    }
}

Describe 'Invoke-DcomConfig.ps1, run as a process' {
    BeforeAll {
        # pwsh itself (this process may be `dotnet pwsh.dll`)
        $pwsh = (Get-Command -Name 'pwsh' -CommandType Application | Select-Object -First 1).Source
        function Invoke-Entry {
            param([int] $ExitCode, [bool] $Reboot, [string] $Mode)
            $folder = Join-Path -Path $TestDrive -ChildPath ('entry-{0}-{1}-{2}' -f $ExitCode, $Reboot, $Mode)
            $null = New-Item -ItemType Directory -Path $folder -Force
            Copy-Item -LiteralPath $bundle.Entry -Destination $folder
            # The shipped engine, its run replaced by a fixed outcome (a later definition wins).
            $stub = "`nfunction Invoke-DcomcConfiguration { [CmdletBinding(SupportsShouldProcess = `$true)] param([string] `$Mode, [string] `$DataFile) return [pscustomobject] @{ ExitCode = $ExitCode; RebootRequired = `$$Reboot } }`n"
            $engine = [IO.File]::ReadAllText($bundle.Engine) -replace "(?m)^Export-ModuleMember.*$", ''
            $export = ([regex]::Match([IO.File]::ReadAllText($bundle.Engine), '(?m)^Export-ModuleMember.*$')).Value
            [IO.File]::WriteAllText((Join-Path -Path $folder -ChildPath 'DcomConfig.psm1'), $engine + $stub + $export + "`n")
            $null = & $pwsh -NoProfile -NonInteractive -File (Join-Path -Path $folder -ChildPath "Invoke-DcomConfig.ps1") -Mode $Mode -DataFile "x.psd1" 2>&1
            return $LASTEXITCODE
        }
    }

    It 'exits <expected> for <mode> ending <code> (reboot needed: <reboot>)' -ForEach @(
        @{ Mode = 'Apply'; Code = 0; Reboot = $true; Expected = 5 }
        @{ Mode = 'Apply'; Code = 0; Reboot = $false; Expected = 0 }
        @{ Mode = 'Apply'; Code = 2; Reboot = $true; Expected = 2 }
        @{ Mode = 'Rollback'; Code = 0; Reboot = $true; Expected = 0 }
        @{ Mode = 'Test'; Code = 1; Reboot = $false; Expected = 1 }
    ) {
        Invoke-Entry -ExitCode $Code -Reboot $Reboot -Mode $Mode | Should -Be $Expected
    }
}

Describe 'the last Apply''s result in the detection key (docs/deployment.md)' {
    BeforeAll {
        function Status {
            & $module {
                param($site)
                $key = "SOFTWARE\dcomc\$site"
                if ($null -eq (Get-DcomcOsRegistryKey -Path $key)) { return $null }
                $result = Get-DcomcOsRegistryValue -Path $key -Name 'LastApplyResult'
                $time = Get-DcomcOsRegistryValue -Path $key -Name 'LastApplyTime'
                return @{ Result = $result; Time = $time }
            } $script:data.Site
        }
    }

    It 'records each Apply''s process exit code and UTC time; Rollback removes them and the key' {
        Use-Pc
        & $module { Set-SimClock -Time ([DateTime]::new(2026, 11, 30, 10, 0, 0, [DateTimeKind]::Utc)) }
        Status | Should -BeNullOrEmpty
        $fresh = & $module { Get-SimSnapshot }
        $null = Run 'Apply'
        $first = Status
        $first.Result.Type | Should -Be 'DWord'
        $first.Result.Data | Should -Be 5  # machine DCOM settings changed: reboot required
        $first.Time.Type | Should -Be 'String'
        $first.Time.Data | Should -Match '^2026-11-30T10:0\d:\d\dZ$'
        $null = Run 'Apply'
        (Status).Result.Data | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        Status | Should -BeNullOrEmpty
        & $module { Get-DcomcOsRegistryKey -Path 'SOFTWARE\dcomc' } | Should -BeNullOrEmpty
        & $module { Get-SimSnapshot } | Should -BeExactly $fresh
    }

    It 'records a failed Apply (2, rolled back; 3, nothing changed), and -WhatIf records nothing' {
        Use-Pc
        $null = Run 'Apply' @{ WhatIf = $true }
        Status | Should -BeNullOrEmpty
        $fresh = & $module { Get-SimSnapshot }
        # the first Get-DcomcOsUserRight is Test's, the second Apply's: after earlier changes
        & $module { Add-SimFault -Operation 'Get-DcomcOsUserRight' -At 2 }
        (Run 'Apply').ExitCode | Should -Be 2
        (Status).Result.Data | Should -Be 2
        & $module { Get-SimSnapshot } | Should -BeExactly $fresh  # rolled back
        # an Apply that stops before any change (here the elevation check fails): 3, recorded too,
        # so that an inventory never shows the verdict of an earlier run instead
        & $module { Add-SimFault -Operation 'Test-DcomcOsElevated' -At 1 }
        (Run 'Apply').ExitCode | Should -Be 3
        (Status).Result.Data | Should -Be 3
        & $module { Get-SimSnapshot } | Should -BeExactly $fresh
    }
}
