# Shared by the engine's Pester containers: the bundles under test, the engine module with the
# simulated Windows dot-sourced into its scope (it replaces the system layer's functions there,
# so every other line of the engine runs as shipped), and a simulated PC set up for a host.

Set-StrictMode -Version 3.0
$script:SimPath = Join-Path -Path $PSScriptRoot -ChildPath 'SimWindows.ps1'
$script:Repo = (Resolve-Path -Path (Join-Path -Path $PSScriptRoot -ChildPath '../..')).Path
$script:TestPassword = 'Grüße§€-Pa55'   # non-ASCII, and meets the default complexity policy

function Get-TestBundle {
    <# Every host bundle the pytest fixture built: @{ Name; Spec; Host; Folder; DataFile;
       Engine; Entry; SpecFile }, or the one DCOMC_ONLY names (spec-stem/HOST). #>
    $root = $env:DCOMC_BUNDLES
    if (-not $root) {
        throw 'DCOMC_BUNDLES is not set: run the engine tests through python -m pytest'
    }
    $found = foreach ($file in (Get-ChildItem -LiteralPath $root -Recurse -Filter '*.psd1')) {
        $folder = $file.Directory.FullName
        $hostName = $file.BaseName
        $spec = $file.Directory.Parent.Parent.Name
        $specFile = Join-Path -Path $script:Repo -ChildPath ('examples/{0}.yaml' -f $spec)
        if (-not (Test-Path -LiteralPath $specFile)) {
            $specFile = Join-Path -Path $PSScriptRoot -ChildPath ('{0}.yaml' -f $spec)
        }
        [pscustomobject] @{
            Name = '{0}/{1}' -f $spec, $hostName; Spec = $spec; Host = $hostName; Folder = $folder
            DataFile = $file.FullName; Engine = (Join-Path -Path $folder -ChildPath 'DcomConfig.psm1')
            Entry = (Join-Path -Path $folder -ChildPath 'Invoke-DcomConfig.ps1'); SpecFile = $specFile
        }
    }
    $found = @($found | Sort-Object -Property Name)
    if ($env:DCOMC_ONLY) {
        $found = @($found | Where-Object -FilterScript { $_.Name -eq $env:DCOMC_ONLY })
    }
    if ($found.Count -eq 0) {
        throw ('No bundle for {0} under {1}' -f $env:DCOMC_ONLY, $root)
    }
    return $found
}

function Import-SimEngine {
    <# The bundle's engine module, with the simulated Windows in place of its system layer. #>
    param([Parameter(Mandatory = $true)] [string] $Engine)
    Get-Module -Name 'DcomConfig' | Remove-Module -Force
    $module = Import-Module -Name $Engine -Force -PassThru -DisableNameChecking
    . $module $script:SimPath
    return $module
}

function Get-TestGuid {
    <# A GUID derived from a text (MD5): the same server gets the same CLSID in every run. #>
    param([Parameter(Mandatory = $true)] [string] $Text)
    $md5 = [Security.Cryptography.MD5]::Create()
    $bytes = $md5.ComputeHash([Text.Encoding]::UTF8.GetBytes($Text))
    return ('{' + (New-Object -TypeName Guid -ArgumentList (, $bytes)).ToString().ToUpperInvariant() + '}')
}

function Get-PlanPrincipal {
    <# Every principal hashtable anywhere in a data file's resources. #>
    param([AllowNull()] $Value)
    if ($Value -is [hashtable]) {
        if ($Value.ContainsKey('Kind') -and $Value.ContainsKey('Sid') -and $Value.ContainsKey('Name') -and -not $Value.ContainsKey('Id')) {
            $Value
        }
        foreach ($item in $Value.Values) { Get-PlanPrincipal -Value $item }
    }
    elseif ($Value -is [array]) {
        foreach ($item in $Value) { Get-PlanPrincipal -Value $item }
    }
}

