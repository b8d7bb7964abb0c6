# ==== SimWindows.ps1: an in-memory Windows 10 PC for the engine's tests ==========================
#
# The engine's only OS-touching functions are the <Verb>-DcomcOs<Noun> functions of
# templates/powershell/engine/10-System.ps1. A test imports the real engine module and then
# dot-sources this file INTO the module's scope:
#
#     $module = Import-Module DcomConfig.psm1 -PassThru
#     . $module /path/tests/engine/SimWindows.ps1
#
# which redefines every one of them, so the rest of the engine runs unchanged against this
# simulated PC. Loading the file resets the PC (Reset-SimWindows). PowerShell 7 only.
#
# Rules the simulation follows:
#   * Where the engine depends on a Windows behaviour, the simulation imitates it, and a comment
#     names the Windows documentation it imitates (learn.microsoft.com page titles; "facts §n" =
#     ../shared/reference/dcom-facts.md). Behaviours known only from secondary sources (dumps,
#     forums, memory of real PCs) are marked SECONDARY.
#   * Where Windows' behaviour is NOT known, the simulation is STRICT: it throws a message that
#     starts with "sim:" rather than guess a lenient answer. An engine that trips over one of
#     these relies on something nobody has checked on a real PC.
#   * Every *-DcomcOs* function first calls Invoke-SimGate (call log + fault injection).
#
# The state, which tests may also edit directly ($script:Sim, in the scope this file was
# dot-sourced into):
#   $script:Sim.Locale, .ComputerName, .MachineSid, .NextRid (next local RID; never reused)
#   $script:Sim.Registry       HKLM: a node is @{ Name; Keys (name -> node); Values (name ->
#                              @{ Name; Type; Data }) }, names case-insensitive, case-preserving
#   $script:Sim.Users          name -> @{ Name; Sid; Rid; Description; Flags; PasswordExpired;
#                              PasswordHash ($null = no password) }
#   $script:Sim.Groups         name -> @{ Name; Sid; BuiltIn; Description; Members (List of SIDs) }
#   $script:Sim.DomainAccounts 'DOMAIN\name' -> @{ Domain; Name; Sid; IsGroup; PasswordHash }
#   $script:Sim.Rights         right -> List of holders (SIDs, or names secedit could not translate)
#   $script:Sim.Services       name -> @{ Name; DisplayName; StartName; State; StartMode;
#                              PasswordHash; DependsOn }
#   $script:Sim.Firewall       rule name (case-sensitive) -> rule (see New-SimFirewallRuleObject)
#   $script:Sim.PasswordPolicy @{ MinLength; Complexity }
#   $script:Sim.Elevated, .Interactive, .Secrets (queue), .SecretPrompts, .Stdin, .StdinRead,
#   .Clock, .ClockStep, .BackupWarnings, .Untrusted and .SecureFolders (sets of full paths)
#   $script:SimRoot            a real temporary folder; <SimRoot>/ProgramData is %ProgramData%
#   $script:SimCalls           the *-DcomcOs* calls, in order; $script:SimFaults the armed faults

Set-StrictMode -Version 3.0

# --- operations, the call log and fault injection -------------------------------------------------

# Every public function of 10-System.ps1 that the simulation defines (the contract test checks
# that this list is exactly the public functions of 10-System.ps1).
$script:SimOperations = @(
    'Get-DcomcOsRegistryValue', 'Set-DcomcOsRegistryValue', 'Remove-DcomcOsRegistryValue',
    'Get-DcomcOsRegistryKey', 'New-DcomcOsRegistryKey', 'Remove-DcomcOsRegistryKey',
    'Get-DcomcOsComputerName', 'ConvertTo-DcomcOsSid', 'ConvertTo-DcomcOsAccountName',
    'Get-DcomcOsLocalUser', 'New-DcomcOsLocalUser', 'Set-DcomcOsLocalUser', 'Remove-DcomcOsLocalUser',
    'Get-DcomcOsLocalGroup', 'New-DcomcOsLocalGroup', 'Set-DcomcOsLocalGroup', 'Remove-DcomcOsLocalGroup',
    'Add-DcomcOsLocalGroupMember', 'Remove-DcomcOsLocalGroupMember',
    'Get-DcomcOsUserRight', 'Grant-DcomcOsUserRight', 'Revoke-DcomcOsUserRight',
    'Get-DcomcOsService', 'Set-DcomcOsServiceLogon', 'Set-DcomcOsServiceStartMode',
    'Start-DcomcOsService', 'Stop-DcomcOsService', 'Restart-DcomcOsService',
    'Get-DcomcOsFirewallRule', 'New-DcomcOsFirewallRule', 'Remove-DcomcOsFirewallRule',
    'Get-DcomcOsFirewallGroup', 'Set-DcomcOsFirewallRuleEnabled',
    'Test-DcomcOsElevated', 'Test-DcomcOsInteractive', 'Read-DcomcOsSecret', 'Read-DcomcOsStdin',
    'Get-DcomcOsUtcNow', 'Get-DcomcOsDataRoot', 'Test-DcomcOsTrustedItem',
    'New-DcomcOsSecureFolder', 'Test-DcomcOsPath', 'Get-DcomcOsChildFolder',
    'Write-DcomcOsFile', 'Read-DcomcOsFile', 'Copy-DcomcOsFile', 'Rename-DcomcOsFolder',
    'Export-DcomcOsSystemBackup', 'Write-DcomcOsApplyRecord', 'Remove-DcomcOsApplyRecord'
)
# Verbs of the functions that change state ('write' faults) and of those that only read.
$script:SimWriteVerbs = @('Set', 'New', 'Remove', 'Add', 'Grant', 'Revoke', 'Start', 'Stop', 'Restart', 'Initialize', 'Write', 'Copy', 'Rename', 'Export')
$script:SimReadVerbs = @('Get', 'Test', 'ConvertTo', 'Read')
$script:SimCalls = [System.Collections.Generic.List[string]]::new()
$script:SimFaults = [System.Collections.Generic.List[hashtable]]::new()
$script:SimFired = [System.Collections.Generic.List[string]]::new()   # the operations whose fault fired, in order
$script:SimRoot = $null
$script:Sim = $null

function Get-SimOperationKind {
    # 'write' or 'read', from the verb; anything else is a bug in the simulation.
    param([Parameter(Mandatory = $true)] [string] $Operation)
    $verb = $Operation.Split('-')[0]
    if ($script:SimWriteVerbs -contains $verb) {
        return 'write'
    }
    if ($script:SimReadVerbs -contains $verb) {
        return 'read'
    }
    throw ('sim: the operation {0} is neither a read nor a write' -f $Operation)
}

function Invoke-SimGate {
    # Records the call, then throws when an armed fault is due. Every fault that matches sees
    # the call (its count goes up); a due fault fires once and is removed.
    param([Parameter(Mandatory = $true)] [string] $Operation)
    $kind = Get-SimOperationKind -Operation $Operation
    $script:SimCalls.Add($Operation)
    $due = @()
    foreach ($fault in @($script:SimFaults)) {
        if ($fault.Operation -eq '*' -or $fault.Operation -eq $kind -or $fault.Operation -eq $Operation) {
            $fault.Seen++
            if ($fault.Seen -eq $fault.At) {
                $due += $fault
            }
        }
    }
    if ($due.Count -gt 0) {
        foreach ($fault in $due) {
            [void] $script:SimFaults.Remove($fault)
        }
        $exception = [System.Management.Automation.RuntimeException]::new($due[0].Message)
        $exception.Data['SimFault'] = $Operation
        $script:SimFired.Add($Operation)
        throw $exception
    }
}

function Add-SimFault {
    <# Arms a fault: the At-th matching call (counted from now, 1-based) throws Message.
       Operation: a *-DcomcOs* function name, 'write' (every state-changing function), 'read'
       (every Get/Test/ConvertTo/Read) or '*'. #>
    param(
        [Parameter(Mandatory = $true)] [string] $Operation,
        [ValidateRange(1, 2147483647)] [int] $At = 1,
        [string] $Message = 'Access is denied.'
    )
    if (@('write', 'read', '*') -notcontains $Operation -and $script:SimOperations -notcontains $Operation) {
        throw ('sim: no operation {0} to arm a fault for' -f $Operation)
    }
    $script:SimFaults.Add(@{ Operation = $Operation; At = $At; Seen = 0; Message = $Message })
}

function Clear-SimFault {
    $script:SimFaults.Clear()
    $script:SimFired.Clear()
}

function Reset-SimCalls {
    $script:SimCalls.Clear()
}

function Get-SimCall {
    # The operations called since the last reset, in order.
    return , ([string[]] $script:SimCalls.ToArray())
}

function Get-SimWriteCount {
    # How many state-changing calls (attempts, also those that failed) since the last reset.
    return @($script:SimCalls | Where-Object -FilterScript { (Get-SimOperationKind -Operation $_) -eq 'write' }).Count
}

# --- errors as Windows raises them -----------------------------------------------------------------

function New-SimMethodError {
    # What PowerShell throws when a COM/.NET method fails: 'Exception calling "M" ...' with the
    # HRESULT as a COMException inside (ADSI raises COMExceptions; System Error Codes pages).
    param([Parameter(Mandatory = $true)] [string] $Method, [Parameter(Mandatory = $true)] [string] $Text, [int] $HResult = 0, [int] $Arguments = 0)
    $inner = $null
    $message = $Text
    if ($HResult -ne 0) {
        $hex = '0x{0:X8}' -f $HResult
        $message = '{0} ({1})' -f $Text, $hex
        $inner = [System.Runtime.InteropServices.COMException]::new($message, $HResult)
    }
    else {
        $inner = [System.SystemException]::new($Text)
    }
    $full = 'Exception calling "{0}" with "{1}" argument(s): "{2}"' -f $Method, $Arguments, $message
    return [System.Management.Automation.MethodInvocationException]::new($full, $inner)
}

function New-SimNotMappedError {
    # NTAccount.Translate / SecurityIdentifier.Translate throw IdentityNotMappedException
    # ("IdentityReference.Translate", learn.microsoft.com); that type cannot be built off
    # Windows, so its message travels in a SystemException.
    return New-SimMethodError -Method 'Translate' -Arguments 1 -Text 'Some or all identity references could not be translated.'
}

function New-SimServiceError {
    # Start-Service's error ("Service '<display> (<name>)' cannot be started ...") with the SCM's
    # Win32 error inside (System Error Codes 1000-1299). The bracketed part is the sim's: Windows
    # keeps the Win32 text only in the InnerException.
    param([Parameter(Mandatory = $true)] $Service, [Parameter(Mandatory = $true)] [int] $Code, [Parameter(Mandatory = $true)] [string] $Text)
    $inner = [System.ComponentModel.Win32Exception]::new($Code, $Text)
    $message = "Service '{0} ({1})' cannot be started due to the following error: Cannot start service {1} on computer '.'. [Win32 error {2}: {3}]" -f $Service.DisplayName, $Service.Name, $Code, $Text
    return [System.InvalidOperationException]::new($message, $inner)
}

function Assert-SimElevated {
    # HKLM, the SAM, the LSA policy, the SCM and the firewall take changes from an administrator
    # token only (UAC: "How User Account Control works"); a filtered token gets access denied.
    param([Parameter(Mandatory = $true)] [string] $Operation)
    if (-not $script:Sim.Elevated) {
        throw [System.UnauthorizedAccessException]::new(('Access is denied. ({0} without elevation)' -f $Operation))
    }
}

# --- small helpers ----------------------------------------------------------------------------------

function New-SimMap {
    # An insertion-ordered map; Windows names (registry, accounts, services) compare without case.
    param([switch] $CaseSensitive)
    $comparer = [StringComparer]::OrdinalIgnoreCase
    if ($CaseSensitive) {
        $comparer = [StringComparer]::Ordinal
    }
    return , ([System.Collections.Specialized.OrderedDictionary]::new($comparer))
}

function New-SimSet {
    return , ([System.Collections.Generic.HashSet[string]]::new([StringComparer]::OrdinalIgnoreCase))
}

function New-SimList {
    param([string[]] $Items = @())
    $list = [System.Collections.Generic.List[string]]::new()
    foreach ($item in $Items) {
        $list.Add($item)
    }
    return , $list
}

function ConvertFrom-SimSecureString {
    # The text of a SecureString ($null = no password given = empty, as Win32_Service.Change gets).
    param([System.Security.SecureString] $Secure)
    if ($null -eq $Secure) {
        return ''
    }
    return [System.Net.NetworkCredential]::new('', $Secure).Password
}

function Get-SimPasswordHash {
    # What the simulation keeps of a password: a salted SHA-256, never the text. The salt is
    # fixed so that a service's stored password can be compared with the account's.
    param([AllowEmptyString()] [string] $Plain)
    $bytes = [Text.Encoding]::UTF8.GetBytes('dcomc-sim-password:' + $Plain)
    $hash = [Security.Cryptography.SHA256]::HashData($bytes)
    return ([Convert]::ToHexString($hash)).ToLowerInvariant()
}

function Test-SimSidText {
    # A SID in the string form ConvertSidToStringSid writes: S-1-<authority>-<subauthorities>.
    param([AllowEmptyString()] [string] $Sid)
    return ($Sid -cmatch '^S-1-(0|[1-9][0-9]{0,14})(-(0|[1-9][0-9]{0,9})){0,15}$')
}

function ConvertTo-SimHex {
    param([byte[]] $Bytes)
    return ([Convert]::ToHexString($Bytes)).ToLowerInvariant()
}

# --- SDDL -> self-relative binary: just enough for Windows' default DCOM descriptors --------------
# Layout: facts §3.2 (MS-DTYP 2.4.6, 2.4.2.2): header, DACL, owner, group - the order of Windows'
# RtlMakeSelfRelativeSD and of the compiler's dcomc.windows.sdbinary. Aliases and right letters:
# "SID Strings" and "ACE Strings" (learn.microsoft.com, facts §3.1, §4).

$script:SimSddlAliases = @{
    'BA' = 'S-1-5-32-544'; 'BU' = 'S-1-5-32-545'; 'BG' = 'S-1-5-32-546'; 'MU' = 'S-1-5-32-558'
    'LU' = 'S-1-5-32-559'; 'SY' = 'S-1-5-18'; 'IU' = 'S-1-5-4'; 'WD' = 'S-1-1-0'; 'AN' = 'S-1-5-7'
    'AU' = 'S-1-5-11'; 'NU' = 'S-1-5-2'; 'PS' = 'S-1-5-10'; 'LS' = 'S-1-5-19'; 'NS' = 'S-1-5-20'
    'AC' = 'S-1-15-2-1'
}
$script:SimSddlRights = @{
    'CC' = 0x1; 'DC' = 0x2; 'LC' = 0x4; 'SW' = 0x8; 'RP' = 0x10; 'WP' = 0x20; 'DT' = 0x40; 'LO' = 0x80
    'CR' = 0x100; 'SD' = 0x10000; 'RC' = 0x20000; 'WD' = 0x40000; 'WO' = 0x80000
}

function ConvertTo-SimSidBytes {
    # Revision 1, count, 6-byte big-endian authority, little-endian sub-authorities.
    param([Parameter(Mandatory = $true)] [string] $Sid)
    if ($script:SimSddlAliases.ContainsKey($Sid)) {
        $Sid = $script:SimSddlAliases[$Sid]
    }
    if (-not (Test-SimSidText -Sid $Sid)) {
        throw ('sim: not a SID: {0}' -f $Sid)
    }
    $parts = $Sid.Split('-')
    $authority = [long] $parts[2]
    $subs = @($parts | Select-Object -Skip 3)
    $bytes = [System.Collections.Generic.List[byte]]::new()
    $bytes.Add(1)
    $bytes.Add([byte] $subs.Count)
    for ($i = 5; $i -ge 0; $i--) {
        $bytes.Add([byte] (($authority -shr (8 * $i)) -band 0xFF))
    }
    foreach ($sub in $subs) {
        $bytes.AddRange([BitConverter]::GetBytes([uint32] $sub))
    }
    return , $bytes.ToArray()
}

function ConvertTo-SimSdBinary {
    <# 'O:<sid>G:<sid>D:(A;;<rights>;;;<sid>)...' -> byte[] (allow/deny ACEs without flags only). #>
    param([Parameter(Mandatory = $true)] [string] $Sddl)
    $match = [regex]::Match($Sddl, '^O:(?<o>[A-Z]{2}|S-[0-9-]+)G:(?<g>[A-Z]{2}|S-[0-9-]+)D:(?<d>(\([^)]*\))*)$')
    if (-not $match.Success) {
        throw ('sim: SDDL the simulation cannot encode: {0}' -f $Sddl)
    }
    $aces = [System.Collections.Generic.List[byte]]::new()
    $count = 0
    foreach ($ace in [regex]::Matches($match.Groups['d'].Value, '\(([^)]*)\)')) {
        $fields = $ace.Groups[1].Value.Split(';')
        if ($fields.Count -ne 6 -or @('A', 'D') -cnotcontains $fields[0] -or $fields[1] -or $fields[3] -or $fields[4]) {
            throw ('sim: ACE the simulation cannot encode: {0}' -f $ace.Value)
        }
        $mask = 0
        if ($fields[2] -match '^0x[0-9a-fA-F]+$') {
            $mask = [Convert]::ToInt64($fields[2].Substring(2), 16)
        }
        else {
            for ($i = 0; $i -lt $fields[2].Length; $i += 2) {
                $mask = $mask -bor $script:SimSddlRights[$fields[2].Substring($i, 2)]
            }
        }
        $sid = ConvertTo-SimSidBytes -Sid $fields[5]
        $aces.Add([byte] ($(if ($fields[0] -ceq 'A') { 0 } else { 1 })))
        $aces.Add(0)
        $aces.AddRange([BitConverter]::GetBytes([uint16] (8 + $sid.Length)))
        $aces.AddRange([BitConverter]::GetBytes([uint32] $mask))
        $aces.AddRange($sid)
        $count++
    }
    $owner = ConvertTo-SimSidBytes -Sid $match.Groups['o'].Value
    $group = ConvertTo-SimSidBytes -Sid $match.Groups['g'].Value
    $aclSize = 8 + $aces.Count
    $out = [System.Collections.Generic.List[byte]]::new()
    $out.AddRange([byte[]] (1, 0, 0x04, 0x80))                          # revision, control 0x8004
    $out.AddRange([BitConverter]::GetBytes([uint32] (20 + $aclSize)))    # owner after the DACL
    $out.AddRange([BitConverter]::GetBytes([uint32] (20 + $aclSize + $owner.Length)))
    $out.AddRange([BitConverter]::GetBytes([uint32] 0))                  # no SACL
    $out.AddRange([BitConverter]::GetBytes([uint32] 20))                 # DACL right after the header
    $out.AddRange([byte[]] (2, 0))
    $out.AddRange([BitConverter]::GetBytes([uint16] $aclSize))
    $out.AddRange([BitConverter]::GetBytes([uint16] $count))
    $out.AddRange([byte[]] (0, 0))
    $out.AddRange($aces)
    $out.AddRange($owner)
    $out.AddRange($group)
    return , $out.ToArray()
}

# --- registry: HKEY_LOCAL_MACHINE in memory -------------------------------------------------------
# Key and value names are case-insensitive and case-preserving ("Structure of the Registry"); a
# key name is at most 255 characters, a value name 16,383 ("Registry Element Size Limits").
# Views: "Registry Keys Affected by WOW64" and "Registry Redirector" (facts §1.4).

# Subkeys of HKLM\SOFTWARE\Classes that WOW64 redirects (everything else under Classes is shared).
$script:SimRedirectedClasses = @('CLSID', 'DirectShow', 'Interface', 'Media Type', 'MediaFoundation')

function New-SimRegistryNode {
    param([Parameter(Mandatory = $true)] [string] $Name)
    return @{ Name = $Name; Keys = (New-SimMap); Values = (New-SimMap) }
}

