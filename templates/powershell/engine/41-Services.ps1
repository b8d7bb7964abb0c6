# ==== Services: service_logon (guide §3.2), service_start_mode (guide §6 note) ==================

function Test-DcomcBuiltinLogon {
    param([AllowEmptyString()] [string] $StartName)
    return ($script:BuiltinLogons -contains $StartName)
}

function Start-DcomcServiceAgain {
    <# A service that ran before a change runs after its rollback too: production is never left
       stopped by a restart that failed under the new account. #>
    param([Parameter(Mandatory = $true)] [string] $Name, $Before)
    if ([string] $Before.State -ne 'Running') {
        return
    }
    $now = Get-DcomcOsService -Name $Name
    if ($null -ne $now -and $now.State -ne 'Running') {
        Start-DcomcOsService -Name $Name
    }
}

# --- service_logon: CIM Win32_Service.Change, never sc.exe (password in argv) -------------------

function Get-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource)
    $service = Get-DcomcOsService -Name ([string] $Resource.Service)
    if ($null -eq $service) {
        return @{ Installed = $false; StartName = $null; State = $null }
    }
    return @{ Installed = $true; StartName = [string] $service.StartName; State = [string] $service.State }
}

function Test-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Installed) {
        return @{ Compliant = $false; Reason = ('the service {0} is not installed' -f $Resource.Service) }
    }
    $want = Get-DcomcLogonName -Principal $Resource.Account
    $names = @($want, ($want -replace '^\.\\', ((Get-DcomcOsComputerName) + '\')))
    foreach ($name in $names) {
        if ($State.StartName -ieq $name) {
            return @{ Compliant = $true; Reason = ('logs on as {0}' -f $State.StartName) }
        }
    }
    return @{ Compliant = $false; Reason = ('logs on as {0}, not {1}' -f $State.StartName, $want) }
}

function Set-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $name = [string] $Resource.Service
    if (-not $State.Installed) {
        throw ('The service {0} is not installed on this PC' -f $name)
    }
    $password = Get-DcomcPassword -Account ([string] $Resource.Account.Name)
    Set-DcomcOsServiceLogon -Name $name -StartName (Get-DcomcLogonName -Principal $Resource.Account) -Password $password
    # guide §3.2 step 8: restart the server so that it runs under the new account.
    if ($State.State -eq 'Running') {
        Restart-DcomcOsService -Name $name
    }
}

function Restore-DcomcServiceLogon {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $name = [string] $Resource.Service
    if (-not $Before.Installed) {
        return
    }
    $now = Get-DcomcOsService -Name $name
    if ($null -ne $now -and $now.StartName -ine [string] $Before.StartName) {
        if (-not (Test-DcomcBuiltinLogon -StartName ([string] $Before.StartName))) {
            return ('the service {0} ran as {1} before; its password is unknown: set it in services.msc' -f $name, $Before.StartName)
        }
        Set-DcomcOsServiceLogon -Name $name -StartName ([string] $Before.StartName)
    }
    Start-DcomcServiceAgain -Name $name -Before $Before
}

# --- service_start_mode: the services network discovery needs (guide §6) -----------------------

function Get-DcomcServiceStartMode {
    param([Parameter(Mandatory = $true)] $Resource)
    $service = Get-DcomcOsService -Name ([string] $Resource.Service)
    if ($null -eq $service) {
        return @{ Installed = $false; StartMode = $null; State = $null }
    }
    return @{ Installed = $true; StartMode = [string] $service.StartMode; State = [string] $service.State }
}

function Test-DcomcServiceStartMode {
    <# Win32_Service says Auto where Set-Service says Automatic. An automatic service must also
       run: discovery works now, not after the next reboot. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Installed) {
        return @{ Compliant = $false; Reason = 'the service is not installed' }
    }
    if ($State.StartMode -ine [string] $Resource.Mode) {
        return @{ Compliant = $false; Reason = ('start mode {0}, should be {1}' -f $State.StartMode, $Resource.Mode) }
    }
    if ($Resource.Mode -eq 'auto' -and $State.State -ne 'Running') {
        return @{ Compliant = $false; Reason = ('start mode auto, but {0}' -f $State.State) }
    }
    return @{ Compliant = $true; Reason = $State.StartMode }
}

function ConvertTo-DcomcStartupType {
    param([Parameter(Mandatory = $true)] [string] $Mode)
    $types = @{ 'auto' = 'Automatic'; 'manual' = 'Manual'; 'disabled' = 'Disabled' }
    if (-not $types.ContainsKey($Mode)) {
        throw ('Cannot set the start mode {0}' -f $Mode)
    }
    return $types[$Mode.ToLowerInvariant()]
}

function Set-DcomcServiceStartMode {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $name = [string] $Resource.Service
    if (-not $State.Installed) {
        throw ('The service {0} is not installed on this PC' -f $name)
    }
    if ($State.StartMode -ine [string] $Resource.Mode) {
        Set-DcomcOsServiceStartMode -Name $name -StartMode (ConvertTo-DcomcStartupType -Mode ([string] $Resource.Mode))
    }
    if ($Resource.Mode -eq 'auto' -and $State.State -ne 'Running') {
        Start-DcomcOsService -Name $name
    }
}

function Restore-DcomcServiceStartMode {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $name = [string] $Resource.Service
    $now = Get-DcomcOsService -Name $name
    if (-not $Before.Installed -or $null -eq $now) {
        return
    }
    if ($Before.State -ne 'Running' -and $now.State -eq 'Running') {
        Stop-DcomcOsService -Name $name
    }
    if ($now.StartMode -ine [string] $Before.StartMode) {
        Set-DcomcOsServiceStartMode -Name $name -StartMode (ConvertTo-DcomcStartupType -Mode ([string] $Before.StartMode))
    }
}
