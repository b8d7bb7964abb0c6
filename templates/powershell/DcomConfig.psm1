<#
    DcomConfig.psm1 - the dcomc engine: static, identical for every host and site.

    Each resource kind of a dcomc plan has four functions here:
      Get-Dcomc<Kind>      reads the current state (a hashtable; nothing is changed)
      Test-Dcomc<Kind>     compares it with the resource: @{ Compliant; Reason }
      Set-Dcomc<Kind>      makes the PC match the resource
      Restore-Dcomc<Kind>  puts back the state Get returned before Set ran
    The data of a host (<HOST>.psd1) holds only literals; this module holds all the code, so
    what IT reviews once is what runs on every PC.

    Windows PowerShell 5.1 (and 3.0+ where possible): no PowerShell 6/7 syntax. Well-known
    principals are handled by SID only (names are localized); local accounts through ADSI
    WinNT:// (works without the LocalAccounts module and in 32-bit PowerShell). Section
    numbers (guide §n) refer to the DCOM guide the spec automates.
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$script:Kinds = @{
    'local_user'             = 'LocalUser'
    'local_group'            = 'LocalGroup'
    'group_member'           = 'GroupMember'
    'user_right'             = 'UserRight'
    'service_logon'          = 'ServiceLogon'
    'appid_auth_level'       = 'AppIdAuthLevel'
    'appid_run_location'     = 'AppIdRunLocation'
    'appid_permission'       = 'AppIdPermission'
    'machine_dcom_value'     = 'MachineDcomValue'
    'machine_limit_addition' = 'MachineLimitAddition'
    'firewall_rule'          = 'FirewallRule'
    'firewall_rule_group'    = 'FirewallRuleGroup'
    'service_start_mode'     = 'ServiceStartMode'
    'security_option'        = 'SecurityOption'
    'reboot'                 = 'RebootNotice'
}
$script:OleKey = 'SOFTWARE\Microsoft\Ole'
$script:PolicyKey = 'SOFTWARE\Policies\Microsoft\Windows NT\DCOM'
$script:AppIdRoot = 'SOFTWARE\Classes\AppID'
$script:UfDontExpirePasswd = 0x10000   # ADS_UF_DONT_EXPIRE_PASSWD
# Windows 10/11 default machine limits (dcom-facts §2.1), used only when the value is absent
# so that adding one entry never replaces Windows' whole default with that entry alone.
$script:DefaultLimits = @{
    'launch' = 'O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCSW;;;WD)(A;;CCDCLCSWRP;;;S-1-5-32-562)(A;;CCDCLCSWRP;;;LU)(A;;CCDCSW;;;AC)'
    'access' = 'O:BAG:BAD:(A;;CCDCLC;;;WD)(A;;CCDC;;;AN)(A;;CCDCLC;;;S-1-5-32-562)(A;;CCDCLC;;;LU)(A;;CCDC;;;AC)'
}
$script:LimitValue = @{ 'launch' = 'MachineLaunchRestriction'; 'access' = 'MachineAccessRestriction' }
$script:Passwords = @{}
$script:ResetPasswords = $false
$script:RebootNeeded = $false
$script:LogFile = $null

# --- logging ----------------------------------------------------------------------------------

function Write-DcomcLog {
    param([Parameter(Mandatory = $true)] [string] $Message, [string] $Level = 'INFO')
    $line = '{0} {1,-5} {2}' -f (Get-Date -Format 'yyyy-MM-dd HH:mm:ss'), $Level, $Message
    Write-Verbose -Message $line
    if ($script:LogFile) {
        Add-Content -LiteralPath $script:LogFile -Value $line -Encoding UTF8 -WhatIf:$false
    }
}

function Initialize-DcomcFolder {
    param([Parameter(Mandatory = $true)] [string] $Site, [Parameter(Mandatory = $true)] [string] $Name)
    $root = Join-Path -Path $env:ProgramData -ChildPath (Join-Path -Path 'dcomc' -ChildPath $Site)
    $folder = Join-Path -Path $root -ChildPath $Name
    if (-not (Test-Path -LiteralPath $folder)) {
        $null = New-Item -ItemType Directory -Path $folder -Force -WhatIf:$false
    }
    return $folder
}

# --- principals: SIDs, never localized names ---------------------------------------------------

