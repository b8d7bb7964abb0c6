# Pester 5 tests of the simulated Windows (SimWindows.ps1) itself: loaded standalone, in a fresh
# module scope, after the real system layer (10-System.ps1) and, when present, the engine's
# security-descriptor codec (20-SecurityDescriptor.ps1) - exactly how the engine tests load it.
#
#   pwsh -NoProfile -Command "Invoke-Pester -Path tests/engine/SimWindows.Tests.ps1 -Output Detailed"

BeforeAll {
    Set-StrictMode -Version 3.0
    $script:Engine = Join-Path -Path $PSScriptRoot -ChildPath '../../templates/powershell/engine'
    $script:SystemFile = Join-Path -Path $script:Engine -ChildPath '10-System.ps1'
    $script:CodecFile = Join-Path -Path $script:Engine -ChildPath '20-SecurityDescriptor.ps1'
    $script:SimFile = Join-Path -Path $PSScriptRoot -ChildPath 'SimWindows.ps1'
    # The engine's helpers too: they walk dcomc's folders with the system layer's primitives.
    $files = @($script:SystemFile, $script:CodecFile, (Join-Path -Path $script:Engine -ChildPath '30-Common.ps1'))
    $files += $script:SimFile
    $script:SimModule = New-Module -Name 'SimWindowsUnderTest' -ScriptBlock {
        param([string[]] $Files)
        Set-StrictMode -Version 3.0
        $ErrorActionPreference = 'Stop'
        foreach ($file in $Files) {
            . $file
        }
    } -ArgumentList (, $files)

    function InSim {
        # Runs a script block in the simulation's scope (where the engine's code would run).
        param([Parameter(Mandatory = $true)] [scriptblock] $Script, [object[]] $Arguments = @())
        & $script:SimModule $Script @Arguments
    }

    # The Windows 10 default machine limits as the compiler encodes them:
    # dcomc.sdbinary.to_binary(dcomc.sd.parse_sddl(<SDDL of dcom-facts §2.1>)).hex()
    $script:LaunchLimitHex = '01000480c8000000d800000000000000140000000200b40006000000000018001f00000001020000000000052000000020020000000014000b000000010100000000000100000000000018001f00000001020000000000052000000032020000000018001f0000000102000000000005200000002f020000000018000b000000010200000000000f0200000001000000000038000b000000010a00000000000f0300000000040000a127608f9abb183463b677ff9dd5b66ce7321a680852439286a61fd898171b3b0102000000000005200000002002000001020000000000052000000020020000'
    $script:AccessLimitHex = '01000480c4000000d400000000000000140000000200b000060000000000140007000000010100000000000100000000000014000300000001010000000000050700000000001800070000000102000000000005200000003202000000001800070000000102000000000005200000002f0200000000180003000000010200000000000f02000000010000000000380003000000010a00000000000f0300000000040000a127608f9abb183463b677ff9dd5b66ce7321a680852439286a61fd898171b3b0102000000000005200000002002000001020000000000052000000020020000'
    # O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;SY)(A;;CCDCLCSWRP;;;IU), the same way.
    $script:DefaultLaunchHex = '010004805c0000006c00000000000000140000000200480003000000000018001f00000001020000000000052000000020020000000014001f000000010100000000000512000000000014001f0000000101000000000005040000000102000000000005200000002002000001020000000000052000000020020000'
    $script:Good = 'Grüße§€-Pa55'   # meets the default policy
    $script:Ole = 'SOFTWARE\Microsoft\Ole'
    $script:MachineSid = 'S-1-5-21-3623811015-3361044348-30300820'
}

AfterAll {
    InSim { Remove-SimWindows }
}

