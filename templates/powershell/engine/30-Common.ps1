# ==== Common helpers: logging, plain data, registry states, principals, passwords, data file ====

# --- logging ---------------------------------------------------------------------------------------

function Write-DcomcLog {
    param([Parameter(Mandatory = $true)] [string] $Message, [string] $Level = 'INFO')
    $line = '{0} {1,-5} {2}' -f (Get-DcomcOsUtcNow).ToString('yyyy-MM-dd HH:mm:ss', [Globalization.CultureInfo]::InvariantCulture), $Level, $Message
    Write-Verbose -Message $line
    if ($script:LogFile) {
        # A log that cannot be written never fails a run (nor its rollback): changes.json is
        # what Rollback needs. The run goes on without a log file, and says so.
        try {
            Write-DcomcOsFile -Path $script:LogFile -Text ($line + "`r`n") -Append
        }
        catch {
            Write-Warning -Message ('Cannot write the log {0}: {1}; going on without it' -f $script:LogFile, $_.Exception.Message)
            $script:LogFile = $null
        }
    }
}

# --- plain data: what a state is made of, so that it survives a JSON round trip ------------------

function ConvertTo-DcomcPlain {
    <# A state as Rollback will read it back from changes.json: the JSON round trip is made at
       once, so the rollback of a failed Apply runs the same code on the same data as a later
       Rollback from the backup. #>
    param([Parameter(Mandatory = $true)] $State)
    return (ConvertTo-Json -InputObject $State -Depth 12 -Compress | ConvertFrom-Json)
}

function ConvertTo-DcomcHex {
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [byte[]] $Bytes)
    return [BitConverter]::ToString($Bytes).Replace('-', '').ToLowerInvariant()   # one call, not one per byte
}

function ConvertFrom-DcomcHex {
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Hex)
    if ($Hex.Length % 2 -ne 0 -or $Hex -notmatch '^[0-9a-fA-F]*$') {
        throw ('Not a hex string: {0}' -f $Hex)
    }
    $bytes = New-Object -TypeName byte[] -ArgumentList ($Hex.Length / 2)
    for ($i = 0; $i -lt $bytes.Length; $i++) {
        $bytes[$i] = [Convert]::ToByte($Hex.Substring(2 * $i, 2), 16)
    }
    return , $bytes
}

function ConvertFrom-DcomcBinaryState {
    <# The descriptor of a registry state that must be a binary security descriptor
       (Name says which value, in the error). #>
    param([Parameter(Mandatory = $true)] $Value, [Parameter(Mandatory = $true)] [string] $Name)
    if ($Value.Type -ne 'Binary') {
        throw ('{0} is a {1} value, not a binary security descriptor' -f $Name, $Value.Type)
    }
    return ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-DcomcHex -Hex $Value.Data)
}

# --- registry values as states: @{ Exists; Type; Data }, binary data as hex -----------------------

function Get-DcomcRegistryState {
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name, [string] $View = 'Registry64')
    $value = Get-DcomcOsRegistryValue -Path $Path -Name $Name -View $View
    if (-not $value.Exists) {
        return @{ Exists = $false; Type = $null; Data = $null }
    }
    $data = $value.Data
    if ($value.Type -eq 'Binary') {
        $data = ConvertTo-DcomcHex -Bytes ([byte[]] $data)
    }
    elseif ($value.Type -eq 'MultiString') {
        $data = @($data)
    }
    return @{ Exists = $true; Type = [string] $value.Type; Data = $data }
}

function ConvertTo-DcomcRegistryData {
    <# The .NET value of a state's Data for its type (binary from hex, numbers as the registry
       API takes them): every type Windows can have there is restored as it was. #>
    param([Parameter(Mandatory = $true)] [string] $Type, [Parameter(Mandatory = $true)] [AllowEmptyString()] [AllowEmptyCollection()] $Data)
    switch ($Type) {
        'Binary' { return , (ConvertFrom-DcomcHex -Hex ([string] $Data)) }
        'DWord' { return [int] $Data }
        'QWord' { return [long] $Data }
        'MultiString' { return , [string[]] @($Data | ForEach-Object -Process { [string] $_ }) }
        'String' { return [string] $Data }
        'ExpandString' { return [string] $Data }
    }
    throw ('Cannot restore a registry value of type {0}' -f $Type)
}

function Restore-DcomcRegistryState {
    <# Put back a value as Get-DcomcRegistryState saw it (deleted if it did not exist). #>
    param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Name, [Parameter(Mandatory = $true)] $Before, [string] $View = 'Registry64')
    if (-not $Before.Exists) {
        Remove-DcomcOsRegistryValue -Path $Path -Name $Name -View $View
        return
    }
    $data = ConvertTo-DcomcRegistryData -Type ([string] $Before.Type) -Data $Before.Data
    Set-DcomcOsRegistryValue -Path $Path -Name $Name -Type ([string] $Before.Type) -Data $data -View $View
}