function Resolve-DcomcSid {
    <# The SID of a principal of the plan: given, or translated from its account name. #>
    param([Parameter(Mandatory = $true)] $Principal)
    if ($Principal.Sid) {
        return [string] $Principal.Sid
    }
    $name = [string] $Principal.Name
    if ($Principal.Kind -eq 'local') {
        $name = $env:COMPUTERNAME + '\' + $name
    }
    $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $name
    try {
        return $account.Translate([System.Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        throw ('Cannot resolve the account {0} to a SID: {1}' -f $name, $_.Exception.Message)
    }
}

function Test-DcomcSidResolvable {
    param([Parameter(Mandatory = $true)] $Principal)
    try {
        $null = Resolve-DcomcSid -Principal $Principal
        return $true
    }
    catch {
        return $false
    }
}

function Get-DcomcAccountName {
    <# The account name of a SID on this PC, in this PC's language (for ADSI paths only). #>
    param([Parameter(Mandatory = $true)] [string] $Sid)
    $identifier = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $Sid
    $full = $identifier.Translate([System.Security.Principal.NTAccount]).Value
    return $full.Substring($full.IndexOf('\') + 1)
}

function Get-DcomcLogonName {
    <# The name Win32_Service.Change expects: .\user for local accounts, DOMAIN\user else. #>
    param([Parameter(Mandatory = $true)] $Principal)
    if ($Principal.Kind -eq 'local') {
        return '.\' + [string] $Principal.Name
    }
    return [string] $Principal.Name
}

# --- passwords: SecureString in, plain text only in memory, only for the API call -----------

function Get-DcomcPassword {
    param([Parameter(Mandatory = $true)] [string] $Account)
    if ($script:Passwords.ContainsKey($Account)) {
        return $script:Passwords[$Account]
    }
    if (-not [Environment]::UserInteractive) {
        throw ('No password for {0}: pass -Passwords @{{ ''{0}'' = <SecureString> }}' -f $Account)
    }
    for ($try = 0; $try -lt 3; $try++) {
        $first = Read-Host -AsSecureString -Prompt ('Password for {0}' -f $Account)
        $second = Read-Host -AsSecureString -Prompt ('Confirm the password for {0}' -f $Account)
        if ((ConvertFrom-DcomcSecureString -Value $first) -ceq (ConvertFrom-DcomcSecureString -Value $second)) {
            $script:Passwords[$Account] = $first
            return $first
        }
        Write-Warning -Message 'The passwords do not match.'
    }
    throw ('No matching password entered for {0}' -f $Account)
}

function Read-DcomcStdinPassword {
    <# account<TAB>password lines on standard input -> SecureStrings; the plain text lives
       only in this function's memory. An empty password counts as missing. #>
    $text = [Console]::In.ReadToEnd()
    foreach ($line in ($text -split "`r?`n")) {
        $parts = $line.Split([char] 9, 2)
        if ($parts.Count -ne 2 -or -not $parts[1]) { continue }
        $secure = New-Object -TypeName System.Security.SecureString
        foreach ($char in $parts[1].ToCharArray()) {
            $secure.AppendChar($char)
        }
        $secure.MakeReadOnly()
        $script:Passwords[$parts[0]] = $secure
    }
    $text = $null
}

function ConvertFrom-DcomcSecureString {
    param([Parameter(Mandatory = $true)] [System.Security.SecureString] $Value)
    $pointer = [Runtime.InteropServices.Marshal]::SecureStringToBSTR($Value)
    try {
        return [Runtime.InteropServices.Marshal]::PtrToStringBSTR($pointer)
    }
    finally {
        [Runtime.InteropServices.Marshal]::ZeroFreeBSTR($pointer)
    }
}

# --- registry (explicit 64-bit or 32-bit view, never the caller's bitness) ----------------------

function Open-DcomcKey {
    param(
        [Parameter(Mandatory = $true)] [string] $Path,
        [switch] $Write,
        [switch] $Create,
        [ValidateSet('Registry64', 'Registry32')] [string] $View = 'Registry64'
    )
    $hive = [Microsoft.Win32.RegistryHive]::LocalMachine
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($hive, [Microsoft.Win32.RegistryView]::$View)
    if ($Create) {
        return $base.CreateSubKey($Path)
    }
    return $base.OpenSubKey($Path, [bool] $Write)
}

function ConvertTo-DcomcKeyPath {
    <# HKEY_LOCAL_MACHINE\X -> X (the engine only writes under HKLM). #>
    param([Parameter(Mandatory = $true)] [string] $Key)
    $prefix = 'HKEY_LOCAL_MACHINE\'
    if (-not $Key.StartsWith($prefix, [StringComparison]::OrdinalIgnoreCase)) {
        throw ('Not an HKEY_LOCAL_MACHINE key: {0}' -f $Key)
    }
    return $Key.Substring($prefix.Length)
}

function Get-DcomcRegistryValue {
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $Name)
    $key = Open-DcomcKey -Path $Path
    if ($null -eq $key) {
        return @{ Exists = $false; Type = $null; Data = $null }
    }
    try {
        $data = $key.GetValue($Name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
        if ($null -eq $data) {
            return @{ Exists = $false; Type = $null; Data = $null }
        }
        return @{ Exists = $true; Type = [string] $key.GetValueKind($Name); Data = $data }
    }
    finally {
        $key.Close()
    }
}

function Set-DcomcRegistryValue {
    param(
        [Parameter(Mandatory = $true)] [string] $Path,
        [Parameter(Mandatory = $true)] [string] $Name,
        [Parameter(Mandatory = $true)] [ValidateSet('String', 'DWord', 'Binary')] [string] $Type,
        [Parameter(Mandatory = $true)] $Data
    )
    $key = Open-DcomcKey -Path $Path -Create
    try {
        $kind = [Microsoft.Win32.RegistryValueKind]::$Type
        if ($Type -eq 'Binary') {
            $key.SetValue($Name, [byte[]] $Data, $kind)
        }
        elseif ($Type -eq 'DWord') {
            $key.SetValue($Name, [int] $Data, $kind)
        }
        else {
            $key.SetValue($Name, [string] $Data, $kind)
        }
    }
    finally {
        $key.Close()
    }
}

function Remove-DcomcRegistryValue {
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $Name)
    $key = Open-DcomcKey -Path $Path -Write
    if ($null -eq $key) {
        return
    }
    try {
        $key.DeleteValue($Name, $false)
    }
    finally {
        $key.Close()
    }
}

function Restore-DcomcRegistryValue {
    <# Put back a value as Get-DcomcRegistryValue saw it (deleted if it did not exist). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Exists) {
        Remove-DcomcRegistryValue -Path $Path -Name $Name
        return
    }
    $type = [string] $Before.Type
    $data = $Before.Data
    if ($type -eq 'Binary') {
        $data = [byte[]] @($data | ForEach-Object -Process { [byte] $_ })
    }
    Set-DcomcRegistryValue -Path $Path -Name $Name -Type $type -Data $data
}

# --- security descriptors (built on the PC: names -> SIDs -> SDDL -> binary) --------------------

function ConvertTo-DcomcBinarySd {
    param([Parameter(Mandatory = $true)] [string] $Sddl)
    $sd = New-Object -TypeName System.Security.AccessControl.RawSecurityDescriptor -ArgumentList $Sddl
    $bytes = New-Object -TypeName byte[] -ArgumentList $sd.BinaryLength
    $sd.GetBinaryForm($bytes, 0)
    return , $bytes
}

function ConvertFrom-DcomcBinarySd {
    param([Parameter(Mandatory = $true)] [byte[]] $Bytes)
    return New-Object -TypeName System.Security.AccessControl.RawSecurityDescriptor -ArgumentList @($Bytes, 0)
}

function Get-DcomcAceList {
    <# The DACL of a descriptor as sorted 'A|SID|mask' strings, to compare semantically. #>
    param([Parameter(Mandatory = $true)] [System.Security.AccessControl.RawSecurityDescriptor] $Descriptor)
    $list = @()
    foreach ($ace in $Descriptor.DiscretionaryAcl) {
        $type = 'A'
        if ($ace.AceType -eq [System.Security.AccessControl.AceType]::AccessDenied) {
            $type = 'D'
        }
        $list += ('{0}|{1}|{2}' -f $type, $ace.SecurityIdentifier.Value, $ace.AccessMask)
    }
    return , @($list | Sort-Object)
}

function Get-DcomcDesiredSddl {
    <# The descriptor dcomcnfg writes for an ACL: owner and group Administrators. #>
    param([Parameter(Mandatory = $true)] $Aces)
    $text = 'O:BAG:BAD:'
    foreach ($ace in $Aces) {
        $sid = Resolve-DcomcSid -Principal $ace.Principal
        $text += ('(A;;0x{0:x};;;{1})' -f [int] $ace.Mask, $sid)
    }
    return $text
}

# --- AppID: ProgID -> CLSID (32-bit view for 32-bit servers) -> AppID ---------------------------

function Get-DcomcClass {
    <# The CLSID of an application (given, or through its ProgID) and the registry view of its
       class (32-bit servers register in the 32-bit view); $null when it does not resolve. #>
    param([Parameter(Mandatory = $true)] $App)
    $clsid = $App.Clsid
    if (-not $clsid -and $App.Progid) {
        $value = Get-DcomcRegistryValue -Path ('SOFTWARE\Classes\{0}\CLSID' -f $App.Progid) -Name ''
        if ($value.Exists) {
            $clsid = [string] $value.Data
        }
    }
    if (-not $clsid) {
        return $null
    }
    $view = 'Registry64'
    if ([int] $App.Bitness -eq 32 -and [Environment]::Is64BitOperatingSystem) {
        $view = 'Registry32'
    }
    return @{ Clsid = [string] $clsid; View = $view }
}

function Resolve-DcomcAppId {
    <# The AppID GUID of an application, or $null when the server is not registered here. #>
    param([Parameter(Mandatory = $true)] $App, [switch] $Create)
    if ($App.Appid) {
        return [string] $App.Appid
    }
    $class = Get-DcomcClass -App $App
    if ($null -eq $class) {
        return $null
    }
    $clsid = $class.Clsid
    $key = Open-DcomcKey -Path ('SOFTWARE\Classes\CLSID\{0}' -f $clsid) -View $class.View
    if ($null -eq $key) {
        return $null
    }
    try {
        $appid = $key.GetValue('AppID', $null)
    }
    finally {
        $key.Close()
    }
    if ($appid) {
        return [string] $appid
    }
    if (-not $Create) {
        return $null
    }
    # dcomcnfg gives a class without an AppID one equal to its CLSID (dcom-facts §1.3,
    # UNVERIFIED): logged loudly, so that a wrong guess is seen, not silent.
    Write-DcomcLog -Level 'WARN' -Message ('CLSID {0} has no AppID value; creating AppID {0} as dcomcnfg does' -f $clsid)
    $write = Open-DcomcKey -Path ('SOFTWARE\Classes\CLSID\{0}' -f $clsid) -View $class.View -Write
    try {
        $write.SetValue('AppID', [string] $clsid, [Microsoft.Win32.RegistryValueKind]::String)
    }
    finally {
        $write.Close()
    }
    $null = Open-DcomcKey -Path ('{0}\{1}' -f $script:AppIdRoot, $clsid) -Create
    return [string] $clsid
}

function Remove-DcomcCreatedAppId {
    <# Undo Resolve-DcomcAppId -Create, for an application that had no AppID before Apply: the
       value `ValueName` that Set wrote, then the AppID key once nothing else is in it, and the
       class's AppID value while it still names that key. A key or value found in use is kept. #>
    param([Parameter(Mandatory = $true)] $App, [string] $ValueName = '')
    $class = Get-DcomcClass -App $App
    if ($App.Appid -or $null -eq $class) {
        return
    }
    $path = '{0}\{1}' -f $script:AppIdRoot, $class.Clsid
    if ($ValueName) {
        Remove-DcomcRegistryValue -Path $path -Name $ValueName
    }
    $key = Open-DcomcKey -Path $path
    if ($null -eq $key) {
        return
    }
    try {
        $empty = ($key.ValueCount -eq 0 -and $key.SubKeyCount -eq 0)
    }
    finally {
        $key.Close()
    }
    if (-not $empty) {
        Write-DcomcLog -Level 'WARN' -Message ('AppID {0} was created by Apply but holds other values now; kept' -f $class.Clsid)
        return
    }
    $classKey = Open-DcomcKey -Path ('SOFTWARE\Classes\CLSID\{0}' -f $class.Clsid) -View $class.View -Write
    if ($null -ne $classKey) {
        try {
            if ([string] $classKey.GetValue('AppID', '') -eq $class.Clsid) {
                $classKey.DeleteValue('AppID', $false)
            }
        }
        finally {
            $classKey.Close()
        }
    }
    $root = Open-DcomcKey -Path $script:AppIdRoot -Write
    try {
        $root.DeleteSubKey($class.Clsid, $false)
    }
    finally {
        $root.Close()
    }
    Write-DcomcLog -Message ('removed AppID {0}, which Apply had created' -f $class.Clsid)
}

function Get-DcomcAppIdPath {
    param([Parameter(Mandatory = $true)] $App, [switch] $Create)
    $appid = Resolve-DcomcAppId -App $App -Create:$Create
    if (-not $appid) {
        return $null
    }
    return ('{0}\{1}' -f $script:AppIdRoot, $appid)
}

function Get-DcomcMissingApp {
    param([Parameter(Mandatory = $true)] $App)
    $via = $App.Progid
    if (-not $via) {
        $via = $App.Clsid
    }
    return ('the server {0} is not registered on this PC ({1} does not resolve to an AppID)' -f $App.Key, $via)
}

# --- local_user (guide §2.2) ---------------------------------------------------------------------

function Get-DcomcLocalUser {
    param([Parameter(Mandatory = $true)] $Resource)
    $path = 'WinNT://{0}/{1},user' -f $env:COMPUTERNAME, $Resource.Name
    if (-not [ADSI]::Exists($path)) {
        return @{ Exists = $false; Description = $null; NeverExpires = $null }
    }
    $user = [ADSI] $path
    $flags = [int] $user.UserFlags.Value
    return @{
        Exists       = $true
        Description  = [string] $user.Description.Value
        NeverExpires = (($flags -band $script:UfDontExpirePasswd) -ne 0)
    }
}

function Test-DcomcLocalUser {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        return @{ Compliant = $false; Reason = 'the user does not exist' }
    }
    if ($State.Description -cne [string] $Resource.Description) {
        return @{ Compliant = $false; Reason = 'the description differs' }
    }
    if ([bool] $Resource.PasswordNeverExpires -and -not $State.NeverExpires) {
        return @{ Compliant = $false; Reason = 'the password expires' }
    }
    if ($script:ResetPasswords) {
        return @{ Compliant = $false; Reason = 'password reset requested' }
    }
    return @{ Compliant = $true; Reason = 'exists' }
}

function Set-DcomcLocalUser {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $name = [string] $Resource.Name
    if (-not $State.Exists) {
        $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
        $user = $computer.Create('User', $name)
        $user.SetPassword((ConvertFrom-DcomcSecureString -Value (Get-DcomcPassword -Account $name)))
        $user.SetInfo()
    }
    else {
        $user = [ADSI] ('WinNT://{0}/{1},user' -f $env:COMPUTERNAME, $name)
        if ($script:ResetPasswords) {
            $user.SetPassword((ConvertFrom-DcomcSecureString -Value (Get-DcomcPassword -Account $name)))
        }
    }
    $user.Put('Description', [string] $Resource.Description)
    if ([bool] $Resource.PasswordNeverExpires) {
        $flags = ([int] $user.UserFlags.Value) -bor $script:UfDontExpirePasswd
        $user.Put('UserFlags', $flags)
    }
    $user.SetInfo()
}

function Restore-DcomcLocalUser {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
    if (-not $Before.Exists) {
        $computer.Delete('User', [string] $Resource.Name)
        return
    }
    $user = [ADSI] ('WinNT://{0}/{1},user' -f $env:COMPUTERNAME, $Resource.Name)
    $user.Put('Description', [string] $Before.Description)
    if (-not $Before.NeverExpires) {
        $flags = ([int] $user.UserFlags.Value) -band (-bnot $script:UfDontExpirePasswd)
        $user.Put('UserFlags', $flags)
    }
    $user.SetInfo()
}

# --- local_group (guide §2.3) --------------------------------------------------------------------

function Get-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource)
    $path = 'WinNT://{0}/{1},group' -f $env:COMPUTERNAME, $Resource.Name
    if (-not [ADSI]::Exists($path)) {
        return @{ Exists = $false; Description = $null }
    }
    $group = [ADSI] $path
    return @{ Exists = $true; Description = [string] $group.Description.Value }
}

