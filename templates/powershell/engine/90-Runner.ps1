# ==== The runner: Test, Apply, Report, Rollback, and the backups ==================================

$script:ModuleFolder = $PSScriptRoot
$script:BackupFormat = 1

function Invoke-DcomcStep {
    param([Parameter(Mandatory = $true)] [string] $Verb, [Parameter(Mandatory = $true)] $Resource, $State)
    $kind = [string] $Resource.Kind
    if (-not $script:Kinds.ContainsKey($kind)) {
        throw ('Unknown resource kind {0}: the data file is newer than this engine' -f $kind)
    }
    $command = '{0}-Dcomc{1}' -f $Verb, $script:Kinds[$kind]
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
        Returns an object with Id, Kind, Guide, Compliant, Reason, State and Resource. Changes
        nothing.
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
        Resource  = $Resource
    }
}

function Assert-DcomcDataFile {
    param([Parameter(Mandatory = $true)] [string] $DataFile)
    if (-not (Test-DcomcOsPath -Path $DataFile)) {
        throw ('No data file {0}: is this PC one of the hosts of the bundle?' -f $DataFile)
    }
}

function Import-DcomcData {
    <#
    .SYNOPSIS
        Loads a host data file (.psd1): literals only, read from the real parser's syntax tree.
    .DESCRIPTION
        Refuses a data file of another computer unless -Force: the plan of SCADA01 applied to
        HMI01 would create SCADA01's accounts, firewall rules and AppID ACLs there.
    .PARAMETER DataFile
        Path of the .psd1 file.
    .PARAMETER Content
        The file's bytes, when they were read already (with their signature): they are not
        read again.
    .PARAMETER Force
        Accept a data file whose Host is not this computer's name.
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)] [string] $DataFile, [byte[]] $Content, [switch] $Force)
    if ($null -eq $Content) {
        Assert-DcomcDataFile -DataFile $DataFile
        $Content = (Read-DcomcOsSignedFile -Path $DataFile).Bytes
    }
    $data = Read-DcomcDataFile -Name $DataFile -Content $Content
    if (-not $data.ContainsKey('FormatVersion') -or [int] $data.FormatVersion -ne 1) {
        throw ('The data file {0} has a format this engine does not know' -f $DataFile)
    }
    $computer = Get-DcomcOsComputerName
    if ([string] $data.Host -ine $computer) {
        if (-not $Force) {
            throw ('The data file is for {0}, this PC is {1}: use the bundle of this PC (or -Force to apply it anyway)' -f $data.Host, $computer)
        }
        Write-Warning -Message ('The data file is for {0}, this PC is {1} (-Force, or a Rollback of this PC''s own backup)' -f $data.Host, $computer)
    }
    return $data
}

# --- the bundle's signature: a signed engine takes only a data file of the same signer -------------
# Under AllSigned Windows checks the entry script and this module before running them, but the
# data file is read as data, which no execution policy covers, and it decides what Apply writes
# as SYSTEM. A signed engine beside an unsigned data file, or one signed by another certificate,
# is a bundle put together from different sources: tampered, until someone says otherwise
# (-AllowUnsigned, for sites that sign only the scripts Windows runs). A file changed after it
# was signed (HashMismatch) is tampered whatever anyone says. An unsigned engine vouches for
# nothing: its data file is not checked (a replaced engine would not check it either).

