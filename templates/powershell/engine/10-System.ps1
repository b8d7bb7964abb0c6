# ==== The system layer: the ONLY functions of the engine that touch Windows ====================
#
# Registry, local accounts and groups (ADSI WinNT), services (CIM Win32_Service), user rights
# (secedit), firewall rules and groups (NetSecurity), the file system and ACLs of dcomc's own
# folder, and the console. Every other function of the engine calls these, so the test suite
# runs the rest unchanged against a simulated Windows that defines the same functions (the
# README says what it covers). Names are <Verb>-DcomcOs<Noun>; values cross this layer as
# plain data (strings, integers, byte[], hashtables, SecureStrings), never as Windows .NET
# types. A function here does one thing, and throws on failure.

# --- registry: HKEY_LOCAL_MACHINE only, always in an explicit view ----------------------------
# The caller chooses the view: 64-bit for the keys WOW64 shares (Classes\AppID, Microsoft\Ole,
# Policies, SYSTEM), the 32-bit one for the Classes\CLSID keys of 32-bit servers (registry
# redirector, "Registry Keys Affected by WOW64"), never the bitness of this process.

function Open-DcomcOsRegistryKey {
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64', [switch] $Write, [switch] $Create)
    $hive = [Microsoft.Win32.RegistryHive]::LocalMachine
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey($hive, [Microsoft.Win32.RegistryView]::$View)
    if ($Create) {
        return $base.CreateSubKey($Path)
    }
    return $base.OpenSubKey($Path, [bool] $Write)
}

function Get-DcomcOsRegistryValue {
    <# @{ Exists; Type; Data }: Type is a RegistryValueKind name (String, ExpandString,
       MultiString, DWord, QWord, Binary); Data as .NET returns it, REG_EXPAND_SZ unexpanded. #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name, [string] $View = 'Registry64')
    $key = Open-DcomcOsRegistryKey -Path $Path -View $View
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

function Set-DcomcOsRegistryValue {
    <# Writes a value, creating the key (and its parents) when missing. #>
    param(
        [Parameter(Mandatory = $true)] [string] $Path,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name,
        [Parameter(Mandatory = $true)] [ValidateSet('String', 'ExpandString', 'MultiString', 'DWord', 'QWord', 'Binary')] [string] $Type,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [AllowEmptyCollection()] $Data,
        [string] $View = 'Registry64'
    )
    $key = Open-DcomcOsRegistryKey -Path $Path -View $View -Create
    try {
        $key.SetValue($Name, $Data, [Microsoft.Win32.RegistryValueKind]::$Type)
    }
    finally {
        $key.Close()
    }
}

function Remove-DcomcOsRegistryValue {
    <# Deletes a value; a missing key or value is no error. #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name, [string] $View = 'Registry64')
    $key = Open-DcomcOsRegistryKey -Path $Path -View $View -Write
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

function Get-DcomcOsRegistryKey {
    <# $null when the key does not exist, else @{ ValueCount; SubKeyCount }. #>
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    $key = Open-DcomcOsRegistryKey -Path $Path -View $View
    if ($null -eq $key) {
        return $null
    }
    try {
        return @{ ValueCount = $key.ValueCount; SubKeyCount = $key.SubKeyCount }
    }
    finally {
        $key.Close()
    }
}

function New-DcomcOsRegistryKey {
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    $key = Open-DcomcOsRegistryKey -Path $Path -View $View -Create
    $key.Close()
}

function Remove-DcomcOsRegistryKey {
    <# Deletes a key that has no subkeys (RegistryKey.DeleteSubKey throws otherwise). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    $cut = $Path.LastIndexOf('\')
    $parent = $Path.Substring(0, $cut)
    $leaf = $Path.Substring($cut + 1)
    $key = Open-DcomcOsRegistryKey -Path $parent -View $View -Write
    if ($null -eq $key) {
        return
    }
    try {
        $key.DeleteSubKey($leaf, $false)
    }
    finally {
        $key.Close()
    }
}

# --- principals: names <-> SIDs (names are this PC's language; SIDs are not) ---------------------

function Get-DcomcOsComputerName {
    return [string] $env:COMPUTERNAME
}

function ConvertTo-DcomcOsSid {
    <# 'DOMAIN\name' (or 'COMPUTER\name') -> 'S-1-...'; throws when it does not resolve. #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    $account = New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $Name
    return $account.Translate([System.Security.Principal.SecurityIdentifier]).Value
}

function ConvertTo-DcomcOsAccountName {
    <# 'S-1-...' -> 'DOMAIN\name' in this PC's language; throws when it does not resolve. #>
    param([Parameter(Mandatory = $true)] [string] $Sid)
    $identifier = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $Sid
    return $identifier.Translate([System.Security.Principal.NTAccount]).Value
}

# --- local users and groups: ADSI WinNT (works without the LocalAccounts module) ---------------

function Get-DcomcOsAdsi {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [ValidateSet('user', 'group')] [string] $Class)
    $path = 'WinNT://{0}/{1},{2}' -f $env:COMPUTERNAME, $Name, $Class
    if (-not [ADSI]::Exists($path)) {
        return $null
    }
    return [ADSI] $path
}

