# For test_msi_route.py: one Apply of a host's engine on a simulated PC, with the passwords on
# standard input exactly as the MSI's custom action wrote them; prints the exit code and, for
# each local account of the plan, whether its password is the one the test gave.
param([string] $Only, [string] $Stdin, [string] $Mode, [string] $BackupName)
$ErrorActionPreference = 'Stop'
. (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
$env:DCOMC_ONLY = $Only
$target = Get-TestBundle
$module = Import-SimEngine -Engine $target.Engine
$data = Initialize-SimPc -Module $module -Bundle $target
& $module { param($t) Set-SimStdin -Text $t } ([IO.File]::ReadAllText($Stdin))
$outcome = Invoke-DcomcConfiguration -Mode $Mode -DataFile $target.DataFile -BackupName $BackupName -PasswordsFromStdin 2>$null 3>$null 6>$null
$check = @{}
foreach ($resource in @($data.Resources | Where-Object -FilterScript { $_.Kind -eq 'local_user' })) {
    $check[$resource.Name] = & $module { param($n, $p) Test-SimPassword -Account $n -Password $p } $resource.Name $env:DCOMC_TEST_SECRET
}
ConvertTo-Json -Compress -InputObject @{ ExitCode = $outcome.ExitCode; Passwords = $check }