function Get-DcomcSignatureVerdict {
    <# Pure: @{ Refusal (why Apply and Rollback must not run, or $null); Waivable (whether
       -AllowUnsigned lifts the refusal); Notes (@{ Level; Message } for the log) } from the
       signatures (Get-DcomcOsFileSignature) of the engine and of the data file. #>
    param([Parameter(Mandatory = $true)] $Engine, [Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] [string] $DataFile)
    $use = 'use the bundle as it was released'
    if ([string] $Engine.Status -eq 'HashMismatch') {
        return @{ Refusal = ('The engine DcomConfig.psm1 was changed after it was signed (its signature: HashMismatch): this copy of the bundle has been tampered with; {0}' -f $use); Waivable = $false; Notes = @() }
    }
    if ([string] $Data.Status -eq 'HashMismatch') {
        return @{ Refusal = ('The data file {0} was changed after it was signed (its signature: HashMismatch): this copy of the bundle has been tampered with; {1}' -f $DataFile, $use); Waivable = $false; Notes = @() }
    }
    $engineSigner = '{0} (thumbprint {1})' -f $Engine.Subject, $Engine.SignerThumbprint
    $dataSigner = '{0} (thumbprint {1})' -f $Data.Subject, $Data.SignerThumbprint
    if ([string] $Engine.Status -eq 'NotSigned') {
        $notes = @(@{ Level = 'INFO'; Message = ('the engine is not signed: the signature of the data file is not required (it is {0})' -f $Data.Status) })
        if ([string] $Data.Status -ne 'NotSigned') {
            $notes += @{ Level = 'WARN'; Message = ('the data file {0} is signed ({1}, by {2}) but the engine is not: the engine is not the one released with it' -f $DataFile, $Data.Status, $dataSigner) }
        }
        return @{ Refusal = $null; Waivable = $true; Notes = $notes }
    }
    if ([string] $Engine.Status -ne 'Valid') {
        # NotTrusted, UnknownError (an expired certificate without a timestamp), ...: the engine
        # is signed, but by whom cannot be established here, so neither can the data file's.
        return @{ Refusal = ('The engine''s own signature is {0} on this PC ({1}): the signer of the data file cannot be checked against it. Make the signing certificate trusted on this PC, or run with -AllowUnsigned if you trust this copy of the bundle' -f $Engine.Status, $Engine.StatusMessage); Waivable = $true; Notes = @() }
    }
    $engineThumbprint = [string] $Engine.SignerThumbprint
    if ([string] $Data.Status -eq 'Valid' -and $engineThumbprint -and $engineThumbprint -ieq [string] $Data.SignerThumbprint) {
        return @{ Refusal = $null; Waivable = $true; Notes = @(@{ Level = 'INFO'; Message = ('the engine and the data file are signed by {0}' -f $engineSigner) }) }
    }
    if ([string] $Data.Status -eq 'NotSigned') {
        $why = 'it is not signed'
    }
    elseif ([string] $Data.Status -eq 'Valid') {
        $why = 'it is signed by another certificate: {0}' -f $dataSigner
    }
    else {
        $why = 'its signature is {0} on this PC ({1})' -f $Data.Status, $Data.StatusMessage
    }
    return @{ Refusal = ('The engine is signed by {0}, but the data file {1} is not: {2}. A bundle whose files are not all signed by one certificate has been tampered with; {3}, or run with -AllowUnsigned if this site does not sign its data files' -f $engineSigner, $DataFile, $why, $use); Waivable = $true; Notes = @() }
}

function Test-DcomcBundleSignature {
    <# Checks the data file's signature (-Signature: of the bytes read, Read-DcomcOsSignedFile)
       against the engine's signer, before the data file is parsed or anything is changed.
       Apply and Rollback throw when the verdict refuses (exit 3, nothing changed); Test and
       Report only read, and go on with a warning. Returns the log notes (the log starts later:
       its folder is named by the data file). #>
    param([Parameter(Mandatory = $true)] [string] $DataFile, [Parameter(Mandatory = $true)] $Signature, [Parameter(Mandatory = $true)] [string] $Mode, [switch] $AllowUnsigned)
    $engine = Get-DcomcOsFileSignature -Path (Join-Path -Path $script:ModuleFolder -ChildPath 'DcomConfig.psm1')
    $verdict = Get-DcomcSignatureVerdict -Engine $engine -Data $Signature -DataFile $DataFile
    $notes = @($verdict.Notes)
    if ($verdict.Refusal) {
        $changes = ($Mode -eq 'Apply' -or $Mode -eq 'Rollback')
        if ($changes -and -not ($AllowUnsigned -and $verdict.Waivable)) {
            throw ('{0} refused before any change: {1}' -f $Mode, $verdict.Refusal)
        }
        if ($changes) {
            $message = '-AllowUnsigned: going on although {0}' -f $verdict.Refusal
        }
        else {
            $message = '{0} changes nothing and goes on, but Apply and Rollback would refuse: {1}' -f $Mode, $verdict.Refusal
        }
        $notes += @{ Level = 'WARN'; Message = $message }
    }
    foreach ($note in $notes) {
        if ($note.Level -eq 'WARN') {
            Write-Warning -Message $note.Message
        }
    }
    return , $notes
}

