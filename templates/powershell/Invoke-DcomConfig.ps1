<#
.SYNOPSIS
    Tests, applies, reports or rolls back the secure OPC DCOM configuration of this PC.

.DESCRIPTION
    Entry point of a dcomc bundle. It loads the engine (DcomConfig.psm1) and this PC's data
    file (<COMPUTERNAME>.psd1, literals only) from its own folder and runs one mode:

      Test      (default, read-only) a table of every resource, compliant or drifted, with
                the reason.
      Apply     backs up what it will touch, then sets every drifted resource in plan order
                and tests it again; at the first failure it restores what it changed.
                Running Apply twice changes nothing the second time.
      Report    writes the current state of every resource as JSON (-Path), the input of
                `dcomc drift`.
      Rollback  restores a backup taken by Apply (the latest Apply run unless -Backup or
                -BackupName names one) and retires it; a backup anyone but SYSTEM and
                Administrators could have changed is refused.
      Capture   (read-only, no data file, no elevation needed) writes what this PC has
                today as JSON (-Path): its OPC servers, DCOM settings, accounts and firewall
                rules, the input of `dcomc import` (docs/capture.md). No password material.

    Logs and backups: %ProgramData%\dcomc\<site>\logs and ...\backups, created with an ACL
    that lets only SYSTEM and Administrators change them (a non-elevated Test writes no log).
    Passwords are never read from the command line: pass SecureStrings with -Passwords or
    answer the prompts; nothing is ever written to a file or a log.

    Signed bundles: under AllSigned Windows checks this script and the engine before running
    them, but not the data file, which is read as data. When the engine is signed, Apply and
    Rollback take only a data file signed with the same certificate (a mixed bundle has been
    tampered with), unless -AllowUnsigned; a file changed after it was signed is always
    refused. With an unsigned engine the data file's signature is not required (the log says
    so). Test and Report only warn.

    Exit codes:
      0  compliant (Test), done (Apply, Report, Rollback; a Rollback whose only leftovers are
         manual steps logs them as warnings)
      1  drifted: at least one resource is not compliant (Test)
      2  Apply failed; the changes of this run were rolled back
      3  nothing was changed: not elevated, data file missing or for another PC, a data file
         not signed by the engine's signer or changed after signing (Apply, Rollback),
         password missing, bad parameters, an untrusted backup folder, any unexpected error
      4  a rollback failed or left a manual step: the PC needs attention (see the log)
      5  applied, reboot required (Apply): done, and a setting Windows reads only at startup
         changed (machine DCOM values and limits, the RPC port range; guide §4.3). A success:
         reboot when convenient. dcomc never reboots; its MSI then returns 3010.

.PARAMETER Mode
    Test, Apply, Report, Rollback or Capture.

.PARAMETER Path
    Report and Capture modes: the JSON file to write.

.PARAMETER Backup
    Rollback mode: the backup folder to restore (default: the latest Apply run's).

.PARAMETER DataFile
    The data file to use (default: <COMPUTERNAME>.psd1 beside this script).

.PARAMETER Passwords
    Account name -> SecureString, for unattended runs, e.g.
    @{ 'opcuser' = (Read-Host -AsSecureString) }.

.PARAMETER ResetPasswords
    Apply: also set the password of local accounts that already exist (workgroup sites need
    the same password on every PC).

.PARAMETER BackupName
    Apply: name of the backup folder (default: a timestamp); a named backup accumulates over
    runs. Rollback: restore that named backup.

.PARAMETER PasswordsFromStdin
    Read passwords from standard input, one Base64(account)<TAB>Base64(password) line each,
    both UTF-16LE (the MSI's route: never on a command line, never in a log, any code page).

.PARAMETER Force
    Use a data file made for another computer (refused without it).

.PARAMETER AllowUnsigned
    Apply or Rollback although the engine is signed and the data file is not signed by the same
    certificate (or a signature cannot be verified on this PC): for sites that do not sign
    their data files. A file changed after it was signed is refused even so.

.EXAMPLE
    .\Invoke-DcomConfig.ps1
    Tests this PC against its plan.

.EXAMPLE
    .\Invoke-DcomConfig.ps1 -Mode Apply -WhatIf
    Shows what Apply would change, changing nothing.
#>
[CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Medium')]
param(
    [ValidateSet('Test', 'Apply', 'Report', 'Rollback', 'Capture')]
    [string] $Mode = 'Test',
    [string] $Path,
    [string] $Backup,
    [string] $DataFile,
    [System.Collections.Hashtable] $Passwords,
    [switch] $ResetPasswords,
    [string] $BackupName,
    [switch] $PasswordsFromStdin,
    [switch] $Force,
    [switch] $AllowUnsigned
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

# Any error this script does not expect ends with 3 ("nothing was changed"), never with
# PowerShell's 1, which the exit codes above define as "drifted".
try {
    $here = Split-Path -Parent $MyInvocation.MyCommand.Path
    Import-Module -Name (Join-Path -Path $here -ChildPath 'DcomConfig.psm1') -Force
    if (-not $DataFile -and $Mode -ne 'Capture') {
        $DataFile = Join-Path -Path $here -ChildPath ($env:COMPUTERNAME + '.psd1')
    }
    $arguments = @{}
    foreach ($name in $PSBoundParameters.Keys) {
        $arguments[$name] = $PSBoundParameters[$name]
    }
    $arguments['DataFile'] = $DataFile
    $arguments['Mode'] = $Mode
    $result = Invoke-DcomcConfiguration @arguments
    exit (Get-DcomcProcessExitCode -Outcome $result -Mode $Mode)
}
catch {
    Write-Error -Message $_.Exception.Message -ErrorAction Continue
    exit 3
}
