# ==== Security descriptors and SIDs: a byte-level codec in plain PowerShell =====================
#
# DCOM keeps its ACLs as REG_BINARY self-relative security descriptors (AppID LaunchPermission
# and AccessPermission, Ole\MachineLaunchRestriction and MachineAccessRestriction). .NET's
# RawSecurityDescriptor, CommonAce and SecurityIdentifier throw PlatformNotSupportedException
# outside Windows, so the engine reads and writes these bytes itself, the same way on Windows
# PowerShell 5.1 and on PowerShell 7 anywhere, and the test suite runs it on Linux.
#
# Layout: docs/windows.md#security-descriptors (MS-DTYP 2.4.6). Written exactly as the compiler's Python codec
# (dcomc.windows.sdbinary) writes it: the 20-byte header, then SACL, DACL, owner, group (the order of
# Windows' RtlMakeSelfRelativeSD); read in any order (.NET writes owner, group, SACL, DACL).
# A descriptor is plain data:
#   @{ Control = <int>; Owner = <SID string or $null>; Group = <SID string or $null>;
#      Sacl = <$null or byte[]: the whole SACL, kept verbatim>;
#      Dacl = <$null or @{ Revision = 2 or 4; Aces = @( ACE, ... ) }> }
#   ACE = @{ Type; Flags; Mask; Sid; Raw } - Mask and Sid for ACCESS_ALLOWED (0) and
#   ACCESS_DENIED (1) ACEs, $null for any other type, which is carried by its Raw bytes alone,
#   so that editing a descriptor never drops an object, callback or label ACE the engine does
#   not understand. Allow and deny ACEs are written from their fields, others from Raw.
# SID strings are canonical (decimal, no leading zeros), as the Python compiler writes them.
# Every malformed input throws, saying what is wrong and at which byte offset.

# --- little-endian integers ------------------------------------------------------------------

function Read-DcomcSdUInt16 {
    # The little-endian 16-bit integer at Offset (sizes, counts and the control word).
    param([byte[]] $Bytes, [long] $Offset)
    return [int] $Bytes[$Offset] + 256 * [int] $Bytes[$Offset + 1]
}

function Read-DcomcSdUInt32 {
    # The little-endian 32-bit unsigned integer at Offset, as [long] so masks >= 0x80000000 stay positive.
    param([byte[]] $Bytes, [long] $Offset)
    $value = [long] 0
    for ($i = 3; $i -ge 0; $i--) {
        $value = $value * 256 + $Bytes[$Offset + $i]
    }
    return $value
}

function ConvertTo-DcomcSdLittleEndian {
    # Value as Count little-endian bytes: 2 for sizes and the control word, 4 for offsets and masks.
    param([long] $Value, [int] $Count)
    $out = New-Object byte[] $Count
    for ($i = 0; $i -lt $Count; $i++) {
        $out[$i] = [byte] (($Value -shr (8 * $i)) -band 0xFF)
    }
    return , $out
}

function Copy-DcomcSdBytes {
    # A copy of Count bytes at Offset, so that decoded parts never share the caller's buffer.
    param([byte[]] $Bytes, [long] $Offset, [long] $Count)
    $out = New-Object byte[] $Count
    [Array]::Copy($Bytes, $Offset, $out, 0, $Count)
    return , $out
}

function ConvertTo-DcomcSdHex {
    # Bytes as lowercase hex without separators, the form the tests and ACE keys compare.
    param([byte[]] $Bytes)
    return ([BitConverter]::ToString($Bytes)).Replace('-', '').ToLowerInvariant()
}

function Assert-DcomcSdBytes {
    # Throws unless Size bytes exist at Offset before End: every read is bounds-checked first.
    param([byte[]] $Bytes, [long] $Offset, [long] $Size, [long] $End, [string] $What)
    if ($Offset + $Size -gt $End) {
        $left = [Math]::Max($End - $Offset, 0)
        throw "$What at offset $Offset needs $Size bytes but only $left remain (descriptor of $($Bytes.Length) bytes is truncated or inconsistent)"
    }
}