function Get-DcomcOsAdsiSid {
    param([Parameter(Mandatory = $true)] $Entry)
    $bytes = $Entry.GetType().InvokeMember('objectSid', 'GetProperty', $null, $Entry, $null)
    return ConvertFrom-DcomcSidBytes -Bytes ([byte[]] $bytes)
}

function Get-DcomcOsLocalUser {
    <# $null, or @{ Name; Sid; Description; Flags (ADS_USER_FLAG); PasswordExpired } #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    $user = Get-DcomcOsAdsi -Name $Name -Class 'user'
    if ($null -eq $user) {
        return $null
    }
    return @{
        Name            = [string] $user.Name.Value
        Sid             = ConvertFrom-DcomcSidBytes -Bytes ([byte[]] $user.objectSid.Value)
        Description     = [string] $user.Description.Value
        Flags           = [int] $user.UserFlags.Value
        PasswordExpired = ([int] $user.PasswordExpired.Value -eq 1)
    }
}

function New-DcomcOsLocalUser {
    param(
        [Parameter(Mandatory = $true)] [string] $Name,
        [Parameter(Mandatory = $true)] [System.Security.SecureString] $Password,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Description,
        [Parameter(Mandatory = $true)] [int] $Flags
    )
    $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
    $user = $computer.Create('User', $Name)
    Set-DcomcOsAdsiPassword -Entry $user -Password $Password
    $user.Put('Description', $Description)
    $user.Put('UserFlags', $Flags)
    $user.SetInfo()   # one SetInfo: a password the policy refuses creates no account
}

function Set-DcomcOsAdsiPassword {
    param([Parameter(Mandatory = $true)] $Entry, [Parameter(Mandatory = $true)] [System.Security.SecureString] $Password)
    $pointer = [Runtime.InteropServices.Marshal]::SecureStringToBSTR($Password)
    try {
        $Entry.SetPassword([Runtime.InteropServices.Marshal]::PtrToStringBSTR($pointer))
    }
    finally {
        [Runtime.InteropServices.Marshal]::ZeroFreeBSTR($pointer)
    }
}

function Set-DcomcOsLocalUser {
    <# Changes only what is given. #>
    param(
        [Parameter(Mandatory = $true)] [string] $Name,
        [AllowEmptyString()] [string] $Description,
        [int] $Flags,
        [System.Security.SecureString] $Password,
        [bool] $PasswordExpired
    )
    $user = Get-DcomcOsAdsi -Name $Name -Class 'user'
    if ($null -eq $user) {
        throw ('The local user {0} does not exist' -f $Name)
    }
    if ($PSBoundParameters.ContainsKey('Password')) {
        Set-DcomcOsAdsiPassword -Entry $user -Password $Password
    }
    if ($PSBoundParameters.ContainsKey('Description')) {
        $user.Put('Description', $Description)
    }
    if ($PSBoundParameters.ContainsKey('Flags')) {
        $user.Put('UserFlags', $Flags)
    }
    if ($PSBoundParameters.ContainsKey('PasswordExpired')) {
        $user.Put('PasswordExpired', [int] $PasswordExpired)
    }
    $user.SetInfo()
}

function Remove-DcomcOsLocalUser {
    param([Parameter(Mandatory = $true)] [string] $Name)
    $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
    $computer.Delete('User', $Name)
}

function Get-DcomcOsLocalGroup {
    <# $null, or @{ Name; Sid; Description; Members (SIDs) } #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    $group = Get-DcomcOsAdsi -Name $Name -Class 'group'
    if ($null -eq $group) {
        return $null
    }
    $members = @(foreach ($member in @($group.Invoke('Members'))) { Get-DcomcOsAdsiSid -Entry $member })
    return @{
        Name        = [string] $group.Name.Value
        Sid         = ConvertFrom-DcomcSidBytes -Bytes ([byte[]] $group.objectSid.Value)
        Description = [string] $group.Description.Value
        Members     = $members
    }
}

function New-DcomcOsLocalGroup {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Description)
    $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
    $group = $computer.Create('Group', $Name)
    $group.Put('Description', $Description)
    $group.SetInfo()
}

