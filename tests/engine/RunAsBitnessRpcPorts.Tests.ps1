# Issue 12 items 5-7 on the simulated Windows, with a bundle the compiler builds here from
# plant7 plus: an interactive server `panel` without a bitness and with run_as: interactive_user
# (appid_run_as), and machine.server.rpc_ports with firewall.open: rpc_ports (rpc_port_range and
# one firewall rule for the range). RunAs is set and rolled back; the CLSID of a server without
# a bitness is found in the one registry view it is in, and one in both views is an error; the
# RPC Internet values are written, flagged for a reboot and rolled back, also at a fault.

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $work = Join-Path -Path $TestDrive -ChildPath 'identity-ports'
    $null = New-Item -ItemType Directory -Path $work -Force
    $spec = Join-Path -Path $work -ChildPath 'identity-ports.yaml'
    # The derived spec is written by the compiler's own Python (PyYAML), from the shipped example.
    $derive = @'
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
spec["site"]["name"] = "identity-ports"
users = ["local_launch", "remote_launch", "local_activation", "remote_activation"]
spec["servers"]["panel"] = {
    "progid": "Example.PanelOPC.1", "process_mode": "interactive", "run_as": "interactive_user",
    "executable": "C:\\Program Files\\Example\\panel.exe", "authentication_level": "packet_integrity",
    "launch": {"OPC Users": users}, "access": {"OPC Users": ["local_access", "remote_access"]}}
spec["hosts"]["SCADA01"]["servers"].append("panel")
spec["machine"]["server"]["rpc_ports"] = "5000-5200"
spec["machine"]["server"]["firewall"]["open"] = "rpc_ports"
yaml.safe_dump(spec, open(sys.argv[2], "w", encoding="utf-8"), sort_keys=False, allow_unicode=True)
'@
    $example = Join-Path -Path $script:Repo -ChildPath 'examples/plant7-workgroup.yaml'
    & $env:DCOMC_PYTHON -c $derive $example $spec
    $out = Join-Path -Path $work -ChildPath 'bundle'
    $null = & $env:DCOMC_PYTHON -m dcomc build $spec --no-msi -o $out 2>&1
    $folder = Join-Path -Path $out -ChildPath 'SCADA01/powershell'
    $script:Bundle = [pscustomobject] @{
        Name = 'identity-ports/SCADA01'; Spec = 'identity-ports'; Host = 'SCADA01'; Folder = $folder
        DataFile = (Join-Path -Path $folder -ChildPath 'SCADA01.psd1'); Engine = (Join-Path -Path $folder -ChildPath 'DcomConfig.psm1')
        Entry = (Join-Path -Path $folder -ChildPath 'Invoke-DcomConfig.ps1'); SpecFile = $spec
    }
    $script:RpcKey = 'SOFTWARE\Microsoft\Rpc\Internet'

    function Use-Pc {
        param([switch] $WithAppIds)
        $script:module = Import-SimEngine -Engine $script:Bundle.Engine
        $script:data = Initialize-SimPc -Module $script:module -Bundle $script:Bundle -WithAppIds:$WithAppIds
    }
    function Sim { param([scriptblock] $Script, [object[]] $Arguments = @()) & $script:module $Script @Arguments }
    function Run { param([string] $Mode) Invoke-Engine -Bundle $script:Bundle -Data $script:data -With @{ Mode = $Mode } }
    function Snapshot { Sim { Get-SimSnapshot } }
    function Get-Resource { param([string] $Kind) return , @($script:data.Resources | Where-Object -FilterScript { $_.Kind -eq $Kind }) }
    function Get-RunAs {
        # @{ Exists; Type; Data } of the panel's RunAs value on the simulated PC.
        param($Resource)
        return Sim { param($r) (Get-DcomcAppIdRunAs -Resource $r).Value } @($Resource)
    }
    function Get-Rpc { param([string] $Name) return Sim { param($k, $n) Get-DcomcRegistryState -Path $k -Name $n } @($script:RpcKey, $Name) }
    function Install-Panel {
        # A fresh PC with the panel's class registered in the given views only (none: not at all).
        param([int[]] $Bitness)
        $app = (Get-Resource 'appid_run_as')[0].App
        $clsid = Get-TestGuid -Text $app.Progid
        Sim { param($locale) Reset-SimWindows -Locale $locale -ComputerName 'SCADA01' } @('de-DE')
        foreach ($bits in $Bitness) {
            Sim { param($p, $c, $b) Install-SimComServer -ProgId $p -Clsid $c -Bitness $b -NoAppId } @($app.Progid, $clsid, $bits)
        }
        return $clsid
    }
}

