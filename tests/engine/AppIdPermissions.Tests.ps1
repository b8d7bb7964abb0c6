# AppID Launch and Access Permissions on the simulated Windows: the guide's Customize adds the
# spec's users and groups to what the AppID already grants (its own ACL, else the PC's machine
# default, else Windows' documented default), so Administrators and SYSTEM keep launch and
# access; `permissions: exact` writes exactly the spec's list; Rollback restores what was there.

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $scada = Get-TestBundle | Where-Object -FilterScript { $_.Name -eq 'plant7-workgroup/SCADA01' }
    $script:Admins = 'S-1-5-32-544'
    $script:System = 'S-1-5-18'
    $script:Interactive = 'S-1-5-4'
    $script:Self = 'S-1-5-10'
    # A vendor's own LaunchPermission: a local account of the vendor's with launch rights.
    $script:VendorSddl = 'O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCSW;;;S-1-5-21-1111-2222-3333-1500)'

    function Use-Pc {
        param([switch] $WithAppIds)
        $script:module = Import-SimEngine -Engine $scada.Engine
        $script:data = Initialize-SimPc -Module $script:module -Bundle $scada -WithAppIds:$WithAppIds
    }
    function Sim { param([scriptblock] $Script, [object[]] $Arguments = @()) & $script:module $Script @Arguments }
    function Run { param([string] $Mode) Invoke-Engine -Bundle $scada -Data $script:data -With @{ Mode = $Mode } }
    function Snapshot { Sim { Get-SimSnapshot } }
    function Get-Permission {
        # The AppID permission resources of the plan, OPCEnum's (exact by design) left out.
        param([string] $Which)
        return , @($script:data.Resources | Where-Object -FilterScript {
                $_.Kind -eq 'appid_permission' -and $_.Which -eq $Which -and $_.App.Key -ne 'opcenum' })
    }
    function Get-AclMask {
        # The rights Sid has in the resource's AppID value on the simulated PC (0 when absent).
        param($Resource, [string] $Sid)
        return Sim {
            param($r, $sid)
            $state = Get-DcomcAppIdPermission -Resource $r
            if (-not $state.Value.Exists) { return -1 }
            $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-DcomcHex -Hex $state.Value.Data)
            return [long] (Get-DcomcDescriptorMask -Descriptor $sd -Sid $sid)
        } @($Resource, $Sid)
    }
    function Set-AppValue {
        # Writes an AppID value on the simulated PC (the state a vendor installer leaves).
        param($Resource, [string] $Sddl)
        Sim {
            param($r, $sddl)
            $path = Get-DcomcAppIdPath -App $r.App
            Set-SimRegistryValue -Path $path -Name (Get-DcomcPermissionName -Resource $r) -Type 'Binary' -Data (ConvertTo-SimSdBinary -Sddl $sddl)
        } @($Resource, $Sddl)
    }
    function Get-PlannedSid {
        param($Ace)
        return Sim { param($p) Find-DcomcSid -Principal $p } @($Ace.Principal)
    }
}