function Set-DcomcOsLocalGroup {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Description)
    $group = Get-DcomcOsAdsi -Name $Name -Class 'group'
    if ($null -eq $group) {
        throw ('The local group {0} does not exist' -f $Name)
    }
    $group.Put('Description', $Description)
    $group.SetInfo()
}

function Remove-DcomcOsLocalGroup {
    param([Parameter(Mandatory = $true)] [string] $Name)
    $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
    $computer.Delete('Group', $Name)
}

function Get-DcomcOsMemberPath {
    <# The WinNT path of a member given by SID: its DOMAIN\name as this PC names it. #>
    param([Parameter(Mandatory = $true)] [string] $Sid)
    $name = ConvertTo-DcomcOsAccountName -Sid $Sid
    return 'WinNT://' + $name.Replace('\', '/')
}

function Add-DcomcOsLocalGroupMember {
    param([Parameter(Mandatory = $true)] [string] $Group, [Parameter(Mandatory = $true)] [string] $MemberSid)
    $entry = Get-DcomcOsAdsi -Name $Group -Class 'group'
    if ($null -eq $entry) {
        throw ('The local group {0} does not exist' -f $Group)
    }
    $entry.Add((Get-DcomcOsMemberPath -Sid $MemberSid))
}

function Remove-DcomcOsLocalGroupMember {
    param([Parameter(Mandatory = $true)] [string] $Group, [Parameter(Mandatory = $true)] [string] $MemberSid)
    $entry = Get-DcomcOsAdsi -Name $Group -Class 'group'
    if ($null -eq $entry) {
        throw ('The local group {0} does not exist' -f $Group)
    }
    $entry.Remove((Get-DcomcOsMemberPath -Sid $MemberSid))
}

# --- user rights: secedit export / configure of [Privilege Rights] -----------------------------
# secedit writes holders as *SID or, for accounts it could not translate, as names; a merge
# writes untranslatable names back as they were, so no holder is ever lost.

function Invoke-DcomcOsSecedit {
    param([Parameter(Mandatory = $true)] [string[]] $Arguments)
    $null = & "$env:SystemRoot\System32\secedit.exe" @Arguments
    if ($LASTEXITCODE -ne 0) {
        throw ('secedit {0} failed with exit code {1}' -f $Arguments[0], $LASTEXITCODE)
    }
}

function New-DcomcOsTempFolder {
    $folder = Join-Path -Path ([IO.Path]::GetTempPath()) -ChildPath ('dcomc-' + [guid]::NewGuid().ToString('N'))
    $null = [IO.Directory]::CreateDirectory($folder)
    return $folder
}

function Get-DcomcOsUserRight {
    <# The holders of a user right: 'S-1-...' SIDs, or names secedit could not translate. #>
    param([Parameter(Mandatory = $true)] [string] $Right)
    return , (Get-DcomcOsUserRightMap -Right @($Right))[$Right]
}

function Get-DcomcOsUserRightMap {
    <# The holders of several user rights from one secedit export (each export is a second or
       more): @{ right = holders }, as Get-DcomcOsUserRight gives them. #>
    param([Parameter(Mandatory = $true)] [string[]] $Right)
    $temp = New-DcomcOsTempFolder
    try {
        $inf = Join-Path -Path $temp -ChildPath 'rights.inf'
        Invoke-DcomcOsSecedit -Arguments @('/export', '/areas', 'USER_RIGHTS', '/cfg', $inf, '/quiet')
        $lines = [IO.File]::ReadAllLines($inf, [Text.Encoding]::Unicode)
        $map = @{}
        foreach ($name in $Right) { $map[$name] = ConvertFrom-DcomcRightLine -Lines $lines -Right $name }
        return $map
    }
    finally {
        [IO.Directory]::Delete($temp, $true)
    }
}

function Set-DcomcOsUserRightHolder {
    param([Parameter(Mandatory = $true)] [string] $Right, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]] $Holders)
    $temp = New-DcomcOsTempFolder
    try {
        $inf = Join-Path -Path $temp -ChildPath 'rights.inf'
        $text = ConvertTo-DcomcRightTemplate -Right $Right -Holders $Holders
        [IO.File]::WriteAllText($inf, $text, [Text.Encoding]::Unicode)
        Invoke-DcomcOsSecedit -Arguments @('/configure', '/db', (Join-Path -Path $temp -ChildPath 'rights.sdb'), '/cfg', $inf, '/areas', 'USER_RIGHTS', '/quiet')
    }
    finally {
        [IO.Directory]::Delete($temp, $true)
    }
}

