# ==== Machine-wide settings: machine_dcom_value, machine_limit_addition (guide §4.2),
# ==== rpc_port_range (guide §5), security_option (guide §7), reboot (guide §4.3) =================

# --- machine_dcom_value (guide §4.2 steps 5-7) ----------------------------------------------------

function Get-DcomcRegistryKind {
    <# The RegistryValueKind name of a plan's REG_* type. #>
    param([Parameter(Mandatory = $true)] [string] $Type)
    $kinds = @{ 'REG_SZ' = 'String'; 'REG_DWORD' = 'DWord' }
    if (-not $kinds.ContainsKey($Type)) {
        throw ('The engine cannot write a {0} value' -f $Type)
    }
    return $kinds[$Type]
}

function Get-DcomcMachineDcomValue {
    param([Parameter(Mandatory = $true)] $Resource)
    return @{ Value = (Get-DcomcRegistryState -Path $script:OleKey -Name ([string] $Resource.Name)) }
}

function Test-DcomcMachineDcomValue {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $current = $State.Value
    if ($null -eq $Resource.Data) {
        if ($current.Exists) {
            return @{ Compliant = $false; Reason = 'should be absent (Windows default)' }
        }
        return @{ Compliant = $true; Reason = 'absent (Windows default)' }
    }
    $kind = Get-DcomcRegistryKind -Type ([string] $Resource.Type)
    if ($current.Exists -and $current.Type -eq $kind -and ([string] $current.Data) -eq ([string] $Resource.Data)) {
        return @{ Compliant = $true; Reason = ('{0}' -f $Resource.Data) }
    }
    return @{ Compliant = $false; Reason = ('should be {0}' -f $Resource.Data) }
}

function Set-DcomcMachineDcomValue {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $name = [string] $Resource.Name
    if ($null -eq $Resource.Data) {
        Remove-DcomcOsRegistryValue -Path $script:OleKey -Name $name
    }
    else {
        $kind = Get-DcomcRegistryKind -Type ([string] $Resource.Type)
        Set-DcomcOsRegistryValue -Path $script:OleKey -Name $name -Type $kind -Data (ConvertTo-DcomcRegistryData -Type $kind -Data $Resource.Data)
    }
    $script:RebootNeeded = $true
}

function Restore-DcomcMachineDcomValue {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Restore-DcomcRegistryState -Path $script:OleKey -Name ([string] $Resource.Name) -Before $Before.Value
}

# --- machine_limit_addition (guide §4.2 "Edit Limits"): ADDED, never replacing ------------------

function Get-DcomcLimitDescriptor {
    <# The limit as it is (every ACE, SACL and label kept), or Windows' default when absent. #>
    param([Parameter(Mandatory = $true)] $Value, [Parameter(Mandatory = $true)] [string] $Which)
    if ($Value.Exists) {
        return ConvertFrom-DcomcBinaryState -Value $Value -Name $script:LimitValue[$Which]
    }
    return ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-DcomcHex -Hex $script:DefaultLimits[$Which])
}

function Get-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource)
    $which = [string] $Resource.Which
    $name = $script:LimitValue[$which]
    $policy = Get-DcomcOsRegistryValue -Path $script:PolicyKey -Name $name
    $value = Get-DcomcRegistryState -Path $script:OleKey -Name $name
    $sid = Find-DcomcSid -Principal $Resource.Principal
    $mask = 0
    if ($null -ne $sid) {
        $mask = Get-DcomcDescriptorMask -Descriptor (Get-DcomcLimitDescriptor -Value $value -Which $which) -Sid $sid
    }
    return @{ Value = $value; PolicyOverride = [bool] $policy.Exists; Sid = $sid; Mask = [int] $mask }
}

function Test-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.PolicyOverride) {
        return @{ Compliant = $false; Reason = 'a Group Policy DCOM SDDL value overrides this limit; change it in the policy' }
    }
    $want = [int] $Resource.Mask
    if (([int] $State.Mask -band $want) -eq $want) {
        return @{ Compliant = $true; Reason = 'rights granted by the limit' }
    }
    return @{ Compliant = $false; Reason = ('the limit lacks rights 0x{0:x}' -f ($want -band (-bnot [int] $State.Mask))) }
}

function Set-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $which = [string] $Resource.Which
    $name = $script:LimitValue[$which]
    if ($State.PolicyOverride) {
        throw ('{0} is set by Group Policy ({1}); dcomc does not override policy' -f $name, $script:PolicyKey)
    }
    if (-not $State.Value.Exists) {
        Write-DcomcLog -Level 'WARN' -Message ('{0} was absent: starting from the Windows 10/11 default limit' -f $name)
    }
    $descriptor = Get-DcomcLimitDescriptor -Value $State.Value -Which $which
    $merged = Add-DcomcDescriptorAce -Descriptor $descriptor -Sid (Resolve-DcomcSid -Principal $Resource.Principal) -Mask ([int] $Resource.Mask)
    Set-DcomcOsRegistryValue -Path $script:OleKey -Name $name -Type 'Binary' -Data (ConvertTo-DcomcSecurityDescriptor -Descriptor $merged)
    $script:RebootNeeded = $true
}