# --- SIDs ------------------------------------------------------------------------------------

function Split-DcomcSidString {
    # @{ Authority; Subs } of a string SID, the rules of dcomc.windows.sids.is_sid (plus Windows' 0x authority), or a throw.
    param([string] $Sid)
    $match = [regex]::Match($Sid, '\AS-1-([0-9]{1,15}|0[xX][0-9a-fA-F]{1,12})((?:-[0-9]{1,10})*)\z')
    if (-not $match.Success) {
        throw "malformed SID '$Sid': expected S-1-<authority>-<sub-authority>... with decimal sub-authorities"
    }
    $text = $match.Groups[1].Value
    if ($text.Length -gt 2 -and $text.Substring(0, 2) -eq '0x') {
        $authority = [Convert]::ToInt64($text.Substring(2), 16)
    }
    else {
        $authority = [long]::Parse($text, [Globalization.CultureInfo]::InvariantCulture)
    }
    if ($authority -ge 281474976710656) {
        throw "malformed SID '$Sid': the identifier authority $authority does not fit in 6 bytes"
    }
    $subs = @($match.Groups[2].Value.Split('-') | Where-Object -FilterScript { $_ -ne '' } | ForEach-Object -Process { [long]::Parse($_, [Globalization.CultureInfo]::InvariantCulture) })
    if ($subs.Count -gt 15) {
        throw "malformed SID '$Sid': $($subs.Count) sub-authorities, at most 15 allowed"
    }
    foreach ($sub in $subs) {
        if ($sub -gt 4294967295) {
            throw "malformed SID '$Sid': sub-authority $sub does not fit in 32 bits"
        }
    }
    return @{ Authority = $authority; Subs = $subs }
}

function ConvertTo-DcomcSidBytes {
    # A string SID as bytes (revision 1, count, 6-byte big-endian authority, little-endian sub-authorities), as in ACEs and descriptors.
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Sid)
    $parsed = Split-DcomcSidString -Sid $Sid
    $out = New-Object 'System.Collections.Generic.List[byte]'
    $out.Add([byte] 1)
    $out.Add([byte] $parsed.Subs.Count)
    for ($i = 5; $i -ge 0; $i--) {
        $out.Add([byte] (($parsed.Authority -shr (8 * $i)) -band 0xFF))
    }
    foreach ($sub in $parsed.Subs) {
        $out.AddRange([byte[]] (ConvertTo-DcomcSdLittleEndian -Value $sub -Count 4))
    }
    return , $out.ToArray()
}

function Read-DcomcSdSid {
    # The SID at Offset, which must end before End (its ACE's or the descriptor's end); What names it in errors.
    param([byte[]] $Bytes, [long] $Offset, [long] $End, [string] $What)
    if ($Offset -lt 0) {
        throw "$What offset $Offset is negative"
    }
    Assert-DcomcSdBytes -Bytes $Bytes -Offset $Offset -Size 8 -End $End -What $What
    if ($Bytes[$Offset] -ne 1) {
        throw "$What at offset $Offset has SID revision $($Bytes[$Offset]), expected 1"
    }
    $count = [int] $Bytes[$Offset + 1]
    if ($count -gt 15) {
        throw "$What at offset $Offset has $count sub-authorities, at most 15 allowed"
    }
    Assert-DcomcSdBytes -Bytes $Bytes -Offset $Offset -Size (8 + 4 * $count) -End $End -What $What
    $authority = [long] 0
    for ($i = 2; $i -lt 8; $i++) {
        $authority = $authority * 256 + $Bytes[$Offset + $i]
    }
    $parts = @('S', '1', [string] $authority)
    for ($i = 0; $i -lt $count; $i++) {
        $parts += [string] (Read-DcomcSdUInt32 -Bytes $Bytes -Offset ($Offset + 8 + 4 * $i))
    }
    return [string]::Join('-', $parts)
}