Describe 'the derived bundle' {
    It 'plans appid_run_as for the panel (no bitness), rpc_port_range, and one firewall rule for the range instead of program rules' {
        Use-Pc
        $runAs = Get-Resource 'appid_run_as'
        $runAs.Count | Should -Be 1
        $runAs[0].App.Key | Should -BeExactly 'panel'
        $runAs[0].App.Bitness | Should -BeNullOrEmpty
        $runAs[0].Value | Should -BeExactly 'Interactive User'
        $ports = Get-Resource 'rpc_port_range'
        $ports.Count | Should -Be 1
        @($ports[0].Ports) | Should -Be @('5000-5200')
        $rules = Get-Resource 'firewall_rule'
        @($rules | Where-Object -FilterScript { $_.LocalPort -eq '5000-5200' }).Count | Should -Be 1
        @($rules | Where-Object -FilterScript { $_.Program }).Count | Should -Be 0
    }
}

Describe 'appid_run_as (RunAs)' {
    It 'Apply writes RunAs = Interactive User (REG_SZ) on an AppID that Apply creates; Test is then clean; Rollback leaves the PC as it was' {
        Use-Pc
        $fresh = Snapshot
        (Run 'Apply').ExitCode | Should -Be 0
        $value = Get-RunAs (Get-Resource 'appid_run_as')[0]
        $value.Exists | Should -BeTrue
        $value.Type | Should -BeExactly 'String'
        $value.Data | Should -BeExactly 'Interactive User'
        (Run 'Test').ExitCode | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $fresh
    }

    It 'an AppID that runs as an account before Apply gets Interactive User, and Rollback puts the account back' {
        Use-Pc -WithAppIds
        $resource = (Get-Resource 'appid_run_as')[0]
        Sim { param($r) Set-SimRegistryValue -Path (Get-DcomcAppIdPath -App $r.App) -Name 'RunAs' -Type 'String' -Data 'PLANT\opcrun' } @($resource)
        $before = Snapshot
        (Sim { param($r) Test-DcomcResource -Resource $r } @($resource)).Reason | Should -Match 'RunAs should be Interactive User'
        (Run 'Apply').ExitCode | Should -Be 0
        (Get-RunAs $resource).Data | Should -BeExactly 'Interactive User'
        (Run 'Rollback').ExitCode | Should -Be 0
        (Get-RunAs $resource).Data | Should -BeExactly 'PLANT\opcrun'
        Snapshot | Should -BeExactly $before
    }

    It 'launching_user (no value) deletes RunAs, is compliant without it, and Restore puts the old value back' {
        Use-Pc -WithAppIds
        $resource = (Get-Resource 'appid_run_as')[0].Clone()
        $resource.Identity = 'launching_user'
        $resource.Value = $null
        $path = Sim { param($r) Get-DcomcAppIdPath -App $r.App } @($resource)
        Sim { param($p) Set-SimRegistryValue -Path $p -Name 'RunAs' -Type 'String' -Data 'Interactive User' } @($path)
        $state = Sim { param($r) ConvertTo-DcomcPlain -State (Get-DcomcAppIdRunAs -Resource $r) } @($resource)
        (Sim { param($r, $s) Test-DcomcAppIdRunAs -Resource $r -State $s } @($resource, $state)).Compliant | Should -BeFalse
        Sim { param($r, $s) Set-DcomcAppIdRunAs -Resource $r -State $s } @($resource, $state)
        (Get-RunAs $resource).Exists | Should -BeFalse
        $after = Sim { param($r) Get-DcomcAppIdRunAs -Resource $r } @($resource)
        $test = Sim { param($r, $s) Test-DcomcAppIdRunAs -Resource $r -State $s } @($resource, $after)
        $test.Compliant | Should -BeTrue
        $test.Reason | Should -Match 'launching user'
        Sim { param($r, $s) Restore-DcomcAppIdRunAs -Resource $r -Before $s } @($resource, $state)
        (Get-RunAs $resource).Data | Should -BeExactly 'Interactive User'
    }

    It 'a RunAs of another type (REG_EXPAND_SZ) is drift, not compliance' {
        Use-Pc -WithAppIds
        $resource = (Get-Resource 'appid_run_as')[0]
        Sim { param($r) Set-SimRegistryValue -Path (Get-DcomcAppIdPath -App $r.App) -Name 'RunAs' -Type 'ExpandString' -Data 'Interactive User' } @($resource)
        (Sim { param($r) Test-DcomcResource -Resource $r } @($resource)).Compliant | Should -BeFalse
    }
}

