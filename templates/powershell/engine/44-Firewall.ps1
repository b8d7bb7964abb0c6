# ==== Firewall: firewall_rule (guide §5), firewall_rule_group (guide §6) =========================
# Rules are compared as sets of normalized values, not as the strings NetSecurity prints: the
# order and the form it shows addresses in (10.9.0.0/255.255.255.0 for 10.9.0.0/24, Any for
# all three profiles) are not documented, and a form this code does not expect must not make
# Apply's re-test fail and roll back a rule that is right.

$script:AllProfiles = @('domain', 'private', 'public')
$script:ProfileNames = @{ 'domain' = 'Domain'; 'private' = 'Private'; 'public' = 'Public' }

function ConvertFrom-DcomcProfileText {
    <# 'Domain, Private' or 'Any' (as NetSecurity shows Profile) -> sorted lower-case names,
       written to the pipeline one by one: callers collect them with @(). #>
    param([AllowEmptyString()] [string] $Text)
    $names = @($Text.Split(',') | ForEach-Object -Process { $_.Trim().ToLowerInvariant() } | Where-Object -FilterScript { $_ })
    if ($names -contains 'any' -or $names.Count -eq 0) {
        return $script:AllProfiles
    }
    return ($names | Sort-Object -Unique)
}

function ConvertTo-DcomcPrefixLength {
    <# A dotted IPv4 mask -> its prefix length, or -1 when the mask is not contiguous. #>
    param([Parameter(Mandatory = $true)] [string] $Mask)
    $bits = ''
    foreach ($part in $Mask.Split('.')) {
        $bits += [Convert]::ToString([int] $part, 2).PadLeft(8, '0')
    }
    if ($bits -notmatch '^1*0*$') {
        return -1
    }
    return $bits.TrimEnd('0').Length
}

function ConvertTo-DcomcAddressKey {
    <# One remote address in one canonical form: lower case, a.b.c.d/n for any IPv4 mask, no
       /32 or /128, 'any' for Any. #>
    param([Parameter(Mandatory = $true)] [string] $Address)
    $text = $Address.Trim().ToLowerInvariant()
    $parts = $text.Split('/')
    if ($parts.Count -eq 2 -and $parts[1] -match '^\d+\.\d+\.\d+\.\d+$') {
        $length = ConvertTo-DcomcPrefixLength -Mask $parts[1]
        if ($length -ge 0) {
            $parts[1] = [string] $length
        }
    }
    if ($parts.Count -eq 2 -and (($parts[1] -eq '32' -and -not $parts[0].Contains(':')) -or $parts[1] -eq '128')) {
        return $parts[0]
    }
    return ($parts -join '/')
}

function ConvertTo-DcomcValueSet {
    <# A list of values as one comparable text: sorted, unique, 'any' for none. #>
    param([AllowNull()] [AllowEmptyCollection()] [object[]] $Values, [switch] $Address)
    $items = @(foreach ($value in @($Values)) {
            if ($null -eq $value -or [string] $value -eq '') { continue }
            if ($Address) { ConvertTo-DcomcAddressKey -Address ([string] $value) } else { ([string] $value).ToLowerInvariant() }
        })
    if ($items.Count -eq 0 -or $items -contains 'any') {
        return 'any'
    }
    return (@($items | Sort-Object -Unique) -join ',')
}

function ConvertTo-DcomcRuleKey {
    <# The fields of a rule that Test compares, normalized. #>
    param([Parameter(Mandatory = $true)] $Rule)
    return [ordered] @{
        Enabled   = [string] [bool] $Rule.Enabled
        Direction = ([string] $Rule.Direction).ToLowerInvariant()
        Action    = ([string] $Rule.Action).ToLowerInvariant()
        Profile   = (@(ConvertFrom-DcomcProfileText -Text ([string] $Rule.Profile)) -join ',')
        Protocol  = ([string] $Rule.Protocol).ToLowerInvariant()
        LocalPort = ConvertTo-DcomcValueSet -Values @($Rule.LocalPort)
        Program   = ConvertTo-DcomcValueSet -Values @($Rule.Program)
        Service   = ConvertTo-DcomcValueSet -Values @($Rule.Service)
        Remote    = ConvertTo-DcomcValueSet -Values @($Rule.RemoteAddress) -Address
    }
}

function Get-DcomcWantedRule {
    <# The rule as the system layer creates it from the plan. #>
    param([Parameter(Mandatory = $true)] $Resource)
    $profiles = @(foreach ($name in @($Resource.Profiles)) { $script:ProfileNames[[string] $name] })
    $rule = @{
        Name = [string] $Resource.Name; DisplayName = [string] $Resource.DisplayName; Description = [string] $Resource.Description
        Protocol = [string] $Resource.Protocol; Profile = $profiles; RemoteAddress = @($Resource.Remote | ForEach-Object -Process { [string] $_ })
        LocalPort = $null; Program = $null; Service = $null; Enabled = $true
    }
    foreach ($field in @('LocalPort', 'Program', 'Service')) {
        if ($Resource.$field) { $rule[$field] = [string] $Resource.$field }
    }
    return $rule
}

