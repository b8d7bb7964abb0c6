# The shipped scripts read by PowerShell's own parser: one BOM, no syntax error, nothing that
# Windows PowerShell 5.1 lacks, and no OS access outside the system layer.

BeforeDiscovery {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $first = @(Get-TestBundle)[0]
    $scripts = @(
        @{ Name = 'DcomConfig.psm1'; Path = $first.Engine }
        @{ Name = 'Invoke-DcomConfig.ps1'; Path = $first.Entry }
    )
    $dataFiles = @(Get-TestBundle | ForEach-Object -Process { @{ Name = $_.Name; Path = $_.DataFile } })
}

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    function Get-Ast {
        param([string] $Path)
        $tokens = $null
        $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseFile($Path, [ref] $tokens, [ref] $errors)
        return @{ Ast = $ast; Tokens = $tokens; Errors = $errors }
    }
    function ConvertTo-CanonicalJson {
        <# Hashtables with their keys sorted (their enumeration order depends on how they were
           built), so two equal data files give equal text. #>
        param($Value)
        if ($Value -is [hashtable]) {
            $ordered = [ordered] @{}
            foreach ($key in ($Value.Keys | Sort-Object)) { $ordered[$key] = ConvertTo-CanonicalJson -Value $Value[$key] }
            return $ordered
        }
        if ($Value -is [array]) {
            return , @(foreach ($item in $Value) { ConvertTo-CanonicalJson -Value $item })
        }
        return $Value
    }
    # What Windows PowerShell 5.1 does not have (syntax from tokens, the rest from commands).
    $script:Ps7Tokens = @('QuestionQuestion', 'QuestionQuestionEquals', 'QuestionDot', 'QuestionLBracket', 'AndAnd', 'OrOr')
    $script:Ps7Parameters = @{ 'ForEach-Object' = @('Parallel', 'ThrottleLimit'); 'ConvertFrom-Json' = @('AsHashtable', 'Depth', 'NoEnumerate'); 'Import-PowerShellDataFile' = @('SkipLimitCheck'); 'Get-Content' = @('AsByteStream'); 'Set-Content' = @('AsByteStream'); 'Out-File' = @('Encoding:utf8NoBOM') }
    $script:Ps7Commands = @('Get-Error', 'ConvertFrom-Markdown', 'Join-String', 'Test-Json', 'Get-Uptime', 'Remove-Alias', 'Clear-RecycleBin')
    $script:Ps7Variables = @('IsWindows', 'IsLinux', 'IsMacOS', 'IsCoreCLR', 'PSStyle', 'ErrorView')
    function Find-Ps7Construct {
        param($Parsed)
        $found = @()
        foreach ($token in $Parsed.Tokens) {
            if ($script:Ps7Tokens -contains [string] $token.Kind) { $found += ('{0}: {1}' -f $token.Extent.StartLineNumber, $token.Text) }
        }
        $ternary = $Parsed.Ast.FindAll({ param($n) $n.GetType().Name -eq 'TernaryExpressionAst' -or $n.GetType().Name -eq 'PipelineChainAst' }, $true)
        foreach ($node in $ternary) { $found += ('{0}: {1}' -f $node.Extent.StartLineNumber, $node.GetType().Name) }
        foreach ($command in $Parsed.Ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)) {
            $name = $command.GetCommandName()
            if ($script:Ps7Commands -contains $name) { $found += ('{0}: {1}' -f $command.Extent.StartLineNumber, $name) }
            if ($name -and $script:Ps7Parameters.ContainsKey($name)) {
                foreach ($parameter in @($command.CommandElements | Where-Object -FilterScript { $_ -is [System.Management.Automation.Language.CommandParameterAst] })) {
                    if ($script:Ps7Parameters[$name] -contains $parameter.ParameterName) { $found += ('{0}: {1} -{2}' -f $command.Extent.StartLineNumber, $name, $parameter.ParameterName) }
                }
            }
        }
        foreach ($variable in $Parsed.Ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.VariableExpressionAst] }, $true)) {
            if ($script:Ps7Variables -contains $variable.VariablePath.UserPath) { $found += ('{0}: ${1}' -f $variable.Extent.StartLineNumber, $variable.VariablePath.UserPath) }
        }
        return , $found
    }
}