Describe 'bitness not given: the registry view the CLSID is registered in' {
    It 'only in the 32-bit view: that view is used, Apply succeeds' {
        Use-Pc
        $clsid = Install-Panel -Bitness 32
        $app = (Get-Resource 'appid_run_as')[0].App
        (Sim { param($a) Get-DcomcClass -App $a } @($app)).View | Should -BeExactly 'Registry32'
        (Sim { param($c) Get-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}' -f $c) -Name 'AppID' -View 'Registry64' } @($clsid)).Exists | Should -BeFalse
    }

    It 'only in the 64-bit view: that view is used, and Apply writes the class''s AppID value there' {
        Use-Pc
        $clsid = Install-Panel -Bitness 64
        $resource = (Get-Resource 'appid_run_as')[0]
        (Sim { param($a) Get-DcomcClass -App $a } @($resource.App)).View | Should -BeExactly 'Registry64'
        Sim { param($r) $state = Get-DcomcAppIdRunAs -Resource $r; Set-DcomcAppIdRunAs -Resource $r -State $state } @($resource)
        (Sim { param($c) Get-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}' -f $c) -Name 'AppID' -View 'Registry64' } @($clsid)).Data | Should -BeExactly $clsid
        (Sim { param($c) Get-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}' -f $c) -Name 'AppID' -View 'Registry32' } @($clsid)).Exists | Should -BeFalse
    }

    It 'in both views: an error naming both keys; Test reports it and Apply changes nothing (exit 2)' {
        Use-Pc
        $clsid = Install-Panel -Bitness 32, 64
        $app = (Get-Resource 'appid_run_as')[0].App
        { Sim { param($a) Get-DcomcClass -App $a } @($app) } | Should -Throw -ExpectedMessage ('*{0}*both registry views*Wow6432Node\CLSID\{0}*SOFTWARE\Classes\CLSID\{0}*bitness*' -f $clsid)
        $result = Sim { param($r) Test-DcomcResource -Resource $r } @((Get-Resource 'appid_run_as')[0])
        $result.Compliant | Should -BeFalse
        $result.Reason | Should -Match 'both registry views'
        $before = Snapshot
        (Run 'Apply').ExitCode | Should -Be 2
        Snapshot | Should -BeExactly $before
    }

    It 'in neither view: not registered' {
        Use-Pc
        $null = Install-Panel -Bitness @()
        $app = (Get-Resource 'appid_run_as')[0].App
        Sim { param($a) Get-DcomcClass -App $a } @($app) | Should -BeNullOrEmpty
        (Sim { param($r) Test-DcomcResource -Resource $r } @((Get-Resource 'appid_run_as')[0])).Reason | Should -Match 'not registered'
    }

    It 'a bitness given wins when both views have the class' {
        Use-Pc
        $null = Install-Panel -Bitness 32, 64
        $app = (Get-Resource 'appid_run_as')[0].App.Clone()
        $app.Bitness = 64
        (Sim { param($a) Get-DcomcClass -App $a } @($app)).View | Should -BeExactly 'Registry64'
    }
}

Describe 'rpc_port_range (Rpc\Internet)' {
    It 'Apply writes Ports (REG_MULTI_SZ) and the two Y flags, asks for a reboot, opens the range; Rollback removes the key it created' {
        Use-Pc
        $fresh = Snapshot
        $outcome = Run 'Apply'
        $outcome.ExitCode | Should -Be 0
        $outcome.RebootRequired | Should -BeTrue
        $ports = Get-Rpc 'Ports'
        $ports.Type | Should -BeExactly 'MultiString'
        @($ports.Data) | Should -Be @('5000-5200')
        foreach ($name in @('PortsInternetAvailable', 'UseInternetPorts')) {
            $value = Get-Rpc $name
            $value.Type | Should -BeExactly 'String'
            $value.Data | Should -BeExactly 'Y'
        }
        $rule = Sim { Get-DcomcOsFirewallRule -Name 'dcomc-identity-ports-rpc-ports' }
        $rule | Should -Not -BeNullOrEmpty
        @($rule.LocalPort) | Should -Be @('5000-5200')
        (Run 'Test').ExitCode | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        Sim { param($k) Get-DcomcOsRegistryKey -Path $k } @($script:RpcKey) | Should -BeNullOrEmpty
        Snapshot | Should -BeExactly $fresh
    }

    It 'a range already set is drift, replaced by Apply and put back by Rollback' {
        Use-Pc
        Sim { param($k)
            Set-SimRegistryValue -Path $k -Name 'Ports' -Type 'MultiString' -Data ([string[]] @('6000-6100', '7000'))
            Set-SimRegistryValue -Path $k -Name 'UseInternetPorts' -Type 'String' -Data 'N'
        } @($script:RpcKey)
        $before = Snapshot
        $resource = (Get-Resource 'rpc_port_range')[0]
        (Sim { param($r) Test-DcomcResource -Resource $r } @($resource)).Reason | Should -Match 'Ports should be 5000-5200'
        (Run 'Apply').ExitCode | Should -Be 0
        @((Get-Rpc 'Ports').Data) | Should -Be @('5000-5200')
        (Run 'Rollback').ExitCode | Should -Be 0
        @((Get-Rpc 'Ports').Data) | Should -Be @('6000-6100', '7000')
        (Get-Rpc 'UseInternetPorts').Data | Should -BeExactly 'N'
        Snapshot | Should -BeExactly $before
    }

    It 'a flag that is not Y is drift' {
        Use-Pc
        $resource = (Get-Resource 'rpc_port_range')[0]
        Sim { param($r) Set-DcomcRpcPortRange -Resource $r -State @{} } @($resource)
        Sim { param($k) Set-SimRegistryValue -Path $k -Name 'PortsInternetAvailable' -Type 'String' -Data 'N' } @($script:RpcKey)
        (Sim { param($r) Test-DcomcResource -Resource $r } @($resource)).Reason | Should -Match 'PortsInternetAvailable should be Y'
    }

    It 'a fault at any registry write of the RunAs or RPC resources leaves the PC as it was (exit 2)' {
        Use-Pc
        Sim { Reset-SimCalls }
        $null = Run 'Apply'
        $calls = Sim { Get-SimCall }
        $writes = @($calls | Where-Object -FilterScript { $_ -eq 'Set-DcomcOsRegistryValue' }).Count
        $writes | Should -BeGreaterThan 4
        foreach ($n in 1..$writes) {
            Use-Pc
            $fresh = Snapshot
            Sim { param($n) Clear-SimFault; Add-SimFault -Operation 'Set-DcomcOsRegistryValue' -At $n } @($n)
            (Run 'Apply').ExitCode | Should -Be 2 -Because ('fault at registry write {0} of {1}' -f $n, $writes)
            Snapshot | Should -BeExactly $fresh -Because ('fault at registry write {0} of {1}' -f $n, $writes)
        }
    }
}
