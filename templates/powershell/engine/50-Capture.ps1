# ==== Capture: what a brownfield PC has today, as JSON for `dcomc import` (docs/capture.md) =======
# Read-only: every read goes through the system layer's Get-/Test-/ConvertTo- functions, the
# same readers Test and Report use (Get-DcomcRegistryState, Get-DcomcOsService, ...). Each part
# is read on its own: a part Windows refuses to a standard user (user rights need secedit, which
# needs an administrator) is listed under Skipped with the reason, and the rest is captured. No
# password, hash or LSA secret is read: values are read by name, never by listing a whole key.

$script:CaptureFormat = 1
# The OPC DA component categories (CATID_OPCDAServer10/20/30, opcda.h; docs/windows.md#catalog).
$script:OpcCategories = [ordered] @{
    '{63D5F430-CFE4-11D1-B2C8-0060083BA1FB}' = 'DA1'
    '{63D5F432-CFE4-11D1-B2C8-0060083BA1FB}' = 'DA2'
    '{CC603642-66D7-48F1-B69A-B625E73652D7}' = 'DA3'
}
$script:OpcEnumClsid = '{13486D51-4821-11D2-A494-3CB306C10000}'
$script:NetworkDiscoveryGroup = '@FirewallAPI.dll,-32752'
$script:DiscoveryServices = @('fdPHost', 'FDResPub', 'SSDPSRV', 'upnphost')
$script:CaptureOleValues = @('EnableDCOM', 'LegacyAuthenticationLevel', 'LegacyImpersonationLevel', 'DefaultLaunchPermission', 'DefaultAccessPermission', 'MachineLaunchRestriction', 'MachineAccessRestriction')
$script:CapturePolicyValues = @('MachineLaunchRestriction', 'MachineAccessRestriction')
$script:CaptureLsaKey = 'SYSTEM\CurrentControlSet\Control\Lsa'
$script:CaptureLsaValues = @('ForceGuest', 'EveryoneIncludesAnonymous', 'RestrictAnonymous', 'RestrictAnonymousSAM', 'LimitBlankPasswordUse')
# Not ServiceParameters: free text a vendor may put a password in, and nothing import needs.
$script:CaptureAppIdValues = @('AuthenticationLevel', 'RunAs', 'LocalService', 'DllSurrogate')
$script:CaptureRights = @('SeServiceLogonRight', 'SeNetworkLogonRight', 'SeDenyNetworkLogonRight', 'SeDenyServiceLogonRight', 'SeBatchLogonRight')

# --- descriptors: hex as stored, SDDL for people (SIDs as numbers: no alias, no local name) -------

function ConvertTo-DcomcSddl {
    <# SDDL of a self-relative descriptor decoded by ConvertFrom-DcomcSecurityDescriptor: owner,
       group and the DACL's allow/deny ACEs with hex rights; other ACE types as their hex bytes
       in a comment-free 'unknown' form the compiler refuses (they are reported, not guessed). #>
    param([Parameter(Mandatory = $true)] $Descriptor)
    $text = ''
    if ($Descriptor.Owner) { $text += 'O:' + $Descriptor.Owner }
    if ($Descriptor.Group) { $text += 'G:' + $Descriptor.Group }
    if ($null -eq $Descriptor.Dacl) {
        return $text
    }
    $text += 'D:'
    foreach ($ace in @($Descriptor.Dacl.Aces)) {
        if ($null -eq $ace.Sid) {
            $text += '(unknown;0x{0:x2};{1})' -f [int] $ace.Type, (ConvertTo-DcomcHex -Bytes $ace.Raw)
            continue
        }
        $type = 'A'
        if ([int] $ace.Type -eq 1) { $type = 'D' }
        $flags = ''
        if ([int] $ace.Flags -ne 0) { $flags = '0x{0:x}' -f [int] $ace.Flags }
        $text += '({0};{1};0x{2:x};;;{3})' -f $type, $flags, [long] $ace.Mask, $ace.Sid
    }
    return $text
}

