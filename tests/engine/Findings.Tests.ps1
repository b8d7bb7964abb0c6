# One named test per finding of the engine audit (C1-C3, M1-M9, m1-m15, U1-U4 where the
# engine is concerned), each executing the engine against the simulated Windows.

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $bundles = @(Get-TestBundle)
    $scada = $bundles | Where-Object -FilterScript { $_.Name -eq 'plant7-workgroup/SCADA01' }
    $util = $bundles | Where-Object -FilterScript { $_.Name -eq 'plant9-domain/UTIL-SRV1' }
    $hist = $bundles | Where-Object -FilterScript { $_.Name -eq 'plant9-domain/UTIL-HIST' }
    $hmi = $bundles | Where-Object -FilterScript { $_.Name -eq 'plant7-workgroup/HMI01' }

    function Use-Pc {
        <# A fresh simulated PC for a bundle; sets $module, $data, $bundle in the caller's scope. #>
        param([Parameter(Mandatory = $true)] $Bundle, [switch] $WithAppIds)
        $script:bundle = $Bundle
        $script:module = Import-SimEngine -Engine $Bundle.Engine
        $script:data = Initialize-SimPc -Module $script:module -Bundle $Bundle -WithAppIds:$WithAppIds
        & $script:module { Reset-SimCalls }
    }
    function Sim { param([scriptblock] $Script, [object[]] $Arguments = @()) & $script:module $Script @Arguments }
    function Run { param([string] $Mode, [hashtable] $With = @{}) $With.Mode = $Mode; Invoke-Engine -Bundle $script:bundle -Data $script:data -With $With }
    function Snapshot { Sim { Get-SimSnapshot } }
    function Get-Resource { param([string] $Kind) return , @($script:data.Resources | Where-Object -FilterScript { $_.Kind -eq $Kind }) }
    function Get-Backups { Sim { param($site) $root = Join-Path -Path (Get-DcomcOsDataRoot) -ChildPath "$site/backups"; if (Test-Path -LiteralPath $root) { @(Get-ChildItem -LiteralPath $root -Directory | ForEach-Object -Process { $_.Name }) } } @($script:data.Site) }
}

Describe 'critical' {
    It 'C1: the engine module imports (one BOM) and runs Test' {
        Use-Pc -Bundle $scada
        $bytes = [IO.File]::ReadAllBytes($scada.Engine)
        ($bytes[3] -eq 0xEF -and $bytes[4] -eq 0xBB) | Should -BeFalse
        (Run 'Test').ExitCode | Should -Be 1
    }

    It 'C2: SeServiceLogonRight is read and granted to the service account, keeping its holders' {
        Use-Pc -Bundle $scada
        $right = (Get-Resource 'user_right')[0]
        $before = Sim { param($r) Get-DcomcOsUserRight -Right $r } @($right.Right)
        (Run 'Apply').ExitCode | Should -Be 0
        $sid = Sim { ConvertTo-DcomcOsSid -Name ((Get-DcomcOsComputerName) + '\opcsvc') }
        $after = Sim { param($r) Get-DcomcOsUserRight -Right $r } @($right.Right)
        $after | Should -Contain $sid
        foreach ($holder in $before) { $after | Should -Contain $holder }
        $result = Sim { param($r) Test-DcomcResource -Resource $r } @($right)
        $result.Compliant | Should -BeTrue
    }

    It 'C3: the network discovery group passes its test after Apply, and Rollback disables exactly what it enabled' {
        Use-Pc -Bundle $util
        $group = (Get-Resource 'firewall_rule_group')[0]
        $fresh = Snapshot
        (Run 'Apply').ExitCode | Should -Be 0
        (Sim { param($r) Test-DcomcResource -Resource $r } @($group)).Compliant | Should -BeTrue
        # Every rule of the group in a planned profile is enabled on the PC, the others are not.
        $rules = Sim { param($g) Get-DcomcOsFirewallGroup -Group $g } @($group.Group)
        $planned = @($rules | Where-Object -FilterScript { $_.Profile -match ($group.Profiles -join '|') -or $_.Profile -eq 'Any' })
        $planned.Count | Should -BeGreaterThan 1
        @($planned | Where-Object -FilterScript { -not $_.Enabled }) | Should -BeNullOrEmpty
        @($rules | Where-Object -FilterScript { $_.Enabled }).Count | Should -Be $planned.Count
        (Run 'Rollback').ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $fresh
    }
}

