# ==== AppID security: appid_auth_level, appid_run_location, appid_permission, appid_run_as =====
# ==== (guide §3, §4.1) ===========================================================================

# --- ProgID -> CLSID (the server's own registry view) -> AppID ---------------------------------

function Get-DcomcClass {
    <# The CLSID of an application (given, or through its ProgID) and the registry view its class
       is registered in; $null when it does not resolve. Without a bitness (neither the spec nor
       the catalog gives one) the class must be registered in exactly one view: registered in
       both, which of the two servers COM starts depends on the caller, so it is an error naming
       both. With a bitness its own view wins; the other one is used (and logged) when only it
       has the class. #>
    param([Parameter(Mandatory = $true)] $App)
    $clsid = [string] $App.Clsid
    if (-not $clsid -and $App.Progid) {
        $value = Get-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\{0}\CLSID' -f $App.Progid) -Name ''
        if ($value.Exists) {
            $clsid = [string] $value.Data
        }
    }
    if (-not $clsid) {
        return $null
    }
    $path = 'SOFTWARE\Classes\CLSID\{0}' -f $clsid
    $found = @(foreach ($view in @('Registry32', 'Registry64')) {
            if ($null -ne (Get-DcomcOsRegistryKey -Path $path -View $view)) { $view }
        })
    if ($found.Count -eq 0) {
        return $null
    }
    if (-not $App.Bitness) {
        if ($found.Count -gt 1) {
            throw ('CLSID {0} of {1} is registered in both registry views (32-bit: HKLM\SOFTWARE\Classes\Wow6432Node\CLSID\{0}; 64-bit: HKLM\SOFTWARE\Classes\CLSID\{0}): give servers.{1}.bitness (32 or 64)' -f $clsid, $App.Key)
        }
        return @{ Clsid = $clsid; View = $found[0] }
    }
    $own = 'Registry{0}' -f [int] $App.Bitness
    if ($found -notcontains $own) {
        Write-DcomcLog -Level 'WARN' -Message ('CLSID {0} of {1} is registered in the {2} view, not the one its bitness says' -f $clsid, $App.Key, $found[0])
        return @{ Clsid = $clsid; View = $found[0] }
    }
    return @{ Clsid = $clsid; View = $own }
}

function Resolve-DcomcAppId {
    <# The AppID GUID of an application, or $null when the server is not registered here. #>
    param([Parameter(Mandatory = $true)] $App)
    if ($App.Appid) {
        return [string] $App.Appid
    }
    $class = Get-DcomcClass -App $App
    if ($null -eq $class) {
        return $null
    }
    $value = Get-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}' -f $class.Clsid) -Name 'AppID' -View $class.View
    if ($value.Exists -and $value.Data) {
        return [string] $value.Data
    }
    return $null
}

function New-DcomcAppId {
    <# A class without an AppID gets one equal to its CLSID, as dcomcnfg does (UNVERIFIED in
       Microsoft's documentation: logged loudly, so that a wrong guess is seen, not silent). #>
    param([Parameter(Mandatory = $true)] $App)
    $class = Get-DcomcClass -App $App
    if ($null -eq $class) {
        throw (Get-DcomcMissingApp -App $App)
    }
    Write-DcomcLog -Level 'WARN' -Message ('CLSID {0} has no AppID value; creating AppID {0} as dcomcnfg does' -f $class.Clsid)
    New-DcomcOsRegistryKey -Path ('{0}\{1}' -f $script:AppIdRoot, $class.Clsid)
    Set-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}' -f $class.Clsid) -Name 'AppID' -Type 'String' -Data $class.Clsid -View $class.View
    return $class.Clsid
}

function Get-DcomcAppIdPath {
    <# HKLM\SOFTWARE\Classes\AppID\{AppID} (shared by both views), created on request. #>
    param([Parameter(Mandatory = $true)] $App, [switch] $Create)
    $appid = Resolve-DcomcAppId -App $App
    if (-not $appid -and $Create) {
        $appid = New-DcomcAppId -App $App
    }
    if (-not $appid) {
        return $null
    }
    return ('{0}\{1}' -f $script:AppIdRoot, $appid)
}

