# -Mode Capture (docs/capture.md) on simulated brownfield PCs: what it finds, what it leaves out
# (password material, parts a standard user may not read), and that it changes nothing.

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $bundles = @(Get-TestBundle)
    $scada = $bundles | Where-Object -FilterScript { $_.Name -eq 'plant7-workgroup/SCADA01' }
    $script:Secret = 'Lsa$ecret-Kennw0rt!'
    $script:VendorClsid = '{0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}'
    $script:WideClsid = '{9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D}'

    function New-BrownfieldPc {
        <# A German PC set up by hand years ago: a 32-bit vendor server the catalog lacks, run as
           a local account by its service, a 64-bit server started on demand, OPCEnum, a local
           group, DCOM lowered to CONNECT, a firewall rule for 135 open to any address, and
           password material where Windows keeps it (SAM hashes, service and autologon
           passwords, an LSA-secret-like value beside the values the capture reads). #>
        $module = Import-SimEngine -Engine $scada.Engine
        & $module {
            param($secret, $vendor, $wide)
            Reset-SimWindows -Locale 'de-DE' -ComputerName 'ALTPC7'
            Set-SimNetwork -Address @('10.7.3.50', 'fe80::1')
            $password = ConvertTo-SecureString -String $secret -AsPlainText -Force
            New-DcomcOsLocalUser -Name 'opcdienst' -Password $password -Description 'OPC Dienstkonto' -Flags 0x10201
            New-DcomcOsLocalGroup -Name 'OPC-Bediener' -Description 'OPC clients'
            Add-DcomcOsLocalGroupMember -Group 'OPC-Bediener' -MemberSid (ConvertTo-DcomcOsSid -Name 'ALTPC7\opcdienst')
            Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid (ConvertTo-DcomcOsSid -Name 'ALTPC7\opcdienst')
            $group = ConvertTo-DcomcOsSid -Name 'ALTPC7\OPC-Bediener'
            $launch = ConvertTo-SimSdBinary -Sddl ('O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;{0})(A;;CCDCLCSWRP;;;WD)' -f $group)
            Install-SimOpcServer -ProgId 'Vendor.Mill.2' -Clsid $vendor -LocalServer32 'C:\Program Files (x86)\Mill\millsrv.exe -service' -Service 'MillOPC' -StartName '.\opcdienst' -Password $password -NoLocalService -AppIdValues @{ AuthenticationLevel = 2; LaunchPermission = $launch }
            Install-SimOpcServer -ProgId 'Wide.Opc.1' -Clsid $wide -Bitness 64 -LocalServer32 'C:\Program Files\Wide\wide.exe' -Category @('DA3') -AppIdValues @{ RunAs = 'Interactive User'; ServiceParameters = ('-user opc -password ' + $secret) }
            Install-SimComServer -ProgId 'OPC.ServerList.1' -Clsid '{13486D51-4821-11D2-A494-3CB306C10000}' -AppId '{13486D44-4821-11D2-A494-3CB306C10000}' -LocalServer32 'C:\Windows\SysWOW64\OpcEnum.exe'
            Install-SimComServer -ProgId 'Not.Opc.1' -Clsid '{22222222-3333-4444-5555-666666666666}'
            Set-SimRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'LegacyAuthenticationLevel' -Type 'DWord' -Data 2
            Set-SimRegistryValue -Path 'SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon' -Name 'DefaultPassword' -Type 'String' -Data $secret
            Set-SimRegistryValue -Path 'SYSTEM\CurrentControlSet\Control\Lsa' -Name 'SecretOfTest' -Type 'String' -Data $secret
            New-DcomcOsFirewallRule -Rule @{ Name = 'RPC-135'; DisplayName = 'RPC'; Description = ''; Protocol = 'TCP'; LocalPort = '135'; Profile = @('Any'); RemoteAddress = @('Any') }
            New-DcomcOsFirewallRule -Rule @{ Name = 'Mill'; DisplayName = 'Mill server'; Description = ''; Protocol = 'TCP'; Program = 'C:\Program Files (x86)\Mill\millsrv.exe'; Profile = @('Domain', 'Private'); RemoteAddress = @('10.7.3.0/24') }
            Set-DcomcOsFirewallRuleEnabled -Name 'NETDIS-FDPHOST-In-UDP-Active' -Enabled $true
        } $script:Secret $script:VendorClsid $script:WideClsid
        return $module
    }

    function Invoke-Capture {
        param([Parameter(Mandatory = $true)] $Module, [string] $Name = 'capture.json')
        $path = Join-Path -Path $env:DCOMC_WORK -ChildPath $Name
        $outcome = & $Module { param($p) Invoke-DcomcConfiguration -Mode Capture -Path $p 3>$null 6>$null } $path
        $outcome.ExitCode | Should -Be 0
        return @{ Path = $path; Text = [IO.File]::ReadAllText($path); Json = (Get-Content -LiteralPath $path -Raw | ConvertFrom-Json) }
    }
}