function Grant-DcomcOsUserRight {
    param([Parameter(Mandatory = $true)] [string] $Right, [Parameter(Mandatory = $true)] [string] $Sid)
    $holders = Get-DcomcOsUserRight -Right $Right
    if ($holders -notcontains $Sid) {
        Set-DcomcOsUserRightHolder -Right $Right -Holders ($holders + @($Sid))
    }
}

function Revoke-DcomcOsUserRight {
    param([Parameter(Mandatory = $true)] [string] $Right, [Parameter(Mandatory = $true)] [string] $Sid)
    $holders = Get-DcomcOsUserRight -Right $Right
    if ($holders -contains $Sid) {
        Set-DcomcOsUserRightHolder -Right $Right -Holders @($holders | Where-Object -FilterScript { $_ -ne $Sid })
    }
}

# --- services: CIM Win32_Service (never sc.exe: it takes the password on its command line) -----

function Get-DcomcOsServiceObject {
    param([Parameter(Mandatory = $true)] [string] $Name)
    # WQL string literal: backslash and quote escaped (WQL "Operators" / string literals).
    $literal = $Name.Replace('\', '\\').Replace("'", "\'")
    return Get-CimInstance -ClassName Win32_Service -Filter ("Name='{0}'" -f $literal)
}

function Get-DcomcOsService {
    <# $null, or @{ Name; StartName; State; StartMode } as Win32_Service reports them. #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    $service = Get-DcomcOsServiceObject -Name $Name
    if ($null -eq $service) {
        return $null
    }
    return @{ Name = [string] $service.Name; StartName = [string] $service.StartName; State = [string] $service.State; StartMode = [string] $service.StartMode }
}

function Set-DcomcOsServiceLogon {
    <# Win32_Service.Change(StartName, StartPassword); no password for built-in accounts. #>
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [string] $StartName, [System.Security.SecureString] $Password)
    $service = Get-DcomcOsServiceObject -Name $Name
    if ($null -eq $service) {
        throw ('The service {0} is not installed on this PC' -f $Name)
    }
    $arguments = @{ StartName = $StartName; StartPassword = '' }
    $pointer = [IntPtr]::Zero
    try {
        if ($Password) {
            $pointer = [Runtime.InteropServices.Marshal]::SecureStringToBSTR($Password)
            $arguments.StartPassword = [Runtime.InteropServices.Marshal]::PtrToStringBSTR($pointer)
        }
        $result = Invoke-CimMethod -InputObject $service -MethodName Change -Arguments $arguments
    }
    finally {
        $arguments.StartPassword = $null
        if ($pointer -ne [IntPtr]::Zero) {
            [Runtime.InteropServices.Marshal]::ZeroFreeBSTR($pointer)
        }
    }
    if ($result.ReturnValue -ne 0) {
        throw ('Win32_Service.Change returned {0} for {1} (15: logon failed, 22: invalid account)' -f $result.ReturnValue, $Name)
    }
}

function Set-DcomcOsServiceStartMode {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [ValidateSet('Automatic', 'Manual', 'Disabled')] [string] $StartMode)
    Set-Service -Name $Name -StartupType $StartMode -WhatIf:$false -Confirm:$false
}

function Start-DcomcOsService {
    param([Parameter(Mandatory = $true)] [string] $Name)
    Start-Service -Name $Name -WhatIf:$false -Confirm:$false
}

function Stop-DcomcOsService {
    param([Parameter(Mandatory = $true)] [string] $Name)
    Stop-Service -Name $Name -Force -WhatIf:$false -Confirm:$false
}

function Restart-DcomcOsService {
    <# Stops the service and its dependents, then starts them again (Restart-Service -Force). #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Restart-Service -Name $Name -Force -WhatIf:$false -Confirm:$false
}

# --- firewall: NetSecurity (Windows 8 / Server 2012 and later: every supported target) --------

function Get-DcomcOsFirewallRule {
    <# $null, or the rule as NetSecurity shows it: Profile 'Domain, Private' or 'Any',
       RemoteAddress as a list ('Any', '10.9.0.0/255.255.255.0', ...). #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    $rule = @(Get-NetFirewallRule -Name $Name -ErrorAction SilentlyContinue)
    if ($rule.Count -eq 0) {
        return $null
    }
    $rule = $rule[0]
    $ports = $rule | Get-NetFirewallPortFilter
    return @{
        Name          = [string] $rule.Name
        DisplayName   = [string] $rule.DisplayName
        Description   = [string] $rule.Description
        Enabled       = ([string] $rule.Enabled -eq 'True')
        Direction     = [string] $rule.Direction
        Action        = [string] $rule.Action
        Profile       = [string] $rule.Profile
        Protocol      = [string] $ports.Protocol
        LocalPort     = @($ports.LocalPort | ForEach-Object -Process { [string] $_ })
        Program       = [string] ($rule | Get-NetFirewallApplicationFilter).Program
        Service       = [string] ($rule | Get-NetFirewallServiceFilter).Service
        RemoteAddress = @(($rule | Get-NetFirewallAddressFilter).RemoteAddress | ForEach-Object -Process { [string] $_ })
    }
}