function Get-DcomcCaptureValue {
    <# A registry value as Get-DcomcRegistryState reads it; a binary descriptor also as SDDL and
       its SIDs (or the reason it does not decode). Absent: @{ Exists = $false }. #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] $Sids, [string] $View = 'Registry64')
    $state = Get-DcomcRegistryState -Path $Path -Name $Name -View $View
    $value = [ordered] @{ Exists = [bool] $state.Exists; Type = $state.Type; Data = $state.Data }
    if ($state.Exists -and $state.Type -eq 'Binary') {
        try {
            $descriptor = ConvertFrom-DcomcBinaryState -Value $state -Name $Name
            $value.Sddl = ConvertTo-DcomcSddl -Descriptor $descriptor
            foreach ($ace in @($descriptor.Dacl.Aces)) { if ($ace.Sid) { $Sids[[string] $ace.Sid] = $true } }
        }
        catch {
            $value.Sddl = $null
            $value.Invalid = $_.Exception.Message
        }
    }
    return $value
}

# --- parts: each returns plain data; Invoke-DcomcCapturePart records a refusal ---------------------

function Invoke-DcomcCapturePart {
    <# Runs one part's reader: its data, or $null and an entry in Skipped (with whether the
       process was elevated: a refusal to a standard user is expected, to an administrator not). #>
    param([Parameter(Mandatory = $true)] [string] $Part, [Parameter(Mandatory = $true)] [scriptblock] $Reader, [Parameter(Mandatory = $true)] $Capture)
    try {
        return & $Reader
    }
    catch {
        $why = $_.Exception.Message
        if (-not $Capture.Elevated) {
            $why = 'not elevated: {0} (run the capture as administrator to include it)' -f $why
        }
        $null = $Capture.Skipped.Add([ordered] @{ Part = $Part; Reason = $why })
        Write-Warning -Message ('Capture: {0} skipped: {1}' -f $Part, $why)
        return   # nothing: @() of it is empty, a property set from it is $null
    }
}

function Get-DcomcCaptureComputer {
    $info = Get-DcomcOsSystemInfo
    return [ordered] @{
        Name = (Get-DcomcOsComputerName); Domain = $info.Domain; PartOfDomain = [bool] $info.PartOfDomain
        OsCaption = $info.OsCaption; OsVersion = $info.OsVersion; OsBuild = $info.OsBuild; Is64Bit = [bool] $info.Is64Bit
        InstallLanguage = $info.InstallLanguage; UserLocale = $info.UserLocale
        Addresses = @($info.Addresses | Sort-Object -Unique)
    }
}

function Get-DcomcCaptureMachine {
    param([Parameter(Mandatory = $true)] $Sids)
    $ole = [ordered] @{}
    foreach ($name in $script:CaptureOleValues) { $ole[$name] = Get-DcomcCaptureValue -Path $script:OleKey -Name $name -Sids $Sids }
    $policy = [ordered] @{}
    foreach ($name in $script:CapturePolicyValues) { $policy[$name] = Get-DcomcCaptureValue -Path $script:PolicyKey -Name $name -Sids $Sids }
    $lsa = [ordered] @{}
    foreach ($name in $script:CaptureLsaValues) { $lsa[$name] = Get-DcomcCaptureValue -Path $script:CaptureLsaKey -Name $name -Sids $Sids }
    return [ordered] @{ Ole = $ole; Policy = $policy; Lsa = $lsa }
}

function Get-DcomcExecutablePath {
    <# The executable of a LocalServer32 or service command line: the quoted part, else up to
       the first '.exe', else all of it (lower case, for comparing). #>
    param([AllowEmptyString()] [string] $CommandLine)
    $text = $CommandLine.Trim()
    if ($text.StartsWith('"')) {
        $end = $text.IndexOf('"', 1)
        if ($end -gt 0) { return $text.Substring(1, $end - 1) }
    }
    $cut = $text.ToLowerInvariant().IndexOf('.exe')
    if ($cut -ge 0) { return $text.Substring(0, $cut + 4) }
    return $text
}