Describe 'the simulated Windows' {
    BeforeEach {
        InSim { Reset-SimWindows }
    }

    Describe 'the contract with 10-System.ps1' {
        BeforeAll {
            $script:Internal = @('Open-DcomcOsRegistryKey', 'Get-DcomcOsAdsi', 'Get-DcomcOsAdsiSid', 'Set-DcomcOsAdsiPassword', 'Invoke-DcomcOsSecedit', 'New-DcomcOsTempFolder', 'Get-DcomcOsServiceObject', 'Get-DcomcOsMemberPath', 'New-DcomcOsFolderSecurity', 'Set-DcomcOsUserRightHolder')
            function Get-FunctionAst {
                param([string] $Path)
                $tokens = $null
                $errors = $null
                $ast = [System.Management.Automation.Language.Parser]::ParseFile((Resolve-Path -LiteralPath $Path).Path, [ref] $tokens, [ref] $errors)
                $errors | Should -BeNullOrEmpty
                $found = @{}
                foreach ($function in $ast.FindAll({ param($node) $node -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $false)) {
                    $found[$function.Name] = $function
                }
                return $found
            }
            function Get-ParameterShape {
                # name:type:mandatory for each parameter, in order.
                param($Function)
                $parameters = @()
                if ($Function.Body.ParamBlock) {
                    $parameters = @($Function.Body.ParamBlock.Parameters)
                }
                return @(foreach ($parameter in $parameters) {
                        $type = $parameter.StaticType.FullName
                        $mandatory = @($parameter.Attributes | Where-Object -FilterScript { $_.Extent.Text -match 'Mandatory\s*=\s*\$true' }).Count -gt 0
                        '{0}:{1}:{2}' -f $parameter.Name.VariablePath.UserPath, $type, $mandatory
                    })
            }
            $script:SystemFunctions = Get-FunctionAst -Path $script:SystemFile
            $script:SimFunctions = Get-FunctionAst -Path $script:SimFile
            $script:Public = @($script:SystemFunctions.Keys | Where-Object -FilterScript { $_ -like '*-DcomcOs*' -and $script:Internal -notcontains $_ } | Sort-Object)
        }

        It 'defines every public function of 10-System.ps1 with the same parameters (names, types, mandatory)' {
            $script:Public.Count | Should -BeGreaterThan 40
            foreach ($name in $script:Public) {
                $script:SimFunctions.ContainsKey($name) | Should -BeTrue -Because "$name must be simulated"
                Get-ParameterShape -Function $script:SimFunctions[$name] | Should -Be (Get-ParameterShape -Function $script:SystemFunctions[$name]) -Because $name
            }
        }

        It 'is what the scope runs after loading: every public function comes from SimWindows.ps1' {
            foreach ($name in $script:Public) {
                $command = InSim { param($n) Get-Command -Name $n -CommandType Function } @($name)
                $command.ScriptBlock.File | Should -Be (Resolve-Path -LiteralPath $script:SimFile).Path -Because $name
            }
        }

        It 'lists exactly the public functions as its operations, each a read or a write by its verb' {
            $operations = InSim { $script:SimOperations }
            @($operations | Sort-Object) | Should -Be $script:Public
            foreach ($name in $script:Public) {
                InSim { param($n) Get-SimOperationKind -Operation $n } @($name) | Should -BeIn @('read', 'write')
            }
            InSim { Get-SimOperationKind -Operation 'Restart-DcomcOsService' } | Should -Be 'write'
            InSim { Get-SimOperationKind -Operation 'ConvertTo-DcomcOsSid' } | Should -Be 'read'
        }

        It 'opens every simulated function with the gate, named after the function' {
            foreach ($name in $script:Public) {
                $statements = @($script:SimFunctions[$name].Body.EndBlock.Statements)
                $statements[0].Extent.Text | Should -BeExactly ("Invoke-SimGate -Operation '{0}'" -f $name) -Because $name
            }
        }

        It 'refuses the internal helpers of 10-System.ps1 (they would touch the real OS)' {
            foreach ($name in $script:Internal) {
                { InSim { param($n) & $n } @($name) } | Should -Throw '*internal to 10-System.ps1*'
            }
        }
    }

    Describe 'registry' {
        It 'starts as a fresh Windows 10: EnableDCOM Y, no LegacyAuthenticationLevel, no DefaultAccessPermission' {
            $value = InSim { param($k) Get-DcomcOsRegistryValue -Path $k -Name 'EnableDCOM' } @($script:Ole)
            $value.Exists | Should -BeTrue
            $value.Type | Should -Be 'String'
            $value.Data | Should -BeExactly 'Y'
            (InSim { param($k) Get-DcomcOsRegistryValue -Path $k -Name 'LegacyAuthenticationLevel' } @($script:Ole)).Exists | Should -BeFalse
            (InSim { param($k) Get-DcomcOsRegistryValue -Path $k -Name 'DefaultAccessPermission' } @($script:Ole)).Exists | Should -BeFalse
            $policy = InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Policies\Microsoft\Windows NT\DCOM' }
            $policy | Should -BeNullOrEmpty
        }

        It 'holds the Windows 10 default machine limits byte for byte as the compiler encodes them' {
            $launch = InSim { param($k) Get-DcomcOsRegistryValue -Path $k -Name 'MachineLaunchRestriction' } @($script:Ole)
            $access = InSim { param($k) Get-DcomcOsRegistryValue -Path $k -Name 'MachineAccessRestriction' } @($script:Ole)
            $default = InSim { param($k) Get-DcomcOsRegistryValue -Path $k -Name 'DefaultLaunchPermission' } @($script:Ole)
            $launch.Type | Should -Be 'Binary'
            $launch.Data.GetType() | Should -Be ([byte[]])
            [Convert]::ToHexString($launch.Data).ToLowerInvariant() | Should -BeExactly $script:LaunchLimitHex
            [Convert]::ToHexString($access.Data).ToLowerInvariant() | Should -BeExactly $script:AccessLimitHex
            [Convert]::ToHexString($default.Data).ToLowerInvariant() | Should -BeExactly $script:DefaultLaunchHex
        }

        It 'gives descriptors the engine''s codec (20-SecurityDescriptor.ps1) reads back as the SDDL' {
            $sd = InSim { param($k) ConvertFrom-DcomcSecurityDescriptor -Bytes (Get-DcomcOsRegistryValue -Path $k -Name 'MachineLaunchRestriction').Data } @($script:Ole)
            $sd.Owner | Should -Be 'S-1-5-32-544'
            $sd.Group | Should -Be 'S-1-5-32-544'
            @($sd.Dacl.Aces | ForEach-Object -Process { '{0}:{1}' -f $_.Sid, $_.Mask }) | Should -Be @('S-1-5-32-544:31', 'S-1-1-0:11', 'S-1-5-32-562:31', 'S-1-5-32-559:31', 'S-1-15-2-1:11', 'S-1-15-3-1024-2405443489-874036122-4286035555-1823921565-1746547431-2453885448-3625952902-991631256:11')
        }

        It 'has the Lsa security options as DWORDs of 0 ([int])' {
            foreach ($name in @('ForceGuest', 'EveryoneIncludesAnonymous')) {
                $value = InSim { param($n) Get-DcomcOsRegistryValue -Path 'SYSTEM\CurrentControlSet\Control\Lsa' -Name $n } @($name)
                $value.Type | Should -Be 'DWord'
                $value.Data | Should -BeOfType [int]
                $value.Data | Should -Be 0
            }
        }

        It 'compares key and value names without case and keeps the case they were created with' {
            InSim {
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{AAAAAAAA-0000-0000-0000-000000000001}' -Name 'RunAs' -Type 'String' -Data 'Interactive User'
                Set-DcomcOsRegistryValue -Path 'software\classes\appid\{aaaaaaaa-0000-0000-0000-000000000001}' -Name 'RUNAS' -Type 'String' -Data 'x'
            }
            $value = InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\CLASSES\AppId\{AAAAAAAA-0000-0000-0000-000000000001}' -Name 'runas' }
            $value.Data | Should -BeExactly 'x'
            $snapshot = InSim { Get-SimSnapshot }
            $snapshot | Should -Match ([regex]::Escape('"HKLM\\SOFTWARE\\Classes\\AppID\\{AAAAAAAA-0000-0000-0000-000000000001}":{"values":{"RunAs"'))
            (InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{AAAAAAAA-0000-0000-0000-000000000001}' }).ValueCount | Should -Be 1
        }

        It 'keeps typed values and returns copies that cannot change the state' {
            $result = InSim {
                $bytes = [byte[]] (1, 2, 3)
                $strings = [string[]] @('a', 'b')
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'Bin' -Type 'Binary' -Data $bytes
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'Multi' -Type 'MultiString' -Data $strings
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'Q' -Type 'QWord' -Data 5
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'E' -Type 'ExpandString' -Data '%SystemRoot%\x'
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'D' -Type 'DWord' -Data 0x80000000
                $bytes[0] = 9
                $strings[0] = 'z'
                $read = Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'Bin'
                $read.Data[1] = 9
                @{
                    Bin = (Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'Bin').Data
                    Multi = (Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'Multi').Data
                    Q = (Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'Q').Data
                    E = (Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'E').Data
                    D = (Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'D').Data
                }
            }
            $result.Bin | Should -Be @(1, 2, 3)
            $result.Bin.GetType() | Should -Be ([byte[]])
            $result.Multi | Should -Be @('a', 'b')
            $result.Multi.GetType() | Should -Be ([string[]])
            $result.Q | Should -BeOfType [long]
            $result.E | Should -BeExactly '%SystemRoot%\x'
            $result.D | Should -Be ([int]::MinValue)
        }

        It 'refuses data RegistryKey.SetValue refuses, and data of the wrong .NET type' {
            { InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'B' -Type 'Binary' -Data @(1, 2) } } | Should -Throw '*did not match the specified RegistryValueKind*'
            { InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'M' -Type 'MultiString' -Data @('a', 'b') } } | Should -Throw '*did not match*'
            { InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'D' -Type 'DWord' -Data ([uint32] 4294967295) } } | Should -Throw '*did not match*'
            { InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'D' -Type 'DWord' -Data '5' } } | Should -Throw '*did not match*'
            { InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{X}' -Name 'S' -Type 'String' -Data 5 } } | Should -Throw 'sim: String data must be a string*'
            InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{X}' } | Should -BeNullOrEmpty
        }

        It 'redirects a 32-bit class registration to Wow6432Node and shares AppID, Ole and SYSTEM' {
            InSim {
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\CLSID\{C}' -Name 'AppID' -Type 'String' -Data '{A}' -View 'Registry32'
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{A}' -Name 'AuthenticationLevel' -Type 'DWord' -Data 5 -View 'Registry32'
            }
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\CLSID\{C}' -Name 'AppID' -View 'Registry32' }).Data | Should -Be '{A}'
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\Wow6432Node\CLSID\{C}' -Name 'AppID' }).Data | Should -Be '{A}'
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\CLSID\{C}' -Name 'AppID' }).Exists | Should -BeFalse
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{A}' -Name 'AuthenticationLevel' }).Data | Should -Be 5
            (InSim { param($k) Get-DcomcOsRegistryValue -Path $k -Name 'EnableDCOM' -View 'Registry32' } @($script:Ole)).Data | Should -Be 'Y'
            (InSim { Get-DcomcOsRegistryValue -Path 'SYSTEM\CurrentControlSet\Control\Lsa' -Name 'ForceGuest' -View 'Registry32' }).Exists | Should -BeTrue
            (InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Policies' -View 'Registry32' }) | Should -Not -BeNullOrEmpty
        }

        It 'refuses 32-bit paths whose WOW64 mapping it does not know, and the default view' {
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Microsoft\Windows\CurrentVersion' -View 'Registry32' } } | Should -Throw '*unknown WOW64 mapping*'
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE' -View 'Registry32' } } | Should -Throw '*unknown WOW64 mapping*'
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\Wow6432Node\CLSID' -View 'Registry32' } } | Should -Throw '*unknown WOW64 mapping*'
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\Wow6432Node\AppID' } } | Should -Throw '*WOW64 link*'
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Wow6432Node\Classes' } } | Should -Throw '*Registry32*'
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Microsoft\Ole' -View 'Default' } } | Should -Throw '*explicitly*'
        }

        It 'refuses paths that are not relative to HKLM or not written with backslashes' {
            { InSim { Get-DcomcOsRegistryKey -Path 'HKLM\SOFTWARE\Microsoft\Ole' } } | Should -Throw '*not simulated*'
            { InSim { Get-DcomcOsRegistryKey -Path '\SOFTWARE\Microsoft\Ole' } } | Should -Throw '*malformed*'
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Microsoft\\Ole' } } | Should -Throw '*malformed*'
            { InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE/Microsoft/Ole' } } | Should -Throw '*Join-Path*'
            { InSim { Get-DcomcOsRegistryKey -Path ('SOFTWARE\' + ('k' * 256)) } } | Should -Throw '*255*'
        }

        It 'creates missing keys when a value is set, and counts values and subkeys' {
            InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Policies\Microsoft\Windows NT\DCOM' -Name 'MachineLaunchRestriction' -Type 'String' -Data 'O:BAG:BAD:' }
            $key = InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Policies\Microsoft\Windows NT' }
            $key.SubKeyCount | Should -Be 1
            $key.ValueCount | Should -Be 0
            (InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Policies\Microsoft\Windows NT\DCOM' }).ValueCount | Should -Be 1
            InSim { New-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{NEW}' }
            (InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{NEW}' }).ValueCount | Should -Be 0
        }

        It 'removes keys without subkeys only, and a missing key, value or parent is no error' {
            InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{P}\Sub' -Name '' -Type 'String' -Data 'x' }
            { InSim { Remove-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{P}' } } | Should -Throw '*has subkeys*'
            InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{P}\Sub' } | Should -Not -BeNullOrEmpty
            InSim { Remove-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{P}\Sub'; Remove-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{P}' }
            InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{P}' } | Should -BeNullOrEmpty
            { InSim { Remove-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{P}'; Remove-DcomcOsRegistryKey -Path 'SOFTWARE\Nothing\Here' } } | Should -Not -Throw
            { InSim { Remove-DcomcOsRegistryValue -Path 'SOFTWARE\Nothing' -Name 'x'; Remove-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'Nope' } } | Should -Not -Throw
            { InSim { Remove-DcomcOsRegistryKey -Path 'SOFTWARE' } } | Should -Throw '*Length cannot be less than zero*'
        }
    }

    Describe 'principals' {
        It 'resolves the localized German names of builtin groups and well-known principals, without case' {
            $cases = [ordered]@{
                'VORDEFINIERT\Administratoren' = 'S-1-5-32-544'; 'vordefiniert\BENUTZER' = 'S-1-5-32-545'; 'VORDEFINIERT\Gäste' = 'S-1-5-32-546'
                'VORDEFINIERT\Distributed COM-Benutzer' = 'S-1-5-32-562'; 'VORDEFINIERT\Leistungsprotokollbenutzer' = 'S-1-5-32-559'
                'Jeder' = 'S-1-1-0'; 'NT-AUTORITÄT\ANONYMOUS-ANMELDUNG' = 'S-1-5-7'; 'NT-AUTORITÄT\INTERAKTIV' = 'S-1-5-4'
                'NT-AUTORITÄT\NETZWERK' = 'S-1-5-2'; 'NT-AUTORITÄT\SYSTEM' = 'S-1-5-18'; 'NT-AUTORITÄT\LOKALER DIENST' = 'S-1-5-19'
                'NT-AUTORITÄT\NETZWERKDIENST' = 'S-1-5-20'; 'NT-AUTORITÄT\Authentifizierte Benutzer' = 'S-1-5-11'
                'NT SERVICE\ALL SERVICES' = 'S-1-5-80-0'; 'SCADA01\Administrator' = "$script:MachineSid-500"; 'Gast' = "$script:MachineSid-501"
            }
            foreach ($name in $cases.Keys) {
                InSim { param($n) ConvertTo-DcomcOsSid -Name $n } @($name) | Should -Be $cases[$name] -Because $name
            }
        }

        It 'does not resolve English names on a German PC (IdentityNotMappedException)' {
            foreach ($name in @('BUILTIN\Administrators', 'Everyone', 'NT AUTHORITY\ANONYMOUS LOGON', 'VORDEFINIERT\Distributed COM Users', 'SCADA01\nobody', 'PLANT9\opc-clients')) {
                { InSim { param($n) ConvertTo-DcomcOsSid -Name $n } @($name) } | Should -Throw '*Some or all identity references could not be translated*' -Because $name
            }
            { InSim { ConvertTo-DcomcOsSid -Name '.\Administrator' } } | Should -Throw 'sim:*'
        }

        It 'names SIDs in the PC''s language, Everyone without a domain' {
            $cases = [ordered]@{
                'S-1-1-0' = 'Jeder'; 'S-1-5-7' = 'NT-AUTORITÄT\ANONYMOUS-ANMELDUNG'; 'S-1-5-32-562' = 'VORDEFINIERT\Distributed COM-Benutzer'
                'S-1-5-32-544' = 'VORDEFINIERT\Administratoren'; 'S-1-5-80-0' = 'NT SERVICE\ALL SERVICES'; 'S-1-5-18' = 'NT-AUTORITÄT\SYSTEM'
            }
            foreach ($sid in $cases.Keys) {
                InSim { param($s) ConvertTo-DcomcOsAccountName -Sid $s } @($sid) | Should -BeExactly $cases[$sid]
            }
            { InSim { ConvertTo-DcomcOsAccountName -Sid 'S-1-5-21-1-2-3-4000' } } | Should -Throw '*could not be translated*'
            { InSim { ConvertTo-DcomcOsAccountName -Sid 'BA' } } | Should -Throw '*Value was invalid*'
        }

        It 'has English and French PCs too' {
            InSim { Reset-SimWindows -Locale 'en-US' }
            InSim { ConvertTo-DcomcOsSid -Name 'BUILTIN\Distributed COM Users' } | Should -Be 'S-1-5-32-562'
            InSim { ConvertTo-DcomcOsAccountName -Sid 'S-1-5-7' } | Should -BeExactly 'NT AUTHORITY\ANONYMOUS LOGON'
            InSim { ConvertTo-DcomcOsAccountName -Sid 'S-1-1-0' } | Should -BeExactly 'Everyone'
            InSim { Reset-SimWindows -Locale 'fr-FR' }
            InSim { ConvertTo-DcomcOsSid -Name 'BUILTIN\Utilisateurs du modèle COM distribué' } | Should -Be 'S-1-5-32-562'
            InSim { ConvertTo-DcomcOsSid -Name 'BUILTIN\Administrateurs' } | Should -Be 'S-1-5-32-544'
            InSim { ConvertTo-DcomcOsAccountName -Sid 'S-1-1-0' } | Should -BeExactly 'Tout le monde'
            (InSim { Get-DcomcOsLocalGroup -Name 'Utilisateurs du modèle COM distribué' }).Sid | Should -Be 'S-1-5-32-562'
            InSim { Get-DcomcOsLocalGroup -Name 'Distributed COM Users' } | Should -BeNullOrEmpty
        }

        It 'finds builtin groups by their localized name only, members as SIDs' {
            $users = InSim { Get-DcomcOsLocalGroup -Name 'benutzer' }
            $users.Name | Should -BeExactly 'Benutzer'
            $users.Sid | Should -Be 'S-1-5-32-545'
            $users.Members | Should -Be @('S-1-5-4', 'S-1-5-11')
            (InSim { Get-DcomcOsLocalGroup -Name 'Administratoren' }).Members | Should -Be @("$script:MachineSid-500")
            InSim { Get-DcomcOsLocalGroup -Name 'Users' } | Should -BeNullOrEmpty
            InSim { Get-DcomcOsLocalGroup -Name 'Administrator' } | Should -BeNullOrEmpty -Because 'a user is not a group'
            $dcom = InSim { Get-DcomcOsLocalGroup -Name 'Distributed COM-Benutzer' }
            $dcom.Members.GetType() | Should -Be ([object[]])
            $dcom.Members.Count | Should -Be 0
        }

        It 'resolves domain accounts registered with Add-SimDomainAccount' {
            InSim { Add-SimDomainAccount -Name 'PLANT9\opc-clients' -Sid 'S-1-5-21-111-222-333-1105' -Group }
            InSim { ConvertTo-DcomcOsSid -Name 'plant9\OPC-Clients' } | Should -Be 'S-1-5-21-111-222-333-1105'
            InSim { ConvertTo-DcomcOsAccountName -Sid 'S-1-5-21-111-222-333-1105' } | Should -BeExactly 'PLANT9\opc-clients'
            { InSim { Add-SimDomainAccount -Name 'SCADA01\x' -Sid 'S-1-5-21-111-222-333-1106' } } | Should -Throw 'sim:*'
            { InSim { Add-SimDomainAccount -Name 'PLANT9\y' -Sid 'S-1-5-32-544' } } | Should -Throw 'sim:*'
        }
    }

    Describe 'local users and groups' {
        It 'gives new users and groups RIDs from 1000 up, never reused, in the machine SID' {
            InSim {
                New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0
                New-DcomcOsLocalGroup -Name 'OPC Clients' -Description 'x'
                Remove-DcomcOsLocalUser -Name 'opcuser'
                New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0
            }
            (InSim { Get-DcomcOsLocalGroup -Name 'OPC Clients' }).Sid | Should -Be "$script:MachineSid-1001"
            (InSim { Get-DcomcOsLocalUser -Name 'opcuser' }).Sid | Should -Be "$script:MachineSid-1002"
            InSim { ConvertTo-DcomcOsSid -Name 'SCADA01\opcuser' } | Should -Be "$script:MachineSid-1002"
            InSim { param($s) ConvertTo-DcomcOsAccountName -Sid $s } @("$script:MachineSid-1002") | Should -BeExactly 'SCADA01\opcuser'
        }

        It 'gives a new user UF_SCRIPT and UF_NORMAL_ACCOUNT (0x201) as ADSI does, plus the flags asked for' {
            $flags = InSim {
                foreach ($entry in @(@('u1', 0), @('u2', 0x10000), @('u3', 0x10201), @('u4', 0x2))) {
                    New-DcomcOsLocalUser -Name $entry[0] -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description 'd' -Flags $entry[1]
                    (Get-DcomcOsLocalUser -Name $entry[0]).Flags
                }
            }
            $flags | Should -Be @(0x201, 0x10201, 0x10201, 0x203)
            $user = InSim { Get-DcomcOsLocalUser -Name 'U1' }
            $user.Name | Should -BeExactly 'u1'
            $user.PasswordExpired | Should -BeFalse
            $user.Description | Should -BeExactly 'd'
            (InSim { Get-DcomcOsLocalGroup -Name 'Benutzer' }).Members | Should -Contain $user.Sid
            { InSim { New-DcomcOsLocalUser -Name 'u5' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0x10 } } | Should -Throw 'sim:*'
            { InSim { New-DcomcOsLocalUser -Name 'u6' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0x1000 } } | Should -Throw 'sim:*'
        }

        It 'refuses passwords the policy refuses (0x800708C5) and then creates nothing' {
            $before = InSim { Get-SimSnapshot }
            foreach ($password in @('Sh0rt!', 'alllowercase1', 'opcuser-Pa55', 'ABCDEFGH12')) {
                { InSim { param($p) New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String $p -AsPlainText -Force) -Description '' -Flags 0 } @($password) } | Should -Throw '*does not meet the password policy requirements*0x800708C5*' -Because $password
            }
            InSim { Get-DcomcOsLocalUser -Name 'opcuser' } | Should -BeNullOrEmpty
            InSim { Get-SimSnapshot } | Should -BeExactly $before
            InSim { Set-SimPasswordPolicy -MinLength 0 -Complexity $false }
            { InSim { New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String 'x' -AsPlainText -Force) -Description '' -Flags 0 } } | Should -Not -Throw
        }

        It 'changes only what Set-DcomcOsLocalUser is given, and a refused password changes nothing' {
            InSim { New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description 'old' -Flags 0x10201 }
            InSim { Set-DcomcOsLocalUser -Name 'opcuser' -PasswordExpired $true -Flags 0x201 }
            $user = InSim { Get-DcomcOsLocalUser -Name 'opcuser' }
            $user.Description | Should -BeExactly 'old'
            $user.PasswordExpired | Should -BeTrue
            $user.Flags | Should -Be 0x201
            $before = InSim { Get-SimSnapshot }
            { InSim { Set-DcomcOsLocalUser -Name 'opcuser' -Description 'new' -Password (ConvertTo-SecureString -String 'weak' -AsPlainText -Force) } } | Should -Throw '*0x800708C5*'
            InSim { Get-SimSnapshot } | Should -BeExactly $before
            { InSim { Set-DcomcOsLocalUser -Name 'opcuser' -Flags 0x10201 } } | Should -Throw 'sim: PasswordExpired together with UF_DONT_EXPIRE_PASSWD*'
            { InSim { Set-DcomcOsLocalUser -Name 'nobody' -Description 'x' } } | Should -Throw 'The local user nobody does not exist'
        }

        It 'refuses invalid and taken names as the SAM does' {
            { InSim { New-DcomcOsLocalUser -Name ('u' * 21) -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0 } } | Should -Throw '*0x8007089A*'
            { InSim { New-DcomcOsLocalUser -Name 'a/b' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0 } } | Should -Throw '*0x8007089A*'
            { InSim { New-DcomcOsLocalUser -Name '...' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0 } } | Should -Throw '*0x8007089A*'
            { InSim { New-DcomcOsLocalUser -Name 'administrator' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0 } } | Should -Throw '*account already exists*0x800708B0*'
            { InSim { New-DcomcOsLocalGroup -Name 'Administratoren' -Description '' } } | Should -Throw '*local group already exists*0x80070563*'
            { InSim { New-DcomcOsLocalGroup -Name 'Gast' -Description '' } } | Should -Throw '*0x800708B0*'
            { InSim { New-DcomcOsLocalUser -Name 'long' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description ('d' * 49) -Flags 0 } } | Should -Throw 'sim:*48*'
            InSim { New-DcomcOsLocalUser -Name "O'Brien ```$(x)" -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0 }
            InSim { Get-DcomcOsLocalUser -Name "O'Brien ```$(x)" } | Should -Not -BeNullOrEmpty
        }

        It 'adds and removes group members by SID, with ADSI''s errors for a member twice or not at all' {
            InSim {
                New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0
                New-DcomcOsLocalGroup -Name 'OPC Clients' -Description ''
                Add-DcomcOsLocalGroupMember -Group 'Distributed COM-Benutzer' -MemberSid (Get-DcomcOsLocalUser -Name 'opcuser').Sid
                Add-DcomcOsLocalGroupMember -Group 'OPC Clients' -MemberSid 'S-1-5-4'
            }
            $sid = "$script:MachineSid-1000"
            (InSim { Get-DcomcOsLocalGroup -Name 'Distributed COM-Benutzer' }).Members | Should -Be @($sid)
            { InSim { param($s) Add-DcomcOsLocalGroupMember -Group 'Distributed COM-Benutzer' -MemberSid $s } @($sid) } | Should -Throw '*already a member of the group*0x80070562*'
            { InSim { param($s) Remove-DcomcOsLocalGroupMember -Group 'Administratoren' -MemberSid $s } @($sid) } | Should -Throw '*not a member of the group*0x80070561*'
            { InSim { param($s) Add-DcomcOsLocalGroupMember -Group 'Administratoren' -MemberSid $s } @("$script:MachineSid-1001") } | Should -Throw '*wrong account type*0x8007056C*'
            { InSim { Add-DcomcOsLocalGroupMember -Group 'Administratoren' -MemberSid 'S-1-5-21-9-9-9-1000' } } | Should -Throw '*could not be translated*'
            { InSim { Add-DcomcOsLocalGroupMember -Group 'Nope' -MemberSid 'S-1-5-4' } } | Should -Throw 'The local group Nope does not exist'
            InSim { param($s) Remove-DcomcOsLocalGroupMember -Group 'distributed com-benutzer' -MemberSid $s } @($sid)
            (InSim { Get-DcomcOsLocalGroup -Name 'Distributed COM-Benutzer' }).Members.Count | Should -Be 0
            InSim { Add-SimDomainAccount -Name 'PLANT9\opc-clients' -Sid 'S-1-5-21-111-222-333-1105' -Group; Add-DcomcOsLocalGroupMember -Group 'OPC Clients' -MemberSid 'S-1-5-21-111-222-333-1105' }
            (InSim { Get-DcomcOsLocalGroup -Name 'OPC Clients' }).Members | Should -Be @('S-1-5-4', 'S-1-5-21-111-222-333-1105')
        }

        It 'throws for deleting a missing or built-in account, and a deleted user leaves its groups but not its rights' {
            { InSim { Remove-DcomcOsLocalUser -Name 'nobody' } } | Should -Throw '*user name could not be found*0x800708AD*'
            { InSim { Remove-DcomcOsLocalGroup -Name 'nobody' } } | Should -Throw '*local group does not exist*0x80070560*'
            { InSim { Remove-DcomcOsLocalGroup -Name 'Administratoren' } } | Should -Throw '*built-in accounts*0x8007055B*'
            { InSim { Remove-DcomcOsLocalUser -Name 'Administrator' } } | Should -Throw '*built-in accounts*0x8007055B*'
            InSim {
                New-DcomcOsLocalUser -Name 'opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0
                $sid = (Get-DcomcOsLocalUser -Name 'opcsvc').Sid
                Add-DcomcOsLocalGroupMember -Group 'Administratoren' -MemberSid $sid
                Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid $sid
                Remove-DcomcOsLocalUser -Name 'OPCSVC'
            }
            (InSim { Get-DcomcOsLocalGroup -Name 'Administratoren' }).Members | Should -Not -Contain "$script:MachineSid-1000"
            (InSim { Get-DcomcOsLocalGroup -Name 'Benutzer' }).Members | Should -Not -Contain "$script:MachineSid-1000"
            $holders = InSim { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' }
            $holders | Should -Contain "$script:MachineSid-1000"
            InSim { New-DcomcOsLocalGroup -Name 'G' -Description ''; Set-DcomcOsLocalGroup -Name 'g' -Description 'new'; Remove-DcomcOsLocalGroup -Name 'G' }
            InSim { Get-DcomcOsLocalGroup -Name 'G' } | Should -BeNullOrEmpty
        }

        It 'keeps passwords only as hashes' {
            InSim { New-DcomcOsLocalUser -Name 'opcuser' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0 }
            $snapshot = InSim { Get-SimSnapshot }
            $snapshot | Should -Not -Match 'Pa55'
            InSim { ($script:Sim | ConvertTo-Json -Depth 16 -Compress -WarningAction SilentlyContinue) } | Should -Not -Match 'Pa55'
            (InSim { $script:Sim.Users['opcuser'].PasswordHash }) | Should -Match '^[0-9a-f]{64}$'
        }
    }

    Describe 'user rights' {
        It 'starts with Windows 10''s defaults' {
            # Results are assigned before they are compared: the functions return their list as one
            # object (, @(...)), as the engine assigns it.
            $service = InSim { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' }
            $service.GetType() | Should -Be ([object[]])
            $service | Should -Be @('S-1-5-80-0')
            $network = InSim { Get-DcomcOsUserRight -Right 'SeNetworkLogonRight' }
            $network | Should -Be @('S-1-1-0', 'S-1-5-32-544', 'S-1-5-32-545', 'S-1-5-32-551')
            $batch = InSim { Get-DcomcOsUserRight -Right 'SeBatchLogonRight' }
            $batch | Should -Be @('S-1-5-32-544', 'S-1-5-32-551', 'S-1-5-32-559')
            $none = InSim { Get-DcomcOsUserRight -Right 'SeDenyServiceLogonRight' }
            $none.GetType() | Should -Be ([object[]])
            $none.Count | Should -Be 0
        }

        It 'grants once and revokes, and a revoke of a non-holder changes nothing' {
            InSim {
                Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-21-1-2-3-1000'
                Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-21-1-2-3-1000'
            }
            $holders = InSim { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' }
            $holders | Should -Be @('S-1-5-80-0', 'S-1-5-21-1-2-3-1000')
            InSim { Revoke-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-21-1-2-3-1000'; Revoke-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-21-1-2-3-1000' }
            $holders = InSim { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' }
            $holders | Should -Be @('S-1-5-80-0')
        }

        It 'refuses unknown right names and holders that are not SIDs' {
            { InSim { Get-DcomcOsUserRight -Right 'SeServiceLogon' } } | Should -Throw 'sim:*not a user right*'
            { InSim { Get-DcomcOsUserRight -Right 'seservicelogonright' } } | Should -Throw 'sim:*not a user right*'
            { InSim { Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'SCADA01\opcsvc' } } | Should -Throw 'sim:*not a SID*'
        }
    }

    Describe 'services' {
        BeforeEach {
            InSim {
                New-DcomcOsLocalUser -Name 'opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0x10000
                Install-SimService -Name 'KEPServerEXV6' -StartName 'LocalSystem' -State 'Running' -StartMode 'Auto'
            }
        }

        It 'has the network discovery services of a fresh PC, found without case' {
            foreach ($name in @('FDResPub', 'fdPHost', 'SSDPSRV', 'upnphost')) {
                $service = InSim { param($n) Get-DcomcOsService -Name $n.ToLowerInvariant() } @($name)
                $service.Name | Should -BeExactly $name
                $service.StartMode | Should -Be 'Manual'
                $service.State | Should -Be 'Stopped'
                $service.StartName | Should -Be 'NT AUTHORITY\LocalService'
            }
            InSim { Get-DcomcOsService -Name 'OpcEnum' } | Should -BeNullOrEmpty
        }

        It 'changes the Log On account as Win32_Service.Change: as given, 22 for an unknown account, no right granted' {
            InSim { Set-DcomcOsServiceLogon -Name 'kepserverexv6' -StartName '.\opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).StartName | Should -BeExactly '.\opcsvc'
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Running'
            $holders = InSim { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' }
            $holders | Should -Be @('S-1-5-80-0')
            { InSim { Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName '.\nobody' -Password (ConvertTo-SecureString -String 'x' -AsPlainText -Force) } } | Should -Throw 'Win32_Service.Change returned 22 for KEPServerEXV6*'
            { InSim { Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName 'opcsvc' } } | Should -Throw '*returned 22*'
            { InSim { Set-DcomcOsServiceLogon -Name 'NoSuch' -StartName 'LocalSystem' } } | Should -Throw 'The service NoSuch is not installed on this PC'
            { InSim { Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName 'LocalSystem' -Password (ConvertTo-SecureString -String 'x' -AsPlainText -Force) } } | Should -Throw 'sim:*'
            InSim { Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName 'SCADA01\opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).StartName | Should -BeExactly 'SCADA01\opcsvc'
        }

        It 'fails a restart with 1069 when the account lacks SeServiceLogonRight, and leaves the service Stopped' {
            InSim { Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName '.\opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) }
            { InSim { Restart-DcomcOsService -Name 'KEPServerEXV6' } } | Should -Throw '*1069*logon failure*'
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Stopped'
            InSim { Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid (Get-DcomcOsLocalUser -Name 'opcsvc').Sid; Start-DcomcOsService -Name 'KEPServerEXV6' }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Running'
            { InSim { Start-DcomcOsService -Name 'KEPServerEXV6' } } | Should -Not -Throw -Because 'a running service is no error'
        }

        It 'lets a group that holds the right log the account on, and a deny right wins' {
            InSim {
                New-DcomcOsLocalGroup -Name 'OPC Services' -Description ''
                Add-DcomcOsLocalGroupMember -Group 'OPC Services' -MemberSid (Get-DcomcOsLocalUser -Name 'opcsvc').Sid
                Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid (Get-DcomcOsLocalGroup -Name 'OPC Services').Sid
                Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName '.\opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force)
                Restart-DcomcOsService -Name 'KEPServerEXV6'
            }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Running'
            InSim { Grant-DcomcOsUserRight -Right 'SeDenyServiceLogonRight' -Sid 'S-1-5-32-545' }
            { InSim { Restart-DcomcOsService -Name 'KEPServerEXV6' } } | Should -Throw '*1069*'
        }

        It 'starts only with the account''s current password: a stale service password fails at the next start' {
            InSim {
                Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid (Get-DcomcOsLocalUser -Name 'opcsvc').Sid
                Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName '.\opcsvc' -Password (ConvertTo-SecureString -String 'Wrong-Pa55word' -AsPlainText -Force)
            }
            { InSim { Restart-DcomcOsService -Name 'KEPServerEXV6' } } | Should -Throw '*1069*'
            InSim {
                Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName '.\opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force)
                Start-DcomcOsService -Name 'KEPServerEXV6'
                Set-DcomcOsLocalUser -Name 'opcsvc' -Password (ConvertTo-SecureString -String 'N3w-Pa55word' -AsPlainText -Force)
            }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Running'
            { InSim { Restart-DcomcOsService -Name 'KEPServerEXV6' } } | Should -Throw '*1069*'
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Stopped'
            InSim { Set-DcomcOsLocalUser -Name 'opcsvc' -Flags 0x10203 }   # disabled
            InSim { Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName '.\opcsvc' -Password (ConvertTo-SecureString -String 'N3w-Pa55word' -AsPlainText -Force) }
            { InSim { Start-DcomcOsService -Name 'KEPServerEXV6' } } | Should -Throw '*1069*'
        }

        It 'always starts built-in accounts, never a disabled service (1058)' {
            InSim { Set-DcomcOsServiceLogon -Name 'KEPServerEXV6' -StartName 'NT AUTHORITY\NetworkService'; Restart-DcomcOsService -Name 'KEPServerEXV6' }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Running'
            InSim { Set-DcomcOsServiceStartMode -Name 'KEPServerEXV6' -StartMode 'Disabled' }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Running' -Because 'disabling does not stop it'
            { InSim { Restart-DcomcOsService -Name 'KEPServerEXV6' } } | Should -Throw '*1058*disabled*'
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).State | Should -Be 'Stopped'
            InSim { Set-DcomcOsServiceStartMode -Name 'KEPServerEXV6' -StartMode 'Automatic' }
            (InSim { Get-DcomcOsService -Name 'KEPServerEXV6' }).StartMode | Should -Be 'Auto'
            { InSim { Set-DcomcOsServiceStartMode -Name 'NoSuch' -StartMode 'Manual' } } | Should -Throw "*Cannot find any service with service name 'NoSuch'*"
        }

        It 'restarts dependents with the service, and a failing service takes them down (1068)' {
            InSim { Start-DcomcOsService -Name 'upnphost' }
            (InSim { Get-DcomcOsService -Name 'SSDPSRV' }).State | Should -Be 'Running' -Because 'the SCM starts dependencies first'
            InSim { Restart-DcomcOsService -Name 'SSDPSRV' }
            (InSim { Get-DcomcOsService -Name 'upnphost' }).State | Should -Be 'Running'
            InSim { Set-DcomcOsServiceLogon -Name 'SSDPSRV' -StartName '.\opcsvc' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) }
            { InSim { Restart-DcomcOsService -Name 'SSDPSRV' } } | Should -Throw '*upnphost*1068*'
            (InSim { Get-DcomcOsService -Name 'upnphost' }).State | Should -Be 'Stopped'
            (InSim { Get-DcomcOsService -Name 'SSDPSRV' }).State | Should -Be 'Stopped'
            InSim { Set-DcomcOsServiceLogon -Name 'SSDPSRV' -StartName 'NT AUTHORITY\LocalService'; Start-DcomcOsService -Name 'upnphost'; Stop-DcomcOsService -Name 'SSDPSRV' }
            (InSim { Get-DcomcOsService -Name 'upnphost' }).State | Should -Be 'Stopped' -Because 'Stop-Service -Force stops the dependents'
            { InSim { Stop-DcomcOsService -Name 'SSDPSRV' } } | Should -Not -Throw
        }
    }

    Describe 'firewall' {
        It 'has the Network Discovery group, every rule disabled, in per-profile copies' {
            $rules = InSim { Get-DcomcOsFirewallGroup -Group '@FirewallAPI.dll,-32752' }
            $rules.Count | Should -BeGreaterThan 20
            @($rules | Where-Object -FilterScript { $_.Enabled }).Count | Should -Be 0
            $names = @($rules | ForEach-Object -Process { $_.Name })
            foreach ($name in @('NETDIS-FDPHOST-In-UDP', 'NETDIS-FDPHOST-In-UDP-Active', 'NETDIS-NB_Name-In-UDP', 'NETDIS-NB_Datagram-In-UDP', 'NETDIS-SSDPSrv-In-UDP', 'NETDIS-UPnPHost-In-TCP', 'NETDIS-FDRESPUB-WSD-In-UDP', 'NETDIS-WSDEVNT-In-TCP', 'NETDIS-LLMNR-In-UDP', 'NETDIS-UPnPHost-In-TCP-NoScope')) {
                $names | Should -Contain $name
            }
            (InSim { Get-DcomcOsFirewallRule -Name 'NETDIS-FDPHOST-In-UDP' }).Profile | Should -Be 'Domain, Public'
            (InSim { Get-DcomcOsFirewallRule -Name 'NETDIS-FDPHOST-In-UDP-Active' }).Profile | Should -Be 'Private'
            (InSim { Get-DcomcOsFirewallRule -Name 'NETDIS-FDPHOST-In-UDP' }).DisplayName | Should -Match '^Netzwerkerkennung'
            (InSim { Get-DcomcOsFirewallGroup -Group 'Netzwerkerkennung' }).Count | Should -Be 0 -Because 'the group is its resource string, not its display name'
            { InSim { Get-DcomcOsFirewallGroup -Group '@FirewallAPI.dll,-3275*' } } | Should -Throw 'sim:*wildcard*'
        }

        It 'enables and disables rules by name; a missing rule is an error' {
            InSim { Set-DcomcOsFirewallRuleEnabled -Name 'NETDIS-LLMNR-In-UDP' -Enabled $true }
            (InSim { Get-DcomcOsFirewallRule -Name 'NETDIS-LLMNR-In-UDP' }).Enabled | Should -BeTrue
            @(InSim { Get-DcomcOsFirewallGroup -Group '@firewallapi.dll,-32752' } | Where-Object -FilterScript { $_.Enabled }).Count | Should -Be 1
            { InSim { Set-DcomcOsFirewallRuleEnabled -Name 'nope' -Enabled $true } } | Should -Throw "No MSFT_NetFirewallRule objects found with property 'Name' equal to 'nope'*"
        }

        It 'shows a new rule as NetSecurity does: profiles in flag order or Any, networks with a mask, /32 bare' {
            InSim {
                New-DcomcOsFirewallRule -Rule @{ Name = 'dcomc-epmap'; DisplayName = 'DCOM (TCP 135)'; Description = 'x'; Protocol = 'TCP'; LocalPort = @(135); Profile = @('Private', 'Domain'); RemoteAddress = @('10.9.0.0/24', '10.7.3.10/32', '10.7.3.11', '10.7.3.20-10.7.3.30') }
                New-DcomcOsFirewallRule -Rule @{ Name = 'dcomc-app'; DisplayName = 'OPC server'; Description = ''; Protocol = 'TCP'; Program = 'C:\x\server.exe'; Profile = @('Domain', 'Private', 'Public'); RemoteAddress = @('Any') }
            }
            $rule = InSim { Get-DcomcOsFirewallRule -Name 'dcomc-epmap' }
            $rule.Profile | Should -BeExactly 'Domain, Private'
            $rule.RemoteAddress | Should -Be @('10.9.0.0/255.255.255.0', '10.7.3.10', '10.7.3.11', '10.7.3.20-10.7.3.30')
            $rule.LocalPort | Should -Be @('135')
            $rule.Enabled | Should -BeTrue
            $rule.Direction | Should -Be 'Inbound'
            $rule.Action | Should -Be 'Allow'
            $rule.Program | Should -Be 'Any'
            $rule.Service | Should -Be 'Any'
            $app = InSim { Get-DcomcOsFirewallRule -Name 'dcomc-app' }
            $app.Profile | Should -Be 'Any'
            $app.LocalPort | Should -Be @('Any')
            $app.Program | Should -BeExactly 'C:\x\server.exe'
            $app.RemoteAddress | Should -Be @('Any')
            InSim { Get-DcomcOsFirewallRule -Name 'nope' } | Should -BeNullOrEmpty
        }

        It 'refuses an existing name (and a name differing only in case) and what New-NetFirewallRule refuses' {
            $base = @{ Name = 'dcomc-x'; DisplayName = 'x'; Description = ''; Protocol = 'TCP'; LocalPort = @('135'); Profile = @('Domain'); RemoteAddress = @('Any') }
            InSim { param($r) New-DcomcOsFirewallRule -Rule $r } @($base)
            { InSim { param($r) New-DcomcOsFirewallRule -Rule $r } @($base) } | Should -Throw 'Cannot create a file when that file already exists.'
            { InSim { param($r) $r.Name = 'DCOMC-X'; New-DcomcOsFirewallRule -Rule $r } @($base.Clone()) } | Should -Throw 'sim:*case*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'Any'; LocalPort = @('135'); Profile = @('Domain'); RemoteAddress = @('Any') } } } | Should -Throw '*needs protocol TCP or UDP*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'TCP'; LocalPort = @('RPC-EPMap'); Profile = @('Domain'); RemoteAddress = @('Any') } } } | Should -Throw '*not valid*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'TCP'; LocalPort = @('70000'); Profile = @('Domain'); RemoteAddress = @('Any') } } } | Should -Throw '*not valid*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'TCP'; Profile = @('Domain'); RemoteAddress = @('10.9.0.1/24') } } } | Should -Throw 'sim:*host bits*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'TCP'; Profile = @('Domain'); RemoteAddress = @('fe80::1') } } } | Should -Throw 'sim:*IPv6*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'TCP'; Profile = @('Domain'); RemoteAddress = @('Any', '10.0.0.1') } } } | Should -Throw 'sim:*Any*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'TCP'; Profile = @('Domain'); RemoteAddress = @('Any'); Direction = 'Outbound' } } } | Should -Throw 'sim:*Direction*'
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Protocol = 'TCP'; Profile = @('Domain'); RemoteAddress = @('Any') } } } | Should -Throw "*'Description' cannot be found*"
            { InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'a'; DisplayName = 'a'; Description = ''; Protocol = 'TCP'; Profile = @('Work'); RemoteAddress = @('Any') } } } | Should -Throw '*Cannot convert value*'
            InSim { Get-DcomcOsFirewallRule -Name 'a' } | Should -BeNullOrEmpty
        }

        It 'removes a rule, and a missing rule is no error' {
            InSim { New-DcomcOsFirewallRule -Rule @{ Name = 'dcomc-x'; DisplayName = 'x'; Description = ''; Protocol = 'UDP'; LocalPort = @('Teredo'); Profile = 'Domain,Private'; RemoteAddress = @('LocalSubnet') } }
            (InSim { Get-DcomcOsFirewallRule -Name 'dcomc-x' }).Profile | Should -Be 'Domain, Private'
            InSim { Remove-DcomcOsFirewallRule -Name 'dcomc-x'; Remove-DcomcOsFirewallRule -Name 'dcomc-x' }
            InSim { Get-DcomcOsFirewallRule -Name 'dcomc-x' } | Should -BeNullOrEmpty
        }
    }

    Describe 'files under the simulated ProgramData' {
        BeforeEach {
            $script:Root = InSim { Get-DcomcOsDataRoot }
            $script:Site = Join-Path -Path $script:Root -ChildPath 'plant7-line3'
        }

        It 'has dcomc''s root in a real temporary ProgramData, missing on a fresh PC' {
            $script:Root | Should -BeExactly (Join-Path -Path (InSim { $script:SimRoot }) -ChildPath (Join-Path -Path 'ProgramData' -ChildPath 'dcomc'))
            Test-Path -LiteralPath (Split-Path -Path $script:Root -Parent) | Should -BeTrue
            Test-Path -LiteralPath $script:Root | Should -BeFalse
        }

        It 'creates secure folders that are trusted' {
            InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups')
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups') | Should -BeTrue
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @($script:Root) | Should -BeTrue
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @(Join-Path -Path $script:Site -ChildPath 'missing') | Should -BeFalse
            { InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @($script:Site) } | Should -Not -Throw
            { InSim { Initialize-DcomcSecureFolder -Path ([IO.Path]::GetTempPath()) } } | Should -Throw '*not under*'
        }

        It 'distrusts what a standard user planted, and refuses to use a planted folder' {
            InSim { param($p) Add-SimPlantedItem -Path $p -Folder } @($script:Site)
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @($script:Site) | Should -BeFalse
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @($script:Root) | Should -BeFalse -Because 'the missing root was created by the same user'
            { InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups') } | Should -Throw '*can be changed by users other than SYSTEM and Administrators*'
            Test-Path -LiteralPath (Join-Path -Path $script:Site -ChildPath 'backups') | Should -BeFalse
        }

        It 'distrusts a planted file in a trusted folder, also after it is overwritten' {
            InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @($script:Site)
            $file = Join-Path -Path $script:Site -ChildPath 'changes.json'
            InSim { param($p) Add-SimPlantedItem -Path $p -Text '{}' } @($file)
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @($file) | Should -BeFalse
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @($script:Site) | Should -BeTrue
            InSim { param($p) Write-DcomcOsFile -Path $p -Text 'new' } @($file)
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @($file) | Should -BeFalse -Because 'ReplaceFile keeps the replaced file''s ACL'
        }

        It 'writes whole files atomically as UTF-8 without BOM, appends, copies and reads them' {
            InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @($script:Site)
            $file = Join-Path -Path $script:Site -ChildPath 'run.log'
            InSim { param($p) Write-DcomcOsFile -Path $p -Text 'Grüße'; Write-DcomcOsFile -Path $p -Text "`r`nzwei" -Append } @($file)
            [IO.File]::ReadAllBytes($file)[0] | Should -Be ([byte] [char] 'G')
            InSim { param($p) Read-DcomcOsFile -Path $p } @($file) | Should -BeExactly "Grüße`r`nzwei"
            @(Get-ChildItem -LiteralPath $script:Site -Name) | Should -Be @('run.log')
            InSim { param($p) Write-DcomcOsFile -Path $p -Text 'eins' } @($file)
            InSim { param($p) Read-DcomcOsFile -Path $p } @($file) | Should -BeExactly 'eins'
            $copy = Join-Path -Path $script:Site -ChildPath 'copy.log'
            InSim { param($a, $b) Copy-DcomcOsFile -Source $a -Destination $b } @($file, $copy)
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @($copy) | Should -BeTrue
            { InSim { param($p) Write-DcomcOsFile -Path $p -Text 'x' } @(Join-Path -Path $script:Site -ChildPath 'no/such.log') } | Should -Throw
        }

        It 'renames folders with their trust, and lists child folders sorted' {
            InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups/run-b')
            InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups/Run-a')
            InSim { param($p) Add-SimPlantedItem -Path $p -Text 'x' } @(Join-Path -Path $script:Site -ChildPath 'backups/run-b/planted.txt')
            InSim { param($p) Rename-DcomcOsFolder -Path $p -NewName 'run-c' } @(Join-Path -Path $script:Site -ChildPath 'backups/run-b')
            $children = InSim { param($p) Get-DcomcOsChildFolder -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups')
            $children | Should -Be @('Run-a', 'run-c')
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups/run-c') | Should -BeTrue
            InSim { param($p) Test-DcomcTrustedPath -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups/run-c/planted.txt') | Should -BeFalse
            { InSim { param($p) Get-DcomcOsChildFolder -Path $p } @(Join-Path -Path $script:Site -ChildPath 'none') } | Should -Throw '*does not exist*'
            $empty = InSim { param($p) Get-DcomcOsChildFolder -Path $p } @(Join-Path -Path $script:Site -ChildPath 'backups/Run-a')
            $empty.GetType() | Should -Be ([string[]])
            $empty.Count | Should -Be 0
            { InSim { param($p) Rename-DcomcOsFolder -Path $p -NewName '../x' } @(Join-Path -Path $script:Site -ChildPath 'backups/run-c') } | Should -Throw 'sim:*'
        }

        It 'closes the secure folders to a non-elevated token, but not other folders' {
            InSim { param($p) Initialize-DcomcSecureFolder -Path $p; Write-DcomcOsFile -Path (Join-Path -Path $p -ChildPath 'changes.json') -Text '{}' } @($script:Site)
            InSim { Set-SimElevated -Elevated $false }
            { InSim { param($p) Read-DcomcOsFile -Path (Join-Path -Path $p -ChildPath 'changes.json') } @($script:Site) } | Should -Throw '*Access to the path*denied*'
            InSim { param($p) Test-DcomcOsPath -Path (Join-Path -Path $p -ChildPath 'changes.json') } @($script:Site) | Should -BeFalse
            InSim { param($p) Test-DcomcOsPath -Path $p } @($script:Root) | Should -BeTrue
            $outside = Join-Path -Path (InSim { $script:SimRoot }) -ChildPath 'report.json'
            InSim { param($p) Write-DcomcOsFile -Path $p -Text '{}' } @($outside)
            InSim { param($p) Test-DcomcOsPath -Path $p } @($outside) | Should -BeTrue
            { InSim { param($p) Initialize-DcomcSecureFolder -Path (Join-Path -Path $p -ChildPath 'new') } @($script:Root) } | Should -Throw '*denied*'
        }

        It 'exports placeholder backups, with the warnings a test asks for, and warns for a missing folder' {
            InSim { param($p) Initialize-DcomcSecureFolder -Path $p } @($script:Site)
            $warnings = InSim { param($p) Export-DcomcOsSystemBackup -Folder $p } @($script:Site)
            $warnings.GetType() | Should -Be ([object[]])
            $warnings.Count | Should -Be 0
            @(Get-ChildItem -LiteralPath $script:Site -Name | Sort-Object) | Should -Be @('firewall.wfw', 'policy.inf', 'registry-1.reg', 'registry-2.reg', 'registry-3.reg')
            InSim { Set-SimBackupWarning -Warning @('secedit /export failed with exit code 5') }
            $warnings = InSim { param($p) Export-DcomcOsSystemBackup -Folder $p } @($script:Site)
            $warnings | Should -Be @('secedit /export failed with exit code 5')
            $warnings = InSim { param($p) Export-DcomcOsSystemBackup -Folder $p } @(Join-Path -Path $script:Site -ChildPath 'none')
            $warnings.Count | Should -Be 5
        }
    }

    Describe 'this process, the console and time' {
        It 'is elevated unless told otherwise, and refuses every system change without elevation' {
            InSim { Test-DcomcOsElevated } | Should -BeTrue
            InSim { Set-SimElevated -Elevated $false }
            InSim { Test-DcomcOsElevated } | Should -BeFalse
            { InSim { Set-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'EnableDCOM' -Type 'String' -Data 'N' } } | Should -Throw 'Access is denied*'
            { InSim { Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-4' } } | Should -Throw 'Access is denied*'
            { InSim { Get-DcomcOsUserRight -Right 'SeServiceLogonRight' } } | Should -Throw 'secedit /export failed*'
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'EnableDCOM' }).Data | Should -Be 'Y'
        }

        It 'answers secrets from a queue, only in an interactive session' {
            InSim { Test-DcomcOsInteractive } | Should -BeFalse
            { InSim { Read-DcomcOsSecret -Prompt 'p' } } | Should -Throw '*NonInteractive mode*'
            InSim { Set-SimInteractive -Interactive $true; Add-SimSecretAnswer -Text 'one'; Add-SimSecretAnswer -Secret (ConvertTo-SecureString -String 'two' -AsPlainText -Force) }
            $answers = InSim { @(Read-DcomcOsSecret -Prompt 'Password for opcuser'; Read-DcomcOsSecret -Prompt 'again') }
            $answers[0] | Should -BeOfType [securestring]
            [System.Net.NetworkCredential]::new('', $answers[1]).Password | Should -BeExactly 'two'
            InSim { @($script:Sim.SecretPrompts) } | Should -Be @('Password for opcuser', 'again')
            { InSim { Read-DcomcOsSecret -Prompt 'third' } } | Should -Throw 'sim: no answer queued*'
        }

        It 'reads standard input once' {
            { InSim { Read-DcomcOsStdin } } | Should -Throw 'sim:*'
            InSim { Set-SimStdin -Text "b3Bj`n" }
            InSim { Read-DcomcOsStdin } | Should -BeExactly "b3Bj`n"
            InSim { Read-DcomcOsStdin } | Should -BeExactly ''
        }

        It 'has a clock from 2026-01-05T08:00:00Z advancing one second per call, and a settable one' {
            $times = InSim { @(Get-DcomcOsUtcNow; Get-DcomcOsUtcNow) }
            $times[0] | Should -Be ([DateTime]::new(2026, 1, 5, 8, 0, 0, [DateTimeKind]::Utc))
            $times[0].Kind | Should -Be 'Utc'
            ($times[1] - $times[0]).TotalSeconds | Should -Be 1
            InSim { Set-SimClock -Time ([DateTime]::new(2030, 2, 1, 0, 0, 0)) -Step ([TimeSpan]::FromMinutes(1)) }
            (InSim { Get-DcomcOsUtcNow; Get-DcomcOsUtcNow })[1] | Should -Be ([DateTime]::new(2030, 2, 1, 0, 1, 0, [DateTimeKind]::Utc))
        }

        It 'is SCADA01 unless named otherwise, and local accounts follow the computer name' {
            InSim { Get-DcomcOsComputerName } | Should -BeExactly 'SCADA01'
            InSim { Set-SimComputerName -Name 'hmi01' }
            InSim { Get-DcomcOsComputerName } | Should -BeExactly 'HMI01'
            InSim { ConvertTo-DcomcOsAccountName -Sid "$((Get-SimSnapshot | ConvertFrom-Json).computer.machineSid)-500" } | Should -BeExactly 'HMI01\Administrator'
            InSim { Reset-SimWindows -ComputerName 'HMI02' }
            InSim { Get-DcomcOsComputerName } | Should -BeExactly 'HMI02'
            { InSim { Set-SimComputerName -Name 'has space' } } | Should -Throw 'sim:*'
        }
    }

    Describe 'fault injection and the call log' {
        It 'fails the N-th matching call, counted from when the fault was armed, once' {
            InSim { Get-DcomcOsComputerName; Add-SimFault -Operation 'Get-DcomcOsComputerName' -At 2 -Message 'RPC server unavailable' }
            { InSim { Get-DcomcOsComputerName } } | Should -Not -Throw
            { InSim { Get-DcomcOsComputerName } } | Should -Throw 'RPC server unavailable'
            { InSim { Get-DcomcOsComputerName } } | Should -Not -Throw
            InSim { @($script:SimFaults).Count } | Should -Be 0
        }

        It 'matches every state change with write, every read with read, everything with *' {
            InSim { Add-SimFault -Operation 'write' -At 2 }
            { InSim { New-DcomcOsLocalGroup -Name 'G1' -Description '' } } | Should -Not -Throw
            { InSim { Get-DcomcOsLocalGroup -Name 'G1'; ConvertTo-DcomcOsSid -Name 'Jeder'; Test-DcomcOsElevated } } | Should -Not -Throw
            { InSim { New-DcomcOsLocalGroup -Name 'G2' -Description '' } } | Should -Throw 'Access is denied.'
            InSim { Get-DcomcOsLocalGroup -Name 'G2' } | Should -BeNullOrEmpty -Because 'a failed write changes nothing'
            InSim { Add-SimFault -Operation 'read' }
            { InSim { Get-DcomcOsUtcNow } } | Should -Throw
            InSim { Add-SimFault -Operation '*' -At 1 }
            { InSim { Stop-DcomcOsService -Name 'SSDPSRV' } } | Should -Throw
        }

        It 'marks the injected exception, records every call in order, and counts the writes' {
            InSim { Reset-SimCalls; Add-SimFault -Operation 'Grant-DcomcOsUserRight' }
            $caught = InSim { try { Grant-DcomcOsUserRight -Right 'SeBatchLogonRight' -Sid 'S-1-5-4' } catch { $_.Exception } }
            $caught.Data['SimFault'] | Should -Be 'Grant-DcomcOsUserRight'
            InSim { Get-DcomcOsUserRight -Right 'SeBatchLogonRight'; Revoke-DcomcOsUserRight -Right 'SeBatchLogonRight' -Sid 'S-1-5-4' }
            $calls = InSim { Get-SimCall }
            $calls | Should -Be @('Grant-DcomcOsUserRight', 'Get-DcomcOsUserRight', 'Revoke-DcomcOsUserRight')
            InSim { Get-SimWriteCount } | Should -Be 2
            InSim { Reset-SimCalls; Get-SimWriteCount } | Should -Be 0
        }

        It 'clears faults, and refuses a fault for an operation that does not exist' {
            InSim { Add-SimFault -Operation 'write'; Clear-SimFault }
            { InSim { New-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{Y}' } } | Should -Not -Throw
            { InSim { Add-SimFault -Operation 'Set-DcomcOsRegistry' } } | Should -Throw 'sim: no operation*'
            { InSim { Add-SimFault -Operation 'write' -At 0 } } | Should -Throw
        }

        It 'starts a reset PC with no faults and an empty call log' {
            InSim { Get-DcomcOsComputerName; Add-SimFault -Operation 'read'; Reset-SimWindows }
            $calls = InSim { Get-SimCall }
            $calls.Count | Should -Be 0
            { InSim { Get-DcomcOsComputerName } } | Should -Not -Throw
        }
    }

    Describe 'snapshots' {
        It 'gives equal strings for two fresh PCs, and valid JSON of the whole system' {
            $first = InSim { Get-SimSnapshot }
            InSim { Reset-SimWindows }
            InSim { Get-SimSnapshot } | Should -BeExactly $first
            $state = $first | ConvertFrom-Json
            @($state.PSObject.Properties.Name) | Should -Be @('computer', 'registry', 'users', 'groups', 'domainAccounts', 'rights', 'services', 'firewall')
            $state.registry.'HKLM\SOFTWARE\Microsoft\Ole'.values.MachineLaunchRestriction.data | Should -BeExactly $script:LaunchLimitHex
        }

        It 'differs after any change, and is equal again once it is undone' {
            $fresh = InSim { Get-SimSnapshot }
            $changes = @(
                @({ Set-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'LegacyAuthenticationLevel' -Type 'DWord' -Data 5 }, { Remove-DcomcOsRegistryValue -Path 'SOFTWARE\Microsoft\Ole' -Name 'LegacyAuthenticationLevel' }),
                @({ Grant-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-4' }, { Revoke-DcomcOsUserRight -Right 'SeServiceLogonRight' -Sid 'S-1-5-4' }),
                @({ Set-DcomcOsServiceStartMode -Name 'fdPHost' -StartMode 'Automatic' }, { Set-DcomcOsServiceStartMode -Name 'fdPHost' -StartMode 'Manual' }),
                @({ Set-DcomcOsFirewallRuleEnabled -Name 'NETDIS-LLMNR-In-UDP' -Enabled $true }, { Set-DcomcOsFirewallRuleEnabled -Name 'NETDIS-LLMNR-In-UDP' -Enabled $false }),
                @({ Add-DcomcOsLocalGroupMember -Group 'Distributed COM-Benutzer' -MemberSid 'S-1-5-4' }, { Remove-DcomcOsLocalGroupMember -Group 'Distributed COM-Benutzer' -MemberSid 'S-1-5-4' }),
                @({ New-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{E}' }, { Remove-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{E}' }),
                @({ Set-DcomcOsLocalGroup -Name 'Benutzer' -Description 'x' }, { Set-DcomcOsLocalGroup -Name 'Benutzer' -Description ($script:SimBuiltinGroups['S-1-5-32-545']) })
            )
            foreach ($pair in $changes) {
                InSim $pair[0]
                InSim { Get-SimSnapshot } | Should -Not -BeExactly $fresh -Because $pair[0].ToString()
                InSim $pair[1]
                InSim { Get-SimSnapshot } | Should -BeExactly $fresh -Because $pair[1].ToString()
            }
        }

        It 'leaves out the RID counter, the clock, the call log and the files' {
            $fresh = InSim { Get-SimSnapshot }
            InSim {
                New-DcomcOsLocalUser -Name 'tmp' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0
                Remove-DcomcOsLocalUser -Name 'tmp'
                $null = Get-DcomcOsUtcNow
                $root = Get-DcomcOsDataRoot
                Initialize-DcomcSecureFolder -Path $root
                Write-DcomcOsFile -Path (Join-Path -Path $root -ChildPath 'x.log') -Text 'x'
                Set-SimElevated -Elevated $false
            }
            InSim { Get-SimSnapshot } | Should -BeExactly $fresh
            (InSim { $script:Sim.NextRid }) | Should -Be 1001
        }

        It 'does not depend on the order things were created in' {
            InSim {
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{O}' -Name 'A' -Type 'DWord' -Data 1
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{O}' -Name 'B' -Type 'DWord' -Data 2
                Grant-DcomcOsUserRight -Right 'SeBatchLogonRight' -Sid 'S-1-5-4'
            }
            $first = InSim { Get-SimSnapshot }
            InSim {
                Reset-SimWindows
                Grant-DcomcOsUserRight -Right 'SeBatchLogonRight' -Sid 'S-1-5-4'
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{O}' -Name 'B' -Type 'DWord' -Data 2
                Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{O}' -Name 'A' -Type 'DWord' -Data 1
            }
            InSim { Get-SimSnapshot } | Should -BeExactly $first
        }

        It 'tells a different language, value type, key case or password apart' {
            $fresh = InSim { Get-SimSnapshot }
            InSim { Reset-SimWindows -Locale 'en-US' }
            InSim { Get-SimSnapshot } | Should -Not -BeExactly $fresh
            InSim { Reset-SimWindows; Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{T}' -Name 'V' -Type 'String' -Data '5' }
            $string = InSim { Get-SimSnapshot }
            InSim { Reset-SimWindows; Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{T}' -Name 'V' -Type 'DWord' -Data 5 }
            InSim { Get-SimSnapshot } | Should -Not -BeExactly $string
            InSim { Reset-SimWindows; Set-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{t}' -Name 'V' -Type 'String' -Data '5' }
            InSim { Get-SimSnapshot } | Should -Not -BeExactly $string
            InSim { Reset-SimWindows; New-DcomcOsLocalUser -Name 'u' -Password (ConvertTo-SecureString -String 'Grüße§€-Pa55' -AsPlainText -Force) -Description '' -Flags 0 }
            $one = InSim { Get-SimSnapshot }
            InSim { Set-DcomcOsLocalUser -Name 'u' -Password (ConvertTo-SecureString -String 'Other-Pa55' -AsPlainText -Force) }
            InSim { Get-SimSnapshot } | Should -Not -BeExactly $one
        }
    }

    Describe 'starting states' {
        It 'installs a 32-bit COM server: ProgID shared, CLSID in the 32-bit view, AppID shared' {
            InSim { Install-SimComServer -ProgId 'Kepware.KEPServerEX.V6' -Clsid '{7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729}' -AppId '{11111111-2222-3333-4444-555555555555}' -AppIdValues @{ AuthenticationLevel = 1; LaunchPermission = [byte[]] (1, 0, 4, 128) } }
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\Kepware.KEPServerEX.V6\CLSID' -Name '' -View 'Registry32' }).Data | Should -Be '{7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729}'
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\CLSID\{7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729}' -Name 'AppID' -View 'Registry32' }).Data | Should -Be '{11111111-2222-3333-4444-555555555555}'
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\CLSID\{7BC0CC8E-482C-47CA-ABDC-0FE7F9C6E729}' -Name 'AppID' }).Exists | Should -BeFalse
            $level = InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{11111111-2222-3333-4444-555555555555}' -Name 'AuthenticationLevel' }
            $level.Type | Should -Be 'DWord'
            $level.Data | Should -Be 1
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\AppID\{11111111-2222-3333-4444-555555555555}' -Name 'LaunchPermission' }).Type | Should -Be 'Binary'
            $state = InSim { Get-SimSnapshot } | ConvertFrom-Json -AsHashtable
            $state.registry['HKLM\SOFTWARE\Classes\AppID\{11111111-2222-3333-4444-555555555555}'].values[''].data | Should -BeExactly 'Kepware.KEPServerEX.V6' -Because 'the default value is in snapshots too'
        }

        It 'installs a 64-bit server natively, and one without an AppID' {
            InSim { Install-SimComServer -ProgId 'Vendor.Server64' -Clsid '{22222222-2222-3333-4444-555555555555}' -Bitness 64 }
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\CLSID\{22222222-2222-3333-4444-555555555555}' -Name 'AppID' }).Data | Should -Be '{22222222-2222-3333-4444-555555555555}'
            InSim { Install-SimComServer -ProgId 'Vendor.Old' -Clsid '{33333333-2222-3333-4444-555555555555}' -NoAppId }
            (InSim { Get-DcomcOsRegistryValue -Path 'SOFTWARE\Classes\CLSID\{33333333-2222-3333-4444-555555555555}' -Name 'AppID' -View 'Registry32' }).Exists | Should -BeFalse
            InSim { Get-DcomcOsRegistryKey -Path 'SOFTWARE\Classes\AppID\{33333333-2222-3333-4444-555555555555}' } | Should -BeNullOrEmpty
            { InSim { Install-SimComServer -ProgId 'X' -Clsid 'not-a-guid' } } | Should -Throw 'sim:*GUID*'
        }

        It 'installs services with their defaults, and refuses a second one of the same name' {
            InSim { Install-SimService -Name 'OpcEnum' }
            $service = InSim { Get-DcomcOsService -Name 'OpcEnum' }
            $service.StartName | Should -Be 'LocalSystem'
            $service.State | Should -Be 'Running'
            $service.StartMode | Should -Be 'Auto'
            { InSim { Install-SimService -Name 'opcenum' } } | Should -Throw 'sim:*already installed*'
        }

        It 'encodes SDDL as the compiler does (the ACEs the defaults need)' {
            $hex = InSim { [Convert]::ToHexString((ConvertTo-SimSdBinary -Sddl $script:SimDefaultAccessLimit)).ToLowerInvariant() }
            $hex | Should -BeExactly $script:AccessLimitHex
            { InSim { ConvertTo-SimSdBinary -Sddl 'O:BAG:BAD:(A;OICI;CC;;;WD)' } } | Should -Throw 'sim:*'
        }
    }
}