function New-DcomcOsFirewallRule {
    <# An inbound allow rule: @{ Name; DisplayName; Description; Protocol; LocalPort; Program;
       Service; Profile (Domain/Private/Public list); RemoteAddress (list); Enabled (optional,
       default $true) }. #>
    param([Parameter(Mandatory = $true)] [hashtable] $Rule)
    $arguments = @{
        Name = $Rule.Name; DisplayName = $Rule.DisplayName; Description = $Rule.Description
        Direction = 'Inbound'; Action = 'Allow'; Enabled = 'True'; Protocol = $Rule.Protocol
        Profile = $Rule.Profile; RemoteAddress = $Rule.RemoteAddress
    }
    foreach ($field in @('LocalPort', 'Program', 'Service')) {
        if ($Rule[$field]) { $arguments[$field] = $Rule[$field] }
    }
    if ($Rule.ContainsKey('Enabled') -and -not $Rule.Enabled) {
        $arguments.Enabled = 'False'
    }
    $null = New-NetFirewallRule @arguments -WhatIf:$false -Confirm:$false
}

function Remove-DcomcOsFirewallRule {
    param([Parameter(Mandatory = $true)] [string] $Name)
    Get-NetFirewallRule -Name $Name -ErrorAction SilentlyContinue | Remove-NetFirewallRule -WhatIf:$false -Confirm:$false
}

function Get-DcomcOsFirewallGroup {
    <# The rules of a group given by its resource string (@FirewallAPI.dll,-32752: the same on
       every language), each @{ Name; Enabled; Profile }. #>
    param([Parameter(Mandatory = $true)] [string] $Group)
    $rules = @(Get-NetFirewallRule -Group $Group -ErrorAction SilentlyContinue)
    return , @(foreach ($rule in $rules) { @{ Name = [string] $rule.Name; Enabled = ([string] $rule.Enabled -eq 'True'); Profile = [string] $rule.Profile } })
}

function Set-DcomcOsFirewallRuleEnabled {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [bool] $Enabled)
    if ($Enabled) {
        Enable-NetFirewallRule -Name $Name -WhatIf:$false -Confirm:$false
    }
    else {
        Disable-NetFirewallRule -Name $Name -WhatIf:$false -Confirm:$false
    }
}

# --- this process, the console, time -------------------------------------------------------------

function Test-DcomcOsElevated {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object -TypeName Security.Principal.WindowsPrincipal -ArgumentList $identity
    return $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}

function Test-DcomcOsInteractive {
    return [Environment]::UserInteractive
}

function Read-DcomcOsSecret {
    param([Parameter(Mandatory = $true)] [string] $Prompt)
    return Read-Host -AsSecureString -Prompt $Prompt
}

function Read-DcomcOsStdin {
    <# All of standard input (the MSI's password lines; ASCII only: Base64). #>
    return [Console]::In.ReadToEnd()
}

function Get-DcomcOsUtcNow {
    return [DateTime]::UtcNow
}

# --- dcomc's folder under %ProgramData%: created with an explicit ACL, trusted only so ------------
# The default ACL of ProgramData lets every user create folders and files below it; a backup
# that Rollback replays as SYSTEM must be writable by SYSTEM and Administrators only.

$script:TrustedSids = @('S-1-5-18', 'S-1-5-32-544', 'S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464')
# FileSystemRights that let a holder change a file or folder: write/append data, write
# (extended) attributes, delete, delete child, change permissions, take ownership, generic.
$script:WriteRights = 0x2 -bor 0x4 -bor 0x10 -bor 0x40 -bor 0x100 -bor 0x10000 -bor 0x40000 -bor 0x80000 -bor 0x10000000 -bor 0x40000000

function Get-DcomcOsDataRoot {
    return Join-Path -Path $env:ProgramData -ChildPath 'dcomc'
}

function New-DcomcOsFolderSecurity {
    $security = New-Object -TypeName System.Security.AccessControl.DirectorySecurity
    $security.SetAccessRuleProtection($true, $false)
    $inherit = [System.Security.AccessControl.InheritanceFlags] 'ContainerInherit, ObjectInherit'
    foreach ($sid in @('S-1-5-18', 'S-1-5-32-544')) {
        $identity = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $sid
        $rule = New-Object -TypeName System.Security.AccessControl.FileSystemAccessRule -ArgumentList @($identity, 'FullControl', $inherit, 'None', 'Allow')
        $security.AddAccessRule($rule)
    }
    $security.SetOwner((New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList 'S-1-5-32-544'))
    return $security
}

