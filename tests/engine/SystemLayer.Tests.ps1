# The real system layer (no simulated Windows): what of it can run outside Windows runs here,
# with only the Windows program or cmdlet at the very bottom replaced by a Pester mock that
# answers as it does on Windows (secedit's export format, Get-CimInstance's filter).

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $engine = @(Get-TestBundle)[0].Engine
    Get-Module -Name 'DcomConfig' | Remove-Module -Force
    $module = Import-Module -Name $engine -Force -PassThru -DisableNameChecking
    $script:Exported = "[Unicode]`r`nUnicode=yes`r`n[Privilege Rights]`r`nSeNetworkLogonRight = *S-1-1-0,*S-1-5-32-544`r`nSeServiceLogonRight = *S-1-5-80-0,OldApp Service`r`n"
    $script:Configured = @()
    # secedit /export writes the current policy (UTF-16LE) to /cfg; /configure reads /cfg.
    Mock -ModuleName 'DcomConfig' -CommandName 'Invoke-DcomcOsSecedit' -MockWith {
        $cfg = $Arguments[[array]::IndexOf($Arguments, '/cfg') + 1]
        if ($Arguments[0] -eq '/export') {
            [IO.File]::WriteAllText($cfg, $script:Exported, [Text.Encoding]::Unicode)
        }
        else {
            $script:Configured += [IO.File]::ReadAllText($cfg, [Text.Encoding]::Unicode)
        }
    }
}

AfterAll {
    Get-Module -Name 'DcomConfig' | Remove-Module -Force
}

Describe 'user rights through secedit (C2 in the system layer)' {
    BeforeEach { $script:Configured = @() }

    It 'reads the holders of a right as SIDs, keeping a name secedit could not translate' {
        $holders = & $module { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' }
        @($holders) | Should -Be @('S-1-5-80-0', 'OldApp Service')
        $holders.GetType().IsArray | Should -BeTrue
    }

    It 'grants by adding the SID to every holder, written back as secedit exported them' {
        & $module { Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-21-1-2-3-1001' }
        $script:Configured.Count | Should -Be 1
        $script:Configured[0] | Should -Match ([regex]::Escape('SeServiceLogonRight = *S-1-5-80-0,OldApp Service,*S-1-5-21-1-2-3-1001'))
        $script:Configured[0] | Should -Not -Match 'SeNetworkLogonRight'
    }

    It 'does not configure anything when the SID already holds the right, and revokes only that SID' {
        & $module { Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-80-0' }
        $script:Configured.Count | Should -Be 0
        & $module { Revoke-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-80-0' }
        $script:Configured[0] | Should -Match ([regex]::Escape('SeServiceLogonRight = OldApp Service'))
    }
}

Describe 'services through CIM' {
    It 'quotes the service name as a WQL string literal' {
        if (-not (Get-Command -Name 'Get-CimInstance' -ErrorAction SilentlyContinue)) {
            # CimCmdlets is Windows-only: a stand-in with its parameters, so that Pester can mock it.
            function global:Get-CimInstance { param([string] $ClassName, [string] $Filter) }
        }
        Mock -ModuleName 'DcomConfig' -CommandName 'Get-CimInstance' -MockWith { $script:Filter = $Filter; $null }
        $found = & $module { Get-DcomcOsService -Name "O'Brien\x" }
        $found | Should -BeNullOrEmpty
        $script:Filter | Should -BeExactly "Name='O\'Brien\\x'"
    }
}

Describe 'files' {
    It 'writes a whole file by replacing it, and appends log lines, as UTF-8 without BOM' {
        $file = Join-Path -Path $env:DCOMC_WORK -ChildPath 'layer.txt'
        & $module { param($f) Write-DcomcOsFile -Path $f -Text 'Grüße 1'; Write-DcomcOsFile -Path $f -Text 'Grüße 2'; Write-DcomcOsFile -Path $f -Text "+3" -Append } $file
        [IO.File]::ReadAllBytes($file)[0] | Should -Not -Be 0xEF
        [IO.File]::ReadAllText($file) | Should -BeExactly 'Grüße 2+3'
        Test-Path -LiteralPath ($file + '.tmp') | Should -BeFalse
    }
}