Describe 'permissions: add (the guide''s Customize)' {
    It 'the examples plan add for every server' {
        Use-Pc
        $all = @(Get-Permission 'launch') + @(Get-Permission 'access')
        $all.Count | Should -BeGreaterThan 1
        foreach ($r in $all) { $r.Mode | Should -BeExactly 'add' }
    }

    It 'on an AppID without a value: Administrators, SYSTEM and INTERACTIVE keep launch (the PC''s DefaultLaunchPermission), the spec''s principals are added; Rollback removes the value' {
        Use-Pc -WithAppIds
        $fresh = Snapshot
        (Run 'Apply').ExitCode | Should -Be 0
        foreach ($r in (Get-Permission 'launch')) {
            foreach ($sid in @($script:Admins, $script:System, $script:Interactive)) {
                Get-AclMask -Resource $r -Sid $sid | Should -Be 0x1F
            }
            foreach ($ace in $r.Aces) {
                ((Get-AclMask -Resource $r -Sid (Get-PlannedSid $ace)) -band $ace.Mask) | Should -Be $ace.Mask
            }
        }
        (Run 'Test').ExitCode | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $fresh
    }

    It 'on an AppID without a value and a PC without DefaultAccessPermission: the server itself and SYSTEM keep access (Windows'' documented default)' {
        Use-Pc -WithAppIds
        (Sim { (Get-DcomcRegistryState -Path $script:OleKey -Name 'DefaultAccessPermission').Exists }) | Should -BeFalse
        (Run 'Apply').ExitCode | Should -Be 0
        foreach ($r in (Get-Permission 'access')) {
            Get-AclMask -Resource $r -Sid $script:Self | Should -Be 0x7
            Get-AclMask -Resource $r -Sid $script:System | Should -Be 0x7
        }
    }

    It 'on an AppID with its own value: every entry of it is kept and the spec''s added; Rollback restores it exactly' {
        Use-Pc -WithAppIds
        $launch = Get-Permission 'launch'
        foreach ($r in $launch) { Set-AppValue -Resource $r -Sddl $script:VendorSddl }
        $before = Snapshot
        (Run 'Apply').ExitCode | Should -Be 0
        foreach ($r in $launch) {
            Get-AclMask -Resource $r -Sid $script:Admins | Should -Be 0x1F
            Get-AclMask -Resource $r -Sid 'S-1-5-21-1111-2222-3333-1500' | Should -Be 0xB
            # The vendor's value did not grant SYSTEM or INTERACTIVE, and adding does not either.
            Get-AclMask -Resource $r -Sid $script:Interactive | Should -Be 0
        }
        (Run 'Test').ExitCode | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $before
    }

    It 'a PC without DefaultLaunchPermission starts from Windows'' documented default' {
        Use-Pc -WithAppIds
        Sim { Remove-DcomcOsRegistryValue -Path $script:OleKey -Name 'DefaultLaunchPermission' }
        (Run 'Apply').ExitCode | Should -Be 0
        foreach ($r in (Get-Permission 'launch')) {
            foreach ($sid in @($script:Admins, $script:System, $script:Interactive)) {
                Get-AclMask -Resource $r -Sid $sid | Should -Be 0x1F
            }
        }
    }

    It 'a second Apply changes nothing (entries already present count as compliant)' {
        Use-Pc -WithAppIds
        (Run 'Apply').ExitCode | Should -Be 0
        $applied = Snapshot
        (Run 'Apply').ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $applied
    }

    It 'an AppID value that is not binary fails Apply loudly and leaves the PC as it was' {
        Use-Pc -WithAppIds
        $r = (Get-Permission 'launch')[0]
        Sim { param($r) Set-SimRegistryValue -Path (Get-DcomcAppIdPath -App $r.App) -Name 'LaunchPermission' -Type 'String' -Data 'oops' } @($r)
        $before = Snapshot
        (Run 'Apply').ExitCode | Should -Be 2
        Snapshot | Should -BeExactly $before
    }
}

Describe 'permissions: exact' {
    It 'writes exactly the planned entries: Administrators and SYSTEM only where the spec names them' {
        Use-Pc -WithAppIds
        (Run 'Apply').ExitCode | Should -Be 0
        $r = (Get-Permission 'launch')[0]
        $r.Mode = 'exact'
        (Sim { param($r) Test-DcomcAppIdPermission -Resource $r -State (Get-DcomcAppIdPermission -Resource $r) } @($r)).Compliant | Should -BeFalse
        Sim { param($r) Set-DcomcAppIdPermission -Resource $r -State (Get-DcomcAppIdPermission -Resource $r) } @($r)
        $planned = @(foreach ($ace in $r.Aces) { Get-PlannedSid $ace })
        foreach ($sid in @($script:Admins, $script:System, $script:Interactive)) {
            if ($planned -notcontains $sid) { Get-AclMask -Resource $r -Sid $sid | Should -Be 0 }
        }
        foreach ($ace in $r.Aces) { Get-AclMask -Resource $r -Sid (Get-PlannedSid $ace) | Should -Be $ace.Mask }
        (Sim { param($r) Test-DcomcAppIdPermission -Resource $r -State (Get-DcomcAppIdPermission -Resource $r) } @($r)).Compliant | Should -BeTrue
    }

    It 'an unknown mode is refused, not read as add or exact' {
        Use-Pc -WithAppIds
        $r = (Get-Permission 'launch')[0]
        $r.Mode = 'merge'
        { Sim { param($r) Assert-DcomcPermissionMode -Resource $r } @($r) } | Should -Throw -ExpectedMessage '*unknown permission mode merge*'
    }
}