function Initialize-SimPc {
    <# A fresh simulated Windows 10 PC for a host, with what the plant installs before dcomc:
       the OPC servers of its plan (COM classes without an AppID value unless -WithAppIds, the
       case where Apply creates one), their services running as LocalSystem, and the domain's
       accounts. Returns the data file as a hashtable. #>
    param([Parameter(Mandatory = $true)] $Module, [Parameter(Mandatory = $true)] $Bundle, [string] $Locale = 'de-DE', [switch] $WithAppIds)
    $data = Import-PowerShellDataFile -LiteralPath $Bundle.DataFile
    $apps = @{}
    $services = @{}
    foreach ($resource in $data.Resources) {
        if ($resource.ContainsKey('App')) { $apps[$resource.App.Key] = $resource.App }
        if ($resource.Kind -eq 'service_logon') { $services[$resource.Service] = $true }
    }
    $domain = @{}
    foreach ($principal in (Get-PlanPrincipal -Value $data.Resources)) {
        if ($principal.Kind -eq 'domain') {
            $sid = $principal.Sid
            if (-not $sid) { $sid = 'S-1-5-21-7000-8000-9000-' + (2000 + $domain.Count) }
            $domain[$principal.Name] = $sid
        }
    }
    $servers = @(foreach ($app in $apps.Values) {
            $clsid = $app.Clsid
            if (-not $clsid) { $clsid = Get-TestGuid -Text $app.Progid }
            $bitness = 32
            if ($app.Bitness) { $bitness = [int] $app.Bitness }
            $arguments = @{ Clsid = $clsid; Bitness = $bitness }
            if ($app.Progid) { $arguments.ProgId = $app.Progid }
            if ($app.Appid) { $arguments.AppId = $app.Appid }
            elseif ($WithAppIds) { $arguments.AppId = Get-TestGuid -Text ('appid:' + $clsid) }
            else { $arguments.NoAppId = $true }
            $arguments
        })
    & $Module {
        param($data, $locale, $servers, $services, $domain, $password)
        Reset-SimWindows -Locale $locale -ComputerName $data.Host
        foreach ($arguments in $servers) { Install-SimComServer @arguments }
        foreach ($name in $services.Keys) {
            Install-SimService -Name $name -StartName 'LocalSystem' -State 'Running' -StartMode 'Auto'
        }
        foreach ($name in $domain.Keys) {
            Add-SimDomainAccount -Name $name -Sid $domain[$name] -Password $password
        }
    } $data $Locale $servers $services $domain (ConvertTo-SecureString -String $script:TestPassword -AsPlainText -Force)
    return $data
}

function New-TestPassword {
    <# A SecureString for every account the plan may need a password for. #>
    param([Parameter(Mandatory = $true)] $Data)
    $passwords = @{}
    foreach ($resource in $Data.Resources) {
        $name = $null
        if ($resource.Kind -eq 'local_user') { $name = $resource.Name }
        if ($resource.Kind -eq 'service_logon') { $name = $resource.Account.Name }
        if ($name) { $passwords[$name] = ConvertTo-SecureString -String $script:TestPassword -AsPlainText -Force }
    }
    return $passwords
}

function Invoke-Engine {
    <# One run of the engine's entry function, its console output silenced. #>
    param([Parameter(Mandatory = $true)] $Bundle, [Parameter(Mandatory = $true)] $Data, [hashtable] $With = @{})
    $arguments = @{ DataFile = $Bundle.DataFile; Passwords = (New-TestPassword -Data $Data) }
    foreach ($key in $With.Keys) { $arguments[$key] = $With[$key] }
    return (Invoke-DcomcConfiguration @arguments 2>$null 3>$null 6>$null)
}

function Get-SimSystemWrite {
    <# The state-changing system calls since the last Reset-SimCalls (files excluded: logs and
       backups are expected to change). #>
    param([Parameter(Mandatory = $true)] $Module)
    $calls = & $Module { @($script:SimCalls) }
    return , @($calls | Where-Object -FilterScript { $_ -match '^(Set|New|Remove|Add|Grant|Revoke|Start|Stop|Restart)-DcomcOs' -and $_ -notmatch '(File|Folder)$' })
}