function Get-DcomcRegistryText {
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $Name = '', [string] $View = 'Registry64')
    $value = Get-DcomcOsRegistryValue -Path $Path -Name $Name -View $View
    if ($value.Exists -and ($value.Type -eq 'String' -or $value.Type -eq 'ExpandString')) {
        return [string] $value.Data
    }
    return $null
}

function Find-DcomcServerService {
    <# The service that runs a server: the AppID's LocalService, else a service whose command
       line starts with the server's executable. @{ Service; Via } or $null. #>
    param([AllowNull()] [string] $LocalService, [AllowNull()] [string] $Executable, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Services)
    foreach ($service in $Services) {
        if ($LocalService -and [string] $service.Name -ieq $LocalService) { return @{ Service = $service; Via = 'AppID LocalService' } }
    }
    if (-not $Executable) {
        return $null
    }
    foreach ($service in $Services) {
        if ((Get-DcomcExecutablePath -CommandLine ([string] $service.PathName)) -ieq $Executable) { return @{ Service = $service; Via = 'executable' } }
    }
    return $null
}

function Get-DcomcCaptureAppId {
    param([Parameter(Mandatory = $true)] [string] $AppId, [Parameter(Mandatory = $true)] $Sids)
    $path = '{0}\{1}' -f $script:AppIdRoot, $AppId
    $entry = [ordered] @{ Exists = ($null -ne (Get-DcomcOsRegistryKey -Path $path)); Name = (Get-DcomcRegistryText -Path $path) }
    foreach ($name in $script:CaptureAppIdValues) {
        $state = Get-DcomcRegistryState -Path $path -Name $name
        $entry[$name] = $null
        if ($state.Exists) { $entry[$name] = $state.Data }
    }
    $entry.LaunchPermission = Get-DcomcCaptureValue -Path $path -Name 'LaunchPermission' -Sids $Sids
    $entry.AccessPermission = Get-DcomcCaptureValue -Path $path -Name 'AccessPermission' -Sids $Sids
    return $entry
}

function Get-DcomcCaptureClass {
    <# One registered class: identifiers, executable, AppID settings and the service running it. #>
    param([Parameter(Mandatory = $true)] [string] $Clsid, [Parameter(Mandatory = $true)] [string] $View, [AllowEmptyCollection()] [string[]] $Categories = @(), [Parameter(Mandatory = $true)] [bool] $WideOs, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Services, [Parameter(Mandatory = $true)] $Sids)
    $key = 'SOFTWARE\Classes\CLSID\{0}' -f $Clsid
    $local = Get-DcomcRegistryText -Path ($key + '\LocalServer32') -View $View
    $bitness = 64
    if ($View -eq 'Registry32' -or -not $WideOs) { $bitness = 32 }
    $server = [ordered] @{
        Clsid = $Clsid.ToUpperInvariant(); View = $View; Bitness = $bitness; Name = (Get-DcomcRegistryText -Path $key -View $View)
        ProgId = (Get-DcomcRegistryText -Path ($key + '\ProgID') -View $View)
        VersionIndependentProgId = (Get-DcomcRegistryText -Path ($key + '\VersionIndependentProgID') -View $View)
        Categories = @($Categories); LocalServer32 = $local; Executable = $null; AppId = (Get-DcomcRegistryText -Path $key -Name 'AppID' -View $View)
        AppIdKey = $null; Service = $null
    }
    if ($local) { $server.Executable = Get-DcomcExecutablePath -CommandLine $local }
    $localService = $null
    if ($server.AppId) {
        $server.AppIdKey = Get-DcomcCaptureAppId -AppId $server.AppId -Sids $Sids
        $localService = $server.AppIdKey.LocalService
    }
    $found = Find-DcomcServerService -LocalService $localService -Executable $server.Executable -Services $Services
    if ($null -ne $found) {
        $service = $found.Service
        $server.Service = [ordered] @{ Name = $service.Name; DisplayName = $service.DisplayName; StartName = $service.StartName; State = $service.State; StartMode = $service.StartMode; FoundBy = $found.Via }
    }
    return $server
}