function Split-SimRegistryPath {
    # 'SOFTWARE\Microsoft\Ole' -> its names, refusing what the engine must never pass.
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Path)
    if ($Path -eq '' -or $Path.StartsWith('\') -or $Path.EndsWith('\') -or $Path.Contains('\\')) {
        throw ('sim: malformed registry path "{0}" (relative to HKLM, one backslash between names)' -f $Path)
    }
    if ($Path.Contains('/')) {
        throw ('sim: "/" in the registry path "{0}" (a Join-Path on a non-Windows host?)' -f $Path)
    }
    $parts = $Path.Split('\')
    foreach ($part in $parts) {
        if ($part.Length -gt 255) {
            throw ('sim: a registry key name is at most 255 characters: {0}' -f $part)
        }
    }
    if (@('SOFTWARE', 'SYSTEM') -notcontains $parts[0]) {
        throw ('sim: HKLM\{0} is not simulated (paths are relative to HKLM: SOFTWARE\... or SYSTEM\...)' -f $parts[0])
    }
    return , $parts
}

function Resolve-SimRegistryPath {
    <# The names of the key as stored, after the WOW64 view. Registry64 is the native view.
       Registry32 (KEY_WOW64_32KEY): HKLM\SOFTWARE\Classes\<CLSID|DirectShow|Interface|Media
       Type|MediaFoundation> -> HKLM\SOFTWARE\Classes\Wow6432Node\<...>; the rest of Classes
       (AppID, ProgIDs), Microsoft\Ole, Microsoft\Rpc and Policies are shared; SYSTEM is not
       redirected at all. Any other SOFTWARE path in the 32-bit view: unknown here, refused. #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $View)
    $parts = Split-SimRegistryPath -Path $Path
    if ($View -ne 'Registry64' -and $View -ne 'Registry32') {
        throw ('sim: registry view "{0}": the engine must choose Registry64 or Registry32 explicitly' -f $View)
    }
    if ($parts[0] -eq 'SYSTEM') {
        return , $parts
    }
    if ($parts.Count -ge 2 -and $parts[1] -eq 'Wow6432Node') {
        throw ('sim: HKLM\SOFTWARE\Wow6432Node is the 32-bit view''s storage; use -View Registry32 ({0})' -f $Path)
    }
    $classes = ($parts.Count -ge 2 -and $parts[1] -eq 'Classes')
    if ($View -eq 'Registry64') {
        if ($classes -and $parts.Count -ge 4 -and $parts[2] -eq 'Wow6432Node' -and $script:SimRedirectedClasses -notcontains $parts[3]) {
            throw ('sim: HKLM\SOFTWARE\Classes\Wow6432Node\{0} is a WOW64 link or unknown; not simulated' -f $parts[3])
        }
        return , $parts
    }
    if ($classes) {
        if ($parts.Count -eq 2) {
            return , $parts
        }
        if ($parts[2] -eq 'Wow6432Node') {
            throw ('sim: unknown WOW64 mapping for {0} in the 32-bit view' -f $Path)
        }
        if ($script:SimRedirectedClasses -contains $parts[2]) {
            return , (@($parts[0], $parts[1], 'Wow6432Node') + @($parts | Select-Object -Skip 2))
        }
        return , $parts
    }
    $shared = ($parts.Count -ge 3 -and $parts[1] -eq 'Microsoft' -and @('Ole', 'Rpc') -contains $parts[2]) -or ($parts.Count -ge 2 -and $parts[1] -eq 'Policies')
    if ($shared) {
        return , $parts
    }
    throw ('sim: unknown WOW64 mapping for HKLM\{0} in the 32-bit view' -f $Path)
}

function Get-SimRegistryNode {
    # The node of a key ($null when missing); -Create makes the missing keys on the way.
    param([Parameter(Mandatory = $true)] [string[]] $Names, [switch] $Create)
    $node = $script:Sim.Registry
    foreach ($name in $Names) {
        $next = $node.Keys[$name]
        if ($null -eq $next) {
            if (-not $Create) {
                return $null
            }
            $next = New-SimRegistryNode -Name $name
            $node.Keys[$name] = $next
        }
        $node = $next
    }
    return $node
}

function Copy-SimRegistryData {
    # A copy, so that neither the caller nor the state can change the other's arrays.
    param($Data)
    if ($Data -is [array]) {
        return , $Data.Clone()
    }
    return $Data
}

function ConvertTo-SimRegistryData {
    <# The data RegistryKey.SetValue stores for a kind, or the ArgumentException it throws
       ("RegistryKey.SetValue Method": DWord/QWord through Convert.ToInt32/ToInt64, MultiString
       must be string[] without nulls, Binary must be byte[]). The sim refuses non-strings for
       String/ExpandString (.NET would store their ToString()) and strings for numbers (.NET
       would parse them): both are engine bugs. #>
    param([Parameter(Mandatory = $true)] [string] $Type, [AllowNull()] [AllowEmptyString()] [AllowEmptyCollection()] $Data)
    $mismatch = 'The type of the value object did not match the specified RegistryValueKind or the object could not be properly converted.'
    $integer = ($Data -is [byte] -or $Data -is [sbyte] -or $Data -is [int16] -or $Data -is [uint16] -or $Data -is [int] -or $Data -is [uint32] -or $Data -is [long] -or $Data -is [uint64])
    switch ($Type) {
        { $_ -in 'String', 'ExpandString' } {
            if ($Data -isnot [string]) {
                throw ('sim: {0} data must be a string, not {1}' -f $Type, $(if ($null -eq $Data) { 'null' } else { $Data.GetType().Name }))
            }
            return $Data
        }
        'MultiString' {
            if ($Data -isnot [string[]] -or @($Data | Where-Object -FilterScript { $null -eq $_ }).Count -gt 0) {
                throw [System.ArgumentException]::new($mismatch)
            }
            return , ([string[]] $Data.Clone())
        }
        'Binary' {
            if ($Data -isnot [byte[]]) {
                throw [System.ArgumentException]::new($mismatch)
            }
            return , ([byte[]] $Data.Clone())
        }
        'DWord' {
            if (-not $integer -or [decimal] $Data -lt [int]::MinValue -or [decimal] $Data -gt [int]::MaxValue) {
                throw [System.ArgumentException]::new($mismatch)
            }
            return [int] $Data
        }
        'QWord' {
            if (-not $integer -or [decimal] $Data -lt [long]::MinValue -or [decimal] $Data -gt [long]::MaxValue) {
                throw [System.ArgumentException]::new($mismatch)
            }
            return [long] $Data
        }
    }
    throw ('sim: registry type {0} is not simulated' -f $Type)
}

function Set-SimRegistryValue {
    # The state change behind Set-DcomcOsRegistryValue, also used to build a PC's starting state.
    param([Parameter(Mandatory = $true)] [string] $Path, [AllowEmptyString()] [string] $Name, [string] $Type, $Data, [string] $View = 'Registry64')
    $names = Resolve-SimRegistryPath -Path $Path -View $View
    if ($Name.Length -gt 16383) {
        throw 'sim: a value name is at most 16,383 characters'
    }
    $stored = ConvertTo-SimRegistryData -Type $Type -Data $Data
    $node = Get-SimRegistryNode -Names $names -Create
    $existing = $node.Values[$Name]
    if ($null -ne $existing) {
        # Windows keeps the name's original case when a value is overwritten.
        $Name = $existing.Name
    }
    $node.Values[$Name] = @{ Name = $Name; Type = $Type; Data = $stored }
}

function Get-DcomcOsRegistryValue {
    <# @{ Exists; Type; Data }: Type is a RegistryValueKind name (String, ExpandString,
       MultiString, DWord, QWord, Binary); Data as .NET returns it (a copy), REG_EXPAND_SZ unexpanded. #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name, [string] $View = 'Registry64')
    Invoke-SimGate -Operation 'Get-DcomcOsRegistryValue'
    $node = Get-SimRegistryNode -Names (Resolve-SimRegistryPath -Path $Path -View $View)
    if ($null -eq $node -or $null -eq $node.Values[$Name]) {
        return @{ Exists = $false; Type = $null; Data = $null }
    }
    $value = $node.Values[$Name]
    return @{ Exists = $true; Type = [string] $value.Type; Data = (Copy-SimRegistryData -Data $value.Data) }
}

function Set-DcomcOsRegistryValue {
    <# Writes a value, creating the key (and its parents) when missing (RegistryKey.CreateSubKey). #>
    param(
        [Parameter(Mandatory = $true)] [string] $Path,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name,
        [Parameter(Mandatory = $true)] [ValidateSet('String', 'ExpandString', 'MultiString', 'DWord', 'QWord', 'Binary')] [string] $Type,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [AllowEmptyCollection()] $Data,
        [string] $View = 'Registry64'
    )
    Invoke-SimGate -Operation 'Set-DcomcOsRegistryValue'
    Assert-SimElevated -Operation 'Set-DcomcOsRegistryValue'
    $canonical = @('String', 'ExpandString', 'MultiString', 'DWord', 'QWord', 'Binary') | Where-Object -FilterScript { $_ -eq $Type }
    Set-SimRegistryValue -Path $Path -Name $Name -Type $canonical -Data $Data -View $View
}

function Remove-DcomcOsRegistryValue {
    <# Deletes a value; a missing key or value is no error (DeleteValue(name, false)). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name, [string] $View = 'Registry64')
    Invoke-SimGate -Operation 'Remove-DcomcOsRegistryValue'
    Assert-SimElevated -Operation 'Remove-DcomcOsRegistryValue'
    $node = Get-SimRegistryNode -Names (Resolve-SimRegistryPath -Path $Path -View $View)
    if ($null -ne $node -and $node.Values.Contains($Name)) {
        $node.Values.Remove($Name)
    }
}

function Get-DcomcOsRegistryKey {
    <# $null when the key does not exist, else @{ ValueCount; SubKeyCount } (the default value
       counts when it is set, as RegistryKey.ValueCount). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    Invoke-SimGate -Operation 'Get-DcomcOsRegistryKey'
    $node = Get-SimRegistryNode -Names (Resolve-SimRegistryPath -Path $Path -View $View)
    if ($null -eq $node) {
        return $null
    }
    return @{ ValueCount = $node.Values.Count; SubKeyCount = $node.Keys.Count }
}

function New-DcomcOsRegistryKey {
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    Invoke-SimGate -Operation 'New-DcomcOsRegistryKey'
    Assert-SimElevated -Operation 'New-DcomcOsRegistryKey'
    $null = Get-SimRegistryNode -Names (Resolve-SimRegistryPath -Path $Path -View $View) -Create
}

function Remove-DcomcOsRegistryKey {
    <# Deletes a key that has no subkeys; a missing key or parent is no error; a key with subkeys
       throws as RegistryKey.DeleteSubKey does (InvalidOperationException). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    Invoke-SimGate -Operation 'Remove-DcomcOsRegistryKey'
    Assert-SimElevated -Operation 'Remove-DcomcOsRegistryKey'
    $names = Resolve-SimRegistryPath -Path $Path -View $View
    if ($names.Count -lt 2) {
        # The real function cuts the path at its last backslash: Substring(0, -1) throws.
        throw (New-SimMethodError -Method 'Substring' -Arguments 2 -Text 'Length cannot be less than zero.')
    }
    $parent = Get-SimRegistryNode -Names @($names | Select-Object -First ($names.Count - 1))
    if ($null -eq $parent) {
        return
    }
    $leaf = $parent.Keys[$names[-1]]
    if ($null -eq $leaf) {
        return
    }
    if ($leaf.Keys.Count -gt 0) {
        throw [System.InvalidOperationException]::new('Registry key has subkeys and recursive removes are not supported by this method.')
    }
    $parent.Keys.Remove($names[-1])
}

# --- principals: localized names <-> SIDs -----------------------------------------------------------
# Names of well-known and builtin principals are localized; SIDs are not ("Well-known SIDs",
# facts §4). de-DE and en-US are the names of real PCs; fr-FR is SECONDARY (from dumps). The
# French apostrophe is U+2019, written as [char] 0x2019: PowerShell reads it as a quote.

$script:SimLocales = @{
    'de-DE' = @{
        Builtin = 'VORDEFINIERT'; NtAuthority = 'NT-AUTORITÄT'; AppPackages = 'ZERTIFIZIERUNGSSTELLE FÜR ANWENDUNGSPAKETE'
        Names = @{
            'S-1-5-32-544' = 'Administratoren'; 'S-1-5-32-545' = 'Benutzer'; 'S-1-5-32-546' = 'Gäste'
            'S-1-5-32-547' = 'Hauptbenutzer'; 'S-1-5-32-551' = 'Sicherungs-Operatoren'
            'S-1-5-32-555' = 'Remotedesktopbenutzer'; 'S-1-5-32-558' = 'Leistungsüberwachungsbenutzer'
            'S-1-5-32-559' = 'Leistungsprotokollbenutzer'; 'S-1-5-32-562' = 'Distributed COM-Benutzer'
            'S-1-5-32-573' = 'Ereignisprotokollleser'
            'S-1-1-0' = 'Jeder'; 'S-1-3-0' = 'ERSTELLER-BESITZER'; 'S-1-5-2' = 'NETZWERK'; 'S-1-5-3' = 'BATCH'
            'S-1-5-4' = 'INTERAKTIV'; 'S-1-5-6' = 'DIENST'; 'S-1-5-7' = 'ANONYMOUS-ANMELDUNG'
            'S-1-5-11' = 'Authentifizierte Benutzer'; 'S-1-5-18' = 'SYSTEM'; 'S-1-5-19' = 'LOKALER DIENST'
            'S-1-5-20' = 'NETZWERKDIENST'; 'S-1-5-113' = 'Lokales Konto'
            'S-1-5-114' = 'Lokales Konto und Mitglied der Gruppe "Administratoren"'
            'S-1-15-2-1' = 'ALLE ANWENDUNGSPAKETE'
            '500' = 'Administrator'; '501' = 'Gast'; '503' = 'DefaultAccount'; '504' = 'WDAGUtilityAccount'
        }
    }
    'en-US' = @{
        Builtin = 'BUILTIN'; NtAuthority = 'NT AUTHORITY'; AppPackages = 'APPLICATION PACKAGE AUTHORITY'
        Names = @{
            'S-1-5-32-544' = 'Administrators'; 'S-1-5-32-545' = 'Users'; 'S-1-5-32-546' = 'Guests'
            'S-1-5-32-547' = 'Power Users'; 'S-1-5-32-551' = 'Backup Operators'
            'S-1-5-32-555' = 'Remote Desktop Users'; 'S-1-5-32-558' = 'Performance Monitor Users'
            'S-1-5-32-559' = 'Performance Log Users'; 'S-1-5-32-562' = 'Distributed COM Users'
            'S-1-5-32-573' = 'Event Log Readers'
            'S-1-1-0' = 'Everyone'; 'S-1-3-0' = 'CREATOR OWNER'; 'S-1-5-2' = 'NETWORK'; 'S-1-5-3' = 'BATCH'
            'S-1-5-4' = 'INTERACTIVE'; 'S-1-5-6' = 'SERVICE'; 'S-1-5-7' = 'ANONYMOUS LOGON'
            'S-1-5-11' = 'Authenticated Users'; 'S-1-5-18' = 'SYSTEM'; 'S-1-5-19' = 'LOCAL SERVICE'
            'S-1-5-20' = 'NETWORK SERVICE'; 'S-1-5-113' = 'Local account'
            'S-1-5-114' = 'Local account and member of Administrators group'
            'S-1-15-2-1' = 'ALL APPLICATION PACKAGES'
            '500' = 'Administrator'; '501' = 'Guest'; '503' = 'DefaultAccount'; '504' = 'WDAGUtilityAccount'
        }
    }
    'fr-FR' = @{
        Builtin = 'BUILTIN'; NtAuthority = 'AUTORITE NT'; AppPackages = ('AUTORITE DE PACKAGE D{0}APPLICATION' -f [char] 0x2019)
        Names = @{
            'S-1-5-32-544' = 'Administrateurs'; 'S-1-5-32-545' = 'Utilisateurs'; 'S-1-5-32-546' = 'Invités'
            'S-1-5-32-547' = 'Utilisateurs avec pouvoir'; 'S-1-5-32-551' = 'Opérateurs de sauvegarde'
            'S-1-5-32-555' = 'Utilisateurs du Bureau à distance'; 'S-1-5-32-558' = ('Utilisateurs de l{0}Analyseur de performances' -f [char] 0x2019)
            'S-1-5-32-559' = 'Utilisateurs du journal de performances'; 'S-1-5-32-562' = 'Utilisateurs du modèle COM distribué'
            'S-1-5-32-573' = ('Lecteurs des journaux d{0}événements' -f [char] 0x2019)
            'S-1-1-0' = 'Tout le monde'; 'S-1-3-0' = 'CREATEUR PROPRIETAIRE'; 'S-1-5-2' = 'RESEAU'; 'S-1-5-3' = 'TACHE'
            'S-1-5-4' = 'INTERACTIF'; 'S-1-5-6' = 'SERVICE'; 'S-1-5-7' = 'ANONYMOUS LOGON'
            'S-1-5-11' = 'Utilisateurs authentifiés'; 'S-1-5-18' = 'Système'; 'S-1-5-19' = 'SERVICE LOCAL'
            'S-1-5-20' = 'SERVICE RÉSEAU'; 'S-1-5-113' = 'Compte local'
            'S-1-5-114' = 'Compte local et membre du groupe Administrateurs'
            'S-1-15-2-1' = ('TOUS LES PACKAGES D{0}APPLICATION' -f [char] 0x2019)
            '500' = 'Administrateur'; '501' = 'Invité'; '503' = 'DefaultAccount'; '504' = 'WDAGUtilityAccount'
        }
    }
}
# Builtin groups (SAM's builtin domain) and their members on a fresh PC; descriptions in English
# for every locale (the engine never reads them).
$script:SimBuiltinGroups = [ordered]@{
    'S-1-5-32-544' = 'Administrators have complete and unrestricted access to the computer/domain'
    'S-1-5-32-545' = 'Users are prevented from making accidental or intentional system-wide changes and can run most applications'
    'S-1-5-32-546' = 'Guests have the same access as members of the Users group by default, except for the Guest account which is further restricted'
    'S-1-5-32-547' = 'Power Users are included for backwards compatibility and possess limited administrative powers'
    'S-1-5-32-551' = 'Backup Operators can override security restrictions for the sole purpose of backing up or restoring files'
    'S-1-5-32-555' = 'Members in this group are granted the right to logon remotely'
    'S-1-5-32-558' = 'Members of this group can access performance counter data locally and remotely'
    'S-1-5-32-559' = 'Members of this group may schedule logging of performance counters, enable trace providers, and collect event traces both locally and via remote access to this computer'
    'S-1-5-32-562' = 'Members are allowed to launch, activate and use Distributed COM objects on this machine.'
    'S-1-5-32-573' = 'Members of this group can read event logs from local machine'
}
# Well-known principals that are not SAM accounts: SID -> domain key ('' = none).
$script:SimWellKnown = [ordered]@{
    'S-1-1-0' = ''; 'S-1-3-0' = ''; 'S-1-5-2' = 'NtAuthority'; 'S-1-5-3' = 'NtAuthority'; 'S-1-5-4' = 'NtAuthority'
    'S-1-5-6' = 'NtAuthority'; 'S-1-5-7' = 'NtAuthority'; 'S-1-5-11' = 'NtAuthority'; 'S-1-5-18' = 'NtAuthority'
    'S-1-5-19' = 'NtAuthority'; 'S-1-5-20' = 'NtAuthority'; 'S-1-5-113' = 'NtAuthority'; 'S-1-5-114' = 'NtAuthority'
    'S-1-15-2-1' = 'AppPackages'; 'S-1-5-80-0' = 'NT SERVICE'
}