function Remove-DcomcCreatedAppId {
    <# Undo New-DcomcAppId for an application that had no AppID before Apply: the value that Set
       wrote, then the AppID key once nothing else is in it, and the class's AppID value while it
       still names that key. A key found holding other values is kept (and logged). #>
    param([Parameter(Mandatory = $true)] $App, [string] $ValueName = '')
    $class = Get-DcomcClass -App $App
    if ($App.Appid -or $null -eq $class) {
        return
    }
    $path = '{0}\{1}' -f $script:AppIdRoot, $class.Clsid
    if ($ValueName) {
        Remove-DcomcOsRegistryValue -Path $path -Name $ValueName
    }
    $key = Get-DcomcOsRegistryKey -Path $path
    if ($null -eq $key) {
        return
    }
    if ($key.ValueCount -ne 0 -or $key.SubKeyCount -ne 0) {
        Write-DcomcLog -Level 'WARN' -Message ('AppID {0} was created by Apply but holds other values now; kept' -f $class.Clsid)
        return
    }
    $classValue = Get-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}' -f $class.Clsid) -Name 'AppID' -View $class.View
    if ($classValue.Exists -and [string] $classValue.Data -eq $class.Clsid) {
        Remove-DcomcOsRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}' -f $class.Clsid) -Name 'AppID' -View $class.View
    }
    Remove-DcomcOsRegistryKey -Path $path
    Write-DcomcLog -Message ('removed AppID {0}, which Apply had created' -f $class.Clsid)
}

function Get-DcomcMissingApp {
    param([Parameter(Mandatory = $true)] $App)
    $via = $App.Progid
    if (-not $via) {
        $via = $App.Clsid
    }
    return ('the server {0} is not registered on this PC ({1} does not resolve to an AppID)' -f $App.Key, $via)
}

function Get-DcomcAppValueState {
    <# @{ Registered; Value } of one value of an application's AppID key. #>
    param([Parameter(Mandatory = $true)] $App, [Parameter(Mandatory = $true)] [string] $Name)
    $path = Get-DcomcAppIdPath -App $App
    if (-not $path) {
        # A class without an AppID still counts as installed: Set gives it one.
        return @{ Registered = $false; Installed = ($null -ne (Get-DcomcClass -App $App)); Path = $null; Value = $null }
    }
    return @{ Registered = $true; Installed = $true; Path = $path; Value = (Get-DcomcRegistryState -Path $path -Name $Name) }
}

function Restore-DcomcAppValue {
    param([Parameter(Mandatory = $true)] $App, [Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Registered) {
        Remove-DcomcCreatedAppId -App $App -ValueName $Name
        return
    }
    $path = Get-DcomcAppIdPath -App $App
    if ($path) {
        Restore-DcomcRegistryState -Path $path -Name $Name -Before $Before.Value
    }
}

function Test-DcomcAppRegistered {
    <# $null when the application can be configured, else a Test result saying why not. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Registered -and -not $State.Installed) {
        return @{ Compliant = $false; Reason = (Get-DcomcMissingApp -App $Resource.App) }
    }
    if (-not $State.Registered) {
        return @{ Compliant = $false; Reason = 'the class has no AppID yet' }
    }
    return $null
}

function Test-DcomcOptionalAppValue {
    <# Test of an AppID value the plan sets to $Resource.Value, or deletes when that is $null
       (Windows' default then applies, which -Default names). #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State, [Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [string] $Type, [Parameter(Mandatory = $true)] [string] $Default)
    $missing = Test-DcomcAppRegistered -Resource $Resource -State $State
    if ($missing) { return $missing }
    $current = $State.Value
    if ($null -eq $Resource.Value) {
        if ($current.Exists) {
            return @{ Compliant = $false; Reason = ('{0} is {1}, should be absent ({2})' -f $Name, $current.Data, $Default) }
        }
        return @{ Compliant = $true; Reason = $Default }
    }
    if ($current.Exists -and $current.Type -eq $Type -and [string] $current.Data -eq [string] $Resource.Value) {
        return @{ Compliant = $true; Reason = ('{0} {1}' -f $Name, $Resource.Value) }
    }
    return @{ Compliant = $false; Reason = ('{0} should be {1}' -f $Name, $Resource.Value) }
}

function Set-DcomcOptionalAppValue {
    <# Writes the planned AppID value (a DWord or a String), or deletes it when the plan has none. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [string] $Type)
    $path = Get-DcomcAppIdPath -App $Resource.App -Create
    if ($null -eq $Resource.Value) {
        Remove-DcomcOsRegistryValue -Path $path -Name $Name
        return
    }
    $data = [string] $Resource.Value
    if ($Type -eq 'DWord') {
        $data = [int] $Resource.Value
    }
    Set-DcomcOsRegistryValue -Path $path -Name $Name -Type $Type -Data $data
}

# --- appid_auth_level (guide §4.1 step 6) --------------------------------------------------------

function Get-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource)
    return Get-DcomcAppValueState -App $Resource.App -Name 'AuthenticationLevel'
}