function Test-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        return @{ Compliant = $false; Reason = 'the group does not exist' }
    }
    if ($State.Description -cne [string] $Resource.Description) {
        return @{ Compliant = $false; Reason = 'the description differs' }
    }
    return @{ Compliant = $true; Reason = 'exists' }
}

function Set-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
        $group = $computer.Create('Group', [string] $Resource.Name)
        $group.SetInfo()
    }
    else {
        $group = [ADSI] ('WinNT://{0}/{1},group' -f $env:COMPUTERNAME, $Resource.Name)
    }
    $group.Put('Description', [string] $Resource.Description)
    $group.SetInfo()
}

function Restore-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Exists) {
        $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
        $computer.Delete('Group', [string] $Resource.Name)
        return
    }
    $group = [ADSI] ('WinNT://{0}/{1},group' -f $env:COMPUTERNAME, $Resource.Name)
    $group.Put('Description', [string] $Before.Description)
    $group.SetInfo()
}

# --- group_member (guide §2.4): groups and members compared by SID ------------------------------

function Get-DcomcGroupObject {
    param([Parameter(Mandatory = $true)] $Group)
    $name = [string] $Group.Name
    if ($Group.Sid) {
        $name = Get-DcomcAccountName -Sid ([string] $Group.Sid)   # localized builtin name
    }
    return [ADSI] ('WinNT://{0}/{1},group' -f $env:COMPUTERNAME, $name)
}

function Get-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource)
    if (-not (Test-DcomcSidResolvable -Principal $Resource.Member)) {
        return @{ IsMember = $false; MemberSid = $null }
    }
    $sid = Resolve-DcomcSid -Principal $Resource.Member
    $group = Get-DcomcGroupObject -Group $Resource.Group
    $found = $false
    foreach ($member in @($group.Invoke('Members'))) {
        $bytes = $member.GetType().InvokeMember('objectSid', 'GetProperty', $null, $member, $null)
        $memberSid = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList @([byte[]] $bytes, 0)
        if ($memberSid.Value -eq $sid) {
            $found = $true
        }
    }
    return @{ IsMember = $found; MemberSid = $sid }
}

function Test-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.IsMember) {
        return @{ Compliant = $true; Reason = 'is a member' }
    }
    return @{ Compliant = $false; Reason = 'is not a member' }
}

function Get-DcomcMemberPath {
    param([Parameter(Mandatory = $true)] $Member)
    if ($Member.Kind -eq 'local') {
        return 'WinNT://{0}/{1},user' -f $env:COMPUTERNAME, $Member.Name
    }
    if ($Member.Kind -eq 'domain' -and -not $Member.Sid) {
        return 'WinNT://' + ([string] $Member.Name).Replace('\', '/')
    }
    return 'WinNT://' + (Resolve-DcomcSid -Principal $Member)
}

function Set-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $group = Get-DcomcGroupObject -Group $Resource.Group
    $group.Add((Get-DcomcMemberPath -Member $Resource.Member))
}

function Restore-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if ($Before.IsMember) {
        return
    }
    $group = Get-DcomcGroupObject -Group $Resource.Group
    $group.Remove((Get-DcomcMemberPath -Member $Resource.Member))
}

# --- user_right: added to the holders, never replacing them (secedit export, merge, import) ----

function Get-DcomcRightHolders {
    param([Parameter(Mandatory = $true)] [string] $Right)
    $temp = Join-Path -Path ([IO.Path]::GetTempPath()) -ChildPath ('dcomc-{0}.inf' -f [guid]::NewGuid())
    try {
        $null = & secedit.exe /export /areas USER_RIGHTS /cfg $temp /quiet
        if ($LASTEXITCODE -ne 0) {
            throw ('secedit /export failed with exit code {0} (elevation needed?)' -f $LASTEXITCODE)
        }
        $holders = @()
        foreach ($line in (Get-Content -LiteralPath $temp -Encoding Unicode)) {
            $parts = $line.Split('=', 2)
            if ($parts.Count -eq 2 -and $parts[0].Trim() -eq $Right) {
                foreach ($holder in $parts[1].Split(',')) {
                    $holders += $holder.Trim()
                }
            }
        }
        return , $holders
    }
    finally {
        Remove-Item -LiteralPath $temp -Force -ErrorAction SilentlyContinue
    }
}

function ConvertTo-DcomcHolderSid {
    param([Parameter(Mandatory = $true)] [string] $Holder)
    if ($Holder.StartsWith('*')) {
        return $Holder.Substring(1)
    }
    try {
        $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $Holder
        return $account.Translate([System.Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        return $Holder
    }
}

function ConvertTo-DcomcHolderText {
    <# A holder for [Privilege Rights]: *SID for SIDs; a name Windows could not translate is
       written back as it was exported, so that merging never loses or corrupts a holder. #>
    param([Parameter(Mandatory = $true)] [string] $Holder)
    if ($Holder -match '^S-1-[0-9-]+$') {
        return '*' + $Holder
    }
    return $Holder
}

function Get-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource)
    $holders = @(Get-DcomcRightHolders -Right ([string] $Resource.Right) | ForEach-Object -Process { ConvertTo-DcomcHolderSid -Holder $_ })
    $sid = $null
    if (Test-DcomcSidResolvable -Principal $Resource.Principal) {
        $sid = Resolve-DcomcSid -Principal $Resource.Principal
    }
    return @{ Holders = $holders; Sid = $sid; Held = ($null -ne $sid -and $holders -contains $sid) }
}

function Test-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.Held) {
        return @{ Compliant = $true; Reason = 'granted' }
    }
    return @{ Compliant = $false; Reason = ('{0} is not granted' -f $Resource.Right) }
}