function Get-SimLocale {
    return $script:SimLocales[$script:Sim.Locale]
}

function Get-SimPrincipalList {
    <# Every name this PC resolves, in LookupAccountName's search order ("LookupAccountNameW":
       well-known SIDs, the built-in domain, the account domain, then the primary/trusted
       domains): @{ Sid; Domain; Name; Kind = wellknown|builtin|user|group|domain; Object }. #>
    $locale = Get-SimLocale
    $list = [System.Collections.Generic.List[hashtable]]::new()
    foreach ($sid in $script:SimWellKnown.Keys) {
        $domainKey = $script:SimWellKnown[$sid]
        $domain = $domainKey
        $name = $locale.Names[$sid]
        if ($domainKey -eq '') {
            $domain = ''
        }
        elseif ($domainKey -eq 'NT SERVICE') {
            $name = 'ALL SERVICES'   # NT SERVICE\ALL SERVICES is not localized
        }
        else {
            $domain = $locale[$domainKey]
        }
        $list.Add(@{ Sid = $sid; Domain = $domain; Name = $name; Kind = 'wellknown'; Object = $null })
    }
    foreach ($group in $script:Sim.Groups.Values) {
        if ($group.BuiltIn) {
            $list.Add(@{ Sid = $group.Sid; Domain = $locale.Builtin; Name = $group.Name; Kind = 'builtin'; Object = $group })
        }
    }
    foreach ($user in $script:Sim.Users.Values) {
        $list.Add(@{ Sid = $user.Sid; Domain = $script:Sim.ComputerName; Name = $user.Name; Kind = 'user'; Object = $user })
    }
    foreach ($group in $script:Sim.Groups.Values) {
        if (-not $group.BuiltIn) {
            $list.Add(@{ Sid = $group.Sid; Domain = $script:Sim.ComputerName; Name = $group.Name; Kind = 'group'; Object = $group })
        }
    }
    foreach ($account in $script:Sim.DomainAccounts.Values) {
        $list.Add(@{ Sid = $account.Sid; Domain = $account.Domain; Name = $account.Name; Kind = 'domain'; Object = $account })
    }
    return , $list
}

function Find-SimPrincipalByName {
    # 'DOMAIN\name' or 'name' (case-insensitive) -> principal, or $null.
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name)
    $domain = $null
    $account = $Name
    $cut = $Name.IndexOf('\')
    if ($cut -ge 0) {
        $domain = $Name.Substring(0, $cut)
        $account = $Name.Substring($cut + 1)
    }
    if ($account -eq '') {
        return $null
    }
    foreach ($principal in (Get-SimPrincipalList)) {
        if ($principal.Name -eq $account -and ($null -eq $domain -or $principal.Domain -eq $domain)) {
            return $principal
        }
    }
    return $null
}

function Find-SimPrincipalBySid {
    param([Parameter(Mandatory = $true)] [string] $Sid)
    foreach ($principal in (Get-SimPrincipalList)) {
        if ($principal.Sid -eq $Sid) {
            return $principal
        }
    }
    return $null
}

function Get-SimComputerName {
    return $script:Sim.ComputerName
}

function Get-DcomcOsComputerName {
    Invoke-SimGate -Operation 'Get-DcomcOsComputerName'
    return [string] $script:Sim.ComputerName
}

function ConvertTo-DcomcOsSid {
    <# 'DOMAIN\name' (or a bare name, searched as LookupAccountName does) -> 'S-1-...'; an
       unknown name throws as NTAccount.Translate (IdentityNotMappedException). '.\name' and
       SID strings are not known to work with NTAccount (facts §11): refused. #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'ConvertTo-DcomcOsSid'
    if ($Name.StartsWith('.\')) {
        throw ('sim: NTAccount(".\name") is not known to translate on Windows (facts §11); use COMPUTER\name: {0}' -f $Name)
    }
    $principal = Find-SimPrincipalByName -Name $Name
    if ($null -eq $principal) {
        throw (New-SimNotMappedError)
    }
    return [string] $principal.Sid
}

function ConvertTo-DcomcOsAccountName {
    <# 'S-1-...' -> 'DOMAIN\name' in this PC's language ('Jeder' has no domain), as
       SecurityIdentifier.Translate(NTAccount); unknown -> IdentityNotMappedException; not a
       SID -> the SecurityIdentifier constructor's ArgumentException. #>
    param([Parameter(Mandatory = $true)] [string] $Sid)
    Invoke-SimGate -Operation 'ConvertTo-DcomcOsAccountName'
    if (-not (Test-SimSidText -Sid $Sid)) {
        throw [System.ArgumentException]::new("Value was invalid. (Parameter 'sddlForm')")
    }
    $principal = Find-SimPrincipalBySid -Sid $Sid
    if ($null -eq $principal) {
        throw (New-SimNotMappedError)
    }
    if ($principal.Domain -eq '') {
        return [string] $principal.Name
    }
    return '{0}\{1}' -f $principal.Domain, $principal.Name
}

# --- local users and groups (SAM through ADSI WinNT) ------------------------------------------------
# User flags: ADS_USER_FLAG_ENUM. A new account gets UF_SCRIPT (NetUserAdd: "UF_SCRIPT ... must be
# set"; Windows reports it on every account - SECONDARY: Samba's netapi always adds it) and, when
# no account-type bit is given, UF_NORMAL_ACCOUNT (Microsoft's NetUserAdd example passes
# usri1_flags = UF_SCRIPT alone and gets a normal account): 0x201 for a plain new user.

$script:SimUfScript = 0x1
$script:SimUfAccountDisable = 0x2
$script:SimUfNormalAccount = 0x200
$script:SimUfDontExpire = 0x10000
$script:SimUfAccountTypes = 0x100 -bor 0x200 -bor 0x800 -bor 0x1000 -bor 0x2000
# Flags a caller may set: SCRIPT, ACCOUNTDISABLE, HOMEDIR_REQUIRED, PASSWD_NOTREQD,
# PASSWD_CANT_CHANGE, ENCRYPTED_TEXT_PASSWORD_ALLOWED, the account types, DONT_EXPIRE_PASSWD,
# MNS_LOGON, SMARTCARD_REQUIRED, TRUSTED_FOR_DELEGATION, NOT_DELEGATED, USE_DES_KEY_ONLY,
# DONT_REQUIRE_PREAUTH. LOCKOUT (0x10) and PASSWORD_EXPIRED (0x800000) are computed: refused.
$script:SimUfSettable = 0x1 -bor 0x2 -bor 0x8 -bor 0x20 -bor 0x40 -bor 0x80 -bor $script:SimUfAccountTypes -bor 0x10000 -bor 0x20000 -bor 0x40000 -bor 0x80000 -bor 0x100000 -bor 0x200000 -bor 0x400000
$script:SimBadNameChars = '"/\[]:;|=,+*?<>@'

function Assert-SimAccountName {
    # "New-LocalUser": up to 20 characters (groups, "New-LocalGroup": 256), none of
    # " / \ [ ] : ; | = , + * ? < > @, not only periods or spaces; else NERR_BadUsername.
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name, [Parameter(Mandatory = $true)] [int] $MaxLength)
    $bad = ($Name.Length -eq 0 -or $Name.Length -gt $MaxLength -or $Name.IndexOfAny($script:SimBadNameChars.ToCharArray()) -ge 0 -or $Name -match '^[. ]+$' -or $Name -match '[\x00-\x1F]')
    if ($bad) {
        throw (New-SimMethodError -Method 'SetInfo' -Text 'The user name or group name parameter is invalid.' -HResult 0x8007089A)
    }
}

function Assert-SimNameFree {
    # Users and groups share one name space in the SAM (NetUserAdd: NERR_UserExists;
    # NetLocalGroupAdd: ERROR_ALIAS_EXISTS).
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [string] $Kind)
    if ($Kind -eq 'group' -and $script:Sim.Groups.Contains($Name)) {
        throw (New-SimMethodError -Method 'SetInfo' -Text 'The specified local group already exists.' -HResult 0x80070563)
    }
    if ($script:Sim.Users.Contains($Name) -or $script:Sim.Groups.Contains($Name)) {
        throw (New-SimMethodError -Method 'SetInfo' -Text 'The account already exists.' -HResult 0x800708B0)
    }
}

function Assert-SimPasswordPolicy {
    <# "Minimum password length" and "Password must meet complexity requirements"
       (windows-itpro security-policy-settings): with complexity, at least 6 characters, not
       containing the account name (3 characters or more, any case), and characters of three of
       five kinds: uppercase, lowercase, digits 0-9, the listed specials, other letters. A refused
       password is NERR_PasswordTooShort (0x800708C5) and changes nothing. #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Plain, [Parameter(Mandatory = $true)] [string] $Account, [Parameter(Mandatory = $true)] [string] $Method)
    $policy = $script:Sim.PasswordPolicy
    $ok = ($Plain.Length -ge [int] $policy.MinLength -and $Plain.Length -le 256)
    if ($ok -and $policy.Complexity) {
        $kinds = @{}
        foreach ($char in $Plain.ToCharArray()) {
            if ([char]::IsUpper($char)) { $kinds['upper'] = $true }
            elseif ([char]::IsLower($char)) { $kinds['lower'] = $true }
            elseif ($char -ge '0' -and $char -le '9') { $kinds['digit'] = $true }
            elseif ('~!@#$%^&*_-+=`|\(){}[]:;"''<>,.?/'.IndexOf($char) -ge 0) { $kinds['special'] = $true }
            elseif ([char]::IsLetter($char)) { $kinds['letter'] = $true }
        }
        $containsName = ($Account.Length -ge 3 -and $Plain.IndexOf($Account, [StringComparison]::OrdinalIgnoreCase) -ge 0)
        $ok = ($Plain.Length -ge 6 -and $kinds.Count -ge 3 -and -not $containsName)
    }
    if (-not $ok) {
        throw (New-SimMethodError -Method $Method -Text 'The password does not meet the password policy requirements. Check the minimum password length, password complexity and password history requirements.' -HResult 0x800708C5)
    }
}

function Get-SimUserFlags {
    # The flags ADSI stores for what a caller gives: UF_SCRIPT always, a normal account when no
    # type is given; computed or non-user account types refused (unknown results: strict).
    param([Parameter(Mandatory = $true)] [int] $Flags)
    if (($Flags -band (-bnot $script:SimUfSettable)) -ne 0) {
        throw ('sim: user flags 0x{0:X} include bits ADSI computes or the simulation does not know' -f ($Flags -band (-bnot $script:SimUfSettable)))
    }
    $type = $Flags -band $script:SimUfAccountTypes
    if ($type -eq 0) {
        $Flags = $Flags -bor $script:SimUfNormalAccount
    }
    elseif ($type -ne $script:SimUfNormalAccount) {
        throw ('sim: account type 0x{0:X} is not a local user''s (UF_NORMAL_ACCOUNT 0x200)' -f $type)
    }
    return ($Flags -bor $script:SimUfScript)
}

function New-SimSid {
    # The next local RID: RIDs are never reused (the SAM's counter only grows).
    $rid = [int] $script:Sim.NextRid
    $script:Sim.NextRid = $rid + 1
    return @{ Rid = $rid; Sid = ('{0}-{1}' -f $script:Sim.MachineSid, $rid) }
}

function Get-SimGroupBySid {
    param([Parameter(Mandatory = $true)] [string] $Sid)
    foreach ($group in $script:Sim.Groups.Values) {
        if ($group.Sid -eq $Sid) {
            return $group
        }
    }
    throw ('sim: no group {0}' -f $Sid)
}

function Get-DcomcOsLocalUser {
    <# $null, or @{ Name; Sid; Description; Flags (ADS_USER_FLAG); PasswordExpired } #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Get-DcomcOsLocalUser'
    $user = $script:Sim.Users[$Name]
    if ($null -eq $user) {
        return $null
    }
    return @{ Name = [string] $user.Name; Sid = [string] $user.Sid; Description = [string] $user.Description; Flags = [int] $user.Flags; PasswordExpired = [bool] $user.PasswordExpired }
}

function Test-SimPassword {
    <# For tests: is this the local user's current password (compared as the hash kept)? #>
    param([Parameter(Mandatory = $true)] [string] $Account, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Password)
    $user = $script:Sim.Users[$Account]
    return ($null -ne $user -and $user.PasswordHash -eq (Get-SimPasswordHash -Plain $Password))
}

function New-DcomcOsLocalUser {
    <# One SetInfo: a name or password the SAM refuses creates no account. A new local user is
       a member of Users (NetUserAdd with USER_PRIV_USER - SECONDARY: what net user /add shows). #>
    param(
        [Parameter(Mandatory = $true)] [string] $Name,
        [Parameter(Mandatory = $true)] [System.Security.SecureString] $Password,
        [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Description,
        [Parameter(Mandatory = $true)] [int] $Flags
    )
    Invoke-SimGate -Operation 'New-DcomcOsLocalUser'
    Assert-SimElevated -Operation 'New-DcomcOsLocalUser'
    Assert-SimAccountName -Name $Name -MaxLength 20
    Assert-SimNameFree -Name $Name -Kind 'user'
    if ($Description.Length -gt 48) {
        throw ('sim: a user description is at most 48 characters (New-LocalUser); what ADSI does with more is not known')
    }
    $stored = Get-SimUserFlags -Flags $Flags
    $plain = ConvertFrom-SimSecureString -Secure $Password
    Assert-SimPasswordPolicy -Plain $plain -Account $Name -Method 'SetInfo'
    $id = New-SimSid
    $script:Sim.Users[$Name] = @{ Name = $Name; Sid = $id.Sid; Rid = $id.Rid; Description = $Description; Flags = $stored; PasswordExpired = $false; PasswordHash = (Get-SimPasswordHash -Plain $plain) }
    (Get-SimGroupBySid -Sid 'S-1-5-32-545').Members.Add($id.Sid)
}

function Set-DcomcOsLocalUser {
    <# Changes only what is given. The password first (ADSI's SetPassword acts at once), then
       the rest in one SetInfo. PasswordExpired with UF_DONT_EXPIRE_PASSWD: unknown, refused. #>
    param(
        [Parameter(Mandatory = $true)] [string] $Name,
        [AllowEmptyString()] [string] $Description,
        [int] $Flags,
        [System.Security.SecureString] $Password,
        [bool] $PasswordExpired
    )
    Invoke-SimGate -Operation 'Set-DcomcOsLocalUser'
    Assert-SimElevated -Operation 'Set-DcomcOsLocalUser'
    $user = $script:Sim.Users[$Name]
    if ($null -eq $user) {
        throw ('The local user {0} does not exist' -f $Name)
    }
    if ($PSBoundParameters.ContainsKey('Password')) {
        $plain = ConvertFrom-SimSecureString -Secure $Password
        Assert-SimPasswordPolicy -Plain $plain -Account $user.Name -Method 'SetPassword'
        $user.PasswordHash = Get-SimPasswordHash -Plain $plain
    }
    $newFlags = $user.Flags
    $newExpired = $user.PasswordExpired
    $newDescription = $user.Description
    if ($PSBoundParameters.ContainsKey('Flags')) {
        $newFlags = Get-SimUserFlags -Flags $Flags
    }
    if ($PSBoundParameters.ContainsKey('PasswordExpired')) {
        $newExpired = $PasswordExpired
    }
    if ($PSBoundParameters.ContainsKey('Description')) {
        if ($Description.Length -gt 48) {
            throw 'sim: a user description is at most 48 characters (New-LocalUser); what ADSI does with more is not known'
        }
        $newDescription = $Description
    }
    if ($newExpired -and ($newFlags -band $script:SimUfDontExpire) -ne 0) {
        throw 'sim: PasswordExpired together with UF_DONT_EXPIRE_PASSWD: what Windows does is not known'
    }
    $user.Flags = $newFlags
    $user.PasswordExpired = $newExpired
    $user.Description = $newDescription
}

function Remove-DcomcOsLocalUser {
    <# IADsContainer.Delete: a missing user is NERR_UserNotFound; the built-in accounts
       (RID < 1000) are ERROR_SPECIAL_ACCOUNT. The SAM drops the user from local groups
       (SECONDARY); user rights keep its SID as an orphan (secpol shows the bare SID). #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Remove-DcomcOsLocalUser'
    Assert-SimElevated -Operation 'Remove-DcomcOsLocalUser'
    $user = $script:Sim.Users[$Name]
    if ($null -eq $user) {
        throw (New-SimMethodError -Method 'Delete' -Arguments 2 -Text 'The user name could not be found.' -HResult 0x800708AD)
    }
    if ($user.Rid -lt 1000) {
        throw (New-SimMethodError -Method 'Delete' -Arguments 2 -Text 'Cannot perform this operation on built-in accounts.' -HResult 0x8007055B)
    }
    foreach ($group in $script:Sim.Groups.Values) {
        while ($group.Members.Remove($user.Sid)) { }
    }
    $script:Sim.Users.Remove($Name)
}

function Get-DcomcOsLocalGroup {
    <# $null, or @{ Name; Sid; Description; Members (SIDs) }; builtin groups are found by their
       localized name, as WinNT://COMPUTER/<name>,group finds them. #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Get-DcomcOsLocalGroup'
    $group = $script:Sim.Groups[$Name]
    if ($null -eq $group) {
        return $null
    }
    return @{ Name = [string] $group.Name; Sid = [string] $group.Sid; Description = [string] $group.Description; Members = @($group.Members) }
}

function New-DcomcOsLocalGroup {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Description)
    Invoke-SimGate -Operation 'New-DcomcOsLocalGroup'
    Assert-SimElevated -Operation 'New-DcomcOsLocalGroup'
    Assert-SimAccountName -Name $Name -MaxLength 256
    Assert-SimNameFree -Name $Name -Kind 'group'
    if ($Description.Length -gt 256) {
        throw 'sim: a group description is at most 256 characters (MAXCOMMENTSZ); more is not known'
    }
    $id = New-SimSid
    $script:Sim.Groups[$Name] = @{ Name = $Name; Sid = $id.Sid; Rid = $id.Rid; BuiltIn = $false; Description = $Description; Members = (New-SimList) }
}

function Set-DcomcOsLocalGroup {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Description)
    Invoke-SimGate -Operation 'Set-DcomcOsLocalGroup'
    Assert-SimElevated -Operation 'Set-DcomcOsLocalGroup'
    $group = $script:Sim.Groups[$Name]
    if ($null -eq $group) {
        throw ('The local group {0} does not exist' -f $Name)
    }
    if ($Description.Length -gt 256) {
        throw 'sim: a group description is at most 256 characters (MAXCOMMENTSZ); more is not known'
    }
    $group.Description = $Description
}

function Remove-DcomcOsLocalGroup {
    <# A missing group is ERROR_NO_SUCH_ALIAS; a builtin one ERROR_SPECIAL_ACCOUNT. #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Remove-DcomcOsLocalGroup'
    Assert-SimElevated -Operation 'Remove-DcomcOsLocalGroup'
    $group = $script:Sim.Groups[$Name]
    if ($null -eq $group) {
        throw (New-SimMethodError -Method 'Delete' -Arguments 2 -Text 'The specified local group does not exist.' -HResult 0x80070560)
    }
    if ($group.BuiltIn) {
        throw (New-SimMethodError -Method 'Delete' -Arguments 2 -Text 'Cannot perform this operation on built-in accounts.' -HResult 0x8007055B)
    }
    $script:Sim.Groups.Remove($Name)
}

function Get-SimMemberPrincipal {
    # The real functions name a member by the DOMAIN\name of its SID (Translate throws when
    # unknown); local groups cannot hold local groups (NetLocalGroupAddMembers:
    # ERROR_INVALID_MEMBER).
    param([Parameter(Mandatory = $true)] [string] $Sid)
    if (-not (Test-SimSidText -Sid $Sid)) {
        throw [System.ArgumentException]::new("Value was invalid. (Parameter 'sddlForm')")
    }
    $principal = Find-SimPrincipalBySid -Sid $Sid
    if ($null -eq $principal) {
        throw (New-SimNotMappedError)
    }
    return $principal
}

