# Writes the sample captures of examples/captures/: the real engine of each host of a built
# bundle, run against the simulated Windows (SimWindows.ps1) as a fresh English Windows 10 PC
# where the plant's OPC software is installed as its vendor's installer leaves it (the OPC DA
# category on each server class, the service's command line naming its executable), then
# Apply, then `-Mode Capture`. The PC's address is the one manifest.json gives the host.
#
#   pwsh -NoProfile -File tests/engine/make-sample-captures.ps1 -Bundle build/plant7-line3 -OutDir examples/captures
#
# It builds nothing: `dcomc build SPEC -o DIR --no-msi` first. tests/unit/test_import.py runs
# it on a fresh build, compares its output with the shipped files and imports them.
#
# -Vendor FILE.json: the vendor software of every server, [{Clsid, Executable, Service}] (the
# test writes it from the spec and the catalog); without it, the catalog's KEPServerEX 6.
# -Domain NAME: every PC is joined to that domain (plant9.local), else in WORKGROUP.
param(
    [Parameter(Mandatory = $true)] [string] $Bundle,
    [Parameter(Mandatory = $true)] [string] $OutDir,
    [string] $Vendor = '',
    [string] $Domain = ''
)
$ErrorActionPreference = 'Stop'
$script:Domain = $Domain
. (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')

# Every capture's Time comes from the simulated clock, set per host: the same output each run.
$script:CaptureTime = [DateTime]::new(2026, 3, 2, 7, 0, 0, [DateTimeKind]::Utc)

function Install-VendorState {
    <# What the plan's servers' installers register beyond Initialize-SimPc: the DA 2.0
       category, LocalServer32 = the catalog's executable, the service running it. #>
    param([Parameter(Mandatory = $true)] $Module, [Parameter(Mandatory = $true)] $Data, [Parameter(Mandatory = $true)] $Catalog)
    foreach ($resource in $Data.Resources) {
        if (-not $resource.ContainsKey('App') -or $resource.App.Key -eq 'opcenum' -or -not $resource.App.Clsid) { continue }
        $app = $resource.App
        $product = $Catalog[[string] $app.Clsid]
        & $Module {
            param($app, $product)
            $bitness = 32
            if ($app.Bitness) { $bitness = [int] $app.Bitness }
            $view = @{ 32 = 'Registry32'; 64 = 'Registry64' }[$bitness]
            Add-SimImplementedCategory -Clsid $app.Clsid -Category @('DA2') -Bitness $bitness
            if ($null -ne $product -and $product.Executable) {
                Set-SimRegistryValue -Path ('SOFTWARE\Classes\CLSID\{0}\LocalServer32' -f $app.Clsid) -Name '' -Type 'String' -Data $product.Executable -View $view
                if ($product.Service -and $script:Sim.Services.Contains($product.Service)) {
                    Set-SimServicePath -Name $product.Service -PathName ('"{0}"' -f $product.Executable)
                }
            }
        } $app $product
    }
}

function Write-SampleCapture {
    param([Parameter(Mandatory = $true)] $Target, [Parameter(Mandatory = $true)] [string] $Path, [Parameter(Mandatory = $true)] [string] $Address, [Parameter(Mandatory = $true)] $Catalog, [int] $Index)
    $module = Import-SimEngine -Engine $Target.Engine
    $data = Initialize-SimPc -Module $module -Bundle $Target -Locale 'en-US'
    Install-VendorState -Module $module -Data $data -Catalog $Catalog
    if ($script:Domain) {
        & $module { param($address, $name) Set-SimNetwork -Address @($address) -Domain $name -PartOfDomain } $Address $script:Domain
    }
    else {
        & $module { param($address) Set-SimNetwork -Address @($address) } $Address
    }
    $applied = Invoke-Engine -Bundle $Target -Data $data -With @{ Mode = 'Apply' }
    if ($applied.ExitCode -ne 0) { throw ('Apply on {0} exited {1}' -f $Target.Host, $applied.ExitCode) }
    & $module { param($time) Set-SimClock -Time $time } $script:CaptureTime.AddMinutes($Index)
    $outcome = & $module { param($p) Invoke-DcomcConfiguration -Mode Capture -Path $p 6>$null } $Path
    if ($outcome.ExitCode -ne 0) { throw ('Capture on {0} exited {1}' -f $Target.Host, $outcome.ExitCode) }
    & $module { Remove-SimWindows }
}

$manifest = Get-Content -LiteralPath (Join-Path -Path $Bundle -ChildPath 'manifest.json') -Raw | ConvertFrom-Json
# The catalog's executables and services, by CLSID: `dcomc catalog --json` is not needed here,
# the data file's servers carry their CLSID and the catalog file is plain YAML read by Python.
$catalog = @{ '{7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729}' = @{ Executable = 'C:\Program Files (x86)\Kepware\KEPServerEX 6\server_runtime.exe'; Service = 'KEPServerEXV6' } }
if ($Vendor) {
    $catalog = @{}
    foreach ($entry in @(Get-Content -LiteralPath $Vendor -Raw | ConvertFrom-Json)) {
        $catalog[([string] $entry.Clsid).ToUpperInvariant()] = @{ Executable = [string] $entry.Executable; Service = [string] $entry.Service }
    }
}
$null = New-Item -ItemType Directory -Path $OutDir -Force
$index = 0
$files = @(Get-ChildItem -LiteralPath $Bundle -Filter '*.psd1' -Recurse | Where-Object -FilterScript { $_.Directory.Name -eq 'powershell' } | Sort-Object -Property FullName)
foreach ($file in $files) {
    $target = [pscustomobject] @{ Host = $file.BaseName; DataFile = $file.FullName; Engine = (Join-Path -Path $file.Directory.FullName -ChildPath 'DcomConfig.psm1') }
    $path = Join-Path -Path (Resolve-Path -LiteralPath $OutDir).Path -ChildPath ('{0}.json' -f $target.Host)
    Write-SampleCapture -Target $target -Path $path -Address ([string] $manifest.hosts.($target.Host).address) -Catalog $catalog -Index $index
    $path
    $index += 1
}
