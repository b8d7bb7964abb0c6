# Writes the sample Report JSON of examples/reports/: the real engine of each host of a built
# bundle, run against the simulated Windows (SimWindows.ps1) as a fresh English Windows 10 PC
# where the plant's OPC software is installed, then Apply, then Report. On -DriftHost, after the
# Apply, something lowers the machine-wide DCOM authentication level (as an OPC vendor's
# installer does), so that `dcomc drift` has something to show.
#
#   pwsh -NoProfile -File tests/engine/make-sample-reports.ps1 -Bundle build/plant7-line3 -OutDir examples/reports -DriftHost HMI02
#
# It builds nothing: `dcomc build SPEC -o DIR --no-msi` first. tests/engine/test_sample_reports.py
# runs it on a fresh build and compares its output with the shipped files.
param(
    [Parameter(Mandatory = $true)] [string] $Bundle,
    [Parameter(Mandatory = $true)] [string] $OutDir,
    [string] $DriftHost = ''
)
$ErrorActionPreference = 'Stop'
. (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')

# The value the drifted PC loses: LegacyAuthenticationLevel back to 2 (CONNECT), Windows's
# default, below the packet integrity that KB5004442 requires.
$script:DriftValue = @{ Path = 'SOFTWARE\Microsoft\Ole'; Name = 'LegacyAuthenticationLevel'; Type = 'DWord'; Data = 2 }
# Every report's Time comes from the simulated clock, set to a fixed morning per host, so the
# output is the same in every run.
$script:ReportTime = [DateTime]::new(2026, 3, 2, 6, 0, 0, [DateTimeKind]::Utc)

function Get-SampleHost {
    <# The hosts of the bundle, from its data files: <Bundle>/<HOST>/powershell/<HOST>.psd1. #>
    param([Parameter(Mandatory = $true)] [string] $Root)
    $files = @(Get-ChildItem -LiteralPath $Root -Filter '*.psd1' -Recurse | Where-Object -FilterScript { $_.Directory.Name -eq 'powershell' } | Sort-Object -Property FullName)
    if ($files.Count -eq 0) { throw ('no host data file (<HOST>/powershell/<HOST>.psd1) under {0}' -f $Root) }
    foreach ($file in $files) {
        $folder = $file.Directory.FullName
        [pscustomobject] @{
            Host = $file.BaseName; DataFile = $file.FullName
            Engine = (Join-Path -Path $folder -ChildPath 'DcomConfig.psm1')
        }
    }
}

function Write-SampleReport {
    <# One host: a fresh PC, Apply (exit 0 required), the drift if asked, then Report. #>
    param([Parameter(Mandatory = $true)] $Target, [Parameter(Mandatory = $true)] [string] $Path, [int] $Index, [switch] $Drift)
    $module = Import-SimEngine -Engine $Target.Engine
    $data = Initialize-SimPc -Module $module -Bundle $Target -Locale 'en-US'
    $applied = Invoke-Engine -Bundle $Target -Data $data -With @{ Mode = 'Apply' }
    if ($applied.ExitCode -ne 0) { throw ('Apply on {0} exited {1}' -f $Target.Host, $applied.ExitCode) }
    if ($Drift) {
        & $module { param($value) Set-DcomcOsRegistryValue @value } $script:DriftValue
    }
    & $module { param($time) Set-SimClock -Time $time } $script:ReportTime.AddMinutes($Index)
    $report = Invoke-Engine -Bundle $Target -Data $data -With @{ Mode = 'Report'; Path = $Path }
    if ($report.ExitCode -ne 0) { throw ('Report on {0} exited {1}' -f $Target.Host, $report.ExitCode) }
    & $module { Remove-SimWindows }
}

$targets = @(Get-SampleHost -Root $Bundle)
if ($DriftHost -and -not ($targets.Host -contains $DriftHost)) {
    throw ('-DriftHost {0} is not a host of {1} (hosts: {2})' -f $DriftHost, $Bundle, ($targets.Host -join ', '))
}
$null = New-Item -ItemType Directory -Path $OutDir -Force
$index = 0
foreach ($target in $targets) {
    $path = Join-Path -Path (Resolve-Path -LiteralPath $OutDir).Path -ChildPath ('{0}.json' -f $target.Host)
    Write-SampleReport -Target $target -Path $path -Index $index -Drift:($target.Host -eq $DriftHost)
    $path
    $index += 1
}