function Test-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    return Test-DcomcOptionalAppValue -Resource $Resource -State $State -Name 'AuthenticationLevel' -Type 'DWord' -Default 'default'
}

function Set-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    Set-DcomcOptionalAppValue -Resource $Resource -Name 'AuthenticationLevel' -Type 'DWord'
}

function Restore-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Restore-DcomcAppValue -App $Resource.App -Name 'AuthenticationLevel' -Before $Before
}

# --- appid_run_location (guide §4.1 steps 7-8): run on this computer only ----------------------

function Get-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource)
    $state = Get-DcomcAppValueState -App $Resource.App -Name 'RemoteServerName'
    $storage = $null
    if ($state.Registered) {
        $storage = Get-DcomcRegistryState -Path $state.Path -Name 'ActivateAtStorage'
    }
    return @{ Registered = $state.Registered; Installed = $state.Installed; RemoteServerName = $state.Value; ActivateAtStorage = $storage }
}

function Test-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $missing = Test-DcomcAppRegistered -Resource $Resource -State $State
    if ($missing) { return $missing }
    if ($State.RemoteServerName.Exists -or $State.ActivateAtStorage.Exists) {
        return @{ Compliant = $false; Reason = 'runs on another computer (RemoteServerName or ActivateAtStorage set)' }
    }
    return @{ Compliant = $true; Reason = 'runs on this computer' }
}

function Set-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $path = Get-DcomcAppIdPath -App $Resource.App -Create
    Remove-DcomcOsRegistryValue -Path $path -Name 'RemoteServerName'
    Remove-DcomcOsRegistryValue -Path $path -Name 'ActivateAtStorage'
}

function Restore-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Registered) {
        Remove-DcomcCreatedAppId -App $Resource.App
        return
    }
    $path = Get-DcomcAppIdPath -App $Resource.App
    if ($path) {
        Restore-DcomcRegistryState -Path $path -Name 'RemoteServerName' -Before $Before.RemoteServerName
        Restore-DcomcRegistryState -Path $path -Name 'ActivateAtStorage' -Before $Before.ActivateAtStorage
    }
}

# --- appid_permission (guide §4.1 steps 10-28) ---------------------------------------------------
# Mode 'add' (the guide: Customize, then add users and groups): the spec's entries are added to
# what dcomcnfg starts from — the AppID's own ACL, else the PC's machine default, else Windows'
# documented default — so Administrators, SYSTEM and INTERACTIVE keep their rights. Mode
# 'exact': the ACL is exactly the spec's entries. Compared by SID and mask, never by bytes.

function Get-DcomcPermissionName {
    param([Parameter(Mandatory = $true)] $Resource)
    if ($Resource.Which -eq 'launch') {
        return 'LaunchPermission'
    }
    return 'AccessPermission'
}

function Assert-DcomcPermissionMode {
    <# A mode this engine does not know fails loudly instead of being read as one it does. #>
    param([Parameter(Mandatory = $true)] $Resource)
    if (@('add', 'exact') -cnotcontains [string] $Resource.Mode) {
        throw ('{0}: unknown permission mode {1} (add or exact)' -f $Resource.Id, $Resource.Mode)
    }
}

function Get-DcomcPermissionBase {
    <# What the spec's entries are added to: the AppID's ACL, else the PC's Ole\Default... value,
       else Windows' documented default. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $name = Get-DcomcPermissionName -Resource $Resource
    if ($null -ne $State.Value -and $State.Value.Exists) {
        return ConvertFrom-DcomcBinaryState -Value $State.Value -Name $name
    }
    if ($State.Default.Exists) {
        return ConvertFrom-DcomcBinaryState -Value $State.Default -Name ('Default{0}' -f $name)
    }
    return ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-DcomcHex -Hex $script:DefaultAppAcl[[string] $Resource.Which])
}

function Get-DcomcDesiredDescriptor {
    <# The descriptor to write. Exact: owner and group Administrators and the planned ACEs, as
       dcomcnfg writes it. Add: the base with each planned ACE merged in (rights OR-ed into the
       principal's allow ACE, or an allow ACE appended). #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    Assert-DcomcPermissionMode -Resource $Resource
    if ($Resource.Mode -ceq 'exact') {
        $aces = @(foreach ($ace in $Resource.Aces) { @{ Sid = (Resolve-DcomcSid -Principal $ace.Principal); Mask = [int] $ace.Mask } })
        return New-DcomcSecurityDescriptor -Aces $aces
    }
    $descriptor = Get-DcomcPermissionBase -Resource $Resource -State $State
    foreach ($ace in $Resource.Aces) {
        $descriptor = Add-DcomcDescriptorAce -Descriptor $descriptor -Sid (Resolve-DcomcSid -Principal $ace.Principal) -Mask ([int] $ace.Mask)
    }
    return $descriptor
}

function Get-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource)
    $name = Get-DcomcPermissionName -Resource $Resource
    $state = Get-DcomcAppValueState -App $Resource.App -Name $name
    $state.Default = Get-DcomcRegistryState -Path $script:OleKey -Name ('Default{0}' -f $name)
    return $state
}