function Get-DcomcOpcClass {
    <# The CLSIDs of one registry view that implement an OPC DA category: @{ Clsid; Categories }. #>
    param([Parameter(Mandatory = $true)] [string] $View)
    $found = @()
    # The system layer returns lists as one object (return , @()): assigned, never piped.
    $clsids = Get-DcomcOsRegistrySubKeyName -Path 'SOFTWARE\Classes\CLSID' -View $View
    foreach ($clsid in $clsids) {
        $implemented = Get-DcomcOsRegistrySubKeyName -Path ('SOFTWARE\Classes\CLSID\{0}\Implemented Categories' -f $clsid) -View $View
        $implemented = @($implemented | ForEach-Object -Process { ([string] $_).ToUpperInvariant() })
        $categories = @(foreach ($catid in $script:OpcCategories.Keys) { if ($implemented -contains $catid) { $script:OpcCategories[$catid] } })
        if ($categories.Count -gt 0) {
            $found += @{ Clsid = $clsid; Categories = $categories }
        }
    }
    return , $found
}

function Get-DcomcCaptureServers {
    <# The OPC DA servers of both views (only the native one on 32-bit Windows) and OPCEnum. #>
    # WideOs: a 64-bit Windows. Not -Is64Bit: tree-sitter-powershell, the reader dcomc inspect
    # and the tests parse the engine with, fails on a digit inside a parameter name.
    param([Parameter(Mandatory = $true)] [bool] $WideOs, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Services, [Parameter(Mandatory = $true)] $Sids)
    $views = @('Registry64')
    if ($WideOs) { $views += 'Registry32' }
    $servers = @()
    $opcEnum = $null
    foreach ($view in $views) {
        foreach ($class in (Get-DcomcOpcClass -View $view)) {
            $servers += Get-DcomcCaptureClass -Clsid $class.Clsid -View $view -Categories $class.Categories -WideOs $WideOs -Services $Services -Sids $Sids
        }
        if ($null -eq $opcEnum -and $null -ne (Get-DcomcOsRegistryKey -Path ('SOFTWARE\Classes\CLSID\{0}' -f $script:OpcEnumClsid) -View $view)) {
            $opcEnum = Get-DcomcCaptureClass -Clsid $script:OpcEnumClsid -View $view -WideOs $WideOs -Services $Services -Sids $Sids
        }
    }
    $sorted = @($servers | Sort-Object -Property @{ Expression = { $_.Clsid } }, @{ Expression = { $_.View } })
    return @{ Servers = $sorted; OpcEnum = $opcEnum }
}

function Get-DcomcCaptureAccounts {
    <# Local users (flags as facts: disabled, password never expires; no password data exists in
       what the system layer returns) and groups with their members' SIDs. #>
    param([Parameter(Mandatory = $true)] $Sids)
    $userNames = Get-DcomcOsLocalAccountName -Class 'user'
    $groupNames = Get-DcomcOsLocalAccountName -Class 'group'
    $users = @(foreach ($name in @($userNames | Sort-Object)) {
            $user = Get-DcomcOsLocalUser -Name $name
            if ($null -eq $user) { continue }
            $Sids[[string] $user.Sid] = $true
            [ordered] @{
                Name = $user.Name; Sid = $user.Sid; Description = $user.Description
                Disabled = (([int] $user.Flags -band $script:UfAccountDisable) -ne 0)
                PasswordNeverExpires = (([int] $user.Flags -band $script:UfDontExpirePasswd) -ne 0)
                PasswordExpired = [bool] $user.PasswordExpired
            }
        })
    $groups = @(foreach ($name in @($groupNames | Sort-Object)) {
            $group = Get-DcomcOsLocalGroup -Name $name
            if ($null -eq $group) { continue }
            $Sids[[string] $group.Sid] = $true
            foreach ($member in @($group.Members)) { $Sids[[string] $member] = $true }
            [ordered] @{ Name = $group.Name; Sid = $group.Sid; Description = $group.Description; Members = @($group.Members | Sort-Object) }
        })
    return [ordered] @{ Users = $users; Groups = $groups }
}