Describe 'the shipped script <Name>' -ForEach $scripts {
    It 'starts with exactly one UTF-8 BOM and uses CRLF line ends' {
        $bytes = [IO.File]::ReadAllBytes($Path)
        $bytes[0..2] | Should -Be @(0xEF, 0xBB, 0xBF)
        $bytes[3..5] | Should -Not -Be @(0xEF, 0xBB, 0xBF)
        $text = [Text.Encoding]::UTF8.GetString($bytes, 3, $bytes.Length - 3)
        $text.Contains([string] [char] 0xFEFF) | Should -BeFalse
        ($text -replace "`r`n", '').Contains("`n") | Should -BeFalse
    }

    It 'parses with zero errors and has nothing Windows PowerShell 5.1 lacks' {
        $parsed = Get-Ast -Path $Path
        @($parsed.Errors | ForEach-Object -Process { '{0}: {1}' -f $_.Extent.StartLineNumber, $_.Message }) | Should -BeNullOrEmpty
        Find-Ps7Construct -Parsed $parsed | Should -BeNullOrEmpty
    }
}

Describe 'the checkers of this file' {
    It 'finds the PowerShell 7 constructs it looks for' {
        $sample = Join-Path -Path $env:DCOMC_WORK -ChildPath 'ps7.ps1'
        Set-Content -LiteralPath $sample -Value @('$a = $b ?? 1', '$c = $d ? 1 : 2', 'a && b', '1..3 | ForEach-Object -Parallel { $_ }', '$x?.y', '$IsLinux', 'ConvertFrom-Json -AsHashtable', 'Get-Error')
        (Find-Ps7Construct -Parsed (Get-Ast -Path $sample)).Count | Should -BeGreaterOrEqual 8
    }
}

Describe 'the system layer' {
    BeforeAll {
        $parsed = Get-Ast -Path (@(Get-TestBundle)[0].Engine)
        $functions = @($parsed.Ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $true))
        # Commands and .NET types that reach the OS: allowed only in *-DcomcOs* functions.
        $script:OsCommands = '^(Get|Set|New|Remove|Invoke|Enable|Disable|Start|Stop|Restart)-(CimInstance|CimMethod|NetFirewall\w*|Service|Item|Acl|ItemProperty|LocalUser|LocalGroup\w*|WmiObject|Content|ChildItem|AuthenticodeSignature)$|^(Read-Host|Add-Content|Test-Path|Copy-Item|Move-Item|Rename-Item|Out-File|Export-Csv)$|\.exe$|^(secedit|netsh|reg|icacls|sc|net)$'
        $script:OsTypes = '^(Microsoft\.Win32\.|ADSI|adsi|System\.DirectoryServices|DirectoryServices|System\.Security\.AccessControl|Security\.AccessControl|System\.Security\.Principal|Security\.Principal|IO\.File|System\.IO\.File|IO\.Directory|System\.IO\.Directory|Console|System\.Console|Environment|System\.Environment|wmi|WMI)'
        function Find-OsAccess {
            param($Function)
            $found = @()
            foreach ($command in $Function.Body.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)) {
                $name = $command.GetCommandName()
                if ($name -and $name -match $script:OsCommands) { $found += ('{0}: {1}' -f $Function.Name, $name) }
            }
            foreach ($type in $Function.Body.FindAll({ param($n) $n -is [System.Management.Automation.Language.TypeExpressionAst] -or $n -is [System.Management.Automation.Language.ConvertExpressionAst] }, $true)) {
                $typeName = $type.StaticType.FullName
                if ($type -is [System.Management.Automation.Language.TypeExpressionAst]) { $typeName = $type.TypeName.FullName }
                else { $typeName = $type.Type.TypeName.FullName }
                if ($typeName -match $script:OsTypes) { $found += ('{0}: [{1}]' -f $Function.Name, $typeName) }
            }
            foreach ($call in $Function.Body.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] -and $n.GetCommandName() -eq 'New-Object' }, $true)) {
                if ($call.Extent.Text -match 'AccessControl|Principal|DirectoryEntry|ManagementObject') { $found += ('{0}: {1}' -f $Function.Name, $call.Extent.Text) }
            }
            return $found
        }
    }

    It 'is the only place that touches the OS' {
        $outside = @($functions | Where-Object -FilterScript { $_.Name -notmatch '-DcomcOs' })
        $outside.Count | Should -BeGreaterThan 50
        @(foreach ($function in $outside) { Find-OsAccess -Function $function }) | Should -BeNullOrEmpty
    }

    It 'is found by the checker where it touches the OS' {
        $inside = @($functions | Where-Object -FilterScript { $_.Name -match '-DcomcOs' })
        @(foreach ($function in $inside) { Find-OsAccess -Function $function }).Count | Should -BeGreaterThan 20
    }
}