function Test-DcomcPermissionAces {
    <# Add mode: compliant when every planned principal has at least its planned rights. Sids:
       the planned ACEs' SIDs, in their order (resolved once, by the caller). #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Have, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]] $Sids)
    $aces = @($Resource.Aces)
    for ($i = 0; $i -lt $aces.Count; $i++) {
        $ace = $aces[$i]
        $mask = [long] (Get-DcomcDescriptorMask -Descriptor $Have -Sid $Sids[$i])
        $want = [long] $ace.Mask
        if (($mask -band $want) -ne $want) {
            return @{ Compliant = $false; Reason = ('{0} lacks rights 0x{1:x}' -f $ace.Principal.Name, ($want -band (-bnot $mask))) }
        }
    }
    return @{ Compliant = $true; Reason = 'planned entries present' }
}

function Test-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    Assert-DcomcPermissionMode -Resource $Resource
    $missing = Test-DcomcAppRegistered -Resource $Resource -State $State
    if ($missing) { return $missing }
    $sids = @()
    foreach ($ace in $Resource.Aces) {
        $sid = Find-DcomcSid -Principal $ace.Principal
        if ($null -eq $sid) {
            return @{ Compliant = $false; Reason = ('the account {0} does not exist yet' -f $ace.Principal.Name) }
        }
        $sids += [string] $sid
    }
    if (-not $State.Value.Exists -or $State.Value.Type -ne 'Binary') {
        return @{ Compliant = $false; Reason = ('{0} is not set' -f (Get-DcomcPermissionName -Resource $Resource)) }
    }
    try {
        $have = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-DcomcHex -Hex $State.Value.Data)
    }
    catch {
        return @{ Compliant = $false; Reason = ('the current ACL cannot be read: {0}' -f $_.Exception.Message) }
    }
    if ($Resource.Mode -ceq 'add') {
        return Test-DcomcPermissionAces -Resource $Resource -Have $have -Sids $sids
    }
    $want = Get-DcomcDescriptorAceKey -Descriptor (Get-DcomcDesiredDescriptor -Resource $Resource -State $State)
    $haveKeys = Get-DcomcDescriptorAceKey -Descriptor $have
    if ((@($want) -join ';') -eq (@($haveKeys) -join ';')) {
        return @{ Compliant = $true; Reason = 'ACL as planned' }
    }
    return @{ Compliant = $false; Reason = 'the ACL differs from the plan' }
}

function Set-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $bytes = ConvertTo-DcomcSecurityDescriptor -Descriptor (Get-DcomcDesiredDescriptor -Resource $Resource -State $State)
    $path = Get-DcomcAppIdPath -App $Resource.App -Create
    Set-DcomcOsRegistryValue -Path $path -Name (Get-DcomcPermissionName -Resource $Resource) -Type 'Binary' -Data $bytes
}

function Restore-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Restore-DcomcAppValue -App $Resource.App -Name (Get-DcomcPermissionName -Resource $Resource) -Before $Before
}

# --- appid_run_as (guide §3, §4.1: the Identity tab) --------------------------------------------
# "Interactive User" runs one server in the desktop session of the user logged on; no RunAs
# value is "the launching user", a server process per caller. An account ("This user") is never
# written: its password lives in an LSA secret that dcomc does not write (check refuses it).

function Get-DcomcAppIdRunAs {
    param([Parameter(Mandatory = $true)] $Resource)
    return Get-DcomcAppValueState -App $Resource.App -Name 'RunAs'
}

function Test-DcomcAppIdRunAs {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    return Test-DcomcOptionalAppValue -Resource $Resource -State $State -Name 'RunAs' -Type 'String' -Default 'the launching user (no RunAs)'
}

function Set-DcomcAppIdRunAs {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    Set-DcomcOptionalAppValue -Resource $Resource -Name 'RunAs' -Type 'String'
}

function Restore-DcomcAppIdRunAs {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Restore-DcomcAppValue -App $Resource.App -Name 'RunAs' -Before $Before
}