function ConvertFrom-DcomcSidBytes {
    # The string SID stored at Offset of Bytes (decimal, as the compiler writes SIDs); throws on a truncated or invalid SID.
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [byte[]] $Bytes, [int] $Offset = 0)
    return Read-DcomcSdSid -Bytes $Bytes -Offset $Offset -End $Bytes.Length -What 'SID'
}

function ConvertTo-DcomcCanonicalSid {
    # Sid in the canonical form decoded descriptors use, so 'S-1-5-032-544' matches 'S-1-5-32-544' as in Python.
    param([string] $Sid)
    return ConvertFrom-DcomcSidBytes -Bytes (ConvertTo-DcomcSidBytes -Sid $Sid)
}

# --- reading ---------------------------------------------------------------------------------

function Read-DcomcSdAce {
    # The ACE at Offset of an ACL ending at End: Type, Flags and Raw always, Mask and Sid for allow/deny ACEs.
    param([byte[]] $Bytes, [long] $Offset, [long] $End, [string] $What)
    Assert-DcomcSdBytes -Bytes $Bytes -Offset $Offset -Size 4 -End $End -What $What
    $type = [int] $Bytes[$Offset]
    $size = Read-DcomcSdUInt16 -Bytes $Bytes -Offset ($Offset + 2)
    $known = ($type -eq 0 -or $type -eq 1)
    $minimum = 4
    if ($known) {
        $minimum = 16
    }
    if ($size -lt $minimum -or $size % 4 -ne 0) {
        throw "$What at offset $Offset has invalid AceSize $size (must be >= $minimum and a multiple of 4)"
    }
    Assert-DcomcSdBytes -Bytes $Bytes -Offset $Offset -Size $size -End $End -What $What
    $ace = @{ Type = $type; Flags = [int] $Bytes[$Offset + 1]; Mask = $null; Sid = $null; Raw = (Copy-DcomcSdBytes -Bytes $Bytes -Offset $Offset -Count $size) }
    if ($known) {
        $ace.Mask = Read-DcomcSdUInt32 -Bytes $Bytes -Offset ($Offset + 4)
        $ace.Sid = Read-DcomcSdSid -Bytes $Bytes -Offset ($Offset + 8) -End ($Offset + $size) -What "SID of $What"
    }
    return $ace
}

function Read-DcomcSdAcl {
    # @{ Revision; Size; Aces } of the ACL at Offset (What is 'DACL' or 'SACL'), with the checks of dcomc.windows.sdbinary._read_acl.
    param([byte[]] $Bytes, [long] $Offset, [string] $What)
    Assert-DcomcSdBytes -Bytes $Bytes -Offset $Offset -Size 8 -End $Bytes.Length -What "$What header"
    $revision = [int] $Bytes[$Offset]
    if ($revision -ne 2 -and $revision -ne 4) {
        throw "$What at offset $Offset has revision $revision, expected 2 (ACL_REVISION) or 4 (ACL_REVISION_DS)"
    }
    $size = Read-DcomcSdUInt16 -Bytes $Bytes -Offset ($Offset + 2)
    $count = Read-DcomcSdUInt16 -Bytes $Bytes -Offset ($Offset + 4)
    if ($size -lt 8 -or $size % 4 -ne 0) {
        throw "$What at offset $Offset has invalid AclSize $size (must be >= 8 and a multiple of 4)"
    }
    Assert-DcomcSdBytes -Bytes $Bytes -Offset $Offset -Size $size -End $Bytes.Length -What "$What (AclSize $size)"
    $end = $Offset + $size
    $pos = $Offset + 8
    $aces = New-Object System.Collections.ArrayList
    for ($index = 0; $index -lt $count; $index++) {
        if ($pos -ge $end) {
            throw "$What AceCount $count and AclSize $size are inconsistent: only $index ACEs fit"
        }
        $ace = Read-DcomcSdAce -Bytes $Bytes -Offset $pos -End $end -What "$What ACE #$index"
        [void] $aces.Add($ace)
        $pos += $ace.Raw.Length
    }
    return @{ Revision = $revision; Size = $size; Aces = $aces.ToArray() }
}