function Restore-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Restore-DcomcRegistryState -Path $script:OleKey -Name $script:LimitValue[[string] $Resource.Which] -Before $Before.Value
}

# --- rpc_port_range (guide §5): RPC's dynamic ports restricted to a fixed range ----------------
# Ports (REG_MULTI_SZ, the ranges), PortsInternetAvailable and UseInternetPorts (REG_SZ Y) under
# Rpc\Internet: the servers then listen in that range only, after a reboot.

function Get-DcomcRpcPortRange {
    param([Parameter(Mandatory = $true)] $Resource)
    # Windows has no Internet key until a range is set: Restore removes the one Set created.
    $state = @{ KeyExists = ($null -ne (Get-DcomcOsRegistryKey -Path $script:RpcInternetKey)); Ports = (Get-DcomcRegistryState -Path $script:RpcInternetKey -Name 'Ports') }
    foreach ($name in $script:RpcInternetFlags) {
        $state[$name] = Get-DcomcRegistryState -Path $script:RpcInternetKey -Name $name
    }
    return $state
}

function Test-DcomcRpcPortRange {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $want = @($Resource.Ports) -join ','
    $ports = $State.Ports
    if (-not $ports.Exists -or $ports.Type -ne 'MultiString' -or (@($ports.Data) -join ',') -ne $want) {
        return @{ Compliant = $false; Reason = ('Ports should be {0}' -f $want) }
    }
    foreach ($name in $script:RpcInternetFlags) {
        $value = $State.$name
        if (-not $value.Exists -or $value.Type -ne 'String' -or [string] $value.Data -ne 'Y') {
            return @{ Compliant = $false; Reason = ('{0} should be Y' -f $name) }
        }
    }
    return @{ Compliant = $true; Reason = ('RPC ports {0}' -f $want) }
}

function Set-DcomcRpcPortRange {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $ports = [string[]] @($Resource.Ports | ForEach-Object -Process { [string] $_ })
    Set-DcomcOsRegistryValue -Path $script:RpcInternetKey -Name 'Ports' -Type 'MultiString' -Data $ports
    foreach ($name in $script:RpcInternetFlags) {
        Set-DcomcOsRegistryValue -Path $script:RpcInternetKey -Name $name -Type 'String' -Data 'Y'
    }
    $script:RebootNeeded = $true
}

function Restore-DcomcRpcPortRange {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    foreach ($name in @('Ports') + $script:RpcInternetFlags) {
        Restore-DcomcRegistryState -Path $script:RpcInternetKey -Name $name -Before $Before.$name
    }
    $key = Get-DcomcOsRegistryKey -Path $script:RpcInternetKey
    if (-not $Before.KeyExists -and $null -ne $key -and $key.ValueCount -eq 0 -and $key.SubKeyCount -eq 0) {
        Remove-DcomcOsRegistryKey -Path $script:RpcInternetKey
    }
}

# --- security_option (guide §7): registry-backed security options -------------------------------

function ConvertTo-DcomcKeyPath {
    <# HKEY_LOCAL_MACHINE\X -> X (the engine only writes under HKLM). #>
    param([Parameter(Mandatory = $true)] [string] $Key)
    $prefix = 'HKEY_LOCAL_MACHINE\'
    if (-not $Key.StartsWith($prefix, [StringComparison]::OrdinalIgnoreCase)) {
        throw ('Not an HKEY_LOCAL_MACHINE key: {0}' -f $Key)
    }
    return $Key.Substring($prefix.Length)
}

function Get-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource)
    $path = ConvertTo-DcomcKeyPath -Key ([string] $Resource.Key)
    return @{ Value = (Get-DcomcRegistryState -Path $path -Name ([string] $Resource.ValueName)) }
}

function Test-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $current = $State.Value
    if ($current.Exists -and $current.Type -eq 'DWord' -and [int] $current.Data -eq [int] $Resource.Value) {
        return @{ Compliant = $true; Reason = ('{0} = {1}' -f $Resource.ValueName, $Resource.Value) }
    }
    return @{ Compliant = $false; Reason = ('{0} should be {1}' -f $Resource.ValueName, $Resource.Value) }
}

function Set-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $path = ConvertTo-DcomcKeyPath -Key ([string] $Resource.Key)
    Set-DcomcOsRegistryValue -Path $path -Name ([string] $Resource.ValueName) -Type 'DWord' -Data ([int] $Resource.Value)
}

function Restore-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $path = ConvertTo-DcomcKeyPath -Key ([string] $Resource.Key)
    Restore-DcomcRegistryState -Path $path -Name ([string] $Resource.ValueName) -Before $Before.Value
}

# --- reboot (guide §4.3): a notice, never a reboot ------------------------------------------------

function Get-DcomcRebootNotice {
    param([Parameter(Mandatory = $true)] $Resource)
    return @{ Needed = $script:RebootNeeded }
}

function Test-DcomcRebootNotice {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.Needed) {
        return @{ Compliant = $true; Reason = 'REBOOT NEEDED: machine DCOM settings changed (guide §4.3)' }
    }
    return @{ Compliant = $true; Reason = 'no machine DCOM change in this run' }
}

function Set-DcomcRebootNotice {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
}

function Restore-DcomcRebootNotice {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
}