Describe 'the data file of <Name>' -ForEach $dataFiles {
    It 'loads with Import-PowerShellDataFile and with the engine''s own reader, alike' {
        $expected = Import-PowerShellDataFile -LiteralPath $Path
        $module = Import-SimEngine -Engine (Join-Path -Path (Split-Path -Path $Path -Parent) -ChildPath 'DcomConfig.psm1')
        $read = & $module { param($p) Read-DcomcDataFile -Name $p -Content ([IO.File]::ReadAllBytes($p)) } $Path
        (ConvertTo-Json -InputObject (ConvertTo-CanonicalJson -Value $read) -Depth 30 -Compress) | Should -BeExactly (ConvertTo-Json -InputObject (ConvertTo-CanonicalJson -Value $expected) -Depth 30 -Compress)
    }
}

Describe 'the engine''s data reader' {
    BeforeAll {
        $module = Import-SimEngine -Engine (@(Get-TestBundle)[0].Engine)
        function Read-Data { param([string] $Text) $file = Join-Path -Path $env:DCOMC_WORK -ChildPath 'sample.psd1'; Set-Content -LiteralPath $file -Value $Text -Encoding utf8; & $module { param($p) Read-DcomcDataFile -Name $p -Content ([IO.File]::ReadAllBytes($p)) } $file }
    }

    It 'refuses code: <_>' -ForEach @('@{ A = (Get-Date) }', '@{ A = "$(whoami)" }', '@{ A = $env:PATH }', '@{ A = 1 + 1 }', 'Remove-Item x', '@{ A = @(1; Stop-Computer) }', '@{ A = 1 }; @{ B = 2 }', '@{ A = [int] ''1'' }', '@{ A = 1; A = 2 }') {
        { Read-Data -Text $_ } | Should -Throw
    }

    It 'reads a host of 200+ resources that Import-PowerShellDataFile refuses (5,000 node limit of 5.1 and 7 without -SkipLimitCheck)' {
        $resource = "@{ Id = 'appid_permission:appNN/launch'; Kind = 'appid_permission'; Phase = 32; Guide = '§4.1'; Source = 'x.yaml:1:1'; App = @{ Key = 'appNN'; Name = 'App NN'; Progid = 'Vendor.AppNN'; Clsid = `$null; Appid = `$null; Bitness = 32 }; Which = 'launch'; Aces = @(@{ Principal = @{ Name = 'OPC Users'; Kind = 'local'; Sid = `$null }; Mask = 31 }) }"
        $text = "@{ FormatVersion = 1; Host = 'BIG'; Resources = @(`n" + ((0..239 | ForEach-Object -Process { $resource.Replace('NN', [string] $_) }) -join "`n") + "`n) }"
        $file = Join-Path -Path $env:DCOMC_WORK -ChildPath 'big.psd1'
        Set-Content -LiteralPath $file -Value $text -Encoding utf8
        { Import-PowerShellDataFile -LiteralPath $file } | Should -Throw
        $read = & $module { param($p) Read-DcomcDataFile -Name $p -Content ([IO.File]::ReadAllBytes($p)) } $file
        $read.Resources.Count | Should -Be 240
        $read.Resources[239].App.Progid | Should -Be 'Vendor.App239'
    }
}