function Get-DcomcNeededPassword {
    <# Accounts whose password Apply will need, asked for BEFORE anything changes. #>
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Todo)
    $accounts = @()
    foreach ($result in $Todo) {
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

function Test-DcomcNeedsSet {
    <# A drifted resource, or an existing local user whose password -ResetPasswords sets again. #>
    param([Parameter(Mandatory = $true)] $Result)
    if (-not $Result.Compliant) {
        return $true
    }
    return ($script:ResetPasswords -and $Result.Kind -eq 'local_user')
}

# --- backups: %ProgramData%\dcomc\<site>\backups\<name>\changes.json -------------------------------

function Get-DcomcSiteFolder {
    param([Parameter(Mandatory = $true)] $Data, [string] $Name)
    $folder = Join-Path -Path (Get-DcomcOsDataRoot) -ChildPath ([string] $Data.Site)
    if ($Name) {
        $folder = Join-Path -Path $folder -ChildPath $Name
    }
    return $folder
}

function New-DcomcBackupFolder {
    <# The folder of a named backup (it accumulates over runs), or a new one per run. #>
    param([Parameter(Mandatory = $true)] $Data, [string] $BackupName)
    $root = Get-DcomcSiteFolder -Data $Data -Name 'backups'
    if ($BackupName) {
        $folder = Join-Path -Path $root -ChildPath $BackupName
    }
    else {
        $stamp = 'run-' + (Get-DcomcOsUtcNow).ToString('yyyyMMdd-HHmmss-fff', [Globalization.CultureInfo]::InvariantCulture)
        $folder = Join-Path -Path $root -ChildPath $stamp
        for ($n = 2; Test-DcomcOsPath -Path $folder; $n++) {
            $folder = Join-Path -Path $root -ChildPath ('{0}-{1}' -f $stamp, $n)
        }
    }
    Initialize-DcomcSecureFolder -Path $folder
    return $folder
}

function Read-DcomcBackup {
    <# changes.json of a backup, or $null when there is none. A backup that anyone but SYSTEM
       and Administrators could have written is refused: Rollback replays it with their rights. #>
    param([Parameter(Mandatory = $true)] [string] $Folder, [Parameter(Mandatory = $true)] $Data)
    $file = Join-Path -Path $Folder -ChildPath 'changes.json'
    if (-not (Test-DcomcOsPath -Path $file)) {
        return $null
    }
    if (-not (Test-DcomcTrustedPath -Path $file)) {
        throw ('The backup {0} can be changed by users other than SYSTEM and Administrators; it is not used' -f $Folder)
    }
    try {
        $saved = ConvertFrom-Json -InputObject (Read-DcomcOsFile -Path $file)
        if ($saved -isnot [System.Management.Automation.PSCustomObject]) {
            throw 'not a JSON object'
        }
        foreach ($field in 'Format', 'Site', 'Named', 'Changes') {
            if ($null -eq $saved.PSObject.Properties[$field]) { throw ('no {0}' -f $field) }
        }
        # What orders the backups. One written before they were numbered has no Sequence: 0,
        # older than any numbered one (Test-DcomcNewerBackup).
        foreach ($field in 'Sequence', 'Created') {
            if ($null -eq $saved.PSObject.Properties[$field]) {
                Add-Member -InputObject $saved -NotePropertyName $field -NotePropertyValue ([long] 0)
            }
            $null = [long] $saved.$field
        }
    }
    catch {
        throw ('The backup {0} cannot be read: {1}' -f $Folder, ($_.Exception.Message -replace '\s+', ' '))
    }
    if ([int] $saved.Format -ne $script:BackupFormat -or [string] $saved.Site -ne [string] $Data.Site) {
        throw ('The backup {0} is not a backup of site {1} by this engine' -f $Folder, $Data.Site)
    }
    return $saved
}

function Save-DcomcBackup {
    <# Every resource this backup has seen change, with its state BEFORE the first change (a
       named backup keeps the pristine state of what an earlier run changed). Only Ids and
       states are kept: Rollback takes each resource's definition from the data file. #>
    param([Parameter(Mandatory = $true)] $Backup, [Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Changes, [switch] $Named)
    $entries = New-Object -TypeName System.Collections.ArrayList
    $seen = @{}
    $old = @()
    $created = (Get-DcomcOsUtcNow).Ticks
    $sequence = $Backup.Sequence
    if ($null -ne $Backup.Earlier) {
        $old = @($Backup.Earlier.Changes)
        $created = [long] $Backup.Earlier.Created
        $sequence = [long] $Backup.Earlier.Sequence
    }
    foreach ($entry in @($old) + @($Changes)) {
        $id = [string] $entry.Id
        if ($seen.ContainsKey($id)) { continue }
        $seen[$id] = $true
        $null = $entries.Add(@{ Id = $id; Before = $entry.Before })
    }
    $content = @{ Format = $script:BackupFormat; Site = [string] $Data.Site; Host = [string] $Data.Host; Named = [bool] $Named; Created = $created; Sequence = $sequence; Changes = $entries.ToArray() }
    Write-DcomcOsFile -Path (Join-Path -Path $Backup.Folder -ChildPath 'changes.json') -Text (ConvertTo-Json -InputObject $content -Depth 14)
}

function Copy-DcomcEngine {
    <# The engine, the entry point and the data file beside the backup: a rollback can be run
       again from there after the MSI's uninstall removed the installed copy. #>
    param([Parameter(Mandatory = $true)] [string] $Folder, [Parameter(Mandatory = $true)] [string] $DataFile)
    $target = Join-Path -Path $Folder -ChildPath 'engine'
    Initialize-DcomcSecureFolder -Path $target
    foreach ($file in @((Join-Path -Path $script:ModuleFolder -ChildPath 'DcomConfig.psm1'), (Join-Path -Path $script:ModuleFolder -ChildPath 'Invoke-DcomConfig.ps1'), $DataFile)) {
        if (Test-DcomcOsPath -Path $file) {
            Copy-DcomcOsFile -Source $file -Destination (Join-Path -Path $target -ChildPath (Split-Path -Path $file -Leaf))
        }
    }
}

function Start-DcomcBackup {
    <# The backup folder of an Apply, with the human-usable exports on its first use. #>
    param([Parameter(Mandatory = $true)] $Data, [string] $BackupName, [Parameter(Mandatory = $true)] [string] $DataFile)
    $sequence = Get-DcomcNextSequence -Data $Data
    $folder = New-DcomcBackupFolder -Data $Data -BackupName $BackupName
    $earlier = Read-DcomcBackup -Folder $folder -Data $Data
    if ($null -eq $earlier) {
        $warnings = Export-DcomcOsSystemBackup -Folder $folder
        foreach ($warning in $warnings) {
            Write-DcomcLog -Level 'WARN' -Message ('backup copy incomplete: {0}' -f $warning)
        }
        Copy-DcomcEngine -Folder $folder -DataFile $DataFile
    }
    return @{ Folder = $folder; Earlier = $earlier; Sequence = $sequence }
}

function Complete-DcomcBackup {
    <# A backup whose changes were all restored is retired (renamed), so that no later Rollback
       replays stale states and "latest" never picks it again. #>
    param([Parameter(Mandatory = $true)] [string] $Folder)
    $name = '{0}.restored-{1}' -f (Split-Path -Path $Folder -Leaf), (Get-DcomcOsUtcNow).ToString('yyyyMMdd-HHmmss-fff', [Globalization.CultureInfo]::InvariantCulture)
    Rename-DcomcOsFolder -Path $Folder -NewName $name
    Write-DcomcLog -Message ('backup {0} retired as {1}' -f $Folder, $name)
}

function Get-DcomcSavedBackup {
    <# @{ Folder; Saved } of every backup folder of the site with a changes.json, retired ones
       included (their numbers are never given again). A folder that cannot be read (damaged,
       untrusted, another engine's) is skipped with a warning: it must not stop every later
       Apply and Rollback. Asked for by -Backup or -BackupName, the same folder fails the run. #>
    param([Parameter(Mandatory = $true)] $Data)
    $root = Get-DcomcSiteFolder -Data $Data -Name 'backups'
    if (-not (Test-DcomcOsPath -Path $root)) {
        return
    }
    foreach ($name in (Get-DcomcOsChildFolder -Path $root)) {
        $folder = Join-Path -Path $root -ChildPath $name
        try {
            $saved = Read-DcomcBackup -Folder $folder -Data $Data
        }
        catch {
            Write-DcomcLog -Level 'WARN' -Message ('backup skipped: {0}' -f $_.Exception.Message)
            continue
        }
        if ($null -ne $saved) {
            @{ Folder = $folder; Name = $name; Saved = $saved }
        }
    }
}

function Get-DcomcNextSequence {
    <# One more than any backup's number: "newest" is a count, not a time (a clock set back, or
       a daylight-saving change, does not reorder the runs). #>
    param([Parameter(Mandatory = $true)] $Data)
    $highest = [long] 0
    foreach ($backup in (Get-DcomcSavedBackup -Data $Data)) {
        if ([long] $backup.Saved.Sequence -gt $highest) { $highest = [long] $backup.Saved.Sequence }
    }
    return ($highest + 1)
}

function Test-DcomcNewerBackup {
    <# Whether backup $A is newer than $B: by number. Backups written before the numbers (no
       Sequence: all 0, older than any numbered one) by the time recorded in them, then by
       folder name (the run's UTC stamp), so that the choice among them never depends on the
       order the folders are listed in. #>
    param([Parameter(Mandatory = $true)] $A, $B)
    if ($null -eq $B) { return $true }
    foreach ($field in 'Sequence', 'Created') {
        if ([long] $A.Saved.$field -ne [long] $B.Saved.$field) {
            return ([long] $A.Saved.$field -gt [long] $B.Saved.$field)
        }
    }
    return ([string]::CompareOrdinal([string] $A.Name, [string] $B.Name) -gt 0)
}

function Find-DcomcLatestBackup {
    <# The newest unnamed, unretired backup by its number (never by folder name or time, and
       never a named backup such as the MSI's; see Test-DcomcNewerBackup for backups from
       before the numbers). #>
    param([Parameter(Mandatory = $true)] $Data)
    $best = $null
    foreach ($backup in (Get-DcomcSavedBackup -Data $Data)) {
        if ($backup.Name -notmatch '^run-[0-9-]+$' -or $backup.Saved.Named) { continue }
        if (Test-DcomcNewerBackup -A $backup -B $best) {
            $best = $backup
        }
    }
    if ($null -eq $best) {
        return $null
    }
    return $best.Folder
}