function Assert-DcomcSdOffset {
    # Throws unless a component offset is 0 (absent) or a 4-byte aligned position after the header and inside the descriptor.
    param([long] $Offset, [long] $Length, [string] $What)
    if ($Offset -eq 0) {
        return
    }
    if ($Offset -lt 20) {
        throw "$What offset $Offset points into the 20-byte header"
    }
    if ($Offset -ge $Length) {
        throw "$What offset $Offset is past the end of the $Length-byte descriptor"
    }
    if ($Offset % 4 -ne 0) {
        throw "$What offset $Offset is not 4-byte aligned"
    }
}

function Read-DcomcSdHeader {
    # @{ Control; Owner; Group; Sacl; Dacl } (the offsets) after checking the 20-byte header as dcomc.windows.sdbinary does.
    param([byte[]] $Bytes)
    if ($Bytes.Length -lt 20) {
        throw "security descriptor truncated: $($Bytes.Length) bytes, the header alone is 20"
    }
    if ($Bytes[0] -ne 1) {
        throw "security descriptor revision $($Bytes[0]), expected 1"
    }
    $header = @{ Control = (Read-DcomcSdUInt16 -Bytes $Bytes -Offset 2) }
    foreach ($field in @(@('Owner', 4), @('Group', 8), @('Sacl', 12), @('Dacl', 16))) {
        $header[$field[0]] = Read-DcomcSdUInt32 -Bytes $Bytes -Offset $field[1]
    }
    Assert-DcomcSdControl -Header $header
    foreach ($field in @(@('Owner', 'owner'), @('Group', 'group'), @('Sacl', 'SACL'), @('Dacl', 'DACL'))) {
        Assert-DcomcSdOffset -Offset $header[$field[0]] -Length $Bytes.Length -What $field[1]
    }
    return $header
}

function Assert-DcomcSdControl {
    # Throws when the control word contradicts the offsets: not self-relative, a NULL DACL, or an ACL offset without its PRESENT bit.
    param([hashtable] $Header)
    $control = $Header.Control
    if (-not ($control -band 0x8000)) {
        throw ('control 0x{0:x4} lacks SE_SELF_RELATIVE: not a self-relative SD' -f $control)
    }
    if (($control -band 0x0004) -and $Header.Dacl -eq 0) {
        throw 'NULL DACL (SE_DACL_PRESENT with no DACL) grants everyone everything'
    }
    if ($Header.Dacl -ne 0 -and -not ($control -band 0x0004)) {
        throw ('DACL offset {0} is set but control 0x{1:x4} lacks SE_DACL_PRESENT' -f $Header.Dacl, $control)
    }
    if ($Header.Sacl -ne 0 -and -not ($control -band 0x0010)) {
        throw ('SACL offset {0} is set but control 0x{1:x4} lacks SE_SACL_PRESENT' -f $Header.Sacl, $control)
    }
}

function ConvertFrom-DcomcSecurityDescriptor {
    # A self-relative descriptor (a registry REG_BINARY value) as the engine's descriptor hashtable; components in any order.
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [byte[]] $Bytes)
    $header = Read-DcomcSdHeader -Bytes $Bytes
    $sd = @{ Control = $header.Control; Owner = $null; Group = $null; Sacl = $null; Dacl = $null }
    if ($header.Owner -ne 0) {
        $sd.Owner = Read-DcomcSdSid -Bytes $Bytes -Offset $header.Owner -End $Bytes.Length -What 'owner SID'
    }
    if ($header.Group -ne 0) {
        $sd.Group = Read-DcomcSdSid -Bytes $Bytes -Offset $header.Group -End $Bytes.Length -What 'group SID'
    }
    if ($header.Sacl -ne 0) {
        $sacl = Read-DcomcSdAcl -Bytes $Bytes -Offset $header.Sacl -What 'SACL'
        $sd.Sacl = Copy-DcomcSdBytes -Bytes $Bytes -Offset $header.Sacl -Count $sacl.Size
    }
    if ($header.Dacl -ne 0) {
        $dacl = Read-DcomcSdAcl -Bytes $Bytes -Offset $header.Dacl -What 'DACL'
        $sd.Dacl = @{ Revision = $dacl.Revision; Aces = $dacl.Aces }
    }
    return $sd
}