Describe 'major' {
    It 'M1: a Get that fails after earlier changes rolls them back (exit 2)' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        # The first Get-DcomcOsUserRight is Test's; the second is Apply's Get of user_right.
        Sim { Add-SimFault -Operation 'Get-DcomcOsUserRight' -At 2 }
        (Run 'Apply').ExitCode | Should -Be 2
        Snapshot | Should -BeExactly $fresh
    }

    It 'M1: a backup that cannot be written rolls back (exit 2)' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        Sim { Add-SimFault -Operation 'Write-DcomcOsFile' -At 6 }
        (Run 'Apply').ExitCode | Should -BeIn @(2, 3)
        Snapshot | Should -BeExactly $fresh
    }

    It 'M2: -ResetPasswords on existing accounts succeeds and sets their password' {
        Use-Pc -Bundle $scada
        (Run 'Apply').ExitCode | Should -Be 0
        & $script:module { Reset-SimCalls }
        (Run 'Apply' -With @{ ResetPasswords = $true }).ExitCode | Should -Be 0
        $calls = Sim { @($script:SimCalls) }
        @($calls | Where-Object -FilterScript { $_ -eq 'Set-DcomcOsLocalUser' }).Count | Should -Be (Get-Resource 'local_user').Count
        (Run 'Test').ExitCode | Should -Be 0
    }

    It 'M3: dcomc''s folders are created trusted, and a planted backup is refused by Rollback' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        (Run 'Apply').ExitCode | Should -Be 0
        $root = Sim { Get-DcomcOsDataRoot }
        Sim { param($p) Test-DcomcTrustedPath -Path $p } @(Join-Path -Path $root -ChildPath $data.Site) | Should -BeTrue
        # A standard user plants the newest backup: a well-formed one, of this site, that would
        # set ForceGuest to 1 (guest logons for every network user) if it were replayed.
        $planted = Join-Path -Path $root -ChildPath "$($data.Site)/backups/run-29990101-000000-000"
        $text = ConvertTo-Json -Depth 8 -Compress -InputObject @{ Format = 1; Site = $data.Site; Host = $data.Host; Named = $false; Created = [long]::MaxValue; Sequence = 999999; Changes = @(@{ Id = 'security_option:ForceGuest'; Before = @{ Value = @{ Exists = $true; Type = 'DWord'; Data = 1 } } }) }
        Sim { param($p) Add-SimPlantedItem -Path $p -Folder } @($planted)
        Sim { param($p, $t) Add-SimPlantedItem -Path (Join-Path -Path $p -ChildPath 'changes.json') -Text $t } @($planted, $text)
        $applied = Snapshot
        (Run 'Rollback' -With @{ Backup = $planted }).ExitCode | Should -Be 3
        Snapshot | Should -BeExactly $applied
        # Not asked for, it is skipped with a warning (it must not block every later Rollback,
        # an uninstall's included): the newest trusted backup is rolled back, never the planted one.
        $outcome = Run 'Rollback'
        $outcome.ExitCode | Should -Be 0
        (Get-Content -LiteralPath $outcome.LogFile -Raw) | Should -Match ('WARN +backup skipped: The backup {0} can be changed by users other than SYSTEM and Administrators' -f [regex]::Escape($planted))
        Snapshot | Should -BeExactly $fresh
    }

    It 'M3: a non-elevated Test creates no folder under ProgramData' {
        Use-Pc -Bundle $scada
        Sim { Set-SimElevated -Elevated $false }
        (Run 'Test').ExitCode | Should -Be 1
        $root = Sim { Get-DcomcOsDataRoot }
        Test-Path -LiteralPath $root | Should -BeFalse
    }

    It 'M4: a data file for another computer is refused (exit 3) unless -Force' {
        Use-Pc -Bundle $scada
        Sim { Set-SimComputerName -Name 'HMI01' }
        $fresh = Snapshot
        (Run 'Apply').ExitCode | Should -Be 3
        Snapshot | Should -BeExactly $fresh
        (Run 'Test' -With @{ Force = $true }).ExitCode | Should -Be 1
    }

    It 'M4: Rollback restores the PC''s own backup whatever the PC is called now (an uninstall after a rename, or of the site package''s DCOMC_HOST)' {
        foreach ($target in @($util, $scada)) {
            Use-Pc -Bundle $target
            $name = Sim { Get-DcomcOsComputerName }
            $fresh = Snapshot
            (Run 'Apply' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
            $applied = Snapshot
            Sim { Set-SimComputerName -Name 'RENAMED-PC' }
            (Run 'Apply' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 3  # Apply still refuses
            (Run 'Rollback' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
            Sim { param($n) Set-SimComputerName -Name $n } @($name)
            Snapshot | Should -Not -BeExactly $applied
            Snapshot | Should -BeExactly $fresh
        }
    }

    It 'M4: the site package''s DCOMC_HOST: Apply -Force applies the named host''s plan on a PC of another name' {
        Use-Pc -Bundle $util
        Sim { Set-SimComputerName -Name 'GOLDEN-IMAGE' }
        (Run 'Apply' -With @{ BackupName = 'msi'; Force = $true }).ExitCode | Should -Be 0
        Sim { Set-SimComputerName -Name 'UTIL-SRV1' }
        (Run 'Test').ExitCode | Should -Be 0
    }

    It 'M5: Rollback -WhatIf changes nothing' {
        Use-Pc -Bundle $scada
        (Run 'Apply').ExitCode | Should -Be 0
        $applied = Snapshot
        (Run 'Rollback' -With @{ WhatIf = $true }).ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $applied
    }

    It 'M6: the MSI''s named backup is retired by the uninstall, so a reinstall starts afresh' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        (Run 'Apply' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        (Run 'Rollback' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $fresh
        @(Get-Backups) | Should -Not -Contain 'msi'
        # The admin creates opcuser by hand; install and uninstall again must keep it.
        Sim { New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String 'Adm1n-Set!' -AsPlainText -Force) -Description 'Identity the OPC clients run as' -Flags 0x10201 }
        $admin = Snapshot
        (Run 'Apply' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        (Run 'Rollback' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $admin
    }

    It 'M7: Rollback without -Backup restores the newest Apply run, never a named backup, whatever the clock says' {
        Use-Pc -Bundle $scada
        (Run 'Apply' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        $option = (Get-Resource 'security_option')[0]
        Sim { param($o) Set-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName -Type 'DWord' -Data 7 } @($option)
        (Run 'Apply').ExitCode | Should -Be 0
        # The clock is set back a day (a wrong BIOS clock, a time sync): the next run is newer all the same.
        Sim { Set-SimClock -Time ([DateTime]::new(2026, 1, 4, 8, 0, 0, [DateTimeKind]::Utc)) }
        Sim { param($o) Set-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName -Type 'DWord' -Data 9 } @($option)
        (Run 'Apply').ExitCode | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        (Sim { param($o) Get-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName } @($option)).Data | Should -Be 9
        (Run 'Rollback').ExitCode | Should -Be 0
        (Sim { param($o) Get-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName } @($option)).Data | Should -Be 7
        @(Get-Backups) | Should -Contain 'msi'
    }

    It 'M7: backups from before the numbers (no Sequence) are taken newest first, by the time recorded in them' {
        Use-Pc -Bundle $scada
        $option = (Get-Resource 'security_option')[0]
        foreach ($value in 7, 9) {
            Sim { param($o, $v) Set-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName -Type 'DWord' -Data $v } @($option, $value)
            (Run 'Apply').ExitCode | Should -Be 0
        }
        # Both backups as the engine wrote them before it numbered them: no Sequence field. The
        # folders are listed oldest first, so the first one listed must not win a tie.
        Sim { param($site)
            $root = Join-Path -Path (Get-DcomcOsDataRoot) -ChildPath "$site/backups"
            foreach ($name in (Get-DcomcOsChildFolder -Path $root)) {
                $file = Join-Path -Path (Join-Path -Path $root -ChildPath $name) -ChildPath 'changes.json'
                $saved = ConvertFrom-Json -InputObject (Read-DcomcOsFile -Path $file)
                $saved.PSObject.Properties.Remove('Sequence')
                Write-DcomcOsFile -Path $file -Text (ConvertTo-Json -InputObject $saved -Depth 14)
            }
        } @($data.Site)
        @(Get-Backups).Count | Should -Be 2
        (Run 'Rollback').ExitCode | Should -Be 0
        (Sim { param($o) Get-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName } @($option)).Data | Should -Be 9
        (Run 'Rollback').ExitCode | Should -Be 0
        (Sim { param($o) Get-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName } @($option)).Data | Should -Be 7
    }

    It 'M7: a damaged backup folder is skipped with a warning, unless it is the one asked for' {
        Use-Pc -Bundle $scada
        $option = (Get-Resource 'security_option')[0]
        Sim { param($o) Set-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName -Type 'DWord' -Data 7 } @($option)
        (Run 'Apply').ExitCode | Should -Be 0
        # A half-written changes.json in a folder that sorts last (a disk full, a hand edit)
        $bad = Sim { param($site)
            $folder = Join-Path -Path (Get-DcomcOsDataRoot) -ChildPath "$site/backups/run-20991231-000000-000"
            Initialize-DcomcSecureFolder -Path $folder
            Write-DcomcOsFile -Path (Join-Path -Path $folder -ChildPath 'changes.json') -Text '{ "Format": 1, "Site":'
            $folder
        } @($data.Site)
        Sim { param($o) Set-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName -Type 'DWord' -Data 9 } @($option)
        $outcome = Run 'Apply'
        $outcome.ExitCode | Should -Be 0
        (Get-Content -LiteralPath $outcome.LogFile -Raw) | Should -Match ('WARN +backup skipped: The backup {0} cannot be read' -f [regex]::Escape($bad))
        $asked = Run 'Rollback' -With @{ Backup = $bad }
        $asked.ExitCode | Should -Be 3
        (Get-Content -LiteralPath $asked.LogFile -Raw) | Should -Match ('ERROR +The backup {0} cannot be read' -f [regex]::Escape($bad))
        (Run 'Rollback' -With @{ BackupName = (Split-Path -Path $bad -Leaf) }).ExitCode | Should -Be 3
        foreach ($value in 9, 7) {
            (Run 'Rollback').ExitCode | Should -Be 0
            (Sim { param($o) Get-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName } @($option)).Data | Should -Be $value
        }
        @(Get-Backups) | Should -Contain (Split-Path -Path $bad -Leaf)
    }

    It 'M8: a Log On account that cannot be restored is a manual step: Rollback exits 0, the uninstall goes on' {
        Use-Pc -Bundle $scada
        $service = (Get-Resource 'service_logon')[0]
        Sim { param($s) New-DcomcOsLocalUser -Name 'oldsvc' -Password (ConvertTo-SecureString -String 'Old-Pa55word' -AsPlainText -Force) -Description '' -Flags 0x201; Set-DcomcOsServiceLogon -Name $s -StartName '.\oldsvc' -Password (ConvertTo-SecureString -String 'Old-Pa55word' -AsPlainText -Force) } @($service.Service)
        (Run 'Apply' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        (Run 'Rollback' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
    }

    It 'M8: a restore that fails keeps the backup and a copy of the engine for a retry (exit 4), which then succeeds' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        (Run 'Apply' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        Sim { Add-SimFault -Operation 'Remove-DcomcOsLocalUser' -At 1 }
        (Run 'Rollback' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 4
        @(Get-Backups) | Should -Contain 'msi'
        $engine = Sim { param($site) Join-Path -Path (Get-DcomcOsDataRoot) -ChildPath "$site/backups/msi/engine/DcomConfig.psm1" } @($data.Site)
        Test-Path -LiteralPath $engine | Should -BeTrue
        (Run 'Rollback' -With @{ BackupName = 'msi' }).ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $fresh
    }

    It 'M9: a service that cannot start under its new account is started again as before (exit 2)' {
        Use-Pc -Bundle $scada
        $service = (Get-Resource 'service_logon')[0]
        # A Group Policy denies "Log on as a service" to Administrators, and opcsvc is one: the
        # SCM refuses the logon (1069) when the service is restarted under it.
        Sim { Grant-DcomcOsUserRight -Right 'SeDenyServiceLogonRight' -Sid 'S-1-5-32-544' }
        $fresh = Snapshot
        (Run 'Apply').ExitCode | Should -Be 2
        Snapshot | Should -BeExactly $fresh
        (Sim { param($s) Get-DcomcOsService -Name $s } @($service.Service)).State | Should -Be 'Running'
    }
}

Describe 'minor and uncertain' {
    It 'm4: a host of 240 resources loads (see Static.Tests.ps1 for the reader)' {
        Use-Pc -Bundle $scada
        (Sim { param($p) Read-DcomcDataFile -Name $p -Content ([IO.File]::ReadAllBytes($p)) } @($scada.DataFile)).Resources.Count | Should -Be $data.Resources.Count
    }

    It 'm5: a relative Report -Path is written relative to the current location' {
        Use-Pc -Bundle $scada
        Push-Location -LiteralPath $env:DCOMC_WORK
        try { (Run 'Report' -With @{ Path = 'relative-report.json' }).ExitCode | Should -Be 0 }
        finally { Pop-Location }
        Test-Path -LiteralPath (Join-Path -Path $env:DCOMC_WORK -ChildPath 'relative-report.json') | Should -BeTrue
    }

    It 'm6: a password the policy refuses ends in a clean rollback (exit 2, not 4)' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        $weak = @{}
        foreach ($name in (New-TestPassword -Data $data).Keys) { $weak[$name] = ConvertTo-SecureString -String 'weak' -AsPlainText -Force }
        (Run 'Apply' -With @{ Passwords = $weak }).ExitCode | Should -Be 2
        Snapshot | Should -BeExactly $fresh
    }

    It 'm7: network discovery''s automatic services are running after Apply' {
        Use-Pc -Bundle $util
        (Run 'Apply').ExitCode | Should -Be 0
        foreach ($resource in (Get-Resource 'service_start_mode')) {
            $service = Sim { param($s) Get-DcomcOsService -Name $s } @($resource.Service)
            $service.StartMode | Should -Be ($resource.Mode.Substring(0, 1).ToUpper() + $resource.Mode.Substring(1))
            if ($resource.Mode -eq 'auto') { $service.State | Should -Be 'Running' }
        }
    }

    It 'm8: previous values of every registry type are restored: <_>' -ForEach @('ExpandString', 'MultiString', 'QWord', 'Binary', 'String') {
        Use-Pc -Bundle $scada
        $option = (Get-Resource 'security_option')[0]
        $samples = @{ ExpandString = '%SystemRoot%\x'; MultiString = [string[]] @('a', 'b'); QWord = [long] 5000000000; Binary = [byte[]] @(1, 2, 3); String = 'text' }
        Sim { param($o, $t, $d) Set-DcomcOsRegistryValue -Path ($o.Key.Substring(19)) -Name $o.ValueName -Type $t -Data $d } @($option, $_, $samples[$_])
        $before = Snapshot
        (Run 'Apply').ExitCode | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $before
    }

    It 'm10: a backup copy that failed (reg export, secedit /export, netsh export) is logged as a warning' {
        Use-Pc -Bundle $scada
        Sim { Set-SimBackupWarning -Warning @('reg export HKLM\SOFTWARE\Microsoft\Ole failed with exit code 1') }
        $outcome = Run 'Apply'
        $outcome.ExitCode | Should -Be 0
        (Get-Content -LiteralPath $outcome.LogFile -Raw) | Should -Match 'WARN .*backup copy incomplete: reg export'
    }

    It 'm11: a password that is not a SecureString is exit 3, with nothing changed' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        (Run 'Apply' -With @{ Passwords = @{ opcuser = 'plain' } }).ExitCode | Should -Be 3
        Snapshot | Should -BeExactly $fresh
    }

    It 'm12: a disabled account, or one whose password must change, is drift that Apply repairs' {
        Use-Pc -Bundle $scada
        (Run 'Apply').ExitCode | Should -Be 0
        Sim { $flags = (Get-DcomcOsLocalUser -Name 'opcuser').Flags; Set-DcomcOsLocalUser -Name 'opcuser' -Flags ($flags -bor 2) }
        (Run 'Test').ExitCode | Should -Be 1
        (Run 'Apply').ExitCode | Should -Be 0
        ((Sim { Get-DcomcOsLocalUser -Name 'opcuser' }).Flags -band 2) | Should -Be 0
        # "User must change password at next logon" (only without "password never expires").
        Sim { Set-DcomcOsLocalUser -Name 'opcuser' -Flags 0x201 -PasswordExpired $true }
        (Run 'Test').ExitCode | Should -Be 1
        (Run 'Apply').ExitCode | Should -Be 0
        $user = Sim { Get-DcomcOsLocalUser -Name 'opcuser' }
        $user.PasswordExpired | Should -BeFalse
        ($user.Flags -band 0x10000) | Should -Be 0x10000
    }

    It 'm14: a 64-bit server registered in the other view than its bitness says is found' {
        Use-Pc -Bundle $scada
        $app = (Get-Resource 'appid_auth_level')[0].App
        $clsid = $app.Clsid
        if (-not $clsid) { $clsid = Get-TestGuid -Text $app.Progid }
        Sim { param($p, $c) Reset-SimWindows -Locale 'de-DE' -ComputerName 'SCADA01'; Install-SimComServer -ProgId $p -Clsid $c -Bitness 64 -NoAppId } @($app.Progid, $clsid)
        $resource = (Get-Resource 'appid_run_location')[0]
        (Sim { param($r) Test-DcomcResource -Resource $r } @($resource)).Reason | Should -Not -Match 'not registered'
    }

    It 'U1: passwords on standard input as Base64 of UTF-16LE arrive unchanged (Grüße§€, TAB, newline)' {
        Use-Pc -Bundle $scada
        $secret = "Grüße§€`tA1`nz"
        $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($secret))
        $lines = foreach ($name in (New-TestPassword -Data $data).Keys) { [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($name)) + "`t$encoded" }
        Sim { param($t) Set-SimStdin -Text $t } @((($lines -join "`n") + "`n"))
        $outcome = Invoke-DcomcConfiguration -Mode Apply -DataFile $scada.DataFile -PasswordsFromStdin 2>$null 3>$null 6>$null
        $outcome.ExitCode | Should -Be 0
        Sim { param($s) Test-SimPassword -Account 'opcuser' -Password $s } @($secret) | Should -BeTrue
    }

    It 'U1: a malformed standard input line stops before any change (exit 3)' {
        Use-Pc -Bundle $scada
        $fresh = Snapshot
        Sim { Set-SimStdin -Text "bwBwAGMAdQBzAGUAcgA=`tnot base64!`n" }
        (Invoke-DcomcConfiguration -Mode Apply -DataFile $scada.DataFile -PasswordsFromStdin 2>$null 3>$null 6>$null).ExitCode | Should -Be 3
        Snapshot | Should -BeExactly $fresh
    }

    It 'U2: a rule shown with a dotted mask, in another order, counts as the rule planned' {
        Use-Pc -Bundle $scada
        (Run 'Apply').ExitCode | Should -Be 0
        $module = $script:module
        & $module {
            $keys = @{ '10.7.3.0/255.255.255.0' = 1; '10.7.3.10/255.255.255.255' = 1 }
            (ConvertTo-DcomcValueSet -Values @('10.7.3.10/255.255.255.255', '10.7.3.0/255.255.255.0') -Address) | Should -Be '10.7.3.0/24,10.7.3.10'
            (ConvertTo-DcomcValueSet -Values @('10.7.3.0/24', '10.7.3.10') -Address) | Should -Be '10.7.3.0/24,10.7.3.10'
            @(ConvertFrom-DcomcProfileText -Text 'Any') -join ',' | Should -Be 'domain,private,public'
            $keys.Count | Should -Be 2
        }
    }

    It 'U3: an absent machine limit is merged into the Windows default, keeping its capability ACE' {
        Use-Pc -Bundle $scada
        Sim { Remove-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'MachineAccessRestriction' }
        (Run 'Apply').ExitCode | Should -Be 0
        $keys = Sim {
            $value = Get-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'MachineAccessRestriction'
            Get-DcomcDescriptorAceKey -Descriptor (ConvertFrom-DcomcSecurityDescriptor -Bytes $value.Data)
        }
        ($keys -join ';') | Should -Match 'S-1-15-3-1024-2405443489'
        ($keys -join ';') | Should -Match 'A\|S-1-5-7\|7'
        (Run 'Rollback').ExitCode | Should -Be 0
        (Sim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'MachineAccessRestriction' }).Exists | Should -BeFalse
    }
}

Describe 'the entry script' {
    It 'm11: an unexpected error ends Invoke-DcomConfig.ps1 with exit 3, not 1 (it runs the real system layer here, which throws)' {
        $pwsh = (Get-Command -Name 'pwsh' -CommandType Application)[0].Source
        & $pwsh -NoProfile -NonInteractive -File $scada.Entry -Mode Test -DataFile $scada.DataFile 2>$null 6>$null | Out-Null
        $LASTEXITCODE | Should -Be 3
    }
}
