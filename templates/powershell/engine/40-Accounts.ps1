# ==== Accounts: local_user, local_group, group_member, user_right (guide §2, §3.2) ===============

# --- local_user (guide §2.2) ---------------------------------------------------------------------

function Get-DcomcLocalUser {
    param([Parameter(Mandatory = $true)] $Resource)
    $user = Get-DcomcOsLocalUser -Name ([string] $Resource.Name)
    if ($null -eq $user) {
        return @{ Exists = $false; Description = $null; Flags = $null; PasswordExpired = $null }
    }
    return @{ Exists = $true; Description = $user.Description; Flags = [int] $user.Flags; PasswordExpired = [bool] $user.PasswordExpired }
}

function Get-DcomcWantedUserFlags {
    <# The account's flags as the plan wants them: enabled, and never expiring where planned. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] [int] $Flags)
    $wanted = $Flags -band (-bnot $script:UfAccountDisable)
    if ([bool] $Resource.PasswordNeverExpires) {
        $wanted = $wanted -bor $script:UfDontExpirePasswd
    }
    return $wanted
}

function Test-DcomcLocalUser {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        return @{ Compliant = $false; Reason = 'the user does not exist' }
    }
    if ($State.Description -cne [string] $Resource.Description) {
        return @{ Compliant = $false; Reason = 'the description differs' }
    }
    if (([int] $State.Flags -band $script:UfAccountDisable) -ne 0) {
        return @{ Compliant = $false; Reason = 'the account is disabled (DCOM logons with it fail)' }
    }
    if ([bool] $State.PasswordExpired) {
        return @{ Compliant = $false; Reason = 'the password must be changed at next logon (DCOM logons with it fail)' }
    }
    if ([bool] $Resource.PasswordNeverExpires -and ([int] $State.Flags -band $script:UfDontExpirePasswd) -eq 0) {
        return @{ Compliant = $false; Reason = 'the password expires' }
    }
    return @{ Compliant = $true; Reason = 'exists' }
}

function Set-DcomcLocalUser {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $name = [string] $Resource.Name
    if (-not $State.Exists) {
        $flags = Get-DcomcWantedUserFlags -Resource $Resource -Flags $script:UfNormalAccount
        New-DcomcOsLocalUser -Name $name -Password (Get-DcomcPassword -Account $name) -Description ([string] $Resource.Description) -Flags $flags
        return
    }
    $arguments = @{ Name = $name; Description = [string] $Resource.Description; Flags = (Get-DcomcWantedUserFlags -Resource $Resource -Flags ([int] $State.Flags)); PasswordExpired = $false }
    if ($script:ResetPasswords) {
        $arguments.Password = Get-DcomcPassword -Account $name
    }
    Set-DcomcOsLocalUser @arguments
}

function Restore-DcomcLocalUser {
    <# Idempotent: an account whose creation failed is not there to delete. A password set by
       -ResetPasswords cannot be put back (Windows keeps no readable copy): logged. #>
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $name = [string] $Resource.Name
    $now = Get-DcomcOsLocalUser -Name $name
    if (-not $Before.Exists) {
        if ($null -ne $now) {
            Remove-DcomcOsLocalUser -Name $name
        }
        return
    }
    if ($null -eq $now) {
        return 'the user {0} was deleted since; recreate it by hand' -f $name
    }
    Set-DcomcOsLocalUser -Name $name -Description ([string] $Before.Description) -Flags ([int] $Before.Flags) -PasswordExpired ([bool] $Before.PasswordExpired)
    if ($script:ResetPasswords) {
        return 'the password of {0} was reset and cannot be put back' -f $name
    }
}

# --- local_group (guide §2.3) --------------------------------------------------------------------

function Get-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource)
    $group = Get-DcomcOsLocalGroup -Name ([string] $Resource.Name)
    if ($null -eq $group) {
        return @{ Exists = $false; Description = $null }
    }
    return @{ Exists = $true; Description = $group.Description }
}

function Test-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        return @{ Compliant = $false; Reason = 'the group does not exist' }
    }
    if ($State.Description -cne [string] $Resource.Description) {
        return @{ Compliant = $false; Reason = 'the description differs' }
    }
    return @{ Compliant = $true; Reason = 'exists' }
}

function Set-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if (-not $State.Exists) {
        New-DcomcOsLocalGroup -Name ([string] $Resource.Name) -Description ([string] $Resource.Description)
        return
    }
    Set-DcomcOsLocalGroup -Name ([string] $Resource.Name) -Description ([string] $Resource.Description)
}

function Restore-DcomcLocalGroup {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    $name = [string] $Resource.Name
    $now = Get-DcomcOsLocalGroup -Name $name
    if (-not $Before.Exists) {
        if ($null -ne $now) {
            Remove-DcomcOsLocalGroup -Name $name
        }
        return
    }
    if ($null -eq $now) {
        return 'the group {0} was deleted since; recreate it by hand' -f $name
    }
    Set-DcomcOsLocalGroup -Name $name -Description ([string] $Before.Description)
}

# --- group_member (guide §2.4): groups and members compared by SID ------------------------------

function Get-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource)
    $sid = Find-DcomcSid -Principal $Resource.Member
    $group = Get-DcomcOsLocalGroup -Name (Get-DcomcLocalName -Principal $Resource.Group)
    $isMember = ($null -ne $sid -and $null -ne $group -and @($group.Members) -contains $sid)
    return @{ GroupExists = ($null -ne $group); IsMember = $isMember; MemberSid = $sid }
}

function Test-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.IsMember) {
        return @{ Compliant = $true; Reason = 'is a member' }
    }
    return @{ Compliant = $false; Reason = 'is not a member' }
}

function Set-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    $sid = Resolve-DcomcSid -Principal $Resource.Member
    Add-DcomcOsLocalGroupMember -Group (Get-DcomcLocalName -Principal $Resource.Group) -MemberSid $sid
}

function Restore-DcomcGroupMember {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if ($Before.IsMember) {
        return
    }
    $now = Get-DcomcGroupMember -Resource $Resource
    if ($now.IsMember) {
        Remove-DcomcOsLocalGroupMember -Group (Get-DcomcLocalName -Principal $Resource.Group) -MemberSid $now.MemberSid
    }
}

# --- user_right (guide §3.2): added to the holders, never replacing them ------------------------

function Get-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource)
    $holders = Get-DcomcOsUserRight -Right ([string] $Resource.Right)
    $sid = Find-DcomcSid -Principal $Resource.Principal
    return @{ Holders = @($holders); Sid = $sid; Held = ($null -ne $sid -and @($holders) -contains $sid) }
}

function Test-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    if ($State.Held) {
        return @{ Compliant = $true; Reason = 'granted' }
    }
    return @{ Compliant = $false; Reason = ('{0} is not granted' -f $Resource.Right) }
}

function Set-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $State)
    Grant-DcomcOsUserRight -Right ([string] $Resource.Right) -Sid (Resolve-DcomcSid -Principal $Resource.Principal)
}

function Restore-DcomcUserRight {
    param([Parameter(Mandatory = $true)] $Resource, [Parameter(Mandatory = $true)] $Before)
    if ($Before.Held) {
        return
    }
    $sid = Find-DcomcSid -Principal $Resource.Principal
    if ($null -ne $sid) {
        Revoke-DcomcOsUserRight -Right ([string] $Resource.Right) -Sid $sid
    }
}
