# The engine of one host bundle (DCOMC_ONLY), executed in every mode against a simulated
# Windows 10 PC in German, with a fault injected at every state-changing call of an Apply.

BeforeDiscovery {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $bundles = @(Get-TestBundle)
    # How many state-changing calls (system and files) a clean Apply makes: one fault case each.
    $cases = foreach ($bundle in $bundles) {
        $module = Import-SimEngine -Engine $bundle.Engine
        $data = Initialize-SimPc -Module $module -Bundle $bundle
        & $module { Reset-SimCalls }
        $null = Invoke-Engine -Bundle $bundle -Data $data -With @{ Mode = 'Apply' }
        $writes = & $module { Get-SimWriteCount }
        foreach ($n in 1..$writes) { @{ Bundle = $bundle; N = $n; Of = $writes } }
    }
}

Describe 'the engine of <_.Name>' -ForEach $bundles {
    BeforeAll {
        . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
        $bundle = $_
        $module = Import-SimEngine -Engine $bundle.Engine
        function Reset-Pc { param([switch] $WithAppIds) $script:data = Initialize-SimPc -Module $module -Bundle $bundle -WithAppIds:$WithAppIds; & $module { Reset-SimCalls } }
        function Get-Snapshot { & $module { Get-SimSnapshot } }
        function Invoke-Mode { param([string] $Mode, [hashtable] $With = @{}) $With.Mode = $Mode; Invoke-Engine -Bundle $bundle -Data $script:data -With $With }
    }

    It 'Test on a fresh PC reports drift (exit 1) and changes nothing' {
        Reset-Pc
        $before = Get-Snapshot
        (Invoke-Mode 'Test').ExitCode | Should -Be 1
        Get-Snapshot | Should -BeExactly $before
        Get-SimSystemWrite -Module $module | Should -BeNullOrEmpty
    }

    It 'Apply exits 0, Test then exits 0, and a second Apply calls no Set' {
        Reset-Pc
        $outcome = Invoke-Mode 'Apply'
        $outcome.ExitCode | Should -Be 0
        @($outcome.Results | Where-Object -FilterScript { -not $_.Compliant } | ForEach-Object -Process { '{0}: {1}' -f $_.Id, $_.Reason }) | Should -BeNullOrEmpty
        (Invoke-Mode 'Test').ExitCode | Should -Be 0
        $applied = Get-Snapshot
        & $module { Reset-SimCalls }
        (Invoke-Mode 'Apply').ExitCode | Should -Be 0
        Get-SimSystemWrite -Module $module | Should -BeNullOrEmpty
        Get-Snapshot | Should -BeExactly $applied
    }

    It 'Apply then Rollback leaves the PC exactly as before (a class without AppID: <_>)' -ForEach @($true, $false) {
        Reset-Pc -WithAppIds:(-not $_)
        $fresh = Get-Snapshot
        (Invoke-Mode 'Apply').ExitCode | Should -Be 0
        Get-Snapshot | Should -Not -BeExactly $fresh
        (Invoke-Mode 'Rollback').ExitCode | Should -Be 0
        Get-Snapshot | Should -BeExactly $fresh
    }

    It '-WhatIf changes nothing in Test, Apply, Report and Rollback' {
        Reset-Pc
        $fresh = Get-Snapshot
        foreach ($mode in @('Test', 'Apply')) {
            $null = Invoke-Mode $mode -With @{ WhatIf = $true }
            Get-Snapshot | Should -BeExactly $fresh -Because "$mode -WhatIf"
        }
        $report = Join-Path -Path $env:DCOMC_WORK -ChildPath 'whatif.json'
        $null = Invoke-Mode 'Report' -With @{ WhatIf = $true; Path = $report }
        Get-Snapshot | Should -BeExactly $fresh
        (Invoke-Mode 'Apply').ExitCode | Should -Be 0
        $applied = Get-Snapshot
        & $module { Reset-SimCalls }
        (Invoke-Mode 'Rollback' -With @{ WhatIf = $true }).ExitCode | Should -Be 0
        Get-Snapshot | Should -BeExactly $applied
        Get-SimSystemWrite -Module $module | Should -BeNullOrEmpty
        (Invoke-Mode 'Rollback').ExitCode | Should -Be 0   # the backup was not retired by -WhatIf
        Get-Snapshot | Should -BeExactly $fresh
    }

    It 'Report writes JSON that dcomc drift reads: compliant, then one drifted value' {
        Reset-Pc
        (Invoke-Mode 'Apply').ExitCode | Should -Be 0
        $report = Join-Path -Path $env:DCOMC_WORK -ChildPath ('{0}-report.json' -f $bundle.Host)
        (Invoke-Mode 'Report' -With @{ Path = $report }).ExitCode | Should -Be 0
        $null = & $env:DCOMC_PYTHON -m dcomc drift $bundle.SpecFile $report
        $LASTEXITCODE | Should -Be 0
        # One value drifts: the Lsa option every host's plan sets.
        $option = @($data.Resources | Where-Object -FilterScript { $_.Kind -eq 'security_option' })[0]
        & $module { param($o) Set-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName -Type 'DWord' -Data (1 - [int] $o.Value) } $option
        (Invoke-Mode 'Report' -With @{ Path = $report }).ExitCode | Should -Be 0
        $text = & $env:DCOMC_PYTHON -m dcomc drift $bundle.SpecFile $report --json
        $LASTEXITCODE | Should -Be 1
        ($text -join "`n") | Should -Match ([regex]::Escape($option.Id))
    }
}

Describe 'a fault at state-changing call <N> of <Of> of an Apply on <Bundle.Name>' -ForEach $cases {
    BeforeAll {
        . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
        if ($null -eq (Get-Module -Name 'DcomConfig') -or (Get-Module -Name 'DcomConfig').Path -ne $Bundle.Engine) {
            $null = Import-SimEngine -Engine $Bundle.Engine
        }
        $module = Get-Module -Name 'DcomConfig'
    }

    It 'leaves the PC exactly as before with exit 2 or 3, or (a log line lost) configured with exit 0' {
        $data = Initialize-SimPc -Module $module -Bundle $Bundle
        $fresh = & $module { Get-SimSnapshot }
        & $module { param($n) Reset-SimCalls; Clear-SimFault; Add-SimFault -Operation 'write' -At $n } $N
        $outcome = Invoke-Engine -Bundle $Bundle -Data $data -With @{ Mode = 'Apply' }
        $fired = @(& $module { $script:SimFired.ToArray() })
        $fired.Count | Should -Be 1
        if ($outcome.ExitCode -eq 0) {
            # Only dcomc's own records (a log line, the Apply's record in the site's key) may
            # fail without failing the run; the PC is then configured.
            $fired[0] | Should -BeIn @('Write-DcomcOsFile', 'Write-DcomcOsApplyRecord')
            if ($fired[0] -eq 'Write-DcomcOsFile') { $outcome.LogFile | Should -BeNullOrEmpty }
            (Invoke-Engine -Bundle $Bundle -Data $data -With @{ Mode = 'Test' }).ExitCode | Should -Be 0
        }
        else {
            $outcome.ExitCode | Should -BeIn @(2, 3)
            & $module { Get-SimSnapshot } | Should -BeExactly $fresh
        }
    }
}