# --- firewall_rule --------------------------------------------------------------------------------

function Get-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] $Resource)
    $rule = Get-DcomcOsFirewallRule -Name ([string] $Resource.Name)
    if ($null -eq $rule) {
        return @{ Exists = $false; Rule = $null }
    }
    return @{ Exists = $true; Rule = $rule }
}

function Test-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        return @{ Compliant = $false; Reason = 'the rule does not exist' }
    }
    $wanted = Get-DcomcWantedRule -Resource $Resource
    $wanted.Direction = 'Inbound'
    $wanted.Action = 'Allow'
    $wanted.Profile = $wanted.Profile -join ', '
    $want = ConvertTo-DcomcRuleKey -Rule $wanted
    $have = ConvertTo-DcomcRuleKey -Rule $State.Rule
    foreach ($field in @($want.Keys)) {
        if ($have[$field] -ne $want[$field]) {
            return @{ Compliant = $false; Reason = ('{0} is {1}, should be {2}' -f $field, $have[$field], $want[$field]) }
        }
    }
    return @{ Compliant = $true; Reason = 'rule as planned' }
}

function Set-DcomcFirewallRule {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.Exists) {
        Remove-DcomcOsFirewallRule -Name ([string] $Resource.Name)   # delete, then add: converges
    }
    New-DcomcOsFirewallRule -Rule (Get-DcomcWantedRule -Resource $Resource)
}

function Restore-DcomcFirewallRule {
    <# Removes the rule Set made and re-creates the one that was there, as it was. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $name = [string] $Resource.Name
    if ($null -ne (Get-DcomcOsFirewallRule -Name $name)) {
        Remove-DcomcOsFirewallRule -Name $name
    }
    if (-not $Before.Exists) {
        return
    }
    $old = $Before.Rule
    $rule = @{
        Name = $name; DisplayName = [string] $old.DisplayName; Description = [string] $old.Description
        Protocol = [string] $old.Protocol; Enabled = [bool] $old.Enabled
        Profile = @(ConvertFrom-DcomcProfileText -Text ([string] $old.Profile) | ForEach-Object -Process { $script:ProfileNames[$_] })
        RemoteAddress = @($old.RemoteAddress | ForEach-Object -Process { [string] $_ })
        LocalPort = $null; Program = $null; Service = $null
    }
    if ((ConvertTo-DcomcValueSet -Values @($old.LocalPort)) -ne 'any') { $rule.LocalPort = @($old.LocalPort | ForEach-Object -Process { [string] $_ }) }
    if ((ConvertTo-DcomcValueSet -Values @($old.Program)) -ne 'any') { $rule.Program = [string] $old.Program }
    if ((ConvertTo-DcomcValueSet -Values @($old.Service)) -ne 'any') { $rule.Service = [string] $old.Service }
    New-DcomcOsFirewallRule -Rule $rule
}

# --- firewall_rule_group (guide §6): by resource string, never the localized display name ------

function Get-DcomcGroupRules {
    <# The group's rules that apply to one of the planned profiles. #>
    param([Parameter(Mandatory = $true)] $Resource)
    $wanted = @($Resource.Profiles | ForEach-Object -Process { ([string] $_).ToLowerInvariant() })
    $rules = Get-DcomcOsFirewallGroup -Group ([string] $Resource.Group)
    return , @(foreach ($rule in $rules) {
            $profiles = ConvertFrom-DcomcProfileText -Text ([string] $rule.Profile)
            if (@($profiles | Where-Object -FilterScript { $wanted -contains $_ }).Count -gt 0) { $rule }
        })
}

function Get-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource)
    $rules = Get-DcomcGroupRules -Resource $Resource
    $disabled = @(foreach ($rule in $rules) { if (-not $rule.Enabled) { [string] $rule.Name } })
    return @{ Count = $rules.Count; Disabled = $disabled }
}

function Test-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ([int] $State.Count -eq 0) {
        return @{ Compliant = $false; Reason = ('no rule of group {0} found on this PC' -f $Resource.Group) }
    }
    if (@($State.Disabled).Count -gt 0) {
        return @{ Compliant = $false; Reason = ('{0} rules of the group are disabled' -f @($State.Disabled).Count) }
    }
    return @{ Compliant = $true; Reason = 'enabled' }
}

function Set-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ([int] $State.Count -eq 0) {
        throw ('Cannot enable the firewall group {0}: it has no rule on this PC' -f $Resource.Group)
    }
    foreach ($name in @($State.Disabled)) {
        Set-DcomcOsFirewallRuleEnabled -Name ([string] $name) -Enabled $true
    }
}

function Restore-DcomcFirewallRuleGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $enabled = @(foreach ($rule in (Get-DcomcGroupRules -Resource $Resource)) { if ($rule.Enabled) { [string] $rule.Name } })
    foreach ($name in @($Before.Disabled)) {
        if ($enabled -contains [string] $name) {
            Set-DcomcOsFirewallRuleEnabled -Name ([string] $name) -Enabled $false
        }
    }
}