function Test-DcomcOsTrustedItem {
    <# An existing file or folder that is no link, owned by SYSTEM or Administrators, and that
       no one else may change (the engine walks the folders above it). #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    $item = Get-Item -LiteralPath $Path -Force -ErrorAction SilentlyContinue
    if ($null -eq $item -or ($item.Attributes -band [IO.FileAttributes]::ReparsePoint)) {
        return $false
    }
    $acl = Get-Acl -LiteralPath $Path
    if ($script:TrustedSids -notcontains $acl.GetOwner([System.Security.Principal.SecurityIdentifier]).Value) {
        return $false
    }
    foreach ($rule in $acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
        $writes = ([int] $rule.FileSystemRights -band $script:WriteRights) -ne 0
        if ($rule.AccessControlType -eq 'Allow' -and $writes -and $script:TrustedSids -notcontains $rule.IdentityReference.Value) {
            return $false
        }
    }
    return $true
}

function New-DcomcOsSecureFolder {
    <# Creates one folder (its parent exists) with the protected ACL: SYSTEM and Administrators
       full control, nothing inherited from ProgramData, set atomically with the creation. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    $null = [IO.Directory]::CreateDirectory($Path, (New-DcomcOsFolderSecurity))
}

function Test-DcomcOsPath {
    param([Parameter(Mandatory = $true)] [string] $Path)
    return (Test-Path -LiteralPath $Path)
}

function Get-DcomcOsChildFolder {
    <# The names of the folders in a folder. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    return , @(Get-ChildItem -LiteralPath $Path -Directory -Force | ForEach-Object -Process { $_.Name })
}

function Write-DcomcOsFile {
    <# UTF-8 without BOM; a whole file is written beside and renamed over (never half a file). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Text, [switch] $Append)
    $encoding = New-Object -TypeName Text.UTF8Encoding -ArgumentList $false
    if ($Append) {
        [IO.File]::AppendAllText($Path, $Text, $encoding)
        return
    }
    $temp = $Path + '.tmp'
    [IO.File]::WriteAllText($temp, $Text, $encoding)
    if ([IO.File]::Exists($Path)) {
        [IO.File]::Replace($temp, $Path, [NullString]::Value)   # $null would reach .NET as ''
    }
    else {
        [IO.File]::Move($temp, $Path)
    }
}

function Read-DcomcOsFile {
    param([Parameter(Mandatory = $true)] [string] $Path)
    return [IO.File]::ReadAllText($Path, [Text.Encoding]::UTF8)
}

function Copy-DcomcOsFile {
    param([Parameter(Mandatory = $true)] [string] $Source, [Parameter(Mandatory = $true)] [string] $Destination)
    [IO.File]::Copy($Source, $Destination, $true)
}

function Rename-DcomcOsFolder {
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $NewName)
    [IO.Directory]::Move($Path, (Join-Path -Path (Split-Path -Path $Path -Parent) -ChildPath $NewName))
}

# --- Authenticode: the signature of a bundle file as Windows verifies it on this PC ------------------
# Windows checks the signature of what it executes (entry script and module, under AllSigned);
# the data file is only read, so no execution policy looks at it: the engine asks here.

function Get-DcomcOsFileSignature {
    <# @{ Status; SignerThumbprint; Subject; StatusMessage }: Status is the SignatureStatus name
       (Valid, NotSigned, HashMismatch, NotTrusted, UnknownError, NotSupportedFileFormat,
       Incompatible); the signer's fields are $null when the signature names no certificate. A
       missing file throws. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    $signature = Get-AuthenticodeSignature -LiteralPath $Path -ErrorAction Stop
    $thumbprint = $null
    $subject = $null
    if ($null -ne $signature.SignerCertificate) {
        $thumbprint = [string] $signature.SignerCertificate.Thumbprint
        $subject = [string] $signature.SignerCertificate.Subject
    }
    return @{ Status = [string] $signature.Status; SignerThumbprint = $thumbprint; Subject = $subject; StatusMessage = [string] $signature.StatusMessage }
}