function Add-DcomcOsLocalGroupMember {
    <# IADsGroup.Add: already a member is ERROR_MEMBER_IN_ALIAS (0x80070562). #>
    param([Parameter(Mandatory = $true)] [string] $Group, [Parameter(Mandatory = $true)] [string] $MemberSid)
    Invoke-SimGate -Operation 'Add-DcomcOsLocalGroupMember'
    Assert-SimElevated -Operation 'Add-DcomcOsLocalGroupMember'
    $entry = $script:Sim.Groups[$Group]
    if ($null -eq $entry) {
        throw ('The local group {0} does not exist' -f $Group)
    }
    $principal = Get-SimMemberPrincipal -Sid $MemberSid
    if ($principal.Kind -eq 'builtin' -or $principal.Kind -eq 'group') {
        throw (New-SimMethodError -Method 'Add' -Arguments 1 -Text 'A new member could not be added to a local group because the member has the wrong account type.' -HResult 0x8007056C)
    }
    if ($entry.Members.Contains($principal.Sid)) {
        throw (New-SimMethodError -Method 'Add' -Arguments 1 -Text 'The specified account name is already a member of the group.' -HResult 0x80070562)
    }
    $entry.Members.Add($principal.Sid)
}

function Remove-DcomcOsLocalGroupMember {
    <# IADsGroup.Remove: not a member is ERROR_MEMBER_NOT_IN_ALIAS (0x80070561). #>
    param([Parameter(Mandatory = $true)] [string] $Group, [Parameter(Mandatory = $true)] [string] $MemberSid)
    Invoke-SimGate -Operation 'Remove-DcomcOsLocalGroupMember'
    Assert-SimElevated -Operation 'Remove-DcomcOsLocalGroupMember'
    $entry = $script:Sim.Groups[$Group]
    if ($null -eq $entry) {
        throw ('The local group {0} does not exist' -f $Group)
    }
    $principal = Get-SimMemberPrincipal -Sid $MemberSid
    if (-not $entry.Members.Remove($principal.Sid)) {
        throw (New-SimMethodError -Method 'Remove' -Arguments 1 -Text 'The specified account name is not a member of the group.' -HResult 0x80070561)
    }
}

# --- user rights (secedit [Privilege Rights], MS-GPSB 2.2.6, facts §7.2) -----------------------------

# Right and privilege constants ("User Rights Assignment", learn.microsoft.com; "Privilege
# Constants"): any other name is refused (what secedit does with it is not known).
$script:SimRightNames = @(
    'SeNetworkLogonRight', 'SeInteractiveLogonRight', 'SeBatchLogonRight', 'SeServiceLogonRight',
    'SeRemoteInteractiveLogonRight', 'SeDenyNetworkLogonRight', 'SeDenyInteractiveLogonRight',
    'SeDenyBatchLogonRight', 'SeDenyServiceLogonRight', 'SeDenyRemoteInteractiveLogonRight',
    'SeAssignPrimaryTokenPrivilege', 'SeAuditPrivilege', 'SeBackupPrivilege', 'SeChangeNotifyPrivilege',
    'SeCreateGlobalPrivilege', 'SeCreatePagefilePrivilege', 'SeCreatePermanentPrivilege',
    'SeCreateSymbolicLinkPrivilege', 'SeCreateTokenPrivilege', 'SeDebugPrivilege',
    'SeDelegateSessionUserImpersonatePrivilege', 'SeEnableDelegationPrivilege', 'SeImpersonatePrivilege',
    'SeIncreaseBasePriorityPrivilege', 'SeIncreaseQuotaPrivilege', 'SeIncreaseWorkingSetPrivilege',
    'SeLoadDriverPrivilege', 'SeLockMemoryPrivilege', 'SeMachineAccountPrivilege', 'SeManageVolumePrivilege',
    'SeProfileSingleProcessPrivilege', 'SeRelabelPrivilege', 'SeRemoteShutdownPrivilege', 'SeRestorePrivilege',
    'SeSecurityPrivilege', 'SeShutdownPrivilege', 'SeSyncAgentPrivilege', 'SeSystemEnvironmentPrivilege',
    'SeSystemProfilePrivilege', 'SeSystemtimePrivilege', 'SeTakeOwnershipPrivilege', 'SeTcbPrivilege',
    'SeTimeZonePrivilege', 'SeTrustedCredManAccessPrivilege', 'SeUndockPrivilege'
)

function Get-SimRightHolders {
    # The holder list of a right (created empty); the name must be exact (case included).
    param([Parameter(Mandatory = $true)] [string] $Right)
    if ($script:SimRightNames -cnotcontains $Right) {
        throw ('sim: {0} is not a user right or privilege name' -f $Right)
    }
    if (-not $script:Sim.Rights.Contains($Right)) {
        $script:Sim.Rights[$Right] = New-SimList
    }
    return , $script:Sim.Rights[$Right]
}

function Assert-SimHolderSid {
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Sid)
    if (-not (Test-SimSidText -Sid $Sid)) {
        throw ('sim: {0} is not a SID (secedit writes holders as *S-1-...)' -f $Sid)
    }
}

function Get-DcomcOsUserRight {
    <# The holders of a user right: 'S-1-...' SIDs, or names secedit could not translate.
       secedit /export needs an administrator token (SECONDARY). #>
    param([Parameter(Mandatory = $true)] [string] $Right)
    Invoke-SimGate -Operation 'Get-DcomcOsUserRight'
    if (-not $script:Sim.Elevated) {
        throw 'secedit /export failed with exit code 1'
    }
    return , @((Get-SimRightHolders -Right $Right).ToArray())
}

function Grant-DcomcOsUserRight {
    param([Parameter(Mandatory = $true)] [string] $Right, [Parameter(Mandatory = $true)] [string] $Sid)
    Invoke-SimGate -Operation 'Grant-DcomcOsUserRight'
    Assert-SimElevated -Operation 'Grant-DcomcOsUserRight'
    Assert-SimHolderSid -Sid $Sid
    $holders = Get-SimRightHolders -Right $Right
    if (-not $holders.Contains($Sid)) {
        $holders.Add($Sid)
    }
}

function Revoke-DcomcOsUserRight {
    param([Parameter(Mandatory = $true)] [string] $Right, [Parameter(Mandatory = $true)] [string] $Sid)
    Invoke-SimGate -Operation 'Revoke-DcomcOsUserRight'
    Assert-SimElevated -Operation 'Revoke-DcomcOsUserRight'
    Assert-SimHolderSid -Sid $Sid
    $holders = Get-SimRightHolders -Right $Right
    while ($holders.Remove($Sid)) { }
}

# --- services (Win32_Service, the SCM) ---------------------------------------------------------------

# StartName values of built-in accounts that need no password ("ChangeServiceConfigW",
# lpServiceStartName: LocalSystem, NT AUTHORITY\LocalService, NT AUTHORITY\NetworkService).
$script:SimBuiltinStartNames = @('LocalSystem', 'NT AUTHORITY\LocalService', 'NT AUTHORITY\NetworkService')

function Get-SimServiceRequired {
    param([Parameter(Mandatory = $true)] [string] $Name)
    $service = $script:Sim.Services[$Name]
    if ($null -eq $service) {
        throw [System.InvalidOperationException]::new(("Cannot find any service with service name '{0}'." -f $Name))
    }
    return $service
}

function Test-SimBuiltinStartName {
    param([AllowEmptyString()] [string] $StartName)
    return ($script:SimBuiltinStartNames -contains $StartName)
}

function Resolve-SimLogonAccount {
    # The account a StartName names: '.\user' or 'COMPUTER\user' (local), 'DOMAIN\user' (an
    # account registered with Add-SimDomainAccount); $null when there is none. Other forms
    # (a bare name, a UPN) are not simulated and name no account.
    param([AllowEmptyString()] [string] $StartName)
    $cut = $StartName.IndexOf('\')
    if ($cut -lt 0) {
        return $null
    }
    $domain = $StartName.Substring(0, $cut)
    $name = $StartName.Substring($cut + 1)
    if ($domain -eq '.' -or $domain -eq $script:Sim.ComputerName) {
        $user = $script:Sim.Users[$name]
        if ($null -eq $user) {
            return $null
        }
        return @{ Sid = $user.Sid; PasswordHash = $user.PasswordHash; Disabled = (($user.Flags -band $script:SimUfAccountDisable) -ne 0); Expired = $user.PasswordExpired; Local = $true }
    }
    $account = $script:Sim.DomainAccounts[$StartName]
    if ($null -eq $account -or $account.IsGroup) {
        return $null
    }
    return @{ Sid = $account.Sid; PasswordHash = $account.PasswordHash; Disabled = $false; Expired = $false; Local = $false }
}

function Get-SimTokenSids {
    # The SIDs of a service logon token: the account, Everyone, Authenticated Users, SERVICE,
    # Local account (local users), and every local or builtin group holding any of these.
    param([Parameter(Mandatory = $true)] $Account)
    $sids = @($Account.Sid, 'S-1-1-0', 'S-1-5-11', 'S-1-5-6')
    if ($Account.Local) {
        $sids += 'S-1-5-113'
    }
    $groups = @()
    foreach ($group in $script:Sim.Groups.Values) {
        foreach ($sid in $sids) {
            if ($group.Members.Contains($sid)) {
                $groups += $group.Sid
                break
            }
        }
    }
    if ($Account.Local -and $groups -contains 'S-1-5-32-544') {
        $groups += 'S-1-5-114'
    }
    return , @($sids + $groups)
}

function Test-SimServiceLogon {
    <# Can the SCM log the service on? Built-in accounts always; an account only when it exists,
       is enabled, its password is not expired, the service's stored password is its current
       one, and its token holds SeServiceLogonRight ("Log on as a service", facts §10) and not
       SeDenyServiceLogonRight. Else ERROR_SERVICE_LOGON_FAILED (1069). #>
    param([Parameter(Mandatory = $true)] $Service)
    if (Test-SimBuiltinStartName -StartName $Service.StartName) {
        return $true
    }
    $account = Resolve-SimLogonAccount -StartName $Service.StartName
    if ($null -eq $account -or $account.Disabled -or $account.Expired) {
        return $false
    }
    if ($null -eq $account.PasswordHash -or $account.PasswordHash -ne $Service.PasswordHash) {
        return $false
    }
    $token = Get-SimTokenSids -Account $account
    foreach ($sid in (Get-SimRightHolders -Right 'SeDenyServiceLogonRight')) {
        if ($token -contains $sid) {
            return $false
        }
    }
    foreach ($sid in (Get-SimRightHolders -Right 'SeServiceLogonRight')) {
        if ($token -contains $sid) {
            return $true
        }
    }
    return $false
}

function Start-SimServiceCore {
    <# StartService as the SCM does it ("StartServiceW"; System Error Codes): a disabled service
       is 1058; the services it depends on start first (a missing one is 1075, one that fails
       makes it 1068); a logon failure is 1069. A failed start leaves the service Stopped. #>
    param([Parameter(Mandatory = $true)] $Service)
    if ($Service.State -eq 'Running') {
        return
    }
    if ($Service.StartMode -eq 'Disabled') {
        throw (New-SimServiceError -Service $Service -Code 1058 -Text 'The service cannot be started, either because it is disabled or because it has no enabled devices associated with it.')
    }
    foreach ($name in @($Service.DependsOn)) {
        $dependency = $script:Sim.Services[$name]
        if ($null -eq $dependency) {
            throw (New-SimServiceError -Service $Service -Code 1075 -Text 'The dependency service does not exist or has been marked for deletion.')
        }
        try {
            Start-SimServiceCore -Service $dependency
        }
        catch {
            throw (New-SimServiceError -Service $Service -Code 1068 -Text 'The dependency service or group failed to start.')
        }
    }
    if (-not (Test-SimServiceLogon -Service $Service)) {
        throw (New-SimServiceError -Service $Service -Code 1069 -Text 'The service did not start due to a logon failure.')
    }
    $Service.State = 'Running'
}

function Get-SimRunningDependents {
    # The running services that depend on a service, directly or not, deepest first (the order
    # EnumDependentServices gives: "reverse order of start").
    param([Parameter(Mandatory = $true)] $Service, [System.Collections.Generic.List[object]] $Into)
    if ($null -eq $Into) {
        $Into = [System.Collections.Generic.List[object]]::new()
    }
    foreach ($other in $script:Sim.Services.Values) {
        if (@($other.DependsOn) -contains $Service.Name -and -not $Into.Contains($other)) {
            $null = Get-SimRunningDependents -Service $other -Into $Into
            if ($other.State -eq 'Running' -and -not $Into.Contains($other)) {
                $Into.Add($other)
            }
        }
    }
    return , $Into
}

function Get-DcomcOsService {
    <# $null, or @{ Name; StartName; State; StartMode } as Win32_Service reports them (StartMode
       Auto, Manual, Disabled; the name matched without case, as WQL '='). #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Get-DcomcOsService'
    $service = $script:Sim.Services[$Name]
    if ($null -eq $service) {
        return $null
    }
    return @{ Name = [string] $service.Name; StartName = [string] $service.StartName; State = [string] $service.State; StartMode = [string] $service.StartMode }
}

function Set-DcomcOsServiceLogon {
    <# Win32_Service.Change(StartName, StartPassword) ("Change method of the Win32_Service
       class"): StartName stored as given; an account that does not exist is 22; the password
       is stored, not checked (a wrong one fails only at the next start); no user right is
       granted (facts §10). A password for a built-in account: unknown, refused. #>
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [string] $StartName, [System.Security.SecureString] $Password)
    Invoke-SimGate -Operation 'Set-DcomcOsServiceLogon'
    Assert-SimElevated -Operation 'Set-DcomcOsServiceLogon'
    $service = $script:Sim.Services[$Name]
    if ($null -eq $service) {
        throw ('The service {0} is not installed on this PC' -f $Name)
    }
    $plain = ConvertFrom-SimSecureString -Secure $Password
    if (Test-SimBuiltinStartName -StartName $StartName) {
        if ($plain -ne '') {
            throw ('sim: a password for the built-in account {0}: what Win32_Service.Change does is not known' -f $StartName)
        }
        $service.StartName = $StartName
        $service.PasswordHash = $null
        return
    }
    if ($null -eq (Resolve-SimLogonAccount -StartName $StartName)) {
        throw ('Win32_Service.Change returned {0} for {1} (15: logon failed, 22: invalid account)' -f 22, $Name)
    }
    $service.StartName = $StartName
    $service.PasswordHash = Get-SimPasswordHash -Plain $plain
}

function Set-DcomcOsServiceStartMode {
    <# Set-Service -StartupType: Automatic is what Win32_Service reports as Auto. A running
       service keeps running when disabled. #>
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [ValidateSet('Automatic', 'Manual', 'Disabled')] [string] $StartMode)
    Invoke-SimGate -Operation 'Set-DcomcOsServiceStartMode'
    Assert-SimElevated -Operation 'Set-DcomcOsServiceStartMode'
    $service = Get-SimServiceRequired -Name $Name
    $service.StartMode = @{ 'Automatic' = 'Auto'; 'Manual' = 'Manual'; 'Disabled' = 'Disabled' }[$StartMode]
}

function Start-DcomcOsService {
    <# Start-Service: a running service is no error (ERROR_SERVICE_ALREADY_RUNNING is ignored). #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Start-DcomcOsService'
    Assert-SimElevated -Operation 'Start-DcomcOsService'
    Start-SimServiceCore -Service (Get-SimServiceRequired -Name $Name)
}

function Stop-DcomcOsService {
    <# Stop-Service -Force: the running dependents stop first; a stopped service is no error. #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Stop-DcomcOsService'
    Assert-SimElevated -Operation 'Stop-DcomcOsService'
    $service = Get-SimServiceRequired -Name $Name
    foreach ($dependent in (Get-SimRunningDependents -Service $service)) {
        $dependent.State = 'Stopped'
    }
    $service.State = 'Stopped'
}

function Restart-DcomcOsService {
    <# Restart-Service -Force as PowerShell implements it (RestartServiceCommand: DoStopService
       then DoStartService for each stopped service): the running dependents and the service
       stop, then the dependents start in that order (each starting the service first, as its
       dependency), then the service. A failed start leaves it Stopped and throws. #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Restart-DcomcOsService'
    Assert-SimElevated -Operation 'Restart-DcomcOsService'
    $service = Get-SimServiceRequired -Name $Name
    $stopped = Get-SimRunningDependents -Service $service
    foreach ($dependent in $stopped) {
        $dependent.State = 'Stopped'
    }
    $service.State = 'Stopped'
    $stopped.Add($service)
    foreach ($each in $stopped) {
        Start-SimServiceCore -Service $each
    }
}

# --- firewall (NetSecurity) ----------------------------------------------------------------------------
# Parameters: "New-NetFirewallRule" (facts §8.2). How Get-NetFirewall*Filter shows what was given
# is SECONDARY (observed on real PCs): Profile 'Domain, Private' in flag order and 'Any' for all
# three; an IPv4 network 10.9.0.0/24 as 10.9.0.0/255.255.255.0; /32 as the bare address; single
# addresses and ranges as given. IPv6 display is not known: refused.

$script:SimFirewallKeywords = @('LocalSubnet', 'LocalSubnet4', 'LocalSubnet6', 'DNS', 'DHCP', 'WINS', 'DefaultGateway', 'Internet', 'Intranet', 'IntranetRemoteAccess', 'PlayToDevice')
$script:SimRuleFields = @('Name', 'DisplayName', 'Description', 'Protocol', 'LocalPort', 'Program', 'Service', 'Profile', 'RemoteAddress', 'Enabled')

function ConvertTo-SimProfileText {
    param($Value)
    $items = @(@($Value) | ForEach-Object -Process { ([string] $_).Split(',') } | ForEach-Object -Process { $_.Trim() } | Where-Object -FilterScript { $_ -ne '' })
    if ($items.Count -eq 0) {
        throw 'sim: New-NetFirewallRule -Profile $null: the real call fails to bind'
    }
    $chosen = @{}
    foreach ($item in $items) {
        $canonical = @('Any', 'Domain', 'Private', 'Public') | Where-Object -FilterScript { $_ -eq $item }
        if ($null -eq $canonical) {
            throw ("Cannot convert value ""{0}"" to type ""Microsoft.PowerShell.Cmdletization.GeneratedTypes.NetSecurity.Profile""" -f $item)
        }
        $chosen[$canonical] = $true
    }
    if ($chosen.ContainsKey('Any')) {
        if ($chosen.Count -gt 1) {
            throw 'sim: Profile Any together with other profiles'
        }
        return 'Any'
    }
    $ordered = @('Domain', 'Private', 'Public' | Where-Object -FilterScript { $chosen.ContainsKey($_) })
    if ($ordered.Count -eq 3) {
        return 'Any'
    }
    return ($ordered -join ', ')
}

function Test-SimIPv4 {
    param([string] $Text)
    if ($Text -notmatch '^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$') {
        return $false
    }
    foreach ($i in 1..4) {
        $part = $Matches[$i]
        if ([int] $part -gt 255 -or ($part.Length -gt 1 -and $part.StartsWith('0'))) {
            return $false
        }
    }
    return $true
}

function ConvertTo-SimIPv4Number {
    # The address as a number (a [long], so that no arithmetic overflows).
    param([string] $Text)
    $value = [long] 0
    foreach ($part in $Text.Split('.')) {
        $value = $value * 256 + [long] $part
    }
    return $value
}