function Set-DcomcRightHolders {
    param([Parameter(Mandatory = $true)] [string] $Right, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]] $Sids)
    $temp = Join-Path -Path ([IO.Path]::GetTempPath()) -ChildPath ('dcomc-{0}' -f [guid]::NewGuid())
    $null = New-Item -ItemType Directory -Path $temp
    try {
        $inf = Join-Path -Path $temp -ChildPath 'rights.inf'
        $lines = @('[Unicode]', 'Unicode=yes', '[Version]', 'signature="$CHICAGO$"', 'Revision=1',
            '[Privilege Rights]', ('{0} = {1}' -f $Right, (($Sids | ForEach-Object -Process { ConvertTo-DcomcHolderText -Holder $_ }) -join ',')))
        Set-Content -LiteralPath $inf -Value $lines -Encoding Unicode
        $database = Join-Path -Path $temp -ChildPath 'rights.sdb'
        $null = & secedit.exe /configure /db $database /cfg $inf /areas USER_RIGHTS /quiet
        if ($LASTEXITCODE -ne 0) {
            throw ('secedit /configure failed with exit code {0}' -f $LASTEXITCODE)
        }
    }
    finally {
        Remove-Item -LiteralPath $temp -Recurse -Force -ErrorAction SilentlyContinue
    }
}

function Set-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $sid = Resolve-DcomcSid -Principal $Resource.Principal
    $sids = @($State.Holders) + @($sid) | Select-Object -Unique
    Set-DcomcRightHolders -Right ([string] $Resource.Right) -Sids $sids
}

function Restore-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Set-DcomcRightHolders -Right ([string] $Resource.Right) -Sids @($Before.Holders)
}

# --- service_logon (guide §3.2): CIM Win32_Service.Change, never sc.exe (password in argv) -------

function Get-DcomcServiceObject {
    param([Parameter(Mandatory = $true)] [string] $Name)
    $service = Get-CimInstance -ClassName Win32_Service -Filter ("Name='{0}'" -f $Name.Replace("'", "\'"))
    if ($null -eq $service) {
        throw ('The service {0} is not installed on this PC' -f $Name)
    }
    return $service
}

function Get-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource)
    $service = Get-CimInstance -ClassName Win32_Service -Filter ("Name='{0}'" -f ([string] $Resource.Service).Replace("'", "\'"))
    if ($null -eq $service) {
        return @{ Installed = $false; StartName = $null; State = $null }
    }
    return @{ Installed = $true; StartName = [string] $service.StartName; State = [string] $service.State }
}

function Test-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Installed) {
        return @{ Compliant = $false; Reason = ('the service {0} is not installed' -f $Resource.Service) }
    }
    $want = Get-DcomcLogonName -Principal $Resource.Account
    $names = @($want, ($want -replace '^\.\\', ($env:COMPUTERNAME + '\')))
    foreach ($name in $names) {
        if ($State.StartName -ieq $name) {
            return @{ Compliant = $true; Reason = ('logs on as {0}' -f $State.StartName) }
        }
    }
    return @{ Compliant = $false; Reason = ('logs on as {0}, not {1}' -f $State.StartName, $want) }
}

function Set-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $service = Get-DcomcServiceObject -Name ([string] $Resource.Service)
    $account = [string] $Resource.Account.Name
    $plain = ConvertFrom-DcomcSecureString -Value (Get-DcomcPassword -Account $account)
    $arguments = @{ StartName = (Get-DcomcLogonName -Principal $Resource.Account); StartPassword = $plain }
    $result = Invoke-CimMethod -InputObject $service -MethodName Change -Arguments $arguments
    $plain = $null
    if ($result.ReturnValue -ne 0) {
        throw ('Win32_Service.Change returned {0} for {1} (15: logon failed, 22: invalid account)' -f $result.ReturnValue, $Resource.Service)
    }
    # guide §3.2 step 8: restart the server so that it runs under the new account.
    if ($State.State -eq 'Running') {
        Restart-Service -Name ([string] $Resource.Service) -Force
    }
}

function Restore-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Installed) {
        return
    }
    $builtin = @('LocalSystem', 'NT AUTHORITY\LocalService', 'NT AUTHORITY\NetworkService')
    if ($builtin -notcontains [string] $Before.StartName) {
        throw ('Cannot restore the Log On account {0} of {1}: its password is unknown; set it in services.msc' -f $Before.StartName, $Resource.Service)
    }
    $service = Get-DcomcServiceObject -Name ([string] $Resource.Service)
    $result = Invoke-CimMethod -InputObject $service -MethodName Change -Arguments @{ StartName = [string] $Before.StartName; StartPassword = '' }
    if ($result.ReturnValue -ne 0) {
        throw ('Win32_Service.Change returned {0} restoring {1}' -f $result.ReturnValue, $Resource.Service)
    }
}

# --- appid_auth_level (guide §4.1 step 6) --------------------------------------------------------

function Get-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource)
    $path = Get-DcomcAppIdPath -App $Resource.App
    if (-not $path) {
        return @{ Registered = $false; Value = $null }
    }
    return @{ Registered = $true; Value = (Get-DcomcRegistryValue -Path $path -Name 'AuthenticationLevel') }
}

function Test-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Registered) {
        return @{ Compliant = $false; Reason = (Get-DcomcMissingApp -App $Resource.App) }
    }
    if ($null -eq $Resource.Value) {
        if ($State.Value.Exists) {
            return @{ Compliant = $false; Reason = ('AuthenticationLevel is {0}, should be absent (default)' -f $State.Value.Data) }
        }
        return @{ Compliant = $true; Reason = 'default' }
    }
    if ($State.Value.Exists -and [int] $State.Value.Data -eq [int] $Resource.Value) {
        return @{ Compliant = $true; Reason = ('AuthenticationLevel {0}' -f $Resource.Value) }
    }
    return @{ Compliant = $false; Reason = ('AuthenticationLevel should be {0}' -f $Resource.Value) }
}

function Set-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $path = Get-DcomcAppIdPath -App $Resource.App -Create
    if (-not $path) {
        throw (Get-DcomcMissingApp -App $Resource.App)
    }
    if ($null -eq $Resource.Value) {
        Remove-DcomcRegistryValue -Path $path -Name 'AuthenticationLevel'
    }
    else {
        Set-DcomcRegistryValue -Path $path -Name 'AuthenticationLevel' -Type 'DWord' -Data ([int] $Resource.Value)
    }
}

function Restore-DcomcAppIdAuthLevel {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Registered) {
        Remove-DcomcCreatedAppId -App $Resource.App -ValueName 'AuthenticationLevel'
        return
    }
    $path = Get-DcomcAppIdPath -App $Resource.App
    if ($path) {
        Restore-DcomcRegistryValue -Path $path -Name 'AuthenticationLevel' -Before $Before.Value
    }
}

# --- appid_run_location (guide §4.1 steps 7-8): run on this computer only ----------------------

function Get-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource)
    $path = Get-DcomcAppIdPath -App $Resource.App
    if (-not $path) {
        return @{ Registered = $false; RemoteServerName = $null; ActivateAtStorage = $null }
    }
    return @{
        Registered        = $true
        RemoteServerName  = (Get-DcomcRegistryValue -Path $path -Name 'RemoteServerName')
        ActivateAtStorage = (Get-DcomcRegistryValue -Path $path -Name 'ActivateAtStorage')
    }
}

function Test-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Registered) {
        return @{ Compliant = $false; Reason = (Get-DcomcMissingApp -App $Resource.App) }
    }
    if ($State.RemoteServerName.Exists -or $State.ActivateAtStorage.Exists) {
        return @{ Compliant = $false; Reason = 'runs on another computer (RemoteServerName or ActivateAtStorage set)' }
    }
    return @{ Compliant = $true; Reason = 'runs on this computer' }
}

function Set-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $path = Get-DcomcAppIdPath -App $Resource.App -Create
    if (-not $path) {
        throw (Get-DcomcMissingApp -App $Resource.App)
    }
    Remove-DcomcRegistryValue -Path $path -Name 'RemoteServerName'
    Remove-DcomcRegistryValue -Path $path -Name 'ActivateAtStorage'
}

function Restore-DcomcAppIdRunLocation {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Registered) {
        Remove-DcomcCreatedAppId -App $Resource.App
        return
    }
    $path = Get-DcomcAppIdPath -App $Resource.App
    if ($path) {
        Restore-DcomcRegistryValue -Path $path -Name 'RemoteServerName' -Before $Before.RemoteServerName
        Restore-DcomcRegistryValue -Path $path -Name 'ActivateAtStorage' -Before $Before.ActivateAtStorage
    }
}

# --- appid_permission (guide §4.1 steps 10-28): the complete ACL, compared by SID and mask ------

function Get-DcomcPermissionName {
    param([Parameter(Mandatory = $true)] $Resource)
    if ($Resource.Which -eq 'launch') {
        return 'LaunchPermission'
    }
    return 'AccessPermission'
}