# --- writing ---------------------------------------------------------------------------------

function ConvertTo-DcomcSdNumber {
    # Value as [long] after checking it is present and within 0..Max (a byte, a 16-bit word or a 32-bit mask).
    param($Value, [long] $Max, [string] $What)
    if ($null -eq $Value) {
        throw "$What is missing"
    }
    $number = [long] $Value
    if ($number -lt 0 -or $number -gt $Max) {
        throw "$What $Value is outside 0..$Max"
    }
    return $number
}

function ConvertTo-DcomcSdAceBytes {
    # One ACE as bytes: allow/deny ACEs from Type, Flags, Mask and Sid; every other type from its checked Raw bytes.
    param([System.Collections.IDictionary] $Ace, [string] $What = 'ACE')
    $type = ConvertTo-DcomcSdNumber -Value $Ace['Type'] -Max 255 -What "$What type"
    if ($type -gt 1) {
        return , (Assert-DcomcSdRawAce -Ace $Ace -Type $type -What $What)
    }
    $flags = ConvertTo-DcomcSdNumber -Value $Ace['Flags'] -Max 255 -What "$What flags"
    $mask = ConvertTo-DcomcSdNumber -Value $Ace['Mask'] -Max 4294967295 -What "$What mask"
    if ($null -eq $Ace['Sid']) {
        throw "$What has no SID"
    }
    $sid = ConvertTo-DcomcSidBytes -Sid $Ace['Sid']
    $out = New-Object 'System.Collections.Generic.List[byte]'
    $out.Add([byte] $type)
    $out.Add([byte] $flags)
    $out.AddRange([byte[]] (ConvertTo-DcomcSdLittleEndian -Value (8 + $sid.Length) -Count 2))
    $out.AddRange([byte[]] (ConvertTo-DcomcSdLittleEndian -Value $mask -Count 4))
    $out.AddRange($sid)
    return , $out.ToArray()
}

function Assert-DcomcSdRawAce {
    # The Raw bytes of an ACE the engine does not parse, after checking they are one whole ACE of that Type.
    param([System.Collections.IDictionary] $Ace, [long] $Type, [string] $What)
    $raw = [byte[]] $Ace['Raw']
    if ($null -eq $raw -or $raw.Length -lt 4 -or $raw.Length % 4 -ne 0) {
        throw "$What of type $Type needs Raw bytes: a whole ACE, at least 4 bytes and a multiple of 4"
    }
    if ($raw[0] -ne $Type -or (Read-DcomcSdUInt16 -Bytes $raw -Offset 2) -ne $raw.Length) {
        throw "$What Raw bytes do not match: they start with type $($raw[0]) and AceSize $(Read-DcomcSdUInt16 -Bytes $raw -Offset 2), expected type $Type and $($raw.Length)"
    }
    return , $raw
}

function ConvertTo-DcomcSdAclBytes {
    # A DACL hashtable (@{ Revision; Aces }) as ACL bytes, header included; no bytes when Acl is $null (no DACL).
    param([System.Collections.IDictionary] $Acl)
    if ($null -eq $Acl) {
        return , (New-Object byte[] 0)
    }
    $revision = 2
    if ($null -ne $Acl['Revision']) {
        $revision = $Acl['Revision']
    }
    if ($revision -ne 2 -and $revision -ne 4) {
        throw "DACL revision $revision is not 2 (ACL_REVISION) or 4 (ACL_REVISION_DS)"
    }
    $body = New-Object 'System.Collections.Generic.List[byte]'
    $count = 0
    foreach ($ace in (Get-DcomcSdAceList -Acl $Acl)) {
        $body.AddRange([byte[]] (ConvertTo-DcomcSdAceBytes -Ace $ace -What "DACL ACE #$count"))
        $count++
    }
    $size = 8 + $body.Count
    if ($size -gt 65535 -or $count -gt 65535) {
        throw "DACL of $count ACEs ($size bytes) exceeds the 64 KiB ACL limit"
    }
    $out = New-Object 'System.Collections.Generic.List[byte]'
    $out.AddRange([byte[]] @([byte] $revision, [byte] 0))
    $out.AddRange([byte[]] (ConvertTo-DcomcSdLittleEndian -Value $size -Count 2))
    $out.AddRange([byte[]] (ConvertTo-DcomcSdLittleEndian -Value $count -Count 2))
    $out.AddRange([byte[]] @([byte] 0, [byte] 0))
    $out.AddRange($body)
    return , $out.ToArray()
}