Describe 'Capture on a brownfield PC' {
    BeforeAll {
        $module = New-BrownfieldPc
        $before = & $module { Get-SimSnapshot }
        & $module { Reset-SimCalls }
        $capture = Invoke-Capture -Module $module
        $calls = & $module { Get-SimCall }
        $servers = @($capture.Json.Servers)
    }

    It 'changes nothing on the PC (no state-changing call, the snapshot equal) and needs no data file' {
        (& $module { Get-SimSnapshot }) | Should -BeExactly $before
        @($calls | Where-Object -FilterScript { $_ -match '^(Set|New|Remove|Add|Grant|Revoke|Start|Stop|Restart|Rename|Copy|Export)-DcomcOs' }) | Should -BeNullOrEmpty
        $capture.Json.Format | Should -Be 'dcomc-capture'
        $capture.Json.FormatVersion | Should -Be 1
    }

    It 'finds the OPC DA servers of both views by category, and nothing else' {
        @($servers | ForEach-Object -Process { $_.Clsid }) | Should -Be @($script:VendorClsid, $script:WideClsid)
        $mill = $servers[0]
        $mill.View | Should -Be 'Registry32'
        $mill.Bitness | Should -Be 32
        $mill.ProgId | Should -Be 'Vendor.Mill.2'
        $mill.Executable | Should -Be 'C:\Program Files (x86)\Mill\millsrv.exe'
        @($mill.Categories) | Should -Be @('DA2')
        $servers[1].Bitness | Should -Be 64
        @($servers[1].Categories) | Should -Be @('DA3')
        $servers[1].AppIdKey.RunAs | Should -Be 'Interactive User'
        $servers[1].Service | Should -BeNullOrEmpty
    }

    It 'finds the service by its executable and its Log On account, and the AppID settings with SDDL' {
        $mill = $servers[0]
        $mill.Service.Name | Should -Be 'MillOPC'
        $mill.Service.FoundBy | Should -Be 'executable'
        $mill.Service.StartName | Should -Be '.\opcdienst'
        $mill.AppIdKey.AuthenticationLevel | Should -Be 2
        $group = @($capture.Json.Accounts.Groups | Where-Object -FilterScript { $_.Name -eq 'OPC-Bediener' })[0]
        $mill.AppIdKey.LaunchPermission.Sddl | Should -BeExactly ('O:S-1-5-32-544G:S-1-5-32-544D:(A;;0x1f;;;S-1-5-32-544)(A;;0x1f;;;{0})(A;;0x1f;;;S-1-1-0)' -f $group.Sid)
        $mill.AppIdKey.LaunchPermission.Data | Should -Match '^01000480[0-9a-f]+$'
        $mill.AppIdKey.AccessPermission.Exists | Should -BeFalse
    }

    It 'captures OPCEnum, the machine values, the Lsa options, users and groups with SIDs, in German' {
        $capture.Json.OpcEnum.AppId | Should -Be '{13486D44-4821-11D2-A494-3CB306C10000}'
        $capture.Json.Machine.Ole.LegacyAuthenticationLevel.Data | Should -Be 2
        $capture.Json.Machine.Ole.MachineAccessRestriction.Sddl | Should -Match '\(A;;0x3;;;S-1-5-7\)'
        $capture.Json.Machine.Lsa.ForceGuest.Data | Should -Be 0
        $capture.Json.Computer.InstallLanguage | Should -Be 'de-DE'
        @($capture.Json.Computer.Addresses) | Should -Be @('10.7.3.50', 'fe80::1')
        $user = @($capture.Json.Accounts.Users | Where-Object -FilterScript { $_.Name -eq 'opcdienst' })[0]
        $user.PasswordNeverExpires | Should -BeTrue
        $group = @($capture.Json.Accounts.Groups | Where-Object -FilterScript { $_.Name -eq 'OPC-Bediener' })[0]
        @($group.Members) | Should -Be @($user.Sid)
        $capture.Json.Names.'S-1-5-32-544' | Should -Be 'VORDEFINIERT\Administratoren'
        @($capture.Json.Rights.SeServiceLogonRight) | Should -Contain $user.Sid
    }

    It 'keeps the firewall rules for 135 and the server executables, and network discovery' {
        $rules = @($capture.Json.Firewall.Rules)
        @($rules | ForEach-Object -Process { '{0}={1}' -f $_.Name, $_.Why }) | Should -Be @('Mill=server_executable', 'RPC-135=rpc_endpoint_mapper')
        $capture.Json.NetworkDiscovery.EnabledRules | Should -Be 1
        @($capture.Json.NetworkDiscovery.EnabledProfiles) | Should -Be @('private')
    }

    It 'holds no password material: not the password, not a hash of it, not the planted secrets' {
        $hashes = & $module { @($script:Sim.Users.Values | ForEach-Object -Process { $_.PasswordHash }) + @($script:Sim.Services.Values | ForEach-Object -Process { $_.PasswordHash }) | Where-Object -FilterScript { $_ } }
        @($hashes).Count | Should -BeGreaterThan 1
        $capture.Text.Contains($script:Secret) | Should -BeFalse
        foreach ($hash in $hashes) { $capture.Text.Contains([string] $hash) | Should -BeFalse }
        $capture.Text | Should -Not -Match '(?i)password"\s*:\s*"|DefaultPassword|SecretOfTest|ServiceParameters'
    }

    It 'reads the user rights from one secedit export, not one per right' {
        @($calls | Where-Object -FilterScript { $_ -eq 'Get-DcomcOsUserRightMap' }).Count | Should -Be 1
        @($calls | Where-Object -FilterScript { $_ -eq 'Get-DcomcOsUserRight' }).Count | Should -Be 0
        @($capture.Json.Rights.PSObject.Properties.Name) | Should -Be @('SeServiceLogonRight', 'SeNetworkLogonRight', 'SeDenyNetworkLogonRight', 'SeDenyServiceLogonRight', 'SeBatchLogonRight')
    }
}