# --- principals: SIDs, never localized names ----------------------------------------------------

function Resolve-DcomcSid {
    <# The SID of a principal of the plan: given, or translated from its account name. #>
    param([Parameter(Mandatory = $true)] $Principal)
    if ($Principal.Sid) {
        return [string] $Principal.Sid
    }
    $name = [string] $Principal.Name
    if ($Principal.Kind -eq 'local') {
        $name = (Get-DcomcOsComputerName) + '\' + $name
    }
    try {
        return ConvertTo-DcomcOsSid -Name $name
    }
    catch {
        throw ('Cannot resolve the account {0} to a SID: {1}' -f $name, $_.Exception.Message)
    }
}

function Find-DcomcSid {
    <# The SID of a principal, or $null while it does not exist (an account Apply creates). #>
    param([Parameter(Mandatory = $true)] $Principal)
    try {
        return Resolve-DcomcSid -Principal $Principal
    }
    catch {
        return $null
    }
}

function Get-DcomcLocalName {
    <# The name of a local or built-in group on this PC: built-ins by SID, in this PC's language. #>
    param([Parameter(Mandatory = $true)] $Principal)
    if ($Principal.Sid) {
        $full = ConvertTo-DcomcOsAccountName -Sid ([string] $Principal.Sid)
        return $full.Substring($full.IndexOf('\') + 1)
    }
    return [string] $Principal.Name
}

function Get-DcomcLogonName {
    <# The name Win32_Service.Change expects: .\user for local accounts, DOMAIN\user else. #>
    param([Parameter(Mandatory = $true)] $Principal)
    if ($Principal.Kind -eq 'local') {
        return '.\' + [string] $Principal.Name
    }
    return [string] $Principal.Name
}

# --- passwords: SecureString in and out; plain text only inside the system layer's API call ------

function Test-DcomcSecureStringEqual {
    <# Compares two SecureStrings without making managed strings of them: every character is
       read from the BSTRs, and all of them are compared (no early exit on the first mismatch). #>
    param([Parameter(Mandatory = $true)] [System.Security.SecureString] $First, [Parameter(Mandatory = $true)] [System.Security.SecureString] $Second)
    if ($First.Length -ne $Second.Length) {
        return $false
    }
    $a = [Runtime.InteropServices.Marshal]::SecureStringToBSTR($First)
    $b = [Runtime.InteropServices.Marshal]::SecureStringToBSTR($Second)
    try {
        $difference = 0
        for ($i = 0; $i -lt $First.Length; $i++) {
            $difference = $difference -bor ([Runtime.InteropServices.Marshal]::ReadInt16($a, 2 * $i) -bxor [Runtime.InteropServices.Marshal]::ReadInt16($b, 2 * $i))
        }
        return ($difference -eq 0)
    }
    finally {
        [Runtime.InteropServices.Marshal]::ZeroFreeBSTR($a)
        [Runtime.InteropServices.Marshal]::ZeroFreeBSTR($b)
    }
}

function Get-DcomcPassword {
    param([Parameter(Mandatory = $true)] [string] $Account)
    if ($script:Passwords.ContainsKey($Account)) {
        return $script:Passwords[$Account]
    }
    if (-not (Test-DcomcOsInteractive)) {
        throw ('No password for {0}: pass -Passwords @{{ ''{0}'' = <SecureString> }}' -f $Account)
    }
    for ($try = 0; $try -lt 3; $try++) {
        $first = Read-DcomcOsSecret -Prompt ('Password for {0}' -f $Account)
        $second = Read-DcomcOsSecret -Prompt ('Confirm the password for {0}' -f $Account)
        if ($first.Length -gt 0 -and (Test-DcomcSecureStringEqual -First $first -Second $second)) {
            $script:Passwords[$Account] = $first
            return $first
        }
        Write-Warning -Message 'The passwords are empty or do not match.'
    }
    throw ('No matching password entered for {0}' -f $Account)
}

function ConvertFrom-DcomcBase64Text {
    <# Base64 of UTF-16LE (the MSI's encoding: any character of any code page survives the pipe)
       -> the characters, in an array the caller clears after use. #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Text)
    $bytes = [Convert]::FromBase64String($Text)
    try {
        if ($bytes.Length % 2 -ne 0) {
            throw 'not UTF-16LE (odd byte count)'
        }
        return , [Text.Encoding]::Unicode.GetChars($bytes)
    }
    finally {
        [Array]::Clear($bytes, 0, $bytes.Length)
    }
}

function ConvertFrom-DcomcBase64Secret {
    <# Base64 of UTF-16LE -> a read-only SecureString; the decoded characters are zeroed. #>
    param([Parameter(Mandatory = $true)] [AllowEmptyString()] [string] $Text)
    $chars = ConvertFrom-DcomcBase64Text -Text $Text
    $secure = New-Object -TypeName System.Security.SecureString
    try {
        foreach ($char in $chars) {
            $secure.AppendChar($char)
        }
    }
    finally {
        [Array]::Clear($chars, 0, $chars.Length)
    }
    $secure.MakeReadOnly()
    return $secure
}

function Read-DcomcStdinPassword {
    <# Lines `Base64(UTF-16LE account)<TAB>Base64(UTF-16LE password)` on standard input (the
       MSI's route: never on a command line; ASCII only, so no code page can change a name or a
       password). A malformed line stops the run before any change. #>
    $text = Read-DcomcOsStdin
    $number = 0
    foreach ($line in ($text -split "`r?`n")) {
        $number++
        if ($line -eq '') { continue }
        $parts = $line.Split([char] 9)
        try {
            if ($parts.Count -ne 2) { throw 'not two fields' }
            $account = -join (ConvertFrom-DcomcBase64Text -Text $parts[0])
            if ($account -eq '') { throw 'no account' }
            $secure = ConvertFrom-DcomcBase64Secret -Text $parts[1]
        }
        catch {
            throw ('Standard input line {0} is not Base64(account)<TAB>Base64(password), both UTF-16LE' -f $number)
        }
        if ($secure.Length -gt 0) {
            $script:Passwords[$account] = $secure
        }
    }
}

# --- dcomc's folder under %ProgramData%: trusted only when SYSTEM and Administrators alone can
# change it. The default ACL of ProgramData lets every user create folders and files below it;
# a backup that Rollback replays as SYSTEM must not be one of those.

function Test-DcomcTrustedPath {
    <# The item and every folder above it up to dcomc's root are trusted. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    $root = Get-DcomcOsDataRoot
    $current = $Path
    while ($current.Length -ge $root.Length) {
        if (-not (Test-DcomcOsTrustedItem -Path $current)) {
            return $false
        }
        $current = Split-Path -Path $current -Parent
    }
    return $true
}

function Initialize-DcomcSecureFolder {
    <# A folder under dcomc's root, with the missing folders above it, each created with the
       protected ACL. A folder that exists and is not trusted is refused, not repaired. #>
    param([Parameter(Mandatory = $true)] [string] $Path)
    $root = Get-DcomcOsDataRoot
    if ($Path -ne $root -and -not $Path.StartsWith($root + [IO.Path]::DirectorySeparatorChar, [StringComparison]::OrdinalIgnoreCase)) {
        throw ('{0} is not under dcomc''s folder {1}' -f $Path, $root)
    }
    $missing = @()
    $current = $Path
    while ($current.Length -ge $root.Length -and -not (Test-DcomcOsPath -Path $current)) {
        $missing = @($current) + $missing
        $current = Split-Path -Path $current -Parent
    }
    if ($current.Length -ge $root.Length -and -not (Test-DcomcTrustedPath -Path $current)) {
        throw ('{0} can be changed by users other than SYSTEM and Administrators; dcomc does not use it. Remove or secure it, then run again.' -f $current)
    }
    foreach ($folder in $missing) {
        New-DcomcOsSecureFolder -Path $folder
    }
}

# --- the data file: literals only, read from the syntax tree -----------------------------------
# Import-PowerShellDataFile refuses files of more than 5,000 syntax-tree nodes in Windows
# PowerShell 5.1 (-SkipLimitCheck exists only in 7.2+), about 190 resources: a host with many
# servers must still load. This reader takes the same literal subset with no limit, and refuses
# anything else (no command, no expandable string, no variable but $true/$false/$null).

function ConvertFrom-DcomcLiteral {
    param([Parameter(Mandatory = $true)] [System.Management.Automation.Language.Ast] $Ast)
    if ($Ast -is [System.Management.Automation.Language.HashtableAst]) {
        $table = @{}
        foreach ($pair in $Ast.KeyValuePairs) {
            $key = ConvertFrom-DcomcLiteral -Ast $pair.Item1
            if ($table.ContainsKey($key)) {
                throw ('Duplicate key {0} in the data file' -f $key)
            }
            $table[$key] = ConvertFrom-DcomcLiteral -Ast $pair.Item2
        }
        return $table
    }
    if ($Ast -is [System.Management.Automation.Language.ArrayExpressionAst]) {
        $items = New-Object -TypeName System.Collections.ArrayList
        foreach ($statement in $Ast.SubExpression.Statements) {
            $null = $items.Add((ConvertFrom-DcomcLiteral -Ast $statement))
        }
        return , $items.ToArray()
    }
    if ($Ast -is [System.Management.Automation.Language.PipelineAst] -and $Ast.PipelineElements.Count -eq 1) {
        return ConvertFrom-DcomcLiteral -Ast $Ast.PipelineElements[0]
    }
    if ($Ast -is [System.Management.Automation.Language.CommandExpressionAst] -and $Ast.Redirections.Count -eq 0) {
        return ConvertFrom-DcomcLiteral -Ast $Ast.Expression
    }
    if ($Ast -is [System.Management.Automation.Language.StringConstantExpressionAst] -and $Ast.StringConstantType -ne 'BareWord') {
        return $Ast.Value
    }
    if ($Ast -is [System.Management.Automation.Language.StringConstantExpressionAst] -and $Ast.Parent -is [System.Management.Automation.Language.HashtableAst]) {
        return $Ast.Value   # a bare key: Name = ...
    }
    if ($Ast -is [System.Management.Automation.Language.ConstantExpressionAst] -and $Ast -isnot [System.Management.Automation.Language.StringConstantExpressionAst]) {
        return $Ast.Value
    }
    if ($Ast -is [System.Management.Automation.Language.UnaryExpressionAst] -and $Ast.TokenKind -eq 'Minus' -and $Ast.Child -is [System.Management.Automation.Language.ConstantExpressionAst]) {
        return -($Ast.Child.Value)
    }
    if ($Ast -is [System.Management.Automation.Language.VariableExpressionAst]) {
        $constants = @{ 'true' = $true; 'false' = $false; 'null' = $null }
        if ($constants.ContainsKey($Ast.VariablePath.UserPath)) {
            return $constants[$Ast.VariablePath.UserPath]
        }
    }
    throw ('Not a literal in the data file (line {0}): {1}' -f $Ast.Extent.StartLineNumber, $Ast.Extent.Text)
}

function Read-DcomcDataFile {
    <# The one hashtable of a data file's bytes (-Name: the file, for messages), through the real
       parser and ConvertFrom-DcomcLiteral. The bytes are decoded as the parser reads a file: by
       its byte order mark, else in the default encoding of this PowerShell (dcomc writes UTF-8
       with a mark). #>
    param([Parameter(Mandatory = $true)] [string] $Name, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [byte[]] $Content)
    $reader = New-Object -TypeName System.IO.StreamReader -ArgumentList @((New-Object -TypeName System.IO.MemoryStream -ArgumentList @(, $Content)), [Text.Encoding]::Default, $true)
    try {
        $text = $reader.ReadToEnd()
    }
    finally {
        $reader.Dispose()
    }
    $tokens = $null
    $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseInput($text, [ref] $tokens, [ref] $errors)
    if ($errors.Count -gt 0) {
        throw ('The data file {0} does not parse: {1}' -f $Name, $errors[0].Message)
    }
    $statements = @($ast.EndBlock.Statements)
    if ($null -ne $ast.ParamBlock -or $null -ne $ast.BeginBlock -or $null -ne $ast.ProcessBlock -or $statements.Count -ne 1) {
        throw ('The data file {0} must hold exactly one hashtable' -f $Name)
    }
    $data = ConvertFrom-DcomcLiteral -Ast $statements[0]
    if ($data -isnot [hashtable]) {
        throw ('The data file {0} must hold exactly one hashtable' -f $Name)
    }
    return $data
}

# --- user rights as secedit writes them (pure text, used by the system layer) ---------------------

function ConvertFrom-DcomcRightLine {
    <# The holders of one right in a secedit export: '*S-1-..' -> 'S-1-..'; names are kept. #>
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]] $Lines, [Parameter(Mandatory = $true)] [string] $Right)
    $holders = @()
    foreach ($line in $Lines) {
        $parts = $line.Split('=', 2)
        if ($parts.Count -ne 2 -or $parts[0].Trim() -ne $Right) { continue }
        foreach ($holder in $parts[1].Split(',')) {
            $holder = $holder.Trim()
            if ($holder.StartsWith('*')) { $holder = $holder.Substring(1) }
            if ($holder) { $holders += $holder }
        }
    }
    return , $holders
}

function ConvertTo-DcomcRightTemplate {
    <# A security template that sets one right's holders: SIDs as *SID, untranslated names as
       they were exported (merging never loses a holder). #>
    param([Parameter(Mandatory = $true)] [string] $Right, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [string[]] $Holders)
    $texts = @(foreach ($holder in $Holders) { if ($holder -match '^S-1-[0-9-]+$') { '*' + $holder } else { $holder } })
    $lines = @('[Unicode]', 'Unicode=yes', '[Version]', 'signature="$CHICAGO$"', 'Revision=1', '[Privilege Rights]', ('{0} = {1}' -f $Right, ($texts -join ',')))
    return (($lines -join "`r`n") + "`r`n")
}