function Get-DcomcSdSaclBytes {
    # The SACL's verbatim bytes to write, after checking they are exactly one well-formed ACL; no bytes when there is none.
    param($Sacl)
    if ($null -eq $Sacl) {
        return , (New-Object byte[] 0)
    }
    $bytes = [byte[]] $Sacl
    $acl = Read-DcomcSdAcl -Bytes $bytes -Offset 0 -What 'SACL'
    if ($acl.Size -ne $bytes.Length) {
        throw "SACL of $($bytes.Length) bytes has AclSize $($acl.Size): Sacl must hold exactly one ACL"
    }
    return , $bytes
}

function Get-DcomcSdOptionalSidBytes {
    # The bytes of an owner or group SID; no bytes when the descriptor has none.
    param($Sid)
    if ($null -eq $Sid) {
        return , (New-Object byte[] 0)
    }
    return , (ConvertTo-DcomcSidBytes -Sid $Sid)
}

function ConvertTo-DcomcSecurityDescriptor {
    # The descriptor hashtable as self-relative bytes in Windows' order (header, SACL, DACL, owner, group), what dcomc.windows.sdbinary writes.
    param([Parameter(Mandatory = $true)] [System.Collections.IDictionary] $Descriptor)
    $parts = New-Object System.Collections.ArrayList
    [void] $parts.Add((Get-DcomcSdSaclBytes -Sacl $Descriptor['Sacl']))
    [void] $parts.Add((ConvertTo-DcomcSdAclBytes -Acl $Descriptor['Dacl']))
    [void] $parts.Add((Get-DcomcSdOptionalSidBytes -Sid $Descriptor['Owner']))
    [void] $parts.Add((Get-DcomcSdOptionalSidBytes -Sid $Descriptor['Group']))
    $offsets = @(0, 0, 0, 0)
    $pos = 20
    for ($i = 0; $i -lt 4; $i++) {
        if ($parts[$i].Length -gt 0) {
            $offsets[$i] = $pos
            $pos += $parts[$i].Length
        }
    }
    $control = Get-DcomcSdControl -Descriptor $Descriptor -HasSacl ($offsets[0] -ne 0) -HasDacl ($offsets[1] -ne 0)
    $out = New-Object 'System.Collections.Generic.List[byte]'
    $out.AddRange([byte[]] @([byte] 1, [byte] 0))
    $out.AddRange([byte[]] (ConvertTo-DcomcSdLittleEndian -Value $control -Count 2))
    foreach ($i in @(2, 3, 0, 1)) {
        $out.AddRange([byte[]] (ConvertTo-DcomcSdLittleEndian -Value $offsets[$i] -Count 4))
    }
    foreach ($part in $parts) {
        $out.AddRange([byte[]] $part)
    }
    return , $out.ToArray()
}

function Get-DcomcSdControl {
    # The control word to write: the descriptor's bits, SE_SELF_RELATIVE set, SE_SACL/DACL_PRESENT following what is written.
    param([System.Collections.IDictionary] $Descriptor, [bool] $HasSacl, [bool] $HasDacl)
    $control = 0
    if ($null -ne $Descriptor['Control']) {
        $control = ConvertTo-DcomcSdNumber -Value $Descriptor['Control'] -Max 65535 -What 'control'
    }
    $control = ($control -bor 0x8000) -band (-bnot 0x0014)
    if ($HasSacl) {
        $control = $control -bor 0x0010
    }
    if ($HasDacl) {
        $control = $control -bor 0x0004
    }
    return $control
}