function Get-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource)
    $path = Get-DcomcAppIdPath -App $Resource.App
    if (-not $path) {
        return @{ Registered = $false; Value = $null; Aces = @() }
    }
    $value = Get-DcomcRegistryValue -Path $path -Name (Get-DcomcPermissionName -Resource $Resource)
    $aces = @()
    if ($value.Exists) {
        $aces = Get-DcomcAceList -Descriptor (ConvertFrom-DcomcBinarySd -Bytes ([byte[]] $value.Data))
    }
    return @{ Registered = $true; Value = $value; Aces = $aces }
}

function Test-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Registered) {
        return @{ Compliant = $false; Reason = (Get-DcomcMissingApp -App $Resource.App) }
    }
    foreach ($ace in $Resource.Aces) {
        if (-not (Test-DcomcSidResolvable -Principal $ace.Principal)) {
            return @{ Compliant = $false; Reason = ('the account {0} does not exist yet' -f $ace.Principal.Name) }
        }
    }
    $want = Get-DcomcAceList -Descriptor (New-Object -TypeName System.Security.AccessControl.RawSecurityDescriptor -ArgumentList (Get-DcomcDesiredSddl -Aces $Resource.Aces))
    if (($want -join ';') -eq (@($State.Aces) -join ';')) {
        return @{ Compliant = $true; Reason = 'ACL as planned' }
    }
    return @{ Compliant = $false; Reason = 'the ACL differs from the plan' }
}

function Set-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $path = Get-DcomcAppIdPath -App $Resource.App -Create
    if (-not $path) {
        throw (Get-DcomcMissingApp -App $Resource.App)
    }
    $bytes = ConvertTo-DcomcBinarySd -Sddl (Get-DcomcDesiredSddl -Aces $Resource.Aces)
    Set-DcomcRegistryValue -Path $path -Name (Get-DcomcPermissionName -Resource $Resource) -Type 'Binary' -Data $bytes
}

function Restore-DcomcAppIdPermission {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Registered) {
        Remove-DcomcCreatedAppId -App $Resource.App -ValueName (Get-DcomcPermissionName -Resource $Resource)
        return
    }
    $path = Get-DcomcAppIdPath -App $Resource.App
    if ($path) {
        Restore-DcomcRegistryValue -Path $path -Name (Get-DcomcPermissionName -Resource $Resource) -Before $Before.Value
    }
}

# --- machine_dcom_value (guide §4.2 steps 5-7) ----------------------------------------------------

function Get-DcomcMachineDcomValue {
    param([Parameter(Mandatory = $true)] $Resource)
    return @{ Value = (Get-DcomcRegistryValue -Path $script:OleKey -Name ([string] $Resource.Name)) }
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
    if ($current.Exists -and ([string] $current.Data) -eq ([string] $Resource.Data)) {
        return @{ Compliant = $true; Reason = ('{0}' -f $Resource.Data) }
    }
    return @{ Compliant = $false; Reason = ('should be {0}' -f $Resource.Data) }
}

function Set-DcomcMachineDcomValue {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($null -eq $Resource.Data) {
        Remove-DcomcRegistryValue -Path $script:OleKey -Name ([string] $Resource.Name)
    }
    elseif ($Resource.Type -eq 'REG_DWORD') {
        Set-DcomcRegistryValue -Path $script:OleKey -Name ([string] $Resource.Name) -Type 'DWord' -Data ([int] $Resource.Data)
    }
    else {
        Set-DcomcRegistryValue -Path $script:OleKey -Name ([string] $Resource.Name) -Type 'String' -Data ([string] $Resource.Data)
    }
    $script:RebootNeeded = $true
}

function Restore-DcomcMachineDcomValue {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Restore-DcomcRegistryValue -Path $script:OleKey -Name ([string] $Resource.Name) -Before $Before.Value
}

# --- machine_limit_addition (guide §4.2 "Edit Limits"): ADDED, never replacing ------------------

function Get-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource)
    $name = $script:LimitValue[[string] $Resource.Which]
    $policy = Get-DcomcRegistryValue -Path $script:PolicyKey -Name $name
    $value = Get-DcomcRegistryValue -Path $script:OleKey -Name $name
    $mask = 0
    $sid = $null
    if (Test-DcomcSidResolvable -Principal $Resource.Principal) {
        $sid = Resolve-DcomcSid -Principal $Resource.Principal
        $descriptor = Get-DcomcLimitDescriptor -Value $value -Which ([string] $Resource.Which)
        foreach ($ace in $descriptor.DiscretionaryAcl) {
            if ($ace.AceType -eq [System.Security.AccessControl.AceType]::AccessAllowed -and $ace.SecurityIdentifier.Value -eq $sid) {
                $mask = $mask -bor $ace.AccessMask
            }
        }
    }
    return @{ Value = $value; PolicyOverride = $policy.Exists; Sid = $sid; Mask = $mask }
}

function Get-DcomcLimitDescriptor {
    param([Parameter(Mandatory = $true)] $Value, [Parameter(Mandatory = $true)] [string] $Which)
    if ($Value.Exists) {
        return ConvertFrom-DcomcBinarySd -Bytes ([byte[]] $Value.Data)
    }
    return New-Object -TypeName System.Security.AccessControl.RawSecurityDescriptor -ArgumentList $script:DefaultLimits[$Which]
}

function Test-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.PolicyOverride) {
        return @{ Compliant = $false; Reason = 'a Group Policy DCOM SDDL value overrides this limit; change it in the policy' }
    }
    $want = [int] $Resource.Mask
    if (($State.Mask -band $want) -eq $want) {
        return @{ Compliant = $true; Reason = 'rights granted by the limit' }
    }
    return @{ Compliant = $false; Reason = ('the limit lacks rights 0x{0:x}' -f ($want -band (-bnot $State.Mask))) }
}

function Set-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.PolicyOverride) {
        throw ('{0} is set by Group Policy ({1}); dcomc does not override policy' -f $script:LimitValue[[string] $Resource.Which], $script:PolicyKey)
    }
    $which = [string] $Resource.Which
    $descriptor = Get-DcomcLimitDescriptor -Value $State.Value -Which $which
    if (-not $State.Value.Exists) {
        Write-DcomcLog -Level 'WARN' -Message ('{0} was absent: starting from the Windows default {1}' -f $script:LimitValue[$which], $script:DefaultLimits[$which])
    }
    $sid = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList (Resolve-DcomcSid -Principal $Resource.Principal)
    $acl = $descriptor.DiscretionaryAcl
    $merged = $false
    for ($i = 0; $i -lt $acl.Count; $i++) {
        $ace = $acl[$i]
        if ($ace.AceType -eq [System.Security.AccessControl.AceType]::AccessAllowed -and $ace.SecurityIdentifier.Value -eq $sid.Value) {
            $mask = $ace.AccessMask -bor [int] $Resource.Mask
            $acl.RemoveAce($i)
            $acl.InsertAce($i, (New-Object -TypeName System.Security.AccessControl.CommonAce -ArgumentList @([System.Security.AccessControl.AceFlags]::None, [System.Security.AccessControl.AceQualifier]::AccessAllowed, $mask, $sid, $false, $null)))
            $merged = $true
            break
        }
    }
    if (-not $merged) {
        $acl.InsertAce($acl.Count, (New-Object -TypeName System.Security.AccessControl.CommonAce -ArgumentList @([System.Security.AccessControl.AceFlags]::None, [System.Security.AccessControl.AceQualifier]::AccessAllowed, [int] $Resource.Mask, $sid, $false, $null)))
    }
    $bytes = New-Object -TypeName byte[] -ArgumentList $descriptor.BinaryLength
    $descriptor.GetBinaryForm($bytes, 0)
    Set-DcomcRegistryValue -Path $script:OleKey -Name $script:LimitValue[$which] -Type 'Binary' -Data $bytes
    $script:RebootNeeded = $true
}

function Restore-DcomcMachineLimitAddition {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    Restore-DcomcRegistryValue -Path $script:OleKey -Name $script:LimitValue[[string] $Resource.Which] -Before $Before.Value
}

# --- firewall_rule (guide §5): NetSecurity where present, netsh otherwise -----------------------

function Test-DcomcNetSecurity {
    return ($null -ne (Get-Command -Name 'New-NetFirewallRule' -ErrorAction SilentlyContinue))
}

function Get-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] $Resource)
    $name = [string] $Resource.Name
    if (-not (Test-DcomcNetSecurity)) {
        $null = & netsh.exe advfirewall firewall show rule name=$name
        return @{ Exists = ($LASTEXITCODE -eq 0); Detail = $null }
    }
    $rule = Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue
    if ($null -eq $rule) {
        return @{ Exists = $false; Detail = $null }
    }
    $ports = $rule | Get-NetFirewallPortFilter
    $app = $rule | Get-NetFirewallApplicationFilter
    $service = $rule | Get-NetFirewallServiceFilter
    $address = $rule | Get-NetFirewallAddressFilter
    $detail = @{
        Enabled   = [string] $rule.Enabled
        Direction = [string] $rule.Direction
        Action    = [string] $rule.Action
        Profile   = [string] $rule.Profile
        Protocol  = [string] $ports.Protocol
        LocalPort = (@($ports.LocalPort) -join ',')
        Program   = [string] $app.Program
        Service   = [string] $service.Service
        Remote    = (@($address.RemoteAddress) -join ',')
    }
    return @{ Exists = $true; Detail = $detail }
}