function ConvertTo-SimRemoteAddress {
    # The RemoteAddress list as Get-NetFirewallAddressFilter shows it (SECONDARY, see above).
    param($Address)
    $items = @(@($Address) | ForEach-Object -Process { [string] $_ })
    if ($items.Count -eq 0 -or @($items | Where-Object -FilterScript { $_ -eq '' }).Count -gt 0) {
        throw 'sim: New-NetFirewallRule -RemoteAddress with no address: the real call fails to bind'
    }
    $out = @()
    foreach ($item in $items) {
        $keyword = @('Any') + $script:SimFirewallKeywords | Where-Object -FilterScript { $_ -eq $item }
        if ($null -ne $keyword) {
            if ($keyword -eq 'Any' -and $items.Count -gt 1) {
                throw 'sim: RemoteAddress Any together with other addresses'
            }
            $out += $keyword
            continue
        }
        if ($item.Contains(',')) {
            throw ('sim: "{0}": one address per list item' -f $item)
        }
        if (Test-SimIPv4 -Text $item) {
            $out += $item
            continue
        }
        if ($item -match '^([^/]+)/(\d{1,2})$' -and (Test-SimIPv4 -Text $Matches[1])) {
            $net = $Matches[1]
            $bits = [int] $Matches[2]
            if ($bits -lt 1 -or $bits -gt 32) {
                throw ('sim: prefix length /{0} of {1}: not simulated' -f $bits, $item)
            }
            if ($bits -eq 32) {
                $out += $net
                continue
            }
            $hostSize = [long] [Math]::Pow(2, 32 - $bits)
            $mask = [long] 4294967296 - $hostSize
            if (((ConvertTo-SimIPv4Number -Text $net) % $hostSize) -ne 0) {
                throw ('sim: {0} has host bits set; how NetSecurity shows it is not known' -f $item)
            }
            $maskText = '{0}.{1}.{2}.{3}' -f (($mask -shr 24) -band 255), (($mask -shr 16) -band 255), (($mask -shr 8) -band 255), ($mask -band 255)
            $out += ('{0}/{1}' -f $net, $maskText)
            continue
        }
        if ($item -match '^([^/]+)/([^/]+)$' -and (Test-SimIPv4 -Text $Matches[1]) -and (Test-SimIPv4 -Text $Matches[2])) {
            $mask = ConvertTo-SimIPv4Number -Text $Matches[2]
            $inverse = [long] 4294967295 - $mask
            if ($mask -eq 0 -or (($inverse + 1) -band $inverse) -ne 0) {
                throw ('sim: {0}: not a contiguous network mask' -f $item)
            }
            $out += $item
            continue
        }
        if ($item -match '^([^-]+)-([^-]+)$' -and (Test-SimIPv4 -Text $Matches[1]) -and (Test-SimIPv4 -Text $Matches[2])) {
            if ((ConvertTo-SimIPv4Number -Text $Matches[1]) -gt (ConvertTo-SimIPv4Number -Text $Matches[2])) {
                throw ('sim: {0}: range from high to low' -f $item)
            }
            $out += $item
            continue
        }
        if ($item.Contains(':')) {
            throw ('sim: IPv6 RemoteAddress {0}: how NetSecurity shows IPv6 is not known' -f $item)
        }
        throw ('The address {0} is not valid (New-NetFirewallRule -RemoteAddress)' -f $item)
    }
    return , $out
}

function ConvertTo-SimProtocol {
    param($Protocol)
    $text = [string] $Protocol
    $canonical = @('TCP', 'UDP', 'ICMPv4', 'ICMPv6', 'Any') | Where-Object -FilterScript { $_ -eq $text }
    if ($null -eq $canonical) {
        throw ('sim: protocol "{0}": only TCP, UDP, ICMPv4, ICMPv6 and Any are simulated (how numbers are shown is not known)' -f $text)
    }
    return $canonical
}

function ConvertTo-SimLocalPort {
    # Ports, ranges and keywords (New-NetFirewallRule -LocalPort); ports need TCP or UDP; the RPC
    # keywords need TCP, Teredo and PlayToDiscovery UDP. netsh's RPC-EPMap spelling is refused.
    param($Port, [Parameter(Mandatory = $true)] [string] $Protocol)
    $items = @(@($Port) | Where-Object -FilterScript { $null -ne $_ -and [string] $_ -ne '' } | ForEach-Object -Process { [string] $_ })
    if ($items.Count -eq 0) {
        return , @('Any')
    }
    if ($Protocol -ne 'TCP' -and $Protocol -ne 'UDP') {
        throw ('The port filter needs protocol TCP or UDP, not {0} (New-NetFirewallRule -LocalPort)' -f $Protocol)
    }
    $out = @()
    foreach ($item in $items) {
        $tcpKeyword = @('RPC', 'RPCEPMap', 'IPHTTPSIn', 'IPHTTPSOut') | Where-Object -FilterScript { $_ -eq $item }
        $udpKeyword = @('Teredo', 'PlayToDiscovery') | Where-Object -FilterScript { $_ -eq $item }
        if ($null -ne $tcpKeyword -or $null -ne $udpKeyword) {
            if (($null -ne $tcpKeyword -and $Protocol -ne 'TCP') -or ($null -ne $udpKeyword -and $Protocol -ne 'UDP')) {
                throw ('The port keyword {0} is not valid with protocol {1}' -f $item, $Protocol)
            }
            $out += @($tcpKeyword, $udpKeyword | Where-Object -FilterScript { $null -ne $_ })
        }
        elseif ($item -match '^(\d{1,5})$' -and [int] $item -le 65535) {
            $out += ([string] [int] $item)
        }
        elseif ($item -match '^(\d{1,5})-(\d{1,5})$' -and [int] $Matches[1] -le [int] $Matches[2] -and [int] $Matches[2] -le 65535) {
            $out += $item
        }
        else {
            throw ('The port {0} is not valid (New-NetFirewallRule -LocalPort)' -f $item)
        }
    }
    return , $out
}

function New-SimFirewallRuleObject {
    # A rule as the simulation keeps it (all fields as NetSecurity shows them).
    param([string] $Name, [string] $DisplayName, [string] $Description, [string] $Group, [string] $DisplayGroup, [bool] $Enabled, [string] $Direction, [string] $Action, [string] $ProfileText, [string] $Protocol, [string[]] $LocalPort, [string] $Program, [string] $Service, [string[]] $RemoteAddress)
    return @{
        Name = $Name; DisplayName = $DisplayName; Description = $Description; Group = $Group; DisplayGroup = $DisplayGroup
        Enabled = $Enabled; Direction = $Direction; Action = $Action; Profile = $ProfileText; Protocol = $Protocol
        LocalPort = @($LocalPort); Program = $Program; Service = $Service; RemoteAddress = @($RemoteAddress)
    }
}

function Find-SimFirewallRule {
    # The rule with exactly this name; a rule whose name differs only in case: whether
    # NetSecurity matches it is not known, refused.
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name)
    $rule = $script:Sim.Firewall[$Name]
    if ($null -ne $rule) {
        return $rule
    }
    foreach ($other in $script:Sim.Firewall.Keys) {
        if ($other -ieq $Name) {
            throw ('sim: firewall rule "{0}" exists as "{1}": whether NetSecurity matches names without case is not known' -f $Name, $other)
        }
    }
    return $null
}

function Get-DcomcOsFirewallRule {
    <# $null, or the rule as NetSecurity shows it: Profile 'Domain, Private' or 'Any',
       RemoteAddress as a list ('Any', '10.9.0.0/255.255.255.0', ...). #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Get-DcomcOsFirewallRule'
    $rule = Find-SimFirewallRule -Name $Name
    if ($null -eq $rule) {
        return $null
    }
    return @{
        Name = [string] $rule.Name; DisplayName = [string] $rule.DisplayName; Description = [string] $rule.Description
        Enabled = [bool] $rule.Enabled; Direction = [string] $rule.Direction; Action = [string] $rule.Action
        Profile = [string] $rule.Profile; Protocol = [string] $rule.Protocol; LocalPort = @($rule.LocalPort)
        Program = [string] $rule.Program; Service = [string] $rule.Service; RemoteAddress = @($rule.RemoteAddress)
    }
}