# --- building and editing --------------------------------------------------------------------

function Get-DcomcSdAceList {
    # The ACEs of a DACL hashtable as an array, empty when there are none, so callers can always loop over them.
    param([System.Collections.IDictionary] $Acl)
    if ($null -eq $Acl -or $null -eq $Acl['Aces']) {
        return , @()
    }
    return , @($Acl['Aces'])
}

function New-DcomcSdAllowAce {
    # An ACCESS_ALLOWED ACE hashtable with flags 0 and its Raw bytes, the only kind of ACE the engine adds.
    param($Sid, $Mask)
    if ($null -eq $Sid) {
        throw 'allow ACE has no SID'
    }
    $canonical = ConvertTo-DcomcCanonicalSid -Sid $Sid
    $ace = @{ Type = 0; Flags = 0; Mask = (ConvertTo-DcomcSdNumber -Value $Mask -Max 4294967295 -What "mask for $canonical"); Sid = $canonical; Raw = $null }
    $ace.Raw = ConvertTo-DcomcSdAceBytes -Ace $ace
    return $ace
}

function New-DcomcSecurityDescriptor {
    # The descriptor dcomcnfg writes for an AppID ACL, O:BAG:BAD:(A;;mask;;;sid)...: owner and group Administrators, allow ACEs in order, no SACL.
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Aces)
    $list = @(foreach ($entry in $Aces) {
            New-DcomcSdAllowAce -Sid $entry['Sid'] -Mask $entry['Mask']
        })
    return @{ Control = 0x8004; Owner = 'S-1-5-32-544'; Group = 'S-1-5-32-544'; Sacl = $null; Dacl = @{ Revision = 2; Aces = $list } }
}

function Copy-DcomcDescriptor {
    # A deep copy of a descriptor hashtable, so that an edit never reaches the caller's object.
    param([System.Collections.IDictionary] $Descriptor)
    $copy = @{ Control = $Descriptor['Control']; Owner = $Descriptor['Owner']; Group = $Descriptor['Group']; Sacl = $null; Dacl = $null }
    if ($null -ne $Descriptor['Sacl']) {
        $copy.Sacl = ([byte[]] $Descriptor['Sacl']).Clone()
    }
    if ($null -ne $Descriptor['Dacl']) {
        $aces = @(foreach ($ace in (Get-DcomcSdAceList -Acl $Descriptor['Dacl'])) {
                Copy-DcomcSdAce -Ace $ace
            })
        $copy.Dacl = @{ Revision = $Descriptor['Dacl']['Revision']; Aces = $aces }
    }
    return $copy
}

function Copy-DcomcSdAce {
    # A copy of one ACE hashtable, Raw bytes included.
    param([System.Collections.IDictionary] $Ace)
    $copy = @{ Type = $Ace['Type']; Flags = $Ace['Flags']; Mask = $Ace['Mask']; Sid = $Ace['Sid']; Raw = $null }
    if ($null -ne $Ace['Raw']) {
        $copy.Raw = ([byte[]] $Ace['Raw']).Clone()
    }
    return $copy
}

function Test-DcomcSdAllowFor {
    # True for a plain allow ACE of Sid: type 0 and flags 0, the only ACE an addition is merged into (merge_aces).
    param([System.Collections.IDictionary] $Ace, [string] $Sid)
    return ($Ace['Type'] -eq 0 -and $Ace['Flags'] -eq 0 -and [string] $Ace['Sid'] -ceq $Sid)
}

function Assert-DcomcSdSameFormat {
    # Throws when Mask would mix old-format (EXECUTE only, 0x1) and new-format COM masks in one ACL, as merge_aces refuses.
    param([object[]] $Aces, [string] $Sid, [long] $Mask)
    foreach ($ace in $Aces) {
        $parsed = ($ace['Type'] -eq 0 -or $ace['Type'] -eq 1)
        if ($parsed -and (([long] $ace['Mask'] -eq 1) -ne ($Mask -eq 1))) {
            throw ("cannot merge ACE for {0} (mask 0x{1:x}): the ACL mixes old-format (EXECUTE only) and new-format masks, which COM forbids and which would silently narrow an old-format grant" -f $Sid, $Mask)
        }
    }
}