function Read-DcomcOsSignedFile {
    <# @{ Bytes; Signature }: a file's bytes and its signature (as Get-DcomcOsFileSignature),
       both of the same bytes. The data file decides what Apply writes as SYSTEM: checked by its
       path and then read again, it could be replaced in between. So it is opened sharing read
       access only, which on Windows denies every other writer, rename and delete until the
       handle is closed, read through that handle, and its signature read while it is still
       open (Get-AuthenticodeSignature only reads: it opens the file beside this handle). A
       missing file throws; so does a file another process has open for writing. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    $stream = [IO.File]::Open($Path, [IO.FileMode]::Open, [IO.FileAccess]::Read, [IO.FileShare]::Read)
    try {
        $bytes = New-Object -TypeName 'byte[]' -ArgumentList $stream.Length
        $done = 0
        while ($done -lt $bytes.Length) {
            $read = $stream.Read($bytes, $done, $bytes.Length - $done)
            if ($read -le 0) { throw ('{0} ended before its length was read' -f $Path) }
            $done += $read
        }
        $signature = Get-DcomcOsFileSignature -Path $Path
    }
    finally {
        $stream.Dispose()
    }
    return @{ Bytes = $bytes; Signature = $signature }
}

# --- dcomc's own record: the last Apply's verdict in the site's detection key ------------------------
# HKLM\SOFTWARE\dcomc\<site>, 64-bit view: the key the MSIs' detection rule reads (their own
# values are Windows Installer's); these two are the engine's, like its log files.

function Write-DcomcOsApplyRecord {
    <# LastApplyResult (REG_DWORD) and LastApplyTime (REG_SZ) of the site's key, created when missing. #>
    param([Parameter(Mandatory = $true)] [string] $Site, [Parameter(Mandatory = $true)] [int] $Result, [Parameter(Mandatory = $true)] [string] $Time)
    $path = 'SOFTWARE\dcomc\' + $Site
    Set-DcomcOsRegistryValue -Path $path -Name 'LastApplyResult' -Type 'DWord' -Data $Result
    Set-DcomcOsRegistryValue -Path $path -Name 'LastApplyTime' -Type 'String' -Data $Time
}

function Remove-DcomcOsApplyRecord {
    <# Removes the two values, then the site's key and dcomc's key when nothing else is in them
       (an MSI's values are removed by Windows Installer, after the engine's Rollback). #>
    param([Parameter(Mandatory = $true)] [string] $Site)
    $path = 'SOFTWARE\dcomc\' + $Site
    foreach ($name in @('LastApplyResult', 'LastApplyTime')) {
        Remove-DcomcOsRegistryValue -Path $path -Name $name
    }
    foreach ($key in @($path, 'SOFTWARE\dcomc')) {
        $left = Get-DcomcOsRegistryKey -Path $key
        if ($null -ne $left -and $left.ValueCount -eq 0 -and $left.SubKeyCount -eq 0) {
            Remove-DcomcOsRegistryKey -Path $key
        }
    }
}

function Export-DcomcOsSystemBackup {
    <# Human-usable copies of what Apply may touch, for an administrator (Rollback uses the
       machine-readable changes.json): returns one warning per copy that failed. #>
    param([Parameter(Mandatory = $true)] [string] $Folder)
    $warnings = @()
    $system = Join-Path -Path $env:SystemRoot -ChildPath 'System32'
    $index = 0
    foreach ($key in @('HKLM\SOFTWARE\Microsoft\Ole', 'HKLM\SYSTEM\CurrentControlSet\Control\Lsa', 'HKLM\SOFTWARE\Classes\AppID')) {
        $index++
        $null = & (Join-Path -Path $system -ChildPath 'reg.exe') export $key (Join-Path -Path $Folder -ChildPath ('registry-{0}.reg' -f $index)) /y
        if ($LASTEXITCODE -ne 0) { $warnings += ('reg export {0} failed with exit code {1}' -f $key, $LASTEXITCODE) }
    }
    $null = & (Join-Path -Path $system -ChildPath 'secedit.exe') /export /cfg (Join-Path -Path $Folder -ChildPath 'policy.inf') /quiet
    if ($LASTEXITCODE -ne 0) { $warnings += ('secedit /export failed with exit code {0}' -f $LASTEXITCODE) }
    $null = & (Join-Path -Path $system -ChildPath 'netsh.exe') advfirewall export (Join-Path -Path $Folder -ChildPath 'firewall.wfw')
    if ($LASTEXITCODE -ne 0) { $warnings += ('netsh advfirewall export failed with exit code {0}' -f $LASTEXITCODE) }
    return , $warnings
}

# --- capture (-Mode Capture): read-only enumerations, each readable without elevation ----------------
# Reading HKLM\SOFTWARE\Classes, the SAM through WinNT, Win32_Service and the firewall's rules
# is allowed to standard users; nothing here reads a password, a hash or an LSA secret.