# --- restoring --------------------------------------------------------------------------------------

function Undo-DcomcChange {
    <# Restores changes in reverse order: @{ Failed; Manual } lists of messages. A Restore that
       cannot be done by a program returns a note for the operator (a manual step). #>
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Changes, $Cmdlet)
    $failed = @()
    $manual = @()
    for ($i = $Changes.Count - 1; $i -ge 0; $i--) {
        $change = $Changes[$i]
        $id = [string] $change.Resource.Id
        if ($null -ne $Cmdlet -and -not $Cmdlet.ShouldProcess($id, 'Restore')) {
            continue
        }
        try {
            $notes = @(Invoke-DcomcStep -Verb 'Restore' -Resource $change.Resource -State $change.Before | Where-Object -FilterScript { $_ -is [string] })
            foreach ($note in $notes) {
                $manual += ('{0}: {1}' -f $id, $note)
                Write-DcomcLog -Level 'WARN' -Message ('{0}: manual step: {1}' -f $id, $note)
            }
            Write-DcomcLog -Message ('restored {0}' -f $id)
        }
        catch {
            $failed += ('{0}: {1}' -f $id, $_.Exception.Message)
            Write-DcomcLog -Level 'ERROR' -Message ('could not restore {0}: {1}' -f $id, $_.Exception.Message)
        }
    }
    return @{ Failed = $failed; Manual = $manual }
}