function Get-DcomcCaptureRights {
    <# The holders of the captured rights, from one secedit export for all of them. #>
    param([Parameter(Mandatory = $true)] $Sids)
    $rights = [ordered] @{}
    $map = Get-DcomcOsUserRightMap -Right $script:CaptureRights
    foreach ($right in $script:CaptureRights) {
        $held = $map[$right]
        $holders = @($held | Sort-Object)
        foreach ($holder in $holders) { if ($holder -match '^S-1-') { $Sids[[string] $holder] = $true } }
        $rights[$right] = $holders
    }
    return $rights
}

function Test-DcomcCapturedRule {
    <# A rule the capture keeps: inbound TCP 135, or a program rule for a server's executable or
       for an executable outside the Windows folder (a candidate OPC client). #>
    param([Parameter(Mandatory = $true)] $Rule, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]] $Executables)
    if ([string] $Rule.Protocol -ieq 'TCP' -and @($Rule.LocalPort) -contains '135') { return 'rpc_endpoint_mapper' }
    $program = [string] $Rule.Program
    if (-not $program -or $program -ieq 'Any' -or $program -ieq 'System') { return $null }
    if ($Executables -contains $program.ToLowerInvariant()) { return 'server_executable' }
    if ($program -match '^(%SystemRoot%|%windir%|C:\\Windows)\\' -or [string] $Rule.Group) { return $null }
    return 'program'
}

function Get-DcomcCaptureFirewall {
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]] $Executables)
    $all = Get-DcomcOsFirewallRuleList
    $rules = @(foreach ($rule in @($all | Sort-Object -Property @{ Expression = { [string] $_.Name } })) {
            $why = Test-DcomcCapturedRule -Rule $rule -Executables $Executables
            if (-not $why) { continue }
            $entry = [ordered] @{ Why = $why }
            foreach ($field in @('Name', 'DisplayName', 'Group', 'Enabled', 'Direction', 'Action', 'Profile', 'Protocol', 'LocalPort', 'Program', 'Service', 'RemoteAddress')) { $entry[$field] = $rule[$field] }
            $entry
        })
    return $rules
}

function Get-DcomcCaptureDiscovery {
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Services)
    $rules = Get-DcomcOsFirewallGroup -Group $script:NetworkDiscoveryGroup
    $enabled = @(foreach ($rule in $rules) { if ($rule.Enabled) { ConvertFrom-DcomcProfileText -Text ([string] $rule.Profile) } })
    $states = [ordered] @{}
    foreach ($name in $script:DiscoveryServices) {
        foreach ($service in $Services) {
            if ([string] $service.Name -ieq $name) { $states[$name] = [ordered] @{ StartMode = $service.StartMode; State = $service.State } }
        }
    }
    return [ordered] @{ Group = $script:NetworkDiscoveryGroup; Rules = $rules.Count; EnabledRules = @($rules | Where-Object -FilterScript { $_.Enabled }).Count; EnabledProfiles = @($enabled | Sort-Object -Unique); Services = $states }
}

function Get-DcomcCaptureNames {
    <# Every SID the capture holds, with its DOMAIN\name as this PC resolves it ($null when it
       does not: a deleted account, a domain this PC cannot reach). #>
    param([Parameter(Mandatory = $true)] $Sids)
    $names = [ordered] @{}
    foreach ($sid in @($Sids.Keys | Sort-Object)) {
        try { $names[$sid] = ConvertTo-DcomcOsAccountName -Sid $sid } catch { $names[$sid] = $null }
    }
    return $names
}