function New-DcomcOsFirewallRule {
    <# An inbound allow rule from @{ Name; DisplayName; Description; Protocol; LocalPort;
       Program; Service; Profile; RemoteAddress; Enabled (optional, default true) }. The real function reads Name, DisplayName,
       Description, Protocol, Profile, RemoteAddress as properties (missing keys throw under
       Set-StrictMode) and ignores other keys (refused here: the caller meant something). An
       existing Name: New-NetFirewallRule fails with "Cannot create a file when that file already
       exists." (Windows error 183; SECONDARY). #>
    param([Parameter(Mandatory = $true)] [hashtable] $Rule)
    Invoke-SimGate -Operation 'New-DcomcOsFirewallRule'
    Assert-SimElevated -Operation 'New-DcomcOsFirewallRule'
    foreach ($key in $Rule.Keys) {
        if ($script:SimRuleFields -cnotcontains $key) {
            throw ('sim: rule field "{0}" is not one New-DcomcOsFirewallRule uses' -f $key)
        }
    }
    foreach ($key in @('Name', 'DisplayName', 'Description', 'Protocol', 'Profile', 'RemoteAddress')) {
        if (-not $Rule.ContainsKey($key)) {
            throw ("The property '{0}' cannot be found on this object. Verify that the property exists." -f $key)
        }
    }
    if ([string]::IsNullOrEmpty([string] $Rule.Name) -or [string]::IsNullOrEmpty([string] $Rule.DisplayName)) {
        throw 'sim: New-NetFirewallRule with an empty Name or DisplayName'
    }
    $protocol = ConvertTo-SimProtocol -Protocol $Rule.Protocol
    $object = New-SimFirewallRuleObject -Name ([string] $Rule.Name) -DisplayName ([string] $Rule.DisplayName) -Description ([string] $Rule.Description) `
        -Group '' -DisplayGroup '' -Enabled (-not $Rule.ContainsKey('Enabled') -or [bool] $Rule.Enabled) -Direction 'Inbound' -Action 'Allow' -ProfileText (ConvertTo-SimProfileText -Value $Rule.Profile) `
        -Protocol $protocol -LocalPort (ConvertTo-SimLocalPort -Port $Rule['LocalPort'] -Protocol $protocol) `
        -Program $(if ($Rule['Program']) { [string] $Rule['Program'] } else { 'Any' }) `
        -Service $(if ($Rule['Service']) { [string] $Rule['Service'] } else { 'Any' }) `
        -RemoteAddress (ConvertTo-SimRemoteAddress -Address $Rule.RemoteAddress)
    if ($null -ne (Find-SimFirewallRule -Name $object.Name)) {
        throw [System.IO.IOException]::new('Cannot create a file when that file already exists.')
    }
    $script:Sim.Firewall[$object.Name] = $object
}

function Remove-DcomcOsFirewallRule {
    <# A missing rule is no error (the real function asks with -ErrorAction SilentlyContinue). #>
    param([Parameter(Mandatory = $true)] [string] $Name)
    Invoke-SimGate -Operation 'Remove-DcomcOsFirewallRule'
    Assert-SimElevated -Operation 'Remove-DcomcOsFirewallRule'
    $rule = Find-SimFirewallRule -Name $Name
    if ($null -ne $rule) {
        $script:Sim.Firewall.Remove($rule.Name)
    }
}

function Get-DcomcOsFirewallGroup {
    <# The rules of a group given by its resource string (@FirewallAPI.dll,-32752: the same on
       every language), each @{ Name; Enabled; Profile }. Get-NetFirewallRule -Group takes
       wildcards: a group string with * ? [ is refused. #>
    param([Parameter(Mandatory = $true)] [string] $Group)
    Invoke-SimGate -Operation 'Get-DcomcOsFirewallGroup'
    if ($Group.IndexOfAny('*?['.ToCharArray()) -ge 0) {
        throw ('sim: wildcard characters in the group "{0}"' -f $Group)
    }
    $rules = @($script:Sim.Firewall.Values | Where-Object -FilterScript { $_.Group -ne '' -and $_.Group -eq $Group })
    return , @(foreach ($rule in $rules) { @{ Name = [string] $rule.Name; Enabled = [bool] $rule.Enabled; Profile = [string] $rule.Profile } })
}

function Set-DcomcOsFirewallRuleEnabled {
    <# Enable-/Disable-NetFirewallRule -Name: a missing rule is a CIM "not found" error. #>
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [bool] $Enabled)
    Invoke-SimGate -Operation 'Set-DcomcOsFirewallRuleEnabled'
    Assert-SimElevated -Operation 'Set-DcomcOsFirewallRuleEnabled'
    $rule = Find-SimFirewallRule -Name $Name
    if ($null -eq $rule) {
        throw ("No MSFT_NetFirewallRule objects found with property 'Name' equal to '{0}'.  Verify the value of the property and retry." -f $Name)
    }
    $rule.Enabled = $Enabled
}

# --- this process, the console, time -----------------------------------------------------------------

function Test-DcomcOsElevated {
    Invoke-SimGate -Operation 'Test-DcomcOsElevated'
    return [bool] $script:Sim.Elevated
}

function Test-DcomcOsInteractive {
    Invoke-SimGate -Operation 'Test-DcomcOsInteractive'
    return [bool] $script:Sim.Interactive
}

function Read-DcomcOsSecret {
    <# The next answer of the queue (Add-SimSecretAnswer). Read-Host in a non-interactive
       session fails ("PowerShell is in NonInteractive mode"); an empty queue is a test bug. #>
    param([Parameter(Mandatory = $true)] [string] $Prompt)
    Invoke-SimGate -Operation 'Read-DcomcOsSecret'
    if (-not $script:Sim.Interactive) {
        throw [System.Management.Automation.PSInvalidOperationException]::new('PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.')
    }
    $script:Sim.SecretPrompts.Add($Prompt)
    if ($script:Sim.Secrets.Count -eq 0) {
        throw ('sim: no answer queued for the prompt "{0}" (Add-SimSecretAnswer)' -f $Prompt)
    }
    return $script:Sim.Secrets.Dequeue()
}

function Read-DcomcOsStdin {
    <# All of standard input, once: a second read is at its end (''). Unset: a real console
       would wait for the user; refused. #>
    Invoke-SimGate -Operation 'Read-DcomcOsStdin'
    if ($null -eq $script:Sim.Stdin) {
        throw 'sim: standard input was not set (Set-SimStdin); a console would wait for input'
    }
    if ($script:Sim.StdinRead) {
        return ''
    }
    $script:Sim.StdinRead = $true
    return [string] $script:Sim.Stdin
}

function Get-DcomcOsUtcNow {
    <# The simulated clock: each call returns the time, then advances it by ClockStep. #>
    Invoke-SimGate -Operation 'Get-DcomcOsUtcNow'
    $now = $script:Sim.Clock
    $script:Sim.Clock = $now.Add($script:Sim.ClockStep)
    return $now
}

# --- dcomc's folder under %ProgramData%: real files, simulated ACLs -----------------------------------
# <SimRoot>/ProgramData is a real folder. ACLs are simulated: folders created by
# New-DcomcOsSecureFolder are "secure" (SYSTEM and Administrators only; a file created in
# one inherits that); Add-SimPlantedItem creates items as a standard user could (ProgramData's
# default ACL lets users create folders and files), which are untrusted. ReplaceFile keeps the
# replaced file's ACL ("ReplaceFileW"), and a moved folder keeps its own.

function Get-SimFullPath {
    param([Parameter(Mandatory = $true)] [string] $Path)
    $full = [IO.Path]::GetFullPath($Path)
    $separator = [IO.Path]::DirectorySeparatorChar
    if ($full.Length -gt 1 -and $full.EndsWith($separator)) {
        $full = $full.TrimEnd($separator)
    }
    return $full
}

function Test-SimItemExists {
    param([Parameter(Mandatory = $true)] [string] $Path)
    return ([IO.File]::Exists($Path) -or [IO.Directory]::Exists($Path))
}

function Test-SimInSecureFolder {
    # Is the item a secure folder, or inside one (so that only administrators may open it)?
    param([Parameter(Mandatory = $true)] [string] $FullPath)
    $current = $FullPath
    while ($current) {
        if ($script:Sim.SecureFolders.Contains($current)) {
            return $true
        }
        $parent = [IO.Path]::GetDirectoryName($current)
        if ($parent -eq $current) {
            break
        }
        $current = $parent
    }
    return $false
}

function Assert-SimFileAccess {
    # A filtered (non-elevated) token opens nothing inside the secure folders (their ACL lists
    # SYSTEM and Administrators only): "Access to the path ... is denied."
    param([Parameter(Mandatory = $true)] [string] $FullPath)
    if (-not $script:Sim.Elevated -and (Test-SimInSecureFolder -FullPath $FullPath)) {
        throw [System.UnauthorizedAccessException]::new(("Access to the path '{0}' is denied." -f $FullPath))
    }
}

function Set-SimNewItemTrust {
    # A new item inherits its folder's ACL: untrusted inside an untrusted folder.
    param([Parameter(Mandatory = $true)] [string] $FullPath)
    $parent = [IO.Path]::GetDirectoryName($FullPath)
    if ($script:Sim.Untrusted.Contains($parent)) {
        [void] $script:Sim.Untrusted.Add($FullPath)
    }
}

function Move-SimPathSet {
    # After a folder moves, the paths recorded below it move too.
    param([Parameter(Mandatory = $true)] $Set, [Parameter(Mandatory = $true)] [string] $From, [Parameter(Mandatory = $true)] [string] $To)
    $separator = [IO.Path]::DirectorySeparatorChar
    foreach ($path in @($Set)) {
        if ($path -eq $From -or $path.StartsWith($From + $separator, [StringComparison]::OrdinalIgnoreCase)) {
            [void] $Set.Remove($path)
            [void] $Set.Add($To + $path.Substring($From.Length))
        }
    }
}

function Test-SimTrustedItem {
    # Exists, is no link (reparse point), and was not created by a standard user.
    param([Parameter(Mandatory = $true)] [string] $FullPath)
    if (-not (Test-SimItemExists -Path $FullPath)) {
        return $false
    }
    $item = Get-Item -LiteralPath $FullPath -Force
    if ($item.Attributes -band [IO.FileAttributes]::ReparsePoint) {
        return $false
    }
    return (-not $script:Sim.Untrusted.Contains($FullPath))
}

function Get-DcomcOsDataRoot {
    Invoke-SimGate -Operation 'Get-DcomcOsDataRoot'
    return Join-Path -Path $script:SimRoot -ChildPath (Join-Path -Path 'ProgramData' -ChildPath 'dcomc')
}

function Get-SimDataRoot {
    return Join-Path -Path $script:SimRoot -ChildPath (Join-Path -Path 'ProgramData' -ChildPath 'dcomc')
}

function Test-DcomcOsTrustedItem {
    <# One item: exists, is no link, and was not created by a standard user (simulated ACLs;
       the engine walks the folders above it). #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    Invoke-SimGate -Operation 'Test-DcomcOsTrustedItem'
    $full = Get-SimFullPath -Path $Path
    Assert-SimFileAccess -FullPath $full
    return (Test-SimTrustedItem -FullPath $full)
}

function New-DcomcOsSecureFolder {
    <# One folder under dcomc's root whose parent exists, created secure (its ACL is set with
       the creation: it is trusted at once). Setting the owner to Administrators needs an
       administrator token. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    Invoke-SimGate -Operation 'New-DcomcOsSecureFolder'
    $root = Get-SimDataRoot
    $full = Get-SimFullPath -Path $Path
    $separator = [IO.Path]::DirectorySeparatorChar
    if ($full -ne $root -and -not $full.StartsWith($root + $separator)) {
        throw ('sim: {0} is not under dcomc''s root {1}' -f $full, $root)
    }
    if (Test-SimItemExists -Path $full) {
        throw ('sim: {0} exists already' -f $full)
    }
    $parent = Split-Path -Path $full -Parent
    if ($full -ne $root -and -not (Test-SimItemExists -Path $parent)) {
        throw ('sim: the parent of {0} does not exist' -f $full)
    }
    if (-not $script:Sim.Elevated) {
        throw [System.UnauthorizedAccessException]::new('Attempted to perform an unauthorized operation.')
    }
    $null = [IO.Directory]::CreateDirectory($full)
    [void] $script:Sim.SecureFolders.Add($full)
    [void] $script:Sim.Untrusted.Remove($full)
}

function Test-DcomcOsPath {
    <# Test-Path: an item inside a secure folder is invisible without elevation (Test-Path says
       $false when it may not look). #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    Invoke-SimGate -Operation 'Test-DcomcOsPath'
    $parent = [IO.Path]::GetDirectoryName((Get-SimFullPath -Path $Path))
    if (-not $script:Sim.Elevated -and $parent -and (Test-SimInSecureFolder -FullPath $parent)) {
        return $false
    }
    return (Test-Path -LiteralPath $Path)
}

function Get-DcomcOsChildFolder {
    <# The names of the folders in a folder (NTFS lists them sorted; a missing folder throws). #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    Invoke-SimGate -Operation 'Get-DcomcOsChildFolder'
    Assert-SimFileAccess -FullPath (Get-SimFullPath -Path $Path)
    if (-not [IO.Directory]::Exists($Path)) {
        throw [System.Management.Automation.ItemNotFoundException]::new(("Cannot find path '{0}' because it does not exist." -f $Path))
    }
    $names = [string[]] @([IO.Directory]::GetDirectories($Path) | ForEach-Object -Process { [IO.Path]::GetFileName($_) })
    [Array]::Sort($names, [StringComparer]::OrdinalIgnoreCase)
    return , $names
}

function Write-DcomcOsFile {
    <# UTF-8 without BOM; a whole file is written beside and renamed over (never half a file). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Text, [switch] $Append)
    Invoke-SimGate -Operation 'Write-DcomcOsFile'
    $full = Get-SimFullPath -Path $Path
    Assert-SimFileAccess -FullPath $full
    $existed = [IO.File]::Exists($full)
    $encoding = [Text.UTF8Encoding]::new($false)
    if ($Append) {
        [IO.File]::AppendAllText($full, $Text, $encoding)
    }
    else {
        $temp = $full + '.tmp'
        [IO.File]::WriteAllText($temp, $Text, $encoding)
        [IO.File]::Move($temp, $full, $true)
    }
    if (-not $existed) {
        Set-SimNewItemTrust -FullPath $full
    }
}

function Read-DcomcOsFile {
    param([Parameter(Mandatory = $true)] [string] $Path)
    Invoke-SimGate -Operation 'Read-DcomcOsFile'
    Assert-SimFileAccess -FullPath (Get-SimFullPath -Path $Path)
    return [IO.File]::ReadAllText($Path, [Text.Encoding]::UTF8)
}

function Copy-DcomcOsFile {
    <# File.Copy(overwrite): a new copy inherits its folder's ACL. Copying over an untrusted
       file: which ACL the result has is not known here, refused. #>
    param([Parameter(Mandatory = $true)] [string] $Source, [Parameter(Mandatory = $true)] [string] $Destination)
    Invoke-SimGate -Operation 'Copy-DcomcOsFile'
    $from = Get-SimFullPath -Path $Source
    $to = Get-SimFullPath -Path $Destination
    Assert-SimFileAccess -FullPath $from
    Assert-SimFileAccess -FullPath $to
    $existed = [IO.File]::Exists($to)
    if ($existed -and $script:Sim.Untrusted.Contains($to)) {
        throw ('sim: copying over the untrusted file {0}: the resulting ACL is not known' -f $to)
    }
    [IO.File]::Copy($from, $to, $true)
    if (-not $existed) {
        Set-SimNewItemTrust -FullPath $to
    }
}

function Rename-DcomcOsFolder {
    <# Directory.Move to a sibling; the folder keeps its ACL (and its secure or untrusted marks). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $NewName)
    Invoke-SimGate -Operation 'Rename-DcomcOsFolder'
    if ($NewName.IndexOfAny([char[]] @('\', '/')) -ge 0) {
        throw ('sim: a new folder name with a path separator moves the folder elsewhere: {0}' -f $NewName)
    }
    $from = Get-SimFullPath -Path $Path
    $to = Join-Path -Path (Split-Path -Path $from -Parent) -ChildPath $NewName
    Assert-SimFileAccess -FullPath $from
    [IO.Directory]::Move($from, $to)
    Move-SimPathSet -Set $script:Sim.Untrusted -From $from -To $to
    Move-SimPathSet -Set $script:Sim.SecureFolders -From $from -To $to
}

function Write-DcomcOsApplyRecord {
    <# The engine's record of its last Apply in the site's key (the real function writes two
       registry values): one operation, so that tests can tell it from the configuration. #>
    param([Parameter(Mandatory = $true)] [string] $Site, [Parameter(Mandatory = $true)] [int] $Result, [Parameter(Mandatory = $true)] [string] $Time)
    Invoke-SimGate -Operation 'Write-DcomcOsApplyRecord'
    Assert-SimElevated -Operation 'Write-DcomcOsApplyRecord'
    Set-SimRegistryValue -Path ('SOFTWARE\dcomc\' + $Site) -Name 'LastApplyResult' -Type 'DWord' -Data $Result -View 'Registry64'
    Set-SimRegistryValue -Path ('SOFTWARE\dcomc\' + $Site) -Name 'LastApplyTime' -Type 'String' -Data $Time -View 'Registry64'
}

function Remove-DcomcOsApplyRecord {
    <# The two values, then the site's key and dcomc's key when empty (as the real function). #>
    param([Parameter(Mandatory = $true)] [string] $Site)
    Invoke-SimGate -Operation 'Remove-DcomcOsApplyRecord'
    Assert-SimElevated -Operation 'Remove-DcomcOsApplyRecord'
    $names = Resolve-SimRegistryPath -Path ('SOFTWARE\dcomc\' + $Site) -View 'Registry64'
    $node = Get-SimRegistryNode -Names $names
    if ($null -eq $node) {
        return
    }
    foreach ($name in @('LastApplyResult', 'LastApplyTime')) {
        if ($node.Values.Contains($name)) { $node.Values.Remove($name) }
    }
    for ($depth = $names.Count; $depth -ge $names.Count - 1; $depth--) {
        $key = Get-SimRegistryNode -Names @($names | Select-Object -First $depth)
        $parent = Get-SimRegistryNode -Names @($names | Select-Object -First ($depth - 1))
        if ($null -ne $key -and $key.Values.Count -eq 0 -and $key.Keys.Count -eq 0) {
            $parent.Keys.Remove($names[$depth - 1])
        }
    }
}

function Export-DcomcOsSystemBackup {
    <# Placeholders for reg export (3 keys), secedit /export and netsh advfirewall export; returns
       one warning per copy that failed: all five when the folder is missing or closed to this
       token (the tools' exit codes), plus the warnings a test set (Set-SimBackupWarning). #>
    param([Parameter(Mandatory = $true)] [string] $Folder)
    Invoke-SimGate -Operation 'Export-DcomcOsSystemBackup'
    $full = Get-SimFullPath -Path $Folder
    $keys = @('HKLM\SOFTWARE\Microsoft\Ole', 'HKLM\SYSTEM\CurrentControlSet\Control\Lsa', 'HKLM\SOFTWARE\Classes\AppID')
    if (-not [IO.Directory]::Exists($full) -or (-not $script:Sim.Elevated -and (Test-SimInSecureFolder -FullPath $full))) {
        $warnings = @($keys | ForEach-Object -Process { 'reg export {0} failed with exit code 1' -f $_ })
        $warnings += 'secedit /export failed with exit code 1'
        $warnings += 'netsh advfirewall export failed with exit code 1'
        return , $warnings
    }
    $files = [ordered]@{}
    for ($i = 0; $i -lt $keys.Count; $i++) {
        $files[('registry-{0}.reg' -f ($i + 1))] = "Windows Registry Editor Version 5.00`r`n`r`n; simulated export of $($keys[$i])`r`n"
    }
    $files['policy.inf'] = "[Unicode]`r`nUnicode=yes`r`n; simulated secedit /export`r`n"
    $files['firewall.wfw'] = 'simulated netsh advfirewall export'
    foreach ($name in $files.Keys) {
        $path = Join-Path -Path $full -ChildPath $name
        $existed = [IO.File]::Exists($path)
        [IO.File]::WriteAllText($path, $files[$name])
        if (-not $existed) {
            Set-SimNewItemTrust -FullPath $path
        }
    }
    return , @($script:Sim.BackupWarnings)
}

# --- Authenticode signatures (Get-AuthenticodeSignature): real files, simulated signatures --------
# A test marks a file as signed (Set-SimFileSignature): by a certificate's thumbprint, with the
# status Windows would report for it on this PC (Valid; NotTrusted when the chain ends in a root
# this PC does not trust; UnknownError, e.g. an expired certificate without a timestamp, as
# MshSignature.cs maps WinVerifyTrust's errors to SignatureStatus). The mark keeps the file's
# SHA-256: a file whose bytes changed after it was marked reports HashMismatch, as Windows does
# when the content no longer matches its signature. A file never marked is NotSigned, unless it
# carries a real signature block, which this simulation cannot verify: refused (STRICT). The
# marks live in $script:Sim.Signatures (full path -> mark), so Reset-SimWindows forgets them.

$script:SimOperations += @('Get-DcomcOsFileSignature', 'Read-DcomcOsSignedFile')

function Get-SimFileSha256 {
    param([Parameter(Mandatory = $true)] [string] $FullPath)
    return Get-SimBytesSha256 -Bytes ([IO.File]::ReadAllBytes($FullPath))
}

function Get-SimBytesSha256 {
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [byte[]] $Bytes)
    $sha = [Security.Cryptography.SHA256]::Create()
    try {
        return [BitConverter]::ToString($sha.ComputeHash($Bytes)).Replace('-', '')
    }
    finally {
        $sha.Dispose()
    }
}

function Get-SimSignatureMarks {
    if (-not $script:Sim.ContainsKey('Signatures')) {
        $script:Sim['Signatures'] = New-SimMap
    }
    return , $script:Sim['Signatures']
}

function Set-SimFileSignature {
    <# Marks an existing file as signed by -Thumbprint (40 hex digits, -Subject its certificate's
       subject) with the -Status Windows reports here (Valid by default; HashMismatch: the file
       was changed after signing). -Status NotSigned removes the mark. #>
    param(
        [Parameter(Mandatory = $true)] [string] $Path,
        [ValidateSet('Valid', 'NotSigned', 'HashMismatch', 'NotTrusted', 'UnknownError')] [string] $Status = 'Valid',
        [string] $Thumbprint,
        [string] $Subject = 'CN=dcomc test signer'
    )
    $full = Get-SimFullPath -Path $Path
    if (-not [IO.File]::Exists($full)) {
        throw ('sim: no file {0} to mark as signed' -f $full)
    }
    $marks = Get-SimSignatureMarks
    if ($Status -eq 'NotSigned') {
        $marks.Remove($full)
        return
    }
    if ($Thumbprint -notmatch '^[0-9A-Fa-f]{40}$') {
        throw ('sim: a signature has a signer: -Thumbprint is 40 hex digits (SHA-1), not {0}' -f $Thumbprint)
    }
    $marks[$full] = @{ Status = $Status; Thumbprint = $Thumbprint.ToUpperInvariant(); Subject = $Subject; Sha256 = (Get-SimFileSha256 -FullPath $full) }
}

function Get-DcomcOsFileSignature {
    <# The file's mark, HashMismatch when its bytes changed since; NotSigned without a mark. A
       missing file throws as Get-AuthenticodeSignature -ErrorAction Stop does (path not found). #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    Invoke-SimGate -Operation 'Get-DcomcOsFileSignature'
    $full = Get-SimFullPath -Path $Path
    Assert-SimFileAccess -FullPath $full
    if (-not [IO.File]::Exists($full)) {
        throw [System.Management.Automation.ItemNotFoundException]::new(("Cannot find path '{0}' because it does not exist." -f $full))
    }
    return Get-SimSignature -FullPath $full -Bytes ([IO.File]::ReadAllBytes($full))
}

function Read-DcomcOsSignedFile {
    <# The file's bytes and the signature of those bytes (the real one holds the file open,
       sharing read access only, from the read to the signature: nothing else writes it in
       between, so the two are of one content here too). What another process does to the
       file after the handle is closed: $script:Sim.AfterSignedRead, a test's script block
       given the full path, runs then. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    Invoke-SimGate -Operation 'Read-DcomcOsSignedFile'
    $full = Get-SimFullPath -Path $Path
    Assert-SimFileAccess -FullPath $full
    if (-not [IO.File]::Exists($full)) {
        throw [System.IO.FileNotFoundException]::new(("Could not find file '{0}'." -f $full), $full)
    }
    $bytes = [IO.File]::ReadAllBytes($full)
    $result = @{ Bytes = $bytes; Signature = (Get-SimSignature -FullPath $full -Bytes $bytes) }
    if ($script:Sim.ContainsKey('AfterSignedRead')) {
        & $script:Sim['AfterSignedRead'] $full
    }
    return $result
}

function Get-SimSignature {
    <# The signature of these bytes of the file: its mark (HashMismatch when they are not the
       bytes marked), NotSigned without one; refused for a real signature block. #>
    param([Parameter(Mandatory = $true)] [string] $FullPath, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [byte[]] $Bytes)
    $mark = (Get-SimSignatureMarks)[$FullPath]
    if ($null -eq $mark) {
        if ([Text.Encoding]::UTF8.GetString($Bytes).Contains('# SIG # Begin signature block')) {
            throw ('sim: {0} carries a real signature block, which the simulation cannot verify: mark it with Set-SimFileSignature' -f $FullPath)
        }
        return @{ Status = 'NotSigned'; SignerThumbprint = $null; Subject = $null; StatusMessage = 'The file is not digitally signed.' }
    }
    $status = $mark.Status
    if ((Get-SimBytesSha256 -Bytes $Bytes) -ne $mark.Sha256) {
        $status = 'HashMismatch'
    }
    $messages = @{
        Valid        = 'Signature verified.'
        HashMismatch = 'The contents of the file might have been changed by an unauthorized user or process, because the hash of the file does not match the hash stored in the digital signature.'
        NotTrusted   = 'A certificate chain processed, but terminated in a root certificate which is not trusted by the trust provider.'
        UnknownError = 'A required certificate is not within its validity period when verifying against the current system clock or the timestamp in the signed file.'
    }
    return @{ Status = $status; SignerThumbprint = $mark.Thumbprint; Subject = $mark.Subject; StatusMessage = $messages[$status] }
}

# --- internal helpers of 10-System.ps1: never called with the simulation loaded ---------------------

function Open-DcomcOsRegistryKey { throw 'sim: Open-DcomcOsRegistryKey is internal to 10-System.ps1' }
function Get-DcomcOsAdsi { throw 'sim: Get-DcomcOsAdsi is internal to 10-System.ps1' }
function Get-DcomcOsAdsiSid { throw 'sim: Get-DcomcOsAdsiSid is internal to 10-System.ps1' }
function Set-DcomcOsAdsiPassword { throw 'sim: Set-DcomcOsAdsiPassword is internal to 10-System.ps1' }
function Invoke-DcomcOsSecedit { throw 'sim: Invoke-DcomcOsSecedit is internal to 10-System.ps1' }
function New-DcomcOsTempFolder { throw 'sim: New-DcomcOsTempFolder is internal to 10-System.ps1' }
function Get-DcomcOsServiceObject { throw 'sim: Get-DcomcOsServiceObject is internal to 10-System.ps1' }
function Get-DcomcOsMemberPath { throw 'sim: Get-DcomcOsMemberPath is internal to 10-System.ps1' }
function New-DcomcOsFolderSecurity { throw 'sim: New-DcomcOsFolderSecurity is internal to 10-System.ps1' }
function Set-DcomcOsUserRightHolder { throw 'sim: Set-DcomcOsUserRightHolder is internal to 10-System.ps1' }

# --- a fresh Windows 10 PC ---------------------------------------------------------------------------

# Windows 10/11 default machine limits (facts §2.1, SECONDARY: observed dumps; with the lpacCom
# capability ACE). Encoded by ConvertTo-SimSdBinary; the tests check the bytes against
# dcomc.windows.sdbinary.to_binary(parse_sddl(...)) of the compiler.
$script:SimDefaultLaunchLimit = 'O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCSW;;;WD)(A;;CCDCLCSWRP;;;S-1-5-32-562)(A;;CCDCLCSWRP;;;LU)(A;;CCDCSW;;;AC)(A;;CCDCSW;;;S-1-15-3-1024-2405443489-874036122-4286035555-1823921565-1746547431-2453885448-3625952902-991631256)'
$script:SimDefaultAccessLimit = 'O:BAG:BAD:(A;;CCDCLC;;;WD)(A;;CCDC;;;AN)(A;;CCDCLC;;;S-1-5-32-562)(A;;CCDCLC;;;LU)(A;;CCDC;;;AC)(A;;CCDC;;;S-1-15-3-1024-2405443489-874036122-4286035555-1823921565-1746547431-2453885448-3625952902-991631256)'
$script:SimDefaultLaunchPermission = 'O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;SY)(A;;CCDCLCSWRP;;;IU)'

function Initialize-SimRegistry {
    <# HKLM of a fresh PC: Ole with EnableDCOM 'Y' (facts §2: ships with Y, SECONDARY), the
       observed default limits and DefaultLaunchPermission (facts §2.1), no
       LegacyAuthenticationLevel (absent = 2, CONNECT: "LegacyAuthenticationLevel" page) and no
       DefaultAccessPermission (absent by default, facts §2); Lsa with ForceGuest 0 and
       EveryoneIncludesAnonymous 0 (their documented defaults, facts §7.1); Classes with AppID,
       CLSID in both views; no DCOM policy (facts §7.1: Not defined). #>
    $script:Sim.Registry = New-SimRegistryNode -Name 'HKEY_LOCAL_MACHINE'
    foreach ($key in @('SOFTWARE\Classes\AppID', 'SOFTWARE\Classes\CLSID', 'SOFTWARE\Classes\Wow6432Node\CLSID', 'SOFTWARE\Microsoft\Rpc', 'SOFTWARE\Policies\Microsoft\Windows', 'SYSTEM\CurrentControlSet\Services')) {
        $null = Get-SimRegistryNode -Names $key.Split('\') -Create
    }
    $ole = 'SOFTWARE\Microsoft\Ole'
    Set-SimRegistryValue -Path $ole -Name 'EnableDCOM' -Type 'String' -Data 'Y'
    Set-SimRegistryValue -Path $ole -Name 'MachineLaunchRestriction' -Type 'Binary' -Data (ConvertTo-SimSdBinary -Sddl $script:SimDefaultLaunchLimit)
    Set-SimRegistryValue -Path $ole -Name 'MachineAccessRestriction' -Type 'Binary' -Data (ConvertTo-SimSdBinary -Sddl $script:SimDefaultAccessLimit)
    Set-SimRegistryValue -Path $ole -Name 'DefaultLaunchPermission' -Type 'Binary' -Data (ConvertTo-SimSdBinary -Sddl $script:SimDefaultLaunchPermission)
    $lsa = 'SYSTEM\CurrentControlSet\Control\Lsa'
    Set-SimRegistryValue -Path $lsa -Name 'ForceGuest' -Type 'DWord' -Data 0
    Set-SimRegistryValue -Path $lsa -Name 'EveryoneIncludesAnonymous' -Type 'DWord' -Data 0
    Set-SimRegistryValue -Path $lsa -Name 'LimitBlankPasswordUse' -Type 'DWord' -Data 1
    Set-SimRegistryValue -Path $lsa -Name 'RestrictAnonymous' -Type 'DWord' -Data 0
    Set-SimRegistryValue -Path $lsa -Name 'RestrictAnonymousSAM' -Type 'DWord' -Data 1
    Set-SimRegistryValue -Path 'SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System' -Name 'EnableLUA' -Type 'DWord' -Data 1
}

function Initialize-SimAccounts {
    <# The SAM of a fresh PC: the builtin groups; Administrator (500) and Guest (501) disabled,
       DefaultAccount (503), WDAGUtilityAccount (504) (flags SECONDARY); Administrators holds
       Administrator, Users holds INTERACTIVE and Authenticated Users, Guests holds Guest. #>
    $names = (Get-SimLocale).Names
    $script:Sim.Users = New-SimMap
    $script:Sim.Groups = New-SimMap
    $script:Sim.DomainAccounts = New-SimMap
    foreach ($sid in $script:SimBuiltinGroups.Keys) {
        $name = $names[$sid]
        $script:Sim.Groups[$name] = @{ Name = $name; Sid = $sid; Rid = [int] $sid.Split('-')[-1]; BuiltIn = $true; Description = $script:SimBuiltinGroups[$sid]; Members = (New-SimList) }
    }
    $builtinUsers = @(
        @{ Rid = 500; Flags = 0x10203; Description = 'Built-in account for administering the computer/domain' },
        @{ Rid = 501; Flags = 0x10263; Description = 'Built-in account for guest access to the computer/domain' },
        @{ Rid = 503; Flags = 0x10223; Description = 'A user account managed by the system.' },
        @{ Rid = 504; Flags = 0x10203; Description = 'A user account managed and used by the system for Windows Defender Application Guard scenarios.' }
    )
    foreach ($entry in $builtinUsers) {
        $name = $names[[string] $entry.Rid]
        $script:Sim.Users[$name] = @{ Name = $name; Sid = ('{0}-{1}' -f $script:Sim.MachineSid, $entry.Rid); Rid = $entry.Rid; Description = $entry.Description; Flags = $entry.Flags; PasswordExpired = $false; PasswordHash = $null }
    }
    $script:Sim.Groups[$names['S-1-5-32-544']].Members.Add('{0}-500' -f $script:Sim.MachineSid)
    $script:Sim.Groups[$names['S-1-5-32-545']].Members.Add('S-1-5-4')
    $script:Sim.Groups[$names['S-1-5-32-545']].Members.Add('S-1-5-11')
    $script:Sim.Groups[$names['S-1-5-32-546']].Members.Add('{0}-501' -f $script:Sim.MachineSid)
}

function Initialize-SimRights {
    <# Defaults on a Windows 10 workstation ("User Rights Assignment" pages: "Access this
       computer from the network", "Allow log on locally", "Allow log on through Remote Desktop
       Services", "Log on as a batch job", "Deny access to this computer from the network",
       "Deny log on locally", "Bypass traverse checking", "Impersonate a client after
       authentication"); SeServiceLogonRight = NT SERVICE\ALL SERVICES (facts §7.2, SECONDARY). #>
    $guest = '{0}-501' -f $script:Sim.MachineSid
    $defaults = [ordered]@{
        'SeNetworkLogonRight'           = @('S-1-1-0', 'S-1-5-32-544', 'S-1-5-32-545', 'S-1-5-32-551')
        'SeInteractiveLogonRight'       = @($guest, 'S-1-5-32-544', 'S-1-5-32-545', 'S-1-5-32-551')
        'SeRemoteInteractiveLogonRight' = @('S-1-5-32-544', 'S-1-5-32-555')
        'SeBatchLogonRight'             = @('S-1-5-32-544', 'S-1-5-32-551', 'S-1-5-32-559')
        'SeServiceLogonRight'           = @('S-1-5-80-0')
        'SeDenyNetworkLogonRight'       = @($guest)
        'SeDenyInteractiveLogonRight'   = @($guest)
        'SeChangeNotifyPrivilege'       = @('S-1-1-0', 'S-1-5-19', 'S-1-5-20', 'S-1-5-32-544', 'S-1-5-32-545', 'S-1-5-32-551')
        'SeImpersonatePrivilege'        = @('S-1-5-19', 'S-1-5-20', 'S-1-5-32-544', 'S-1-5-6')
    }
    $script:Sim.Rights = New-SimMap -CaseSensitive
    foreach ($right in $defaults.Keys) {
        $script:Sim.Rights[$right] = New-SimList -Items $defaults[$right]
    }
}

function New-SimServiceObject {
    param([string] $Name, [string] $DisplayName, [string] $StartName, [string] $State, [string] $StartMode, [string[]] $DependsOn = @(), $PasswordHash = $null)
    return @{ Name = $Name; DisplayName = $DisplayName; StartName = $StartName; State = $State; StartMode = $StartMode; PasswordHash = $PasswordHash; DependsOn = @($DependsOn) }
}

function Initialize-SimServices {
    <# Services of a fresh PC that the engine may meet: the network discovery services (facts
       §8.4) Manual and Stopped as NT AUTHORITY\LocalService; upnphost depends on SSDPSRV
       (SECONDARY); a few running system services. #>
    $script:Sim.Services = New-SimMap
    $services = @(
        (New-SimServiceObject -Name 'RpcSs' -DisplayName 'Remote Procedure Call (RPC)' -StartName 'NT AUTHORITY\NetworkService' -State 'Running' -StartMode 'Auto'),
        (New-SimServiceObject -Name 'Dnscache' -DisplayName 'DNS Client' -StartName 'NT AUTHORITY\NetworkService' -State 'Running' -StartMode 'Auto' -DependsOn @('RpcSs')),
        (New-SimServiceObject -Name 'MpsSvc' -DisplayName 'Windows Defender Firewall' -StartName 'NT AUTHORITY\LocalService' -State 'Running' -StartMode 'Auto' -DependsOn @('RpcSs')),
        (New-SimServiceObject -Name 'Winmgmt' -DisplayName 'Windows Management Instrumentation' -StartName 'LocalSystem' -State 'Running' -StartMode 'Auto' -DependsOn @('RpcSs')),
        (New-SimServiceObject -Name 'fdPHost' -DisplayName 'Function Discovery Provider Host' -StartName 'NT AUTHORITY\LocalService' -State 'Stopped' -StartMode 'Manual' -DependsOn @('RpcSs')),
        (New-SimServiceObject -Name 'FDResPub' -DisplayName 'Function Discovery Resource Publication' -StartName 'NT AUTHORITY\LocalService' -State 'Stopped' -StartMode 'Manual' -DependsOn @('RpcSs')),
        (New-SimServiceObject -Name 'SSDPSRV' -DisplayName 'SSDP Discovery' -StartName 'NT AUTHORITY\LocalService' -State 'Stopped' -StartMode 'Manual'),
        (New-SimServiceObject -Name 'upnphost' -DisplayName 'UPnP Device Host' -StartName 'NT AUTHORITY\LocalService' -State 'Stopped' -StartMode 'Manual' -DependsOn @('SSDPSRV'))
    )
    foreach ($service in $services) {
        $script:Sim.Services[$service.Name] = $service
    }
}

function Initialize-SimFirewall {
    <# The Network Discovery group (@FirewallAPI.dll,-32752, facts §8.4), all rules disabled as on
       a fresh PC. Rule names, ports and profile split SECONDARY (a Windows 11 default dump): the
       base rule for Domain, Public (or Public, with a -NoScope copy for Domain open to any
       address), an -Active copy for Private; scoped rules limited to LocalSubnet. #>
    $script:Sim.Firewall = New-SimMap -CaseSensitive
    $displayGroup = @{ 'de-DE' = 'Netzwerkerkennung'; 'en-US' = 'Network Discovery'; 'fr-FR' = 'Découverte du réseau' }[$script:Sim.Locale]
    $svchost = '%SystemRoot%\system32\svchost.exe'
    # Id, label, direction, protocol, port, program, service, $true when the Domain copy is -NoScope
    $table = @(
        @('NETDIS-FDPHOST-In-UDP', 'WSD-In', 'Inbound', 'UDP', '3702', $svchost, 'fdphost', $false),
        @('NETDIS-FDRESPUB-WSD-In-UDP', 'Pub-WSD-In', 'Inbound', 'UDP', '3702', $svchost, 'fdrespub', $false),
        @('NETDIS-LLMNR-In-UDP', 'LLMNR-UDP-In', 'Inbound', 'UDP', '5355', $svchost, 'dnscache', $false),
        @('NETDIS-SSDPSrv-In-UDP', 'SSDP-In', 'Inbound', 'UDP', '1900', $svchost, 'Ssdpsrv', $false),
        @('NETDIS-NB_Name-In-UDP', 'NB-Name-In', 'Inbound', 'UDP', '137', 'System', 'Any', $true),
        @('NETDIS-NB_Datagram-In-UDP', 'NB-Datagram-In', 'Inbound', 'UDP', '138', 'System', 'Any', $true),
        @('NETDIS-UPnPHost-In-TCP', 'UPnP-In', 'Inbound', 'TCP', '2869', 'System', 'Any', $true),
        @('NETDIS-WSDEVNT-In-TCP', 'WSD Events-In', 'Inbound', 'TCP', '5357', 'System', 'Any', $true),
        @('NETDIS-WSDEVNTS-In-TCP', 'WSD EventsSecure-In', 'Inbound', 'TCP', '5358', 'System', 'Any', $true),
        @('NETDIS-FDPHOST-Out-UDP', 'WSD-Out', 'Outbound', 'UDP', 'Any', $svchost, 'fdphost', $false),
        @('NETDIS-LLMNR-Out-UDP', 'LLMNR-UDP-Out', 'Outbound', 'UDP', 'Any', $svchost, 'dnscache', $false),
        @('NETDIS-SSDPSrv-Out-UDP', 'SSDP-Out', 'Outbound', 'UDP', 'Any', $svchost, 'Ssdpsrv', $false),
        @('NETDIS-UPnPHost-Out-TCP', 'UPnPHost-Out', 'Outbound', 'TCP', 'Any', 'System', 'Any', $true)
    )
    foreach ($row in $table) {
        $copies = @(@{ Suffix = ''; Profile = 'Domain, Public'; Remote = 'LocalSubnet' }, @{ Suffix = '-Active'; Profile = 'Private'; Remote = 'LocalSubnet' })
        if ($row[7]) {
            $copies = @(@{ Suffix = ''; Profile = 'Public'; Remote = 'LocalSubnet' }, @{ Suffix = '-NoScope'; Profile = 'Domain'; Remote = 'Any' }, @{ Suffix = '-Active'; Profile = 'Private'; Remote = 'LocalSubnet' })
        }
        foreach ($copy in $copies) {
            $display = '{0} ({1})' -f $displayGroup, $row[1]
            $rule = New-SimFirewallRuleObject -Name ($row[0] + $copy.Suffix) -DisplayName $display -Description $display -Group '@FirewallAPI.dll,-32752' `
                -DisplayGroup $displayGroup -Enabled $false -Direction $row[2] -Action 'Allow' -ProfileText $copy.Profile -Protocol $row[3] `
                -LocalPort @($row[4]) -Program $row[5] -Service $row[6] -RemoteAddress @($copy.Remote)
            $script:Sim.Firewall[$rule.Name] = $rule
        }
    }
}

function Remove-SimWindows {
    # Deletes the simulation's temporary folder (tests call it when done).
    if ($script:SimRoot -and [IO.Directory]::Exists($script:SimRoot) -and [IO.Path]::GetFileName($script:SimRoot).StartsWith('dcomc-sim-')) {
        [IO.Directory]::Delete($script:SimRoot, $true)
    }
    $script:SimRoot = $null
}

function Reset-SimWindows {
    <# A fresh Windows 10 PC (German by default: localized names must never matter), with a new
       empty ProgramData, no faults and an empty call log. #>
    param(
        [ValidateSet('de-DE', 'en-US', 'fr-FR')] [string] $Locale = 'de-DE',
        [string] $ComputerName = 'SCADA01',
        [string] $MachineSid = 'S-1-5-21-3623811015-3361044348-30300820'
    )
    if ($MachineSid -notmatch '^S-1-5-21-\d{1,10}-\d{1,10}-\d{1,10}$') {
        throw ('sim: a machine SID is S-1-5-21-<three numbers>, not {0}' -f $MachineSid)
    }
    Assert-SimComputerName -Name $ComputerName
    Remove-SimWindows
    $parent = [IO.Path]::GetTempPath()
    if ($env:DCOMC_WORK -and [IO.Directory]::Exists($env:DCOMC_WORK)) {
        $parent = $env:DCOMC_WORK   # the pytest run's own temporary folder, removed by pytest
    }
    $root = Join-Path -Path $parent -ChildPath ('dcomc-sim-' + [guid]::NewGuid().ToString('N'))
    $null = [IO.Directory]::CreateDirectory((Join-Path -Path $root -ChildPath 'ProgramData'))
    $script:SimRoot = $root
    $script:Sim = @{
        Locale = @('de-DE', 'en-US', 'fr-FR') | Where-Object -FilterScript { $_ -eq $Locale }
        ComputerName = $ComputerName.ToUpperInvariant(); MachineSid = $MachineSid; NextRid = 1000
        Registry = $null; Users = $null; Groups = $null; DomainAccounts = $null; Rights = $null; Services = $null; Firewall = $null
        PasswordPolicy = @{ MinLength = 8; Complexity = $true }
        Elevated = $true; Interactive = $false
        Secrets = [System.Collections.Generic.Queue[System.Security.SecureString]]::new(); SecretPrompts = (New-SimList)
        Stdin = $null; StdinRead = $false
        Clock = [DateTime]::new(2026, 1, 5, 8, 0, 0, [DateTimeKind]::Utc); ClockStep = [TimeSpan]::FromSeconds(1)
        BackupWarnings = @(); Untrusted = (New-SimSet); SecureFolders = (New-SimSet)
    }
    Initialize-SimRegistry
    Initialize-SimAccounts
    Initialize-SimRights
    Initialize-SimServices
    Initialize-SimFirewall
    $script:SimCalls.Clear()
    $script:SimFaults.Clear()
}

# --- starting from other states ----------------------------------------------------------------------

function Assert-SimGuid {
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Guid, [Parameter(Mandatory = $true)] [string] $What)
    if ($Guid -notmatch '^\{[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}\}$') {
        throw ('sim: {0} must be a GUID in braces, not {1}' -f $What, $Guid)
    }
}

function Get-SimRegistryType {
    # The registry type of a test's value: byte[] Binary, int DWord, long QWord, string String,
    # string[] MultiString; or @{ Type; Data } to say it explicitly (ExpandString).
    param($Value)
    if ($Value -is [hashtable]) { return @{ Type = $Value.Type; Data = $Value.Data } }
    if ($Value -is [byte[]]) { return @{ Type = 'Binary'; Data = $Value } }
    if ($Value -is [int]) { return @{ Type = 'DWord'; Data = $Value } }
    if ($Value -is [long]) { return @{ Type = 'QWord'; Data = $Value } }
    if ($Value -is [string]) { return @{ Type = 'String'; Data = $Value } }
    if ($Value -is [string[]]) { return @{ Type = 'MultiString'; Data = $Value } }
    throw ('sim: cannot tell the registry type of a {0}' -f $(if ($null -eq $Value) { 'null' } else { $Value.GetType().Name }))
}

function Install-SimComServer {
    <# A registered COM server (facts §1.3): HKLM\SOFTWARE\Classes\<ProgId>\CLSID = {CLSID}; the
       CLSID key in the view of its bitness (32-bit: Classes\Wow6432Node\CLSID) with a ProgID
       subkey, LocalServer32 and an AppID value (none with -NoAppId); the AppID key (shared) with
       a friendly name and AppIdValues (name -> value, see Get-SimRegistryType). Without -AppId
       the AppID is the CLSID. #>
    param(
        [Parameter(Mandatory = $true)] [string] $ProgId,
        [Parameter(Mandatory = $true)] [string] $Clsid,
        [string] $AppId,
        [switch] $NoAppId,
        [ValidateSet(32, 64)] [int] $Bitness = 32,
        [hashtable] $AppIdValues = @{},
        [string] $LocalServer32 = 'C:\Program Files (x86)\Vendor\OpcServer.exe'
    )
    Assert-SimGuid -Guid $Clsid -What 'Clsid'
    if ($NoAppId -and ($AppId -or $AppIdValues.Count -gt 0)) {
        throw 'sim: -NoAppId with -AppId or -AppIdValues'
    }
    if (-not $AppId) {
        $AppId = $Clsid
    }
    Assert-SimGuid -Guid $AppId -What 'AppId'
    $view = @{ 32 = 'Registry32'; 64 = 'Registry64' }[$Bitness]
    Set-SimRegistryValue -Path ('SOFTWARE\Classes\{0}' -f $ProgId) -Name '' -Type 'String' -Data $ProgId
    Set-SimRegistryValue -Path ('SOFTWARE\Classes\{0}\CLSID' -f $ProgId) -Name '' -Type 'String' -Data $Clsid
    $class = 'SOFTWARE\Classes\CLSID\{0}' -f $Clsid
    Set-SimRegistryValue -Path $class -Name '' -Type 'String' -Data $ProgId -View $view
    Set-SimRegistryValue -Path ($class + '\ProgID') -Name '' -Type 'String' -Data $ProgId -View $view
    Set-SimRegistryValue -Path ($class + '\LocalServer32') -Name '' -Type 'String' -Data $LocalServer32 -View $view
    if ($NoAppId) {
        return
    }
    Set-SimRegistryValue -Path $class -Name 'AppID' -Type 'String' -Data $AppId -View $view
    $appKey = 'SOFTWARE\Classes\AppID\{0}' -f $AppId
    Set-SimRegistryValue -Path $appKey -Name '' -Type 'String' -Data $ProgId
    foreach ($name in $AppIdValues.Keys) {
        $typed = Get-SimRegistryType -Value $AppIdValues[$name]
        Set-SimRegistryValue -Path $appKey -Name $name -Type $typed.Type -Data $typed.Data
    }
}

function Install-SimService {
    <# An installed service. A StartName that is an account gets -Password stored (as if
       services.msc had set it). #>
    param(
        [Parameter(Mandatory = $true)] [string] $Name,
        [string] $StartName = 'LocalSystem',
        [ValidateSet('Running', 'Stopped')] [string] $State = 'Running',
        [ValidateSet('Auto', 'Manual', 'Disabled')] [string] $StartMode = 'Auto',
        [string] $DisplayName,
        [string[]] $DependsOn = @(),
        [System.Security.SecureString] $Password
    )
    if ($script:Sim.Services.Contains($Name)) {
        throw ('sim: the service {0} is already installed' -f $Name)
    }
    if (-not $DisplayName) {
        $DisplayName = $Name
    }
    $hash = $null
    if ($PSBoundParameters.ContainsKey('Password')) {
        $hash = Get-SimPasswordHash -Plain (ConvertFrom-SimSecureString -Secure $Password)
    }
    $script:Sim.Services[$Name] = New-SimServiceObject -Name $Name -DisplayName $DisplayName -StartName $StartName -State $State -StartMode $StartMode -DependsOn $DependsOn -PasswordHash $hash
}

function Add-SimDomainAccount {
    <# A domain account this PC can resolve (as if the PC were joined and the DC answered):
       'DOMAIN\name' with its SID; -Group for a domain group; -Password for a user that a
       service may log on as. #>
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [string] $Sid, [switch] $Group, [System.Security.SecureString] $Password)
    if ($Name -notmatch '^([^\\]+)\\([^\\]+)$') {
        throw ('sim: a domain account is DOMAIN\name, not {0}' -f $Name)
    }
    $domain = $Matches[1]
    $account = $Matches[2]
    $locale = Get-SimLocale
    if (@($script:Sim.ComputerName, $locale.Builtin, $locale.NtAuthority, 'NT SERVICE', 'BUILTIN', 'NT AUTHORITY') -contains $domain) {
        throw ('sim: {0} is not a domain' -f $domain)
    }
    if ($Sid -notmatch '^S-1-5-21-\d{1,10}-\d{1,10}-\d{1,10}-\d{1,10}$' -or $Sid.StartsWith($script:Sim.MachineSid + '-')) {
        throw ('sim: a domain account SID is S-1-5-21-<domain>-<rid> of another domain, not {0}' -f $Sid)
    }
    if ($script:Sim.DomainAccounts.Contains($Name) -or $null -ne (Find-SimPrincipalBySid -Sid $Sid)) {
        throw ('sim: {0} or {1} is already known' -f $Name, $Sid)
    }
    $hash = $null
    if ($PSBoundParameters.ContainsKey('Password')) {
        $hash = Get-SimPasswordHash -Plain (ConvertFrom-SimSecureString -Secure $Password)
    }
    $script:Sim.DomainAccounts[$Name] = @{ Domain = $domain; Name = $account; Sid = $Sid; IsGroup = [bool] $Group; PasswordHash = $hash }
}

function Set-SimPasswordPolicy {
    <# Default: at least 8 characters and complexity on - stricter than a stand-alone PC's
       documented default (complexity Disabled, minimum length 0: "Password must meet complexity
       requirements", "Minimum password length") and like a domain or baseline policy, so that
       tests catch passwords a managed plant PC refuses. -MinLength 0 -Complexity $false gives
       the stand-alone default. #>
    param([ValidateRange(0, 128)] [int] $MinLength = 8, [bool] $Complexity = $true)
    $script:Sim.PasswordPolicy = @{ MinLength = $MinLength; Complexity = $Complexity }
}

function Set-SimElevated {
    param([Parameter(Mandatory = $true)] [bool] $Elevated)
    $script:Sim.Elevated = $Elevated
}

function Set-SimInteractive {
    param([Parameter(Mandatory = $true)] [bool] $Interactive)
    $script:Sim.Interactive = $Interactive
}

function Set-SimStdin {
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Text)
    $script:Sim.Stdin = $Text
    $script:Sim.StdinRead = $false
}

function Add-SimSecretAnswer {
    # Queues answers for Read-DcomcOsSecret: SecureStrings, or -Text for convenience.
    param([System.Security.SecureString[]] $Secret = @(), [string[]] $Text = @())
    foreach ($each in $Secret) {
        $script:Sim.Secrets.Enqueue($each)
    }
    foreach ($each in $Text) {
        $script:Sim.Secrets.Enqueue((ConvertTo-SecureString -String $each -AsPlainText -Force))
    }
}

function Assert-SimComputerName {
    # A NetBIOS computer name: 1-15 characters, no spaces or the characters Windows forbids.
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name)
    if ($Name -notmatch '^[A-Za-z0-9][A-Za-z0-9-]{0,14}$') {
        throw ('sim: {0} is not a NetBIOS computer name this simulation accepts' -f $Name)
    }
}

function Set-SimComputerName {
    # Local accounts are named COMPUTER\name after it (their domain is the computer name).
    param([Parameter(Mandatory = $true)] [string] $Name)
    Assert-SimComputerName -Name $Name
    $script:Sim.ComputerName = $Name.ToUpperInvariant()
}

function Set-SimClock {
    param([Parameter(Mandatory = $true)] [DateTime] $Time, [TimeSpan] $Step = [TimeSpan]::FromSeconds(1))
    if ($Time.Kind -eq [DateTimeKind]::Local) {
        $Time = $Time.ToUniversalTime()
    }
    $script:Sim.Clock = [DateTime]::SpecifyKind($Time, [DateTimeKind]::Utc)   # unspecified = UTC
    $script:Sim.ClockStep = $Step
}

function Set-SimBackupWarning {
    param([AllowEmptyCollection()] [string[]] $Warning = @())
    $script:Sim.BackupWarnings = @($Warning)
}

function Add-SimPlantedItem {
    <# A file or folder created by a standard user (untrusted), with the missing folders above it
       (also untrusted: ProgramData lets users create folders). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [switch] $Folder, [string] $Text = 'planted by a standard user')
    $full = Get-SimFullPath -Path $Path
    $missing = @()
    $parent = [IO.Path]::GetDirectoryName($full)
    while (-not [IO.Directory]::Exists($parent)) {
        $missing = @($parent) + $missing
        $parent = [IO.Path]::GetDirectoryName($parent)
    }
    foreach ($each in $missing) {
        $null = [IO.Directory]::CreateDirectory($each)
        [void] $script:Sim.Untrusted.Add($each)
    }
    if ($Folder) {
        $null = [IO.Directory]::CreateDirectory($full)
    }
    else {
        [IO.File]::WriteAllText($full, $Text)
    }
    [void] $script:Sim.Untrusted.Add($full)
}

# --- capture (-Mode Capture): the read-only enumerations and a brownfield PC's state -----------------

$script:SimOperations += @('Get-DcomcOsRegistrySubKeyName', 'Get-DcomcOsLocalAccountName', 'Get-DcomcOsServiceList', 'Get-DcomcOsFirewallRuleList', 'Get-DcomcOsSystemInfo')
# "Win32_OperatingSystem" of the simulated PC: Windows 10 22H2, 64-bit.
$script:SimOs = @{ OsCaption = 'Microsoft Windows 10 Pro'; OsVersion = '10.0.19045'; OsBuild = '19045' }

function Get-DcomcOsRegistrySubKeyName {
    <# RegistryKey.GetSubKeyNames of a key in a view (names as created); a missing key: none. #>
    param([Parameter(Mandatory = $true)] [string] $Path, [string] $View = 'Registry64')
    Invoke-SimGate -Operation 'Get-DcomcOsRegistrySubKeyName'
    $node = Get-SimRegistryNode -Names (Resolve-SimRegistryPath -Path $Path -View $View)
    if ($null -eq $node) {
        return , @()
    }
    return , (Get-SimSortedKeys -Keys @($node.Keys.Values | ForEach-Object -Process { [string] $_.Name }))
}

function Get-DcomcOsLocalAccountName {
    <# The SAM's users or groups (builtin groups by their localized names, as WinNT lists them). #>
    param([Parameter(Mandatory = $true)] [ValidateSet('user', 'group')] [string] $Class)
    Invoke-SimGate -Operation 'Get-DcomcOsLocalAccountName'
    $table = $script:Sim.Users
    if ($Class -eq 'group') { $table = $script:Sim.Groups }
    return , (Get-SimSortedKeys -Keys @($table.Values | ForEach-Object -Process { [string] $_.Name }))
}

function Get-DcomcOsServiceList {
    <# Win32_Service for every service; PathName as Set-SimServicePath gave it, else svchost's. #>
    Invoke-SimGate -Operation 'Get-DcomcOsServiceList'
    return , @(foreach ($name in (Get-SimSortedKeys -Keys @($script:Sim.Services.Keys))) {
            $service = $script:Sim.Services[$name]
            $path = 'C:\Windows\system32\svchost.exe -k LocalService'
            if ($service.ContainsKey('PathName')) { $path = [string] $service.PathName }
            @{ Name = [string] $service.Name; DisplayName = [string] $service.DisplayName; PathName = $path; StartName = [string] $service.StartName; State = [string] $service.State; StartMode = [string] $service.StartMode }
        })
}

function Get-DcomcOsFirewallRuleList {
    <# Every inbound rule, as Get-DcomcOsFirewallRule shows it, with its Group. #>
    Invoke-SimGate -Operation 'Get-DcomcOsFirewallRuleList'
    return , @(foreach ($name in (Get-SimSortedKeys -Keys @($script:Sim.Firewall.Keys))) {
            $rule = $script:Sim.Firewall[$name]
            if ($rule.Direction -ne 'Inbound') { continue }
            @{
                Name = [string] $rule.Name; DisplayName = [string] $rule.DisplayName; Group = [string] $rule.Group
                Enabled = [bool] $rule.Enabled; Direction = [string] $rule.Direction; Action = [string] $rule.Action
                Profile = [string] $rule.Profile; Protocol = [string] $rule.Protocol; LocalPort = @($rule.LocalPort)
                Program = [string] $rule.Program; Service = [string] $rule.Service; RemoteAddress = @($rule.RemoteAddress)
            }
        })
}

function Get-DcomcOsSystemInfo {
    <# The simulated PC: Windows 10 64-bit in its locale, in WORKGROUP unless Set-SimNetwork. #>
    Invoke-SimGate -Operation 'Get-DcomcOsSystemInfo'
    $network = @{ Addresses = @(); Domain = 'WORKGROUP'; PartOfDomain = $false }
    if ($script:Sim.ContainsKey('Network')) { $network = $script:Sim.Network }
    return @{
        OsCaption = $script:SimOs.OsCaption; OsVersion = $script:SimOs.OsVersion; OsBuild = $script:SimOs.OsBuild; Is64Bit = $true
        InstallLanguage = [string] $script:Sim.Locale; UserLocale = [string] $script:Sim.Locale
        Domain = [string] $network.Domain; PartOfDomain = [bool] $network.PartOfDomain; Addresses = @($network.Addresses)
    }
}

function Set-SimNetwork {
    <# The PC's addresses and its workgroup or domain (Win32_ComputerSystem.Domain). #>
    param([string[]] $Address = @(), [string] $Domain = 'WORKGROUP', [switch] $PartOfDomain)
    $script:Sim.Network = @{ Addresses = @($Address); Domain = $Domain; PartOfDomain = [bool] $PartOfDomain }
}

function Set-SimServicePath {
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [string] $PathName)
    (Get-SimServiceRequired -Name $Name).PathName = $PathName
}

function Add-SimImplementedCategory {
    <# What an OPC server's installer registers: CLSID\{clsid}\Implemented Categories\{catid} in
       the view of its bitness (DA1, DA2, DA3 or a GUID). #>
    param([Parameter(Mandatory = $true)] [string] $Clsid, [Parameter(Mandatory = $true)] [string[]] $Category, [ValidateSet(32, 64)] [int] $Bitness = 32)
    $catids = @{ 'DA1' = '{63D5F430-CFE4-11D1-B2C8-0060083BA1FB}'; 'DA2' = '{63D5F432-CFE4-11D1-B2C8-0060083BA1FB}'; 'DA3' = '{CC603642-66D7-48F1-B69A-B625E73652D7}' }
    $view = @{ 32 = 'Registry32'; 64 = 'Registry64' }[$Bitness]
    foreach ($each in $Category) {
        $catid = $each
        if ($catids.ContainsKey($each)) { $catid = $catids[$each] }
        Assert-SimGuid -Guid $catid -What 'Category'
        $names = Resolve-SimRegistryPath -Path ('SOFTWARE\Classes\CLSID\{0}\Implemented Categories\{1}' -f $Clsid, $catid) -View $view
        $null = Get-SimRegistryNode -Names $names -Create
    }
}

function Install-SimOpcServer {
    <# An OPC DA server as its vendor's installer leaves it: the COM registration
       (Install-SimComServer), its categories, and with -Service a service running its
       executable (the AppID's LocalService names it unless -NoLocalService). #>
    param(
        [Parameter(Mandatory = $true)] [string] $ProgId, [Parameter(Mandatory = $true)] [string] $Clsid, [string] $AppId,
        [ValidateSet(32, 64)] [int] $Bitness = 32, [hashtable] $AppIdValues = @{}, [string[]] $Category = @('DA2'),
        [string] $LocalServer32 = 'C:\Program Files (x86)\Vendor\OpcServer.exe', [string] $Service, [string] $StartName = 'LocalSystem',
        [System.Security.SecureString] $Password, [switch] $NoLocalService
    )
    $values = @{} + $AppIdValues
    if ($Service -and -not $NoLocalService) { $values['LocalService'] = $Service }
    $arguments = @{ ProgId = $ProgId; Clsid = $Clsid; Bitness = $Bitness; AppIdValues = $values; LocalServer32 = $LocalServer32 }
    if ($AppId) { $arguments.AppId = $AppId }
    Install-SimComServer @arguments
    Add-SimImplementedCategory -Clsid $Clsid -Category $Category -Bitness $Bitness
    if ($Service) {
        $install = @{ Name = $Service; StartName = $StartName }
        if ($PSBoundParameters.ContainsKey('Password')) { $install.Password = $Password }
        Install-SimService @install
        # The service's command line quotes the executable and keeps the arguments after it.
        Set-SimServicePath -Name $Service -PathName ($LocalServer32 -replace '^(.*?\.exe)', '"$1"')
    }
}

# --- snapshots ------------------------------------------------------------------------------------------

function Get-SimSortedKeys {
    # Keys in a stable order: without case first (as Windows would list them), then ordinal.
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [AllowEmptyString()] [string[]] $Keys)
    $sorted = [string[]] $Keys.Clone()
    [Array]::Sort($sorted, [System.Collections.Generic.Comparer[string]]::Create([Comparison[string]] {
                param($a, $b)
                $byCase = [string]::Compare($a, $b, [StringComparison]::OrdinalIgnoreCase)
                if ($byCase -ne 0) { return $byCase }
                return [string]::CompareOrdinal($a, $b)
            }))
    return , $sorted
}

function Get-SimSortedList {
    param([AllowEmptyCollection()] [AllowNull()] $Items)
    return , (Get-SimSortedKeys -Keys @(@($Items) | Where-Object -FilterScript { $null -ne $_ } | ForEach-Object -Process { [string] $_ }))
}

function Add-SimRegistrySnapshot {
    # Flattens the tree: 'HKLM\path' -> { values: name -> { type, data } } (bytes as hex).
    param([Parameter(Mandatory = $true)] $Node, [Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] $Into)
    $values = [ordered]@{}
    foreach ($name in (Get-SimSortedKeys -Keys @($Node.Values.Keys))) {
        $value = $Node.Values[$name]
        $data = $value.Data
        if ($value.Type -eq 'Binary') {
            $data = ConvertTo-SimHex -Bytes $data
        }
        elseif ($value.Type -eq 'MultiString') {
            $data = @($data)
        }
        $values[$name] = [ordered]@{ type = $value.Type; data = $data }
    }
    $Into[$Path] = [ordered]@{ values = $values }
    foreach ($name in (Get-SimSortedKeys -Keys @($Node.Keys.Keys))) {
        Add-SimRegistrySnapshot -Node $Node.Keys[$name] -Path ($Path + '\' + $name) -Into $Into
    }
}

function Get-SimSnapshot {
    <# The whole simulated system as one canonical JSON string (keys sorted; equal states give
       equal strings): computer, registry, users, groups, domain accounts, rights, services,
       firewall. Not in it: the RID counter, the clock, the call log and faults, the process
       (elevation, console), and dcomc's own records: the files under ProgramData (logs,
       backups) and the key HKLM\SOFTWARE\dcomc (the last Apply's result, which a failed Apply
       records too; tests read it themselves). Passwords only as hashes. #>
    $registry = [ordered]@{}
    Add-SimRegistrySnapshot -Node $script:Sim.Registry -Path 'HKLM' -Into $registry
    foreach ($own in @($registry.Keys | Where-Object -FilterScript { $_ -match '^HKLM\\SOFTWARE\\dcomc(\\|$)' })) {
        $registry.Remove($own)
    }
    $users = [ordered]@{}
    $bySid = @{}
    foreach ($user in $script:Sim.Users.Values) { $bySid[$user.Sid] = $user }
    foreach ($sid in (Get-SimSortedKeys -Keys @($bySid.Keys))) {
        $user = $bySid[$sid]
        $users[$sid] = [ordered]@{ name = $user.Name; description = $user.Description; flags = $user.Flags; passwordExpired = [bool] $user.PasswordExpired; passwordHash = $user.PasswordHash }
    }
    $groups = [ordered]@{}
    $bySid = @{}
    foreach ($group in $script:Sim.Groups.Values) { $bySid[$group.Sid] = $group }
    foreach ($sid in (Get-SimSortedKeys -Keys @($bySid.Keys))) {
        $group = $bySid[$sid]
        $groups[$sid] = [ordered]@{ name = $group.Name; builtIn = [bool] $group.BuiltIn; description = $group.Description; members = (Get-SimSortedList -Items $group.Members) }
    }
    $domain = [ordered]@{}
    foreach ($name in (Get-SimSortedKeys -Keys @($script:Sim.DomainAccounts.Keys))) {
        $account = $script:Sim.DomainAccounts[$name]
        $domain[$name] = [ordered]@{ sid = $account.Sid; isGroup = [bool] $account.IsGroup; passwordHash = $account.PasswordHash }
    }
    $rights = [ordered]@{}
    foreach ($right in (Get-SimSortedKeys -Keys @($script:Sim.Rights.Keys))) {
        if ($script:Sim.Rights[$right].Count -gt 0) {
            # secedit does not list a right without holders: empty and absent are the same.
            $rights[$right] = Get-SimSortedList -Items $script:Sim.Rights[$right]
        }
    }
    $services = [ordered]@{}
    foreach ($name in (Get-SimSortedKeys -Keys @($script:Sim.Services.Keys))) {
        $service = $script:Sim.Services[$name]
        $services[$service.Name] = [ordered]@{ displayName = $service.DisplayName; startName = $service.StartName; state = $service.State; startMode = $service.StartMode; passwordHash = $service.PasswordHash; dependsOn = (Get-SimSortedList -Items $service.DependsOn) }
    }
    $firewall = [ordered]@{}
    foreach ($name in (Get-SimSortedKeys -Keys @($script:Sim.Firewall.Keys))) {
        $rule = $script:Sim.Firewall[$name]
        $entry = [ordered]@{}
        foreach ($field in (Get-SimSortedKeys -Keys @($rule.Keys))) {
            $entry[$field] = $rule[$field]
        }
        $firewall[$name] = $entry
    }
    $state = [ordered]@{
        computer       = [ordered]@{ name = $script:Sim.ComputerName; locale = $script:Sim.Locale; machineSid = $script:Sim.MachineSid; passwordPolicy = [ordered]@{ minLength = [int] $script:Sim.PasswordPolicy.MinLength; complexity = [bool] $script:Sim.PasswordPolicy.Complexity } }
        registry       = $registry
        users          = $users
        groups         = $groups
        domainAccounts = $domain
        rights         = $rights
        services       = $services
        firewall       = $firewall
    }
    return ($state | ConvertTo-Json -Depth 64 -Compress)
}

# --- several user rights from one secedit export (the capture's Rights part) -----------------------

$script:SimOperations += @('Get-DcomcOsUserRightMap')

function Get-DcomcOsUserRightMap {
    <# @{ right = holders } for each right, as Get-DcomcOsUserRight gives them, from one
       "secedit /export" (administrator only, like Get-DcomcOsUserRight). #>
    param([Parameter(Mandatory = $true)] [string[]] $Right)
    Invoke-SimGate -Operation 'Get-DcomcOsUserRightMap'
    if (-not $script:Sim.Elevated) {
        throw 'secedit /export failed with exit code 1'
    }
    $map = @{}
    foreach ($name in $Right) { $map[$name] = @((Get-SimRightHolders -Right $name).ToArray()) }
    return $map
}

# Removing the module this file was dot-sourced into deletes the temporary folder too (after
# whatever the module itself does on removal).
if ($null -ne $ExecutionContext.SessionState.Module -and $null -eq (Get-Variable -Name 'SimPreviousOnRemove' -Scope Script -ErrorAction SilentlyContinue)) {
    $script:SimPreviousOnRemove = $ExecutionContext.SessionState.Module.OnRemove
    $ExecutionContext.SessionState.Module.OnRemove = {
        Remove-SimWindows
        if ($null -ne $script:SimPreviousOnRemove) {
            & $script:SimPreviousOnRemove
        }
    }
}

Reset-SimWindows