function Invoke-DcomcApplyStep {
    <# Get (kept as it will be read back), record, Set, and test again: one resource. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Backup, [Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [System.Collections.ArrayList] $Changes, [switch] $Named)
    $before = ConvertTo-DcomcPlain -State (Invoke-DcomcStep -Verb 'Get' -Resource $Resource)
    $null = $Changes.Add(@{ Id = [string] $Resource.Id; Resource = $Resource; Before = $before })
    Save-DcomcBackup -Backup $Backup -Data $Data -Changes $Changes.ToArray() -Named:$Named
    $null = Invoke-DcomcStep -Verb 'Set' -Resource $Resource -State $before
    $after = Test-DcomcResource -Resource $Resource
    if (-not $after.Compliant) {
        throw ('still not compliant after Set: {0}' -f $after.Reason)
    }
    Write-DcomcLog -Message ('set {0}' -f $Resource.Id)
}

function Undo-DcomcApply {
    <# After a failed step: this run's changes restored, the backup left as it was before it. #>
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [System.Collections.ArrayList] $Changes, $Backup, $Data, [switch] $Named)
    $undo = Undo-DcomcChange -Changes $Changes.ToArray()
    if ($null -ne $Backup -and $undo.Failed.Count -eq 0) {
        if ($null -ne $Backup.Earlier) {
            Save-DcomcBackup -Backup $Backup -Data $Data -Changes @() -Named:$Named
        }
        else {
            Complete-DcomcBackup -Folder $Backup.Folder
        }
    }
    if ($undo.Failed.Count -gt 0 -or $undo.Manual.Count -gt 0) {
        return 4
    }
    return 2
}

function Invoke-DcomcApply {
    param([Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Results, [Parameter(Mandatory = $true)] $Cmdlet, [string] $BackupName, [Parameter(Mandatory = $true)] [string] $DataFile)
    $todo = @($Results | Where-Object -FilterScript { Test-DcomcNeedsSet -Result $_ })
    if ($WhatIfPreference) {
        # -WhatIf: say what would be set, write nothing (no backup, no prompt).
        foreach ($result in $todo) {
            $null = $Cmdlet.ShouldProcess([string] $result.Id, ('Set ({0})' -f $result.Reason))
        }
        return 0
    }
    if ($todo.Count -eq 0) {
        return 0
    }
    # Every password is asked for before the first change: a missing one changes nothing.
    foreach ($account in (Get-DcomcNeededPassword -Todo $todo)) {
        $null = Get-DcomcPassword -Account $account
    }
    $named = [bool] $BackupName
    $backup = Start-DcomcBackup -Data $Data -BackupName $BackupName -DataFile $DataFile
    $changes = New-Object -TypeName System.Collections.ArrayList
    foreach ($result in $todo) {
        if (-not $Cmdlet.ShouldProcess([string] $result.Id, ('Set ({0})' -f $result.Reason))) { continue }
        try {
            Invoke-DcomcApplyStep -Resource $result.Resource -Backup $backup -Data $Data -Changes $changes -Named:$named
        }
        catch {
            $message = $_.Exception.Message
            Write-DcomcLog -Level 'ERROR' -Message ('{0} failed: {1}; rolling back this run' -f $result.Id, $message)
            Write-Error -Message ('{0} failed: {1}' -f $result.Id, $message) -ErrorAction Continue
            return Undo-DcomcApply -Changes $changes -Backup $backup -Data $Data -Named:$named
        }
    }
    return 0
}

function Resolve-DcomcBackupFolder {
    param([Parameter(Mandatory = $true)] $Data, [string] $Backup, [string] $BackupName)
    if ($Backup) {
        return $Backup
    }
    if ($BackupName) {
        return (Join-Path -Path (Get-DcomcSiteFolder -Data $Data -Name 'backups') -ChildPath $BackupName)
    }
    $latest = Find-DcomcLatestBackup -Data $Data
    if ($null -eq $latest) {
        throw ('No backup to roll back under {0}' -f (Get-DcomcSiteFolder -Data $Data -Name 'backups'))
    }
    return $latest
}

function Invoke-DcomcRollback {
    <# Restores a backup with each resource's definition from the data file. 0: restored (manual
       steps are logged as warnings: an uninstall must never be blocked by them); 4: a restore
       failed, and the backup is kept so that Rollback can be run again. #>
    param([Parameter(Mandatory = $true)] $Data, [string] $Backup, [string] $BackupName, [Parameter(Mandatory = $true)] $Cmdlet)
    $folder = Resolve-DcomcBackupFolder -Data $Data -Backup $Backup -BackupName $BackupName
    $saved = $null
    if (Test-DcomcOsPath -Path $folder) {
        $saved = Read-DcomcBackup -Folder $folder -Data $Data
    }
    if ($null -eq $saved) {
        Write-DcomcLog -Message ('no backup in {0}: nothing to roll back' -f $folder)
        return 0
    }
    $resources = @{}
    foreach ($resource in $Data.Resources) { $resources[[string] $resource.Id] = $resource }
    $changes = @()
    foreach ($entry in @($saved.Changes)) {
        if ($resources.ContainsKey([string] $entry.Id)) {
            $changes += @{ Resource = $resources[[string] $entry.Id]; Before = $entry.Before }
        }
        else {
            Write-DcomcLog -Level 'WARN' -Message ('{0} is in the backup but not in this data file: not restored' -f $entry.Id)
        }
    }
    Write-DcomcLog -Message ('rolling back {0} ({1} changes)' -f $folder, $changes.Count)
    $undo = Undo-DcomcChange -Changes $changes -Cmdlet $Cmdlet
    if ($WhatIfPreference) {
        return 0
    }
    if ($undo.Failed.Count -gt 0) {
        Write-DcomcLog -Level 'ERROR' -Message ('the backup {0} is kept: fix the cause and run Rollback again with -Backup "{0}" (a copy of the engine is in its engine folder)' -f $folder)
        return 4
    }
    Complete-DcomcBackup -Folder $folder
    return 0
}