function ConvertTo-DcomcFirewallAddress {
    <# NetSecurity shows IPv4 networks as address/mask (10.9.0.0/255.255.255.0); compare alike.
       UNVERIFIED on every build: a mismatch only makes Test report drift, never hides one. #>
    param([Parameter(Mandatory = $true)] [string] $Address)
    $parts = $Address.Split('/')
    if ($parts.Count -ne 2 -or $parts[0].Contains(':')) {
        return $Address
    }
    $bits = [int] $parts[1]
    $mask = [uint32] 0
    if ($bits -gt 0) {
        $mask = [uint32] ([math]::Pow(2, 32) - [math]::Pow(2, 32 - $bits))
    }
    $bytes = [BitConverter]::GetBytes($mask)
    [Array]::Reverse($bytes)
    return '{0}/{1}' -f $parts[0], ([Net.IPAddress] $bytes).ToString()
}

function Get-DcomcWantedRule {
    param([Parameter(Mandatory = $true)] $Resource)
    $want = @{
        Enabled   = 'True'
        Direction = 'Inbound'
        Action    = 'Allow'
        Profile   = ((@($Resource.Profiles) | ForEach-Object -Process { (Get-Culture).TextInfo.ToTitleCase($_) }) -join ', ')
        Protocol  = [string] $Resource.Protocol
        LocalPort = 'Any'
        Program   = 'Any'
        Service   = 'Any'
        Remote    = ((@($Resource.Remote) | ForEach-Object -Process { ConvertTo-DcomcFirewallAddress -Address $_ }) -join ',')
    }
    if ($Resource.LocalPort) { $want.LocalPort = [string] $Resource.LocalPort }
    if ($Resource.Program) { $want.Program = [string] $Resource.Program }
    if ($Resource.Service) { $want.Service = [string] $Resource.Service }
    if ($want.Remote -eq 'any') { $want.Remote = 'Any' }
    return $want
}

function Test-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        return @{ Compliant = $false; Reason = 'the rule does not exist' }
    }
    if ($null -eq $State.Detail) {
        return @{ Compliant = $true; Reason = 'exists (netsh: properties not compared)' }
    }
    $want = Get-DcomcWantedRule -Resource $Resource
    foreach ($field in @('Enabled', 'Direction', 'Action', 'Profile', 'Protocol', 'LocalPort', 'Program', 'Service', 'Remote')) {
        if ([string] $State.Detail[$field] -ne [string] $want[$field]) {
            return @{ Compliant = $false; Reason = ('{0} is {1}, should be {2}' -f $field, $State.Detail[$field], $want[$field]) }
        }
    }
    return @{ Compliant = $true; Reason = 'rule as planned' }
}

function Remove-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] [string] $Name)
    if (Test-DcomcNetSecurity) {
        Get-NetFirewallRule -Name $Name -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    }
    else {
        $null = & netsh.exe advfirewall firewall delete rule name=$Name
    }
}

function Set-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $name = [string] $Resource.Name
    Remove-DcomcFirewallRule -Name $name   # delete, then add: converges on every run
    if (Test-DcomcNetSecurity) {
        $arguments = @{
            Name          = $name
            DisplayName   = $name
            Description   = [string] $Resource.Description
            Direction     = 'Inbound'
            Action        = 'Allow'
            Enabled       = 'True'
            Protocol      = [string] $Resource.Protocol
            Profile       = @($Resource.Profiles)
            RemoteAddress = @($Resource.Remote)
        }
        if ($Resource.LocalPort) { $arguments.LocalPort = [string] $Resource.LocalPort }
        if ($Resource.Program) { $arguments.Program = [string] $Resource.Program }
        if ($Resource.Service) { $arguments.Service = [string] $Resource.Service }
        $null = New-NetFirewallRule @arguments
        return
    }
    $netsh = @('advfirewall', 'firewall', 'add', 'rule', ('name=' + $name), 'dir=in', 'action=allow',
        ('protocol=' + $Resource.Protocol), ('profile=' + (@($Resource.Profiles) -join ',')),
        ('remoteip=' + (@($Resource.Remote) -join ',')), ('description=' + $Resource.Description))
    if ($Resource.LocalPort) { $netsh += ('localport=' + $Resource.LocalPort) }
    if ($Resource.Program) { $netsh += ('program=' + $Resource.Program) }
    if ($Resource.Service) { $netsh += ('service=' + $Resource.Service) }
    $null = & netsh.exe @netsh
    if ($LASTEXITCODE -ne 0) {
        throw ('netsh add rule {0} failed with exit code {1}' -f $name, $LASTEXITCODE)
    }
}

function Restore-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if (-not $Before.Exists) {
        Remove-DcomcFirewallRule -Name ([string] $Resource.Name)
    }
    # A rule dcomc had already created is dcomc's own: Set re-created it with the same name.
}

# --- firewall_rule_group (guide §6): by resource string, never the localized display name ------

function Get-DcomcGroupRules {
    param([Parameter(Mandatory = $true)] $Resource)
    $wanted = @($Resource.Profiles | ForEach-Object -Process { [string] $_ })
    $rules = @(Get-NetFirewallRule -Group ([string] $Resource.Group) -ErrorAction SilentlyContinue)
    return , @($rules | Where-Object -FilterScript {
            $profiles = ([string] $_.Profile).ToLowerInvariant()
            $hit = $profiles -eq 'any'
            foreach ($name in $wanted) {
                if ($profiles -like ('*{0}*' -f $name)) { $hit = $true }
            }
            $hit
        })
}

function Get-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource)
    if (-not (Test-DcomcNetSecurity)) {
        return @{ Supported = $false; Disabled = @() }
    }
    $disabled = @(Get-DcomcGroupRules -Resource $Resource | Where-Object -FilterScript { [string] $_.Enabled -ne 'True' } | ForEach-Object -Process { [string] $_.Name })
    return @{ Supported = $true; Disabled = $disabled; Count = @(Get-DcomcGroupRules -Resource $Resource).Count }
}

function Test-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Supported) {
        return @{ Compliant = $false; Reason = 'the NetSecurity module is missing; enable the group in the firewall console' }
    }
    if ($State.Count -eq 0) {
        return @{ Compliant = $false; Reason = ('no rule of group {0} found on this PC' -f $Resource.Group) }
    }
    if (@($State.Disabled).Count -gt 0) {
        return @{ Compliant = $false; Reason = ('{0} rules of the group are disabled' -f @($State.Disabled).Count) }
    }
    return @{ Compliant = $true; Reason = 'enabled' }
}

function Set-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Supported -or $State.Count -eq 0) {
        throw ('Cannot enable the firewall group {0} here' -f $Resource.Group)
    }
    Get-DcomcGroupRules -Resource $Resource | Enable-NetFirewallRule
}

function Restore-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    foreach ($name in @($Before.Disabled)) {
        Disable-NetFirewallRule -Name $name
    }
}

# --- service_start_mode (guide §6 note) ----------------------------------------------------------

function Get-DcomcServiceStartMode {
    param([Parameter(Mandatory = $true)] $Resource)
    $service = Get-CimInstance -ClassName Win32_Service -Filter ("Name='{0}'" -f ([string] $Resource.Service).Replace("'", "\'"))
    if ($null -eq $service) {
        return @{ Installed = $false; StartMode = $null }
    }
    return @{ Installed = $true; StartMode = [string] $service.StartMode }
}

function Test-DcomcServiceStartMode {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Installed) {
        return @{ Compliant = $false; Reason = 'the service is not installed' }
    }
    if ($State.StartMode -ieq [string] $Resource.Mode) {
        return @{ Compliant = $true; Reason = $State.StartMode }
    }
    return @{ Compliant = $false; Reason = ('start mode {0}, should be {1}' -f $State.StartMode, $Resource.Mode) }
}

function ConvertTo-DcomcStartupType {
    param([Parameter(Mandatory = $true)] [string] $Mode)
    $types = @{ 'auto' = 'Automatic'; 'manual' = 'Manual'; 'disabled' = 'Disabled' }
    return $types[$Mode.ToLowerInvariant()]
}

function Set-DcomcServiceStartMode {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    Set-Service -Name ([string] $Resource.Service) -StartupType (ConvertTo-DcomcStartupType -Mode ([string] $Resource.Mode))
}

function Restore-DcomcServiceStartMode {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if ($Before.Installed) {
        Set-Service -Name ([string] $Resource.Service) -StartupType (ConvertTo-DcomcStartupType -Mode ([string] $Before.StartMode))
    }
}

# --- security_option (guide §7): registry-backed security options -------------------------------

function Get-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource)
    $path = ConvertTo-DcomcKeyPath -Key ([string] $Resource.Key)
    return @{ Value = (Get-DcomcRegistryValue -Path $path -Name ([string] $Resource.ValueName)) }
}

