<#
    DcomConfig.psm1 - the dcomc engine: static, identical for every host and site.

    Each resource kind of a dcomc plan has four functions, together in one section:
      Get-Dcomc<Kind>      reads the current state (plain data; nothing is changed)
      Test-Dcomc<Kind>     compares it with the resource: @{ Compliant; Reason }
      Set-Dcomc<Kind>      makes the PC match the resource
      Restore-Dcomc<Kind>  puts back the state Get returned before Set ran
    The data of a host (<HOST>.psd1) holds only literals; this module holds all the code, so
    what IT reviews once is what runs on every PC.

    Sections, in this order: the system layer (the only code that touches Windows: registry,
    accounts, services, user rights, firewall, dcomc's folder), security descriptors and SIDs
    as bytes, common helpers (logging, principals, passwords, the data file), one section per
    resource kind, and the runner (Test, Apply, Report, Rollback, backups).

    Windows PowerShell 5.1: no PowerShell 6/7 syntax. Well-known principals are handled by SID
    only (names are localized); local accounts through ADSI WinNT:// (works without the
    LocalAccounts module). Section numbers (guide §n) refer to the DCOM guide the spec
    automates.
#>

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$script:Kinds = @{
    'local_user'             = 'LocalUser'
    'local_group'            = 'LocalGroup'
    'group_member'           = 'GroupMember'
    'user_right'             = 'UserRight'
    'service_logon'          = 'ServiceLogon'
    'appid_auth_level'       = 'AppIdAuthLevel'
    'appid_run_location'     = 'AppIdRunLocation'
    'appid_permission'       = 'AppIdPermission'
    'appid_run_as'           = 'AppIdRunAs'
    'machine_dcom_value'     = 'MachineDcomValue'
    'machine_limit_addition' = 'MachineLimitAddition'
    'rpc_port_range'         = 'RpcPortRange'
    'firewall_rule'          = 'FirewallRule'
    'firewall_rule_group'    = 'FirewallRuleGroup'
    'service_start_mode'     = 'ServiceStartMode'
    'security_option'        = 'SecurityOption'
    'reboot'                 = 'RebootNotice'
}
$script:OleKey = 'SOFTWARE\Microsoft\Ole'
$script:PolicyKey = 'SOFTWARE\Policies\Microsoft\Windows NT\DCOM'
$script:AppIdRoot = 'SOFTWARE\Classes\AppID'
# The RPC dynamic port range (shared by both registry views); read by RPC when it starts.
$script:RpcInternetKey = 'SOFTWARE\Microsoft\Rpc\Internet'
$script:RpcInternetFlags = @('PortsInternetAvailable', 'UseInternetPorts')
$script:LimitValue = @{ 'launch' = 'MachineLaunchRestriction'; 'access' = 'MachineAccessRestriction' }
# The Windows 10/11 default machine limits (DCOM guide's reference: the observed default,
# with the lpacCom capability ACE), as self-relative descriptors. Used only when the value is
# absent, so that adding one entry never replaces Windows' whole default with that entry.
# launch: O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCSW;;;WD)(A;;CCDCLCSWRP;;;S-1-5-32-562)
#         (A;;CCDCLCSWRP;;;LU)(A;;CCDCSW;;;AC)(A;;CCDCSW;;;S-1-15-3-1024-2405443489-...)
# access: O:BAG:BAD:(A;;CCDCLC;;;WD)(A;;CCDC;;;AN)(A;;CCDCLC;;;S-1-5-32-562)(A;;CCDCLC;;;LU)
#         (A;;CCDC;;;AC)(A;;CCDC;;;S-1-15-3-1024-2405443489-...)
$script:DefaultLimits = @{
    'launch' = '01000480c8000000d800000000000000140000000200b40006000000000018001f00000001020000000000052000000020020000000014000b000000010100000000000100000000000018001f00000001020000000000052000000032020000000018001f0000000102000000000005200000002f020000000018000b000000010200000000000f0200000001000000000038000b000000010a00000000000f0300000000040000a127608f9abb183463b677ff9dd5b66ce7321a680852439286a61fd898171b3b0102000000000005200000002002000001020000000000052000000020020000'
    'access' = '01000480c4000000d400000000000000140000000200b000060000000000140007000000010100000000000100000000000014000300000001010000000000050700000000001800070000000102000000000005200000003202000000001800070000000102000000000005200000002f0200000000180003000000010200000000000f02000000010000000000380003000000010a00000000000f0300000000040000a127608f9abb183463b677ff9dd5b66ce7321a680852439286a61fd898171b3b0102000000000005200000002002000001020000000000052000000020020000'
}
# Windows' documented default AppID ACLs, used when neither the AppID nor the PC has one: what
# dcomcnfg's "Customize" starts from before the guide adds users to it (guide §4.1 steps 10-28).
# launch (DefaultLaunchPermission documentation): O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;SY)(A;;CCDCLCSWRP;;;IU)
# access (DefaultAccessPermission documentation: only the server principal and SYSTEM may call):
#         O:BAG:BAD:(A;;CCDCLC;;;PS)(A;;CCDCLC;;;SY)
$script:DefaultAppAcl = @{
    'launch' = '010004805c0000006c00000000000000140000000200480003000000000018001f00000001020000000000052000000020020000000014001f000000010100000000000512000000000014001f0000000101000000000005040000000102000000000005200000002002000001020000000000052000000020020000'
    'access' = '01000480440000005400000000000000140000000200300002000000000014000700000001010000000000050a00000000001400070000000101000000000005120000000102000000000005200000002002000001020000000000052000000020020000'
}
$script:UfAccountDisable = 0x2        # ADS_UF_ACCOUNTDISABLE
$script:UfNormalAccount = 0x201       # ADS_UF_SCRIPT | ADS_UF_NORMAL_ACCOUNT: what ADSI gives a new user
$script:UfDontExpirePasswd = 0x10000  # ADS_UF_DONT_EXPIRE_PASSWD
# Win32_Service.StartName of the accounts that need no password: a previous Log On account
# among these can be restored; any other one only by hand (its password is unknown).
$script:BuiltinLogons = @('LocalSystem', '.\LocalSystem', 'NT AUTHORITY\LocalService', 'NT AUTHORITY\NetworkService', 'NT AUTHORITY\LOCAL SERVICE', 'NT AUTHORITY\NETWORK SERVICE')
$script:Passwords = @{}
$script:ResetPasswords = $false
$script:RebootNeeded = $false
$script:LogFile = $null