# --- the entry point --------------------------------------------------------------------------------

function Initialize-DcomcRun {
    <# Per-run state: passwords (all checked before anything is read or changed). #>
    param([System.Collections.Hashtable] $Passwords, [switch] $ResetPasswords, [switch] $PasswordsFromStdin)
    $script:RebootNeeded = $false
    $script:ResetPasswords = [bool] $ResetPasswords
    $script:Passwords = @{}
    $script:LogFile = $null
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
}

function Start-DcomcLog {
    <# A log file per run, only for an elevated run: dcomc's folder is writable by SYSTEM and
       Administrators only, and a non-elevated Test must not create folders anyone could own. #>
    param([Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] [string] $Mode)
    if (-not (Test-DcomcOsElevated)) {
        return
    }
    $logs = Get-DcomcSiteFolder -Data $Data -Name 'logs'
    Initialize-DcomcSecureFolder -Path $logs
    $stamp = (Get-DcomcOsUtcNow).ToString('yyyyMMdd-HHmmss-fff', [Globalization.CultureInfo]::InvariantCulture)
    $script:LogFile = Join-Path -Path $logs -ChildPath ('{0}-{1}.log' -f $stamp, $Mode)
}

function Write-DcomcSummary {
    param([Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Results)
    $summary = @($Results | Select-Object -Property 'Id', 'Compliant', 'Reason', 'Guide')
    $summary | Format-Table -AutoSize -Wrap | Out-String -Width 200 | Write-Host
    foreach ($result in $Results) {
        $status = 'DRIFTED'
        if ($result.Compliant) { $status = 'OK     ' }
        Write-DcomcLog -Message ('{0} {1}: {2}' -f $status, $result.Id, $result.Reason)
    }
}

function Write-DcomcReport {
    param([Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] [AllowEmptyCollection()] [object[]] $Results, [Parameter(Mandatory = $true)] [string] $Path)
    $report = [ordered] @{
        Site = $Data.Site; Host = $Data.Host; Computer = (Get-DcomcOsComputerName); Generator = $Data.Generator
        Spec = $Data.Spec; InputsSha256 = $Data.InputsSha256; Time = (Get-DcomcOsUtcNow).ToString('o', [Globalization.CultureInfo]::InvariantCulture)
        Resources = @($Results | Select-Object -Property 'Id', 'Compliant', 'Reason', 'State')
    }
    Write-DcomcOsFile -Path $Path -Text (ConvertTo-Json -InputObject $report -Depth 14)
}

# --- the last Apply's verdict, where deployment tools look (docs/deployment.md) ---------------------
# HKLM\SOFTWARE\dcomc\<site> (64-bit view) is the MSI's detection key; the engine adds the last
# Apply's exit code and time whatever ran it (an MSI, a script, a scheduled task), so an inventory
# of that key (SCCM hardware inventory, an Intune remediation, `reg query` over the network) sees
# the result of every route. Rollback removes them again, and the key once nothing else is in it:
# an uninstall leaves no trace (Windows Installer removes its own values after the engine ran).

function Write-DcomcApplyStatus {
    <# Records an Apply's process exit code and its time (UTC, ISO 8601). Never fails the run:
       the PC's configuration is what matters, a verdict that cannot be recorded is logged. #>
    param([Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] [int] $ExitCode)
    if ($WhatIfPreference) {
        return
    }
    $time = (Get-DcomcOsUtcNow).ToString('yyyy-MM-ddTHH:mm:ssZ', [Globalization.CultureInfo]::InvariantCulture)
    try {
        Write-DcomcOsApplyRecord -Site $Data.Site -Result $ExitCode -Time $time
    }
    catch {
        Write-DcomcLog -Level 'WARN' -Message ('cannot record the result in HKLM\SOFTWARE\dcomc\{0}: {1}' -f $Data.Site, $_.Exception.Message)
    }
}

function Clear-DcomcApplyStatus {
    <# After a successful Rollback: the record Write-DcomcApplyStatus wrote. #>
    param([Parameter(Mandatory = $true)] $Data)
    if ($WhatIfPreference) {
        return
    }
    try {
        Remove-DcomcOsApplyRecord -Site $Data.Site
    }
    catch {
        Write-DcomcLog -Level 'WARN' -Message ('cannot clear the result in HKLM\SOFTWARE\dcomc\{0}: {1}' -f $Data.Site, $_.Exception.Message)
    }
}

function New-DcomcOutcome {
    param([int] $ExitCode, [AllowEmptyCollection()] [object[]] $Results = @())
    return [pscustomobject] @{ ExitCode = $ExitCode; Results = $Results; RebootRequired = $script:RebootNeeded; LogFile = $script:LogFile }
}

function Get-DcomcProcessExitCode {
    <#
    .SYNOPSIS
        The exit code of Invoke-DcomConfig.ps1 for an outcome of Invoke-DcomcConfiguration.
    .DESCRIPTION
        5 (applied, reboot required) when an Apply ended with 0 and changed a setting that
        Windows reads only at startup (machine DCOM values, limits, the RPC port range: guide
        §4.3); otherwise the outcome's own code. Kept out of the outcome's ExitCode, which stays
        0 for a successful Apply: the process exit code is what Windows Installer, SCCM and
        Intune read, and the MSI's custom action maps 5 to a scheduled reboot (return 3010).
        Rollback is never 5: an uninstall ignores the engine's code (it must never block).
    #>
    param([Parameter(Mandatory = $true)] $Outcome, [Parameter(Mandatory = $true)] [string] $Mode)
    if ($Mode -eq 'Apply' -and [int] $Outcome.ExitCode -eq 0 -and $Outcome.RebootRequired) {
        return 5
    }
    return [int] $Outcome.ExitCode
}

function Invoke-DcomcConfiguration {
    <#
    .SYNOPSIS
        Runs one mode (Test, Apply, Report, Rollback) of a dcomc bundle on this PC.
    .DESCRIPTION
        See Invoke-DcomConfig.ps1 for the modes and exit codes. Returns an object with
        ExitCode, Results, RebootRequired and LogFile. Every error it does not handle itself is
        exit code 3, never 1 (1 means drifted). ExitCode is 0-4; the process exit code 5
        (applied, reboot required) comes from Get-DcomcProcessExitCode.
    .PARAMETER Mode
        Test, Apply, Report, Rollback or Capture (docs/capture.md: no data file needed).
    .PARAMETER DataFile
        The host data file (.psd1).
    .PARAMETER Path
        Report and Capture modes: the JSON file to write (relative to the current location).
    .PARAMETER Backup
        Rollback mode: the backup folder (default: the latest backup of an Apply run).
    .PARAMETER Passwords
        Account name -> SecureString.
    .PARAMETER ResetPasswords
        Apply: also reset the passwords of existing local accounts.
    .PARAMETER BackupName
        Apply: a named backup folder that accumulates over runs (the MSI's); Rollback: restore
        and retire it.
    .PARAMETER PasswordsFromStdin
        Read passwords from standard input, one `Base64(account)<TAB>Base64(password)` line
        each, both UTF-16LE (the MSI's route: never on a command line, any code page).
    .PARAMETER Force
        Use a data file made for another computer.
    .PARAMETER AllowUnsigned
        Apply and Rollback with a signed engine whose data file is unsigned, signed by another
        certificate, or not verifiable here (or with an engine whose signature does not verify
        on this PC). A file changed after it was signed (HashMismatch) is refused even so.
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
    param(
        [ValidateSet('Test', 'Apply', 'Report', 'Rollback', 'Capture')] [string] $Mode = 'Test',
        [string] $DataFile,
        [string] $Path,
        [string] $Backup,
        [System.Collections.Hashtable] $Passwords,
        [switch] $ResetPasswords,
        [string] $BackupName,
        [switch] $PasswordsFromStdin,
        [switch] $Force,
        [switch] $AllowUnsigned
    )
    $data = $null  # known once the data file is read: an Apply refused after that is recorded
    try {
        if ($Mode -eq 'Capture') {
            # No data file: a capture reads a PC that may have no bundle yet (docs/capture.md).
            return New-DcomcOutcome -ExitCode (Invoke-DcomcCapture -Path $Path -Cmdlet $PSCmdlet)
        }
        if (-not $DataFile) { throw 'No -DataFile' }
        $DataFile = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($DataFile)  # .NET opens it
        Initialize-DcomcRun -Passwords $Passwords -ResetPasswords:$ResetPasswords -PasswordsFromStdin:$PasswordsFromStdin
        Assert-DcomcDataFile -DataFile $DataFile
        # Read once: the signature checked is that of the bytes parsed (Read-DcomcOsSignedFile).
        $file = Read-DcomcOsSignedFile -Path $DataFile
        $signatureNotes = Test-DcomcBundleSignature -DataFile $DataFile -Signature $file.Signature -Mode $Mode -AllowUnsigned:$AllowUnsigned
        # A Rollback restores this PC's own backup: right whatever the PC is called now (renamed
        # since the install, or named by the site package's DCOMC_HOST), so it never refuses.
        $data = Import-DcomcData -DataFile $DataFile -Content $file.Bytes -Force:($Force -or $Mode -eq 'Rollback')
        if (($Mode -eq 'Apply' -or $Mode -eq 'Rollback') -and -not (Test-DcomcOsElevated)) {
            throw ('{0} needs an elevated PowerShell (Run as administrator)' -f $Mode)
        }
        if ($Mode -eq 'Report') {
            if (-not $Path) { throw 'Report needs -Path FILE.json' }
            $Path = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($Path)
        }
        Start-DcomcLog -Data $data -Mode $Mode
        # The signature's verdict joins the first line (one log write as before: tests count
        # the writes of a run); a warning gets a line of its own.
        $first = '{0} on {1} with {2} ({3})' -f $Mode, (Get-DcomcOsComputerName), $DataFile, $data.Generator
        foreach ($note in @($signatureNotes | Where-Object -FilterScript { $_.Level -ne 'WARN' })) {
            $first += '; signature: {0}' -f $note.Message
        }
        Write-DcomcLog -Message $first
        foreach ($note in @($signatureNotes | Where-Object -FilterScript { $_.Level -eq 'WARN' })) {
            Write-DcomcLog -Level 'WARN' -Message ('signature: {0}' -f $note.Message)
        }
        if ($Mode -eq 'Rollback') {
            $code = Invoke-DcomcRollback -Data $data -Backup $Backup -BackupName $BackupName -Cmdlet $PSCmdlet
            if ($code -eq 0) { Clear-DcomcApplyStatus -Data $data }
            $script:RebootNeeded = $true
            return New-DcomcOutcome -ExitCode $code
        }
        $results = @(foreach ($resource in $data.Resources) { Test-DcomcResource -Resource $resource })
        $code = 0
        if ($Mode -eq 'Apply') {
            $code = Invoke-DcomcApply -Data $data -Results $results -Cmdlet $PSCmdlet -BackupName $BackupName -DataFile $DataFile
            Write-DcomcApplyStatus -Data $data -ExitCode (Get-DcomcProcessExitCode -Outcome (New-DcomcOutcome -ExitCode $code) -Mode 'Apply')
            $results = @(foreach ($resource in $data.Resources) { Test-DcomcResource -Resource $resource })
        }
        Write-DcomcSummary -Results $results
        if ($Mode -eq 'Report') {
            Write-DcomcReport -Data $data -Results $results -Path $Path
        }
        if ($Mode -eq 'Test' -and @($results | Where-Object -FilterScript { -not $_.Compliant }).Count -gt 0) {
            $code = 1
        }
        if ($script:RebootNeeded) {
            Write-Warning -Message 'Reboot this PC: DCOM machine settings take effect after a reboot (guide §4.3).'
        }
        return New-DcomcOutcome -ExitCode $code -Results $results
    }
    catch {
        Write-Error -Message $_.Exception.Message -ErrorAction Continue
        try { Write-DcomcLog -Level 'ERROR' -Message ('{0} ({1})' -f $_.Exception.Message, ($_.ScriptStackTrace -replace '\r?\n', ' <- ')) } catch { Write-Verbose -Message 'no log' }
        if ($Mode -eq 'Apply' -and $null -ne $data) {
            Write-DcomcApplyStatus -Data $data -ExitCode 3  # never throws: a failure is logged
        }
        return New-DcomcOutcome -ExitCode 3
    }
}

Export-ModuleMember -Function 'Invoke-DcomcConfiguration', 'Get-DcomcProcessExitCode', 'Test-DcomcResource', 'Import-DcomcData', 'Get-DcomcCapture'
