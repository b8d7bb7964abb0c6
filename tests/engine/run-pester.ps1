# Runs one Pester container for tests/engine/test_pester.py and prints one summary line that
# the Python side reads: every test must pass, none may be skipped.
param([Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $ResultFile)
$ErrorActionPreference = 'Stop'
Import-Module -Name Pester -MinimumVersion 5.5 -ErrorAction Stop
$configuration = New-PesterConfiguration
$configuration.Run.Path = $Path
$configuration.Run.PassThru = $true
$configuration.Output.Verbosity = 'Normal'
$configuration.Output.RenderMode = 'Plaintext'
$configuration.TestResult.Enabled = $true
$configuration.TestResult.OutputFormat = 'JUnitXml'
$configuration.TestResult.OutputPath = $ResultFile
$result = Invoke-Pester -Configuration $configuration
'PESTER-SUMMARY passed={0} failed={1} skipped={2} notrun={3} total={4} containers-failed={5} seconds={6:0.0}' -f $result.PassedCount, $result.FailedCount, $result.SkippedCount, $result.NotRunCount, $result.TotalCount, $result.FailedContainersCount, $result.Duration.TotalSeconds
if ($result.Result -ne 'Passed' -or $result.FailedCount -gt 0 -or $result.SkippedCount -gt 0 -or $result.TotalCount -eq 0) {
    exit 1
}
exit 0