function Test-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.Value.Exists -and [int] $State.Value.Data -eq [int] $Resource.Value) {
        return @{ Compliant = $true; Reason = ('{0} = {1}' -f $Resource.ValueName, $Resource.Value) }
    }
    return @{ Compliant = $false; Reason = ('{0} should be {1}' -f $Resource.ValueName, $Resource.Value) }
}

function Set-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $path = ConvertTo-DcomcKeyPath -Key ([string] $Resource.Key)
    Set-DcomcRegistryValue -Path $path -Name ([string] $Resource.ValueName) -Type 'DWord' -Data ([int] $Resource.Value)
}

function Restore-DcomcSecurityOption {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $path = ConvertTo-DcomcKeyPath -Key ([string] $Resource.Key)
    Restore-DcomcRegistryValue -Path $path -Name ([string] $Resource.ValueName) -Before $Before.Value
}

# --- reboot (guide §4.3) -------------------------------------------------------------------------

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

# --- the runner ------------------------------------------------------------------------------------

function Invoke-DcomcStep {
    param([Parameter(Mandatory = $true)] [string] $Verb, [Parameter(Mandatory = $true)] $Resource, $State)
    $command = '{0}-Dcomc{1}' -f $Verb, $script:Kinds[[string] $Resource.Kind]
    if ($Verb -eq 'Get') {
        return & $command -Resource $Resource
    }
    if ($Verb -eq 'Restore') {
        return & $command -Resource $Resource -Before $State
    }
    return & $command -Resource $Resource -State $State
}

function Test-DcomcResource {
    <#
    .SYNOPSIS
        Reads the current state of one resource of a dcomc plan and tests it.
    .DESCRIPTION
        Returns an object with Id, Kind, Guide, Compliant, Reason and State. Changes nothing.
    .PARAMETER Resource
        One entry of the Resources list of a host's data file.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)] $Resource)
    try {
        $state = Invoke-DcomcStep -Verb 'Get' -Resource $Resource
        $test = Invoke-DcomcStep -Verb 'Test' -Resource $Resource -State $state
    }
    catch {
        $state = @{}
        $test = @{ Compliant = $false; Reason = ('cannot read: {0}' -f $_.Exception.Message) }
    }
    return [pscustomobject] @{
        Id        = [string] $Resource.Id
        Kind      = [string] $Resource.Kind
        Guide     = [string] $Resource.Guide
        Compliant = [bool] $test.Compliant
        Reason    = [string] $test.Reason
        State     = $state
    }
}

function Import-DcomcData {
    <#
    .SYNOPSIS
        Loads a host data file (.psd1) with the restricted language: literals only.
    .PARAMETER DataFile
        Path of the .psd1 file.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)] [string] $DataFile)
    if (-not (Test-Path -LiteralPath $DataFile)) {
        throw ('No data file {0}: is this PC one of the hosts of the bundle?' -f $DataFile)
    }
    if (Get-Command -Name 'Import-PowerShellDataFile' -ErrorAction SilentlyContinue) {
        $data = Import-PowerShellDataFile -LiteralPath $DataFile
    }
    else {
        $data = $null
        Import-LocalizedData -BaseDirectory (Split-Path -Parent $DataFile) -FileName (Split-Path -Leaf $DataFile) -BindingVariable 'data'
    }
    if ([int] $data.FormatVersion -ne 1) {
        throw ('Data file format {0} is not supported by this engine' -f $data.FormatVersion)
    }
    if ($data.Host -ine $env:COMPUTERNAME) {
        Write-Warning -Message ('The data file is for {0}, this PC is {1}' -f $data.Host, $env:COMPUTERNAME)
    }
    return $data
}

function Test-DcomcElevated {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object -TypeName Security.Principal.WindowsPrincipal -ArgumentList $identity
    return $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}

function Get-DcomcNeededPassword {
    <# Accounts whose password Apply will need, asked for BEFORE anything changes. #>
    param([Parameter(Mandatory = $true)] $Results)
    $accounts = @()
    foreach ($result in $Results) {
        if ($result.Compliant) { continue }
        $resource = $result.Resource
        if ($resource.Kind -eq 'local_user' -and (-not $result.State.Exists -or $script:ResetPasswords)) {
            $accounts += [string] $resource.Name
        }
        if ($resource.Kind -eq 'service_logon') {
            $accounts += [string] $resource.Account.Name
        }
    }
    return , @($accounts | Select-Object -Unique)
}