Describe 'The capture''s reads in the real system layer (the Windows commands replaced)' {
    BeforeAll {
        Get-Module -Name 'DcomConfig' | Remove-Module -Force
        $real = Import-Module -Name $scada.Engine -Force -PassThru -DisableNameChecking
        $script:Exports = 0
        Mock -ModuleName 'DcomConfig' -CommandName 'Invoke-DcomcOsSecedit' -MockWith {
            $script:Exports += 1
            $cfg = $Arguments[[array]::IndexOf($Arguments, '/cfg') + 1]
            [IO.File]::WriteAllText($cfg, "[Privilege Rights]`r`nSeServiceLogonRight = *S-1-5-80-0,*S-1-5-21-1-2-3-1001`r`nSeBatchLogonRight = *S-1-5-32-544`r`n", [Text.Encoding]::Unicode)
        }
        function Invoke-FirewallPart {
            # The Firewall part as Get-DcomcCapture runs it, with Get-NetFirewallRule answering
            # by writing an error of this category (as the NetSecurity cmdlets do).
            param([Parameter(Mandatory = $true)] [string] $Category)
            & $real {
                param($category)
                function script:Get-NetFirewallRule { [CmdletBinding()] param($Direction) Write-Error -Message 'The RPC server is unavailable.' -Category $category }
                foreach ($name in @('Get-NetFirewallPortFilter', 'Get-NetFirewallApplicationFilter', 'Get-NetFirewallServiceFilter', 'Get-NetFirewallAddressFilter')) {
                    $null = New-Item -Path ('function:script:{0}' -f $name) -Value { [CmdletBinding()] param([switch] $All) } -Force
                }
                $capture = @{ Elevated = $true; Skipped = (New-Object -TypeName System.Collections.ArrayList) }
                $part = Invoke-DcomcCapturePart -Part 'Firewall' -Capture $capture -Reader { [ordered] @{ Rules = @(Get-DcomcCaptureFirewall -Executables @()) } } 3>$null
                @{ Part = $part; Skipped = @($capture.Skipped) }
            } $Category
        }
    }

    AfterAll {
        Get-Module -Name 'DcomConfig' | Remove-Module -Force
    }

    It 'reads every captured right from one secedit export' {
        $script:Exports = 0
        $rights = & $real { Get-DcomcCaptureRights -Sids @{} }
        $script:Exports | Should -Be 1
        @($rights.SeServiceLogonRight) | Should -Be @('S-1-5-21-1-2-3-1001', 'S-1-5-80-0')
        @($rights.SeBatchLogonRight) | Should -Be @('S-1-5-32-544')
        @($rights.SeNetworkLogonRight).Count | Should -Be 0
        $script:Exports = 0
        $holders = & $real { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' }
        $holders.GetType().IsArray | Should -BeTrue
        @($holders) | Should -Be @('S-1-5-80-0', 'S-1-5-21-1-2-3-1001')
        $script:Exports | Should -Be 1
    }

    It 'records a firewall that cannot be read as a skipped part, not as a PC without rules' {
        $outcome = Invoke-FirewallPart -Category 'ConnectionError'
        $outcome.Part | Should -BeNullOrEmpty
        @($outcome.Skipped | ForEach-Object -Process { '{0}: {1}' -f $_.Part, $_.Reason }) | Should -Be @('Firewall: The RPC server is unavailable.')
    }

    It 'reads "no inbound rule at all" as an empty list' {
        $outcome = Invoke-FirewallPart -Category 'ObjectNotFound'
        @($outcome.Skipped).Count | Should -Be 0
        @($outcome.Part.Rules).Count | Should -Be 0
    }
}

Describe 'Capture without elevation' {
    It 'captures what a standard user may read and says what it skipped (the user rights)' {
        $module = New-BrownfieldPc
        & $module { Set-SimElevated -Elevated $false }
        $before = & $module { Get-SimSnapshot }
        $capture = Invoke-Capture -Module $module -Name 'standard-user.json'
        $capture.Json.Elevated | Should -BeFalse
        @($capture.Json.Skipped | ForEach-Object -Process { $_.Part }) | Should -Be @('Rights')
        $capture.Json.Skipped[0].Reason | Should -Match '^not elevated: .*as administrator'
        $capture.Json.Rights | Should -BeNullOrEmpty
        @($capture.Json.Servers).Count | Should -Be 2
        (& $module { Get-SimSnapshot }) | Should -BeExactly $before
    }

    It 'records a part that fails for an administrator too, and still writes the rest' {
        $module = New-BrownfieldPc
        & $module { Add-SimFault -Operation 'Get-DcomcOsFirewallRuleList' -Message 'RPC server unavailable' }
        $capture = Invoke-Capture -Module $module -Name 'fault.json'
        @($capture.Json.Skipped | ForEach-Object -Process { '{0}: {1}' -f $_.Part, $_.Reason }) | Should -Be @('Firewall: RPC server unavailable')
        @($capture.Json.Servers).Count | Should -Be 2
    }

    It 'refuses a capture without -Path (exit 3, nothing written)' {
        $module = New-BrownfieldPc
        $outcome = & $module { Invoke-DcomcConfiguration -Mode Capture 2>$null 3>$null 6>$null }
        $outcome.ExitCode | Should -Be 3
    }
}

Describe 'Capture after an Apply of the engine' {
    It 'sees the plan''s server, its service account, its ACLs and the firewall rules dcomc made' {
        $module = Import-SimEngine -Engine $scada.Engine
        $data = Initialize-SimPc -Module $module -Bundle $scada -Locale 'de-DE'
        $app = @($data.Resources | Where-Object -FilterScript { $_.ContainsKey('App') })[0].App
        $clsid = $app.Clsid
        & $module { param($c) Add-SimImplementedCategory -Clsid $c -Category @('DA2') } $clsid
        (Invoke-Engine -Bundle $scada -Data $data -With @{ Mode = 'Apply' }).ExitCode | Should -Be 0
        $capture = Invoke-Capture -Module $module -Name 'applied.json'
        $server = @($capture.Json.Servers)[0]
        $server.Clsid | Should -Be $clsid
        $server.AppIdKey.LaunchPermission.Exists | Should -BeTrue
        @($capture.Json.Firewall.Rules | Where-Object -FilterScript { $_.Why -eq 'rpc_endpoint_mapper' }).Count | Should -Be 1
        $capture.Json.Machine.Ole.LegacyAuthenticationLevel.Data | Should -Be 5
    }
}

Describe 'Import of a brownfield server''s capture and two client captures' {
    BeforeAll {
        function New-ClientCapture {
            <# A client PC set up through the engine: the plant7 HMI bundle applied to a fresh
               simulated Windows (as make-sample-captures.ps1 does), then captured. #>
            param([Parameter(Mandatory = $true)] $Bundle, [Parameter(Mandatory = $true)] [string] $Address)
            $module = Import-SimEngine -Engine $Bundle.Engine
            $data = Initialize-SimPc -Module $module -Bundle $Bundle -Locale 'en-US'
            & $module { param($a) Set-SimNetwork -Address @($a) } $Address
            (Invoke-Engine -Bundle $Bundle -Data $data -With @{ Mode = 'Apply' }).ExitCode | Should -Be 0
            return (Invoke-Capture -Module $module -Name ('{0}.json' -f $Bundle.Host)).Path
        }
        $server = (Invoke-Capture -Module (New-BrownfieldPc) -Name 'ALTPC7.json').Path
        $clients = @(foreach ($name in @('HMI01', 'HMI02')) {
                $bundle = $bundles | Where-Object -FilterScript { $_.Name -eq ('plant7-workgroup/{0}' -f $name) }
                New-ClientCapture -Bundle $bundle -Address ('10.7.3.{0}' -f (20 + [int] $name.Substring(3)))
            })
        $spec = Join-Path -Path $env:DCOMC_WORK -ChildPath 'imported-altpc7.yaml'
        $imported = & $env:DCOMC_PYTHON -m dcomc import $server @clients -o $spec --force 2>&1
        $importExit = $LASTEXITCODE
        $checked = & $env:DCOMC_PYTHON -m dcomc check $spec 2>&1
        $checkExit = $LASTEXITCODE
        $text = Get-Content -LiteralPath $spec -Raw
    }

    It 'gives a spec that passes check, with the three PCs and their addresses' {
        $importExit | Should -Be 0 -Because ($imported -join "`n")
        ($imported -join "`n") | Should -Match '3 hosts imported, passes check'
        $checkExit | Should -Be 0 -Because ($checked -join "`n")
        foreach ($line in @("  ALTPC7:", "    address: '10.7.3.50'", "  HMI01:", "    address: '10.7.3.21'", "  HMI02:", "    address: '10.7.3.22'")) {
            $text.Contains($line + "`n") | Should -BeTrue -Because $line
        }
    }

    It 'keeps the vendor server outside the catalog and the 64-bit server by their identifiers' {
        $text | Should -Match ("(?m)^  vendor-mill-2:\n(.*\n)*?    clsid: '{0}'\n" -f [regex]::Escape($script:VendorClsid))
        $text | Should -Match ("(?m)^  wide-opc-1:\n(.*\n)*?    bitness: 64\n")
        $text | Should -Match "service_account: 'opcdienst'"
        $text | Should -Match 'AuthenticationLevel 2 \(connect\)'
        # its launch ACL lacks SYSTEM and INTERACTIVE of Windows' default: exact, as on the PC
        $text | Should -Match "'OPC-Bediener': \[local_launch, remote_launch, local_activation, remote_activation\]"
        $text | Should -Match 'permissions: exact'
    }

    It 'makes the spec pass where the PC alone would not: the service account an administrator, the launch principals in the limit' {
        # opcdienst is no administrator on ALTPC7 (E117 otherwise); its limit adds nothing to
        # Windows' default, which would refuse the clients' flows (E504): dcomc's default is kept
        $text | Should -Match "(?m)^      # runs a server's service but is no administrator on the PC.*\n      member_of: \['Administrators'\]"
        $text | Should -Match "(?m)^  server:\n    dcom:\n      launch_limits:\n        'Administrators': .*# a launch principal of its servers"
    }

    It 'names the clients'' accounts found on both client PCs as site accounts, never a password' {
        $text | Should -Match "(?m)^    'opcuser':\n      password: prompt"
        $text.Contains($script:Secret) | Should -BeFalse
    }

    It 'prints unverified catalog entries for the servers the catalog lacks' {
        $entries = (& $env:DCOMC_PYTHON -m dcomc catalog --from $server) -join "`n"
        $LASTEXITCODE | Should -Be 0
        $entries | Should -Match ("(?m)^vendor-mill-2:\n(  .*\n)*  clsid: '{0}'\n(  .*\n)*  service: 'MillOPC'\n  bitness: 32\n  verified: false" -f [regex]::Escape($script:VendorClsid))
        $entries | Should -Match "(?m)^wide-opc-1:\n(  .*\n)*  bitness: 64\n  verified: false"
    }
}