function Add-DcomcDescriptorAce {
    # A new descriptor with Mask OR-ed into Sid's first plain allow ACE, or an allow ACE appended: dcomc.windows.sd.merge_aces, add-only.
    param([Parameter(Mandatory = $true)] [System.Collections.IDictionary] $Descriptor, [Parameter(Mandatory = $true)] [string] $Sid, [Parameter(Mandatory = $true)] [long] $Mask)
    $added = New-DcomcSdAllowAce -Sid $Sid -Mask $Mask
    $copy = Copy-DcomcDescriptor -Descriptor $Descriptor
    if ($null -eq $copy.Dacl) {
        throw "descriptor has no DACL, which grants everyone everything: adding an ACE for $($added.Sid) would take rights away from everyone else"
    }
    $aces = Get-DcomcSdAceList -Acl $copy.Dacl
    Assert-DcomcSdSameFormat -Aces $aces -Sid $added.Sid -Mask $added.Mask
    for ($i = 0; $i -lt $aces.Count; $i++) {
        if (Test-DcomcSdAllowFor -Ace $aces[$i] -Sid $added.Sid) {
            $aces[$i] = New-DcomcSdAllowAce -Sid $added.Sid -Mask ([long] $aces[$i]['Mask'] -bor $added.Mask)
            $copy.Dacl.Aces = $aces
            return $copy
        }
    }
    $copy.Dacl.Aces = @($aces) + @($added)
    return $copy
}

# --- comparing -------------------------------------------------------------------------------

function Get-DcomcSdAceKey {
    # The text key of one ACE: 'A|sid|mask' or 'D|sid|mask' ('|flags' added when not 0), 'X|<hex of Raw>' for other types.
    param([System.Collections.IDictionary] $Ace)
    if ($Ace['Type'] -ne 0 -and $Ace['Type'] -ne 1) {
        return 'X|' + (ConvertTo-DcomcSdHex -Bytes ([byte[]] $Ace['Raw']))
    }
    $letter = 'A'
    if ($Ace['Type'] -eq 1) {
        $letter = 'D'
    }
    $key = '{0}|{1}|{2}' -f $letter, (ConvertTo-DcomcCanonicalSid -Sid $Ace['Sid']), [long] $Ace['Mask']
    if ($null -ne $Ace['Flags'] -and $Ace['Flags'] -ne 0) {
        $key += '|' + [string] $Ace['Flags']
    }
    return $key
}

function Get-DcomcDescriptorAceKey {
    # The DACL's ACEs as sorted text keys ('A|S-1-5-32-544|31'), to compare two descriptors by meaning, not by bytes or order.
    param([Parameter(Mandatory = $true)] [System.Collections.IDictionary] $Descriptor)
    [string[]] $keys = @(foreach ($ace in (Get-DcomcSdAceList -Acl $Descriptor['Dacl'])) {
            Get-DcomcSdAceKey -Ace $ace
        })
    [Array]::Sort($keys, [StringComparer]::Ordinal)
    return , $keys
}

function Get-DcomcDescriptorMask {
    # The rights Sid gets from the DACL's allow ACEs (INHERIT_ONLY ones apply to children, not here): the OR of their masks, 0 if none.
    param([Parameter(Mandatory = $true)] [System.Collections.IDictionary] $Descriptor, [Parameter(Mandatory = $true)] [string] $Sid)
    $canonical = ConvertTo-DcomcCanonicalSid -Sid $Sid
    $mask = [long] 0
    foreach ($ace in (Get-DcomcSdAceList -Acl $Descriptor['Dacl'])) {
        if ($ace['Type'] -eq 0 -and -not ([int] $ace['Flags'] -band 0x08) -and [string] $ace['Sid'] -ceq $canonical) {
            $mask = $mask -bor [long] $ace['Mask']
        }
    }
    return $mask
}