function Get-DcomcCapture {
    <#
    .SYNOPSIS
        Reads this PC's OPC DCOM setup, read-only, as the capture `dcomc import` takes.
    .DESCRIPTION
        Returns the whole capture as an ordered hashtable (docs/capture.md, format 1): OPC
        servers, OPCEnum, machine DCOM and Lsa values, local accounts with SIDs, firewall rules,
        network discovery, the computer. No password material is read. A part Windows refuses
        (user rights without elevation) is listed under Skipped. Changes nothing.
    .EXAMPLE
        Get-DcomcCapture | ConvertTo-Json -Depth 12
    #>
    $capture = [ordered] @{
        Format = 'dcomc-capture'; FormatVersion = $script:CaptureFormat; Generator = 'dcomc engine (Invoke-DcomConfig.ps1 -Mode Capture)'
        Time = (Get-DcomcOsUtcNow).ToString('o', [Globalization.CultureInfo]::InvariantCulture)
        Elevated = [bool] (Test-DcomcOsElevated); Skipped = (New-Object -TypeName System.Collections.ArrayList)
    }
    $sids = @{}
    $capture.Computer = Invoke-DcomcCapturePart -Part 'Computer' -Capture $capture -Reader { Get-DcomcCaptureComputer }
    $is64 = ($null -eq $capture.Computer -or [bool] $capture.Computer.Is64Bit)
    $services = @(Invoke-DcomcCapturePart -Part 'Services' -Capture $capture -Reader { $list = Get-DcomcOsServiceList; $list })   # one item per service
    $found = Invoke-DcomcCapturePart -Part 'Servers' -Capture $capture -Reader { Get-DcomcCaptureServers -WideOs $is64 -Services $services -Sids $sids }
    $capture.Servers = @()
    $capture.OpcEnum = $null
    if ($null -ne $found) {
        $capture.Servers = @($found.Servers)
        $capture.OpcEnum = $found.OpcEnum
    }
    $capture.Machine = Invoke-DcomcCapturePart -Part 'Machine' -Capture $capture -Reader { Get-DcomcCaptureMachine -Sids $sids }
    $capture.Accounts = Invoke-DcomcCapturePart -Part 'Accounts' -Capture $capture -Reader { Get-DcomcCaptureAccounts -Sids $sids }
    $capture.Rights = Invoke-DcomcCapturePart -Part 'Rights' -Capture $capture -Reader { Get-DcomcCaptureRights -Sids $sids }
    $executables = @(foreach ($server in @($capture.Servers) + @($capture.OpcEnum)) { if ($null -ne $server -and $server.Executable) { ([string] $server.Executable).ToLowerInvariant() } })
    $capture.Firewall = Invoke-DcomcCapturePart -Part 'Firewall' -Capture $capture -Reader { [ordered] @{ Rules = @(Get-DcomcCaptureFirewall -Executables $executables) } }
    $capture.NetworkDiscovery = Invoke-DcomcCapturePart -Part 'NetworkDiscovery' -Capture $capture -Reader { Get-DcomcCaptureDiscovery -Services $services }
    $capture.Names = Invoke-DcomcCapturePart -Part 'Names' -Capture $capture -Reader { Get-DcomcCaptureNames -Sids $sids }
    $capture.Skipped = @($capture.Skipped)
    return $capture
}

function Invoke-DcomcCapture {
    <# -Mode Capture: writes the capture to Path (UTF-8 JSON); 0 when written. Needs no data
       file and no elevation; changes nothing on the PC. #>
    param([AllowEmptyString()] [string] $Path, [Parameter(Mandatory = $true)] $Cmdlet)
    $script:LogFile = $null   # a capture writes no log: it may run where dcomc never ran
    $script:RebootNeeded = $false
    if (-not $Path) {
        throw 'Capture needs -Path FILE.json'
    }
    $Path = $Cmdlet.GetUnresolvedProviderPathFromPSPath($Path)
    $capture = Get-DcomcCapture
    Write-DcomcOsFile -Path $Path -Text (ConvertTo-Json -InputObject $capture -Depth 14)
    $skipped = @($capture.Skipped).Count
    Write-Host ('Captured {0} OPC server(s), OPCEnum {1}, into {2}; {3} part(s) skipped' -f @($capture.Servers).Count, $(if ($capture.OpcEnum) { 'found' } else { 'not found' }), $Path, $skipped)
    return 0
}