function Save-DcomcBackup {
    <# changes.json: every resource this backup has seen change, with its state BEFORE the
       first change. A named backup (the MSI's) accumulates over runs: an upgrade adds the
       resources it changes and keeps the pristine state of the others. #>
    param([Parameter(Mandatory = $true)] [string] $Folder, [Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] $Changes, $Earlier)
    $entries = @()
    $seen = @{}
    foreach ($entry in @($Earlier) + @($Changes)) {
        if ($null -eq $entry) { continue }
        $id = [string] $entry.Resource.Id
        if ($seen.ContainsKey($id)) { continue }
        $seen[$id] = $true
        $entries += @{ Resource = $entry.Resource; Before = $entry.Before }
    }
    $json = ConvertTo-Json -InputObject @{ Site = $Data.Site; Host = $Data.Host; Changes = $entries } -Depth 12
    [IO.File]::WriteAllText((Join-Path -Path $Folder -ChildPath 'changes.json'), $json, (New-Object -TypeName Text.UTF8Encoding -ArgumentList $false))
}

function Read-DcomcBackup {
    param([Parameter(Mandatory = $true)] [string] $Folder)
    $file = Join-Path -Path $Folder -ChildPath 'changes.json'
    if (-not (Test-Path -LiteralPath $file)) {
        return , @()
    }
    $saved = Get-Content -LiteralPath $file -Raw -Encoding UTF8 | ConvertFrom-Json
    return , @($saved.Changes)
}

function Backup-DcomcSystem {
    <# Human-usable copies of everything Apply may touch, beside the machine-readable state. #>
    param([Parameter(Mandatory = $true)] [string] $Folder)
    $keys = @('HKLM\SOFTWARE\Microsoft\Ole', 'HKLM\SYSTEM\CurrentControlSet\Control\Lsa', 'HKLM\SOFTWARE\Classes\AppID')
    $index = 0
    foreach ($key in $keys) {
        $index++
        $null = & reg.exe export $key (Join-Path -Path $Folder -ChildPath ('registry-{0}.reg' -f $index)) /y
    }
    $null = & secedit.exe /export /cfg (Join-Path -Path $Folder -ChildPath 'policy.inf') /quiet
    $null = & netsh.exe advfirewall export (Join-Path -Path $Folder -ChildPath 'firewall.wfw')
    $services = Get-CimInstance -ClassName Win32_Service | Select-Object -Property 'Name', 'StartName', 'StartMode', 'State'
    $services | ConvertTo-Json -Depth 3 | Set-Content -LiteralPath (Join-Path -Path $Folder -ChildPath 'services.json') -Encoding UTF8
    $groups = @{}
    foreach ($group in @(([ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)).Children | Where-Object -FilterScript { $_.SchemaClassName -eq 'Group' })) {
        $groups[[string] $group.Name.Value] = @($group.Invoke('Members') | ForEach-Object -Process { [string] $_.GetType().InvokeMember('Name', 'GetProperty', $null, $_, $null) })
    }
    $groups | ConvertTo-Json -Depth 3 | Set-Content -LiteralPath (Join-Path -Path $Folder -ChildPath 'groups.json') -Encoding UTF8
}

function Undo-DcomcChange {
    <# Restore the changes of a run in reverse order; returns $true when all were restored. #>
    param([Parameter(Mandatory = $true)] $Changes)
    $ok = $true
    $list = @($Changes)
    for ($i = $list.Count - 1; $i -ge 0; $i--) {
        $change = $list[$i]
        try {
            $null = Invoke-DcomcStep -Verb 'Restore' -Resource $change.Resource -State $change.Before
            Write-DcomcLog -Message ('restored {0}' -f $change.Resource.Id)
        }
        catch {
            $ok = $false
            Write-DcomcLog -Level 'ERROR' -Message ('could not restore {0}: {1}' -f $change.Resource.Id, $_.Exception.Message)
        }
    }
    return $ok
}

function Invoke-DcomcApply {
    param([Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] $Results, [Parameter(Mandatory = $true)] $Cmdlet, [string] $BackupName)
    if ($WhatIfPreference) {
        # -WhatIf: say what would be set, write nothing (no backup, no prompt).
        foreach ($result in $Results) {
            if (-not $result.Compliant) {
                $null = $Cmdlet.ShouldProcess([string] $result.Resource.Id, ('Set ({0})' -f $result.Reason))
            }
        }
        return 0
    }
    # Every password is asked for before the first change: a missing one changes nothing.
    foreach ($account in (Get-DcomcNeededPassword -Results $Results)) {
        $null = Get-DcomcPassword -Account $account
    }
    if (-not $BackupName) {
        $BackupName = Get-Date -Format 'yyyyMMdd-HHmmss'
    }
    $backup = Initialize-DcomcFolder -Site ([string] $Data.Site) -Name (Join-Path -Path 'backups' -ChildPath $BackupName)
    $earlier = Read-DcomcBackup -Folder $backup
    if (@($earlier).Count -eq 0) {
        Backup-DcomcSystem -Folder $backup
    }
    $changes = New-Object -TypeName System.Collections.ArrayList
    foreach ($result in $Results) {
        $resource = $result.Resource
        if ($result.Compliant) { continue }
        if (-not $Cmdlet.ShouldProcess([string] $resource.Id, ('Set ({0})' -f $result.Reason))) { continue }
        $before = Invoke-DcomcStep -Verb 'Get' -Resource $resource
        $null = $changes.Add(@{ Resource = $resource; Before = $before })
        Save-DcomcBackup -Folder $backup -Data $Data -Changes $changes -Earlier $earlier
        try {
            $null = Invoke-DcomcStep -Verb 'Set' -Resource $resource -State $before
            $after = Test-DcomcResource -Resource $resource
            if (-not $after.Compliant) {
                throw ('still not compliant after Set: {0}' -f $after.Reason)
            }
            Write-DcomcLog -Message ('set {0}' -f $resource.Id)
        }
        catch {
            $message = $_.Exception.Message
            Write-DcomcLog -Level 'ERROR' -Message ('{0} failed: {1}; rolling back this run' -f $resource.Id, $message)
            Write-Error -Message ('{0} failed: {1}' -f $resource.Id, $message) -ErrorAction Continue
            if (Undo-DcomcChange -Changes $changes) {
                return 2
            }
            return 4
        }
    }
    return 0
}

function Invoke-DcomcRollback {
    param([Parameter(Mandatory = $true)] $Data, [string] $Backup)
    if (-not $Backup) {
        $root = Initialize-DcomcFolder -Site ([string] $Data.Site) -Name 'backups'
        $latest = Get-ChildItem -LiteralPath $root -Directory | Sort-Object -Property Name | Select-Object -Last 1
        if ($null -eq $latest) {
            throw ('No backup under {0}' -f $root)
        }
        $Backup = $latest.FullName
    }
    if (-not (Test-Path -LiteralPath $Backup)) {
        Write-DcomcLog -Message ('no backup {0}: nothing to roll back' -f $Backup)
        return 0
    }
    $changes = Read-DcomcBackup -Folder $Backup
    Write-DcomcLog -Message ('rolling back {0} ({1} changes)' -f $Backup, @($changes).Count)
    if (Undo-DcomcChange -Changes $changes) {
        return 0
    }
    return 4
}

function Invoke-DcomcConfiguration {
    <#
    .SYNOPSIS
        Runs one mode (Test, Apply, Report, Rollback) of a dcomc bundle on this PC.
    .DESCRIPTION
        See Invoke-DcomConfig.ps1 for the modes and exit codes. Returns an object with
        ExitCode, Results, RebootRequired and LogFile.
    .PARAMETER Mode
        Test, Apply, Report or Rollback.
    .PARAMETER DataFile
        The host data file (.psd1).
    .PARAMETER Path
        Report mode: the JSON file to write.
    .PARAMETER Backup
        Rollback mode: the backup folder (default: the latest).
    .PARAMETER Passwords
        Account name -> SecureString.
    .PARAMETER ResetPasswords
        Apply: also reset the passwords of existing local accounts.
    .PARAMETER BackupName
        Apply: the backup folder name (default: a timestamp). A named backup accumulates
        over runs; the MSI uses one so that uninstall restores the state before install.
    .PARAMETER PasswordsFromStdin
        Read passwords from standard input, one `account<TAB>password` line each (the MSI's
        route: never on a command line). A missing or empty one fails before any change.
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
    param(
        [ValidateSet('Test', 'Apply', 'Report', 'Rollback')] [string] $Mode = 'Test',
        [Parameter(Mandatory = $true)] [string] $DataFile,
        [string] $Path,
        [string] $Backup,
        [System.Collections.Hashtable] $Passwords,
        [switch] $ResetPasswords,
        [string] $BackupName,
        [switch] $PasswordsFromStdin
    )
    $script:RebootNeeded = $false
    $script:ResetPasswords = [bool] $ResetPasswords
    $script:Passwords = @{}
    if ($Passwords) {
        foreach ($name in $Passwords.Keys) {
            if ($Passwords[$name] -isnot [System.Security.SecureString]) {
                throw ('The password for {0} must be a SecureString' -f $name)
            }
            $script:Passwords[[string] $name] = $Passwords[$name]
        }
    }
    if ($PasswordsFromStdin) {
        Read-DcomcStdinPassword
    }
    try {
        $data = Import-DcomcData -DataFile $DataFile
    }
    catch {
        Write-Error -Message $_.Exception.Message -ErrorAction Continue
        return [pscustomobject] @{ ExitCode = 3; Results = @(); RebootRequired = $false; LogFile = $null }
    }
    if ($Mode -ne 'Test' -and $Mode -ne 'Report' -and -not (Test-DcomcElevated)) {
        Write-Error -Message ('{0} needs an elevated PowerShell (Run as administrator)' -f $Mode) -ErrorAction Continue
        return [pscustomobject] @{ ExitCode = 3; Results = @(); RebootRequired = $false; LogFile = $null }
    }
    if ($Mode -eq 'Report' -and -not $Path) {
        Write-Error -Message 'Report needs -Path FILE.json' -ErrorAction Continue
        return [pscustomobject] @{ ExitCode = 3; Results = @(); RebootRequired = $false; LogFile = $null }
    }
    $logs = Initialize-DcomcFolder -Site ([string] $data.Site) -Name 'logs'
    $script:LogFile = Join-Path -Path $logs -ChildPath ('{0}-{1}.log' -f (Get-Date -Format 'yyyyMMdd-HHmmss'), $Mode)
    Write-DcomcLog -Message ('{0} on {1} with {2} ({3})' -f $Mode, $env:COMPUTERNAME, $DataFile, $data.Generator)
    $code = 0
    if ($Mode -eq 'Rollback') {
        try {
            if (-not $Backup -and $BackupName) {
                $Backup = Join-Path -Path (Initialize-DcomcFolder -Site ([string] $data.Site) -Name 'backups') -ChildPath $BackupName
            }
            $code = Invoke-DcomcRollback -Data $data -Backup $Backup
        }
        catch {
            Write-Error -Message $_.Exception.Message -ErrorAction Continue
            $code = 3
        }
        return [pscustomobject] @{ ExitCode = $code; Results = @(); RebootRequired = $true; LogFile = $script:LogFile }
    }
    $results = @()
    foreach ($resource in $data.Resources) {
        $result = Test-DcomcResource -Resource $resource
        $results += [pscustomobject] @{ Resource = $resource; Compliant = $result.Compliant; Reason = $result.Reason; State = $result.State; Id = $result.Id; Guide = $result.Guide }
    }
    if ($Mode -eq 'Apply') {
        try {
            $code = Invoke-DcomcApply -Data $data -Results $results -Cmdlet $PSCmdlet -BackupName $BackupName
        }
        catch {
            Write-Error -Message $_.Exception.Message -ErrorAction Continue
            $code = 3
        }
        $results = @($data.Resources | ForEach-Object -Process { Test-DcomcResource -Resource $_ })
    }
    $summary = @($results | Select-Object -Property 'Id', 'Compliant', 'Reason', 'Guide')
    $summary | Format-Table -AutoSize -Wrap | Out-String -Width 200 | Write-Host
    foreach ($result in $results) {
        Write-DcomcLog -Message ('{0} {1}: {2}' -f $(if ($result.Compliant) { 'OK     ' } else { 'DRIFTED' }), $result.Id, $result.Reason)
    }
    if ($Mode -eq 'Report') {
        $report = @{ Site = $data.Site; Host = $data.Host; Computer = $env:COMPUTERNAME; Generator = $data.Generator; Spec = $data.Spec; SpecSha256 = $data.SpecSha256; Time = (Get-Date).ToUniversalTime().ToString('o'); Resources = @($results | Select-Object -Property 'Id', 'Compliant', 'Reason', 'State') }
        [IO.File]::WriteAllText($Path, (ConvertTo-Json -InputObject $report -Depth 12), (New-Object -TypeName Text.UTF8Encoding -ArgumentList $false))
    }
    if ($Mode -eq 'Test' -and @($results | Where-Object -FilterScript { -not $_.Compliant }).Count -gt 0) {
        $code = 1
    }
    if ($script:RebootNeeded) {
        Write-Warning -Message 'Reboot this PC: DCOM machine settings take effect after a reboot (guide §4.3).'
    }
    return [pscustomobject] @{ ExitCode = $code; Results = $results; RebootRequired = $script:RebootNeeded; LogFile = $script:LogFile }
}

Export-ModuleMember -Function 'Invoke-DcomcConfiguration', 'Test-DcomcResource', 'Import-DcomcData'