function Get-DcomcOsRegistrySubKeyName {
    <# The names of a key's subkeys in a view; an empty list when the key does not exist. #>
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    $key = Open-DcomcOsRegistryKey -Path $Path -View $View
    if ($null -eq $key) {
        return , @()
    }
    try {
        return , @($key.GetSubKeyNames())
    }
    finally {
        $key.Close()
    }
}

function Get-DcomcOsLocalAccountName {
    <# The names of this PC's local users or groups (the WinNT children of that class). #>
    param([Parameter(Mandatory = $true)] [ValidateSet('user', 'group')] [string] $Class)
    $computer = [ADSI] ('WinNT://{0},computer' -f $env:COMPUTERNAME)
    $names = foreach ($child in $computer.psbase.Children) {
        if ([string] $child.SchemaClassName -eq $Class) { [string] $child.Name }
    }
    return , @($names)
}

function Get-DcomcOsServiceList {
    <# Every service: @{ Name; DisplayName; PathName; StartName; State; StartMode }. #>
    $services = @(Get-CimInstance -ClassName Win32_Service)
    return , @(foreach ($service in $services) {
            @{ Name = [string] $service.Name; DisplayName = [string] $service.DisplayName; PathName = [string] $service.PathName; StartName = [string] $service.StartName; State = [string] $service.State; StartMode = [string] $service.StartMode }
        })
}

function Get-DcomcOsFirewallRuleList {
    <# Every inbound rule as Get-DcomcOsFirewallRule shows one, plus its Group. The filters are
       read once for all rules (one query per rule takes minutes on a PC with 500 rules). #>
    # A failed read throws (the capture records the part as skipped); only "no inbound rule at
    # all" (ObjectNotFound) is an empty list.
    try {
        $rules = @(Get-NetFirewallRule -Direction Inbound -ErrorAction Stop)
    }
    catch {
        if ($_.CategoryInfo.Category -ne [Management.Automation.ErrorCategory]::ObjectNotFound) { throw }
        $rules = @()
    }
    $filters = @{ Port = @{}; Application = @{}; Service = @{}; Address = @{} }
    foreach ($filter in @(Get-NetFirewallPortFilter -All -ErrorAction Stop)) { $filters.Port[[string] $filter.InstanceID] = $filter }
    foreach ($filter in @(Get-NetFirewallApplicationFilter -All -ErrorAction Stop)) { $filters.Application[[string] $filter.InstanceID] = $filter }
    foreach ($filter in @(Get-NetFirewallServiceFilter -All -ErrorAction Stop)) { $filters.Service[[string] $filter.InstanceID] = $filter }
    foreach ($filter in @(Get-NetFirewallAddressFilter -All -ErrorAction Stop)) { $filters.Address[[string] $filter.InstanceID] = $filter }
    return , @(foreach ($rule in $rules) {
            $id = [string] $rule.InstanceID
            $ports = $filters.Port[$id]
            @{
                Name = [string] $rule.Name; DisplayName = [string] $rule.DisplayName; Group = [string] $rule.Group
                Enabled = ([string] $rule.Enabled -eq 'True'); Direction = [string] $rule.Direction; Action = [string] $rule.Action
                Profile = [string] $rule.Profile; Protocol = [string] $ports.Protocol
                LocalPort = @($ports.LocalPort | ForEach-Object -Process { [string] $_ })
                Program = [string] $filters.Application[$id].Program; Service = [string] $filters.Service[$id].Service
                RemoteAddress = @($filters.Address[$id].RemoteAddress | ForEach-Object -Process { [string] $_ })
            }
        })
}

function Get-DcomcOsSystemInfo {
    <# @{ OsCaption; OsVersion; OsBuild; Is64Bit; InstallLanguage (the language of the
       built-in account names); UserLocale; Domain; PartOfDomain; Addresses (IPv4 and IPv6 of
       the enabled adapters) }. #>
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    $system = Get-CimInstance -ClassName Win32_ComputerSystem
    $adapters = @(Get-CimInstance -ClassName Win32_NetworkAdapterConfiguration -Filter 'IPEnabled = TRUE')
    $addresses = @(foreach ($adapter in $adapters) { foreach ($address in @($adapter.IPAddress)) { if ($address) { [string] $address } } })
    return @{
        OsCaption = [string] $os.Caption; OsVersion = [string] $os.Version; OsBuild = [string] $os.BuildNumber
        Is64Bit = [Environment]::Is64BitOperatingSystem; InstallLanguage = [Globalization.CultureInfo]::InstalledUICulture.Name
        UserLocale = [Globalization.CultureInfo]::CurrentCulture.Name; Domain = [string] $system.Domain
        PartOfDomain = [bool] $system.PartOfDomain; Addresses = $addresses
    }
}
