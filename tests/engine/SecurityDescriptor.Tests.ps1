# Pester 5 tests of the engine's security-descriptor and SID codec
# (templates/powershell/engine/20-SecurityDescriptor.ps1), checked against two independent
# implementations: the compiler's Python codec (dcomc.windows.sdbinary, through sd_reference.py) for the
# exact bytes, and Samba's NDR parser (/usr/bin/python3 with samba's bindings) for the meaning.
#
#   $env:DCOMC_PYTHON = '/work/main/.venv/bin/python'   # else .venv/bin/python of this repo
#   pwsh -NoProfile -Command "Invoke-Pester -Path tests/engine/SecurityDescriptor.Tests.ps1 -Output Detailed"

BeforeDiscovery {
    function Get-TestPython {
        # The Python that has the compiler: $env:DCOMC_PYTHON, else this repository's venv.
        if ($env:DCOMC_PYTHON) {
            return $env:DCOMC_PYTHON
        }
        return (Join-Path -Path $PSScriptRoot -ChildPath '../../.venv/bin/python')
    }

    $json = & (Get-TestPython) (Join-Path -Path $PSScriptRoot -ChildPath 'sd_reference.py')
    if ($LASTEXITCODE -ne 0) {
        throw "sd_reference.py failed with exit code $LASTEXITCODE"
    }
    $reference = ($json -join "`n") | ConvertFrom-Json
    $descriptorCases = @(foreach ($entry in $reference.descriptors) {
            @{ Where = "$($entry.source): $($entry.where)"; Hex = $entry.hex; Sddl = $entry.sddl; Owner = $entry.owner; Group = $entry.group; Aces = @($entry.aces) }
        })
    $mergeCases = @(foreach ($entry in @($reference.merges) + @($reference.edge_merges)) {
            $errorText = $null
            if ($entry.PSObject.Properties['error']) {
                $errorText = $entry.error
            }
            @{ Where = $entry.where; BaseHex = $entry.base_hex; Additions = @($entry.additions); MergedHex = $entry.merged_hex; MergedSddl = $entry.merged_sddl; PythonError = $errorText }
        })
    if ($descriptorCases.Count -eq 0 -or @($reference.merges).Count -eq 0) {
        throw 'sd_reference.py found no descriptors or no machine-limit merges in examples/*.yaml'
    }
}

BeforeAll {
    Set-StrictMode -Version 3.0
    $ErrorActionPreference = 'Stop'
    . "$PSScriptRoot/../../templates/powershell/engine/20-SecurityDescriptor.ps1"

    function Get-TestPython {
        # The Python that has the compiler: $env:DCOMC_PYTHON, else this repository's venv.
        if ($env:DCOMC_PYTHON) {
            return $env:DCOMC_PYTHON
        }
        return (Join-Path -Path $PSScriptRoot -ChildPath '../../.venv/bin/python')
    }

    function ConvertFrom-TestHex {
        # Hex digits (no separators) as bytes.
        param([string] $Hex)
        $out = New-Object byte[] ($Hex.Length / 2)
        for ($i = 0; $i -lt $out.Length; $i++) {
            $out[$i] = [Convert]::ToByte($Hex.Substring(2 * $i, 2), 16)
        }
        return , $out
    }

    function ConvertTo-TestHex {
        # Bytes as lowercase hex digits, as the Python reference prints them.
        param([byte[]] $Bytes)
        return ([BitConverter]::ToString($Bytes)).Replace('-', '').ToLowerInvariant()
    }

    function Invoke-TestReference {
        # Runs sd_reference.py in one of its check modes with Text on stdin; returns its JSON.
        param([string] $Mode, [string] $Text)
        $out = $Text | & (Get-TestPython) (Join-Path -Path $PSScriptRoot -ChildPath 'sd_reference.py') $Mode
        if ($LASTEXITCODE -ne 0) {
            throw "sd_reference.py $Mode failed with exit code $LASTEXITCODE"
        }
        return , @(($out -join "`n") | ConvertFrom-Json)
    }

    $script:SambaScript = @'
import json, sys
from samba.dcerpc import security
from samba.ndr import ndr_pack, ndr_unpack

DOMAIN = security.dom_sid("S-1-5-21-1-2-3")

def acl(a):
    if a is None:
        return None
    return {"revision": int(a.revision), "aces": [
        {"type": int(x.type), "flags": int(x.flags), "mask": int(x.access_mask),
         "sid": str(x.trustee), "size": int(x.size)} for x in a.aces]}

out = []
for item in json.load(open(sys.argv[1])):
    sd = ndr_unpack(security.descriptor, bytes.fromhex(item["hex"]))
    entry = {"control": int(sd.type), "owner": str(sd.owner_sid) if sd.owner_sid else None,
             "group": str(sd.group_sid) if sd.group_sid else None,
             "dacl": acl(sd.dacl), "sacl": acl(sd.sacl), "sddl": None, "expected_sddl": None,
             "packed": None}
    if sd.sacl is None:  # samba 4.17's as_sddl crashes on a mandatory label ACE
        entry["sddl"] = sd.as_sddl(DOMAIN)
    if item.get("sddl"):
        expected = security.descriptor.from_sddl(item["sddl"], DOMAIN)
        entry["expected_sddl"] = expected.as_sddl(DOMAIN)
        entry["packed"] = ndr_pack(expected).hex()
    out.append(entry)
json.dump(out, sys.stdout)
'@

    function Invoke-TestSamba {
        # Decodes each item's hex with Samba (and parses its optional expected SDDL with Samba too).
        param([object[]] $Items)
        $inputFile = Join-Path -Path $TestDrive -ChildPath ('samba-{0}.json' -f [guid]::NewGuid())
        $code = Join-Path -Path $TestDrive -ChildPath 'samba_decode.py'
        Set-Content -LiteralPath $code -Value $script:SambaScript -Encoding ascii
        Set-Content -LiteralPath $inputFile -Value (ConvertTo-Json -InputObject @($Items) -Depth 5) -Encoding ascii
        $python = '/usr/bin/python3'
        if ($env:DCOMC_SAMBA_PYTHON) {
            $python = $env:DCOMC_SAMBA_PYTHON
        }
        $out = & $python $code $inputFile
        if ($LASTEXITCODE -ne 0) {
            throw "Samba decoding failed with exit code $LASTEXITCODE"
        }
        return , @(($out -join "`n") | ConvertFrom-Json)
    }

    function Get-TestAceKey {
        # The key Get-DcomcDescriptorAceKey gives for a reference ACE (sid, mask, allow, flags).
        param($Ace)
        $letter = 'D'
        if ($Ace.allow) {
            $letter = 'A'
        }
        return ('{0}|{1}|{2}' -f $letter, $Ace.sid, $Ace.mask)
    }

    function Get-TestSortedKeys {
        # Keys sorted the way Get-DcomcDescriptorAceKey sorts them (ordinal).
        param([string[]] $Keys)
        [string[]] $sorted = @($Keys)
        [Array]::Sort($sorted, [StringComparer]::Ordinal)
        return , $sorted
    }

    function Add-TestAdditions {
        # The base descriptor (hex) with each addition applied in turn, as the engine merges limits.
        param([string] $BaseHex, [object[]] $Additions)
        $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $BaseHex)
        foreach ($addition in $Additions) {
            $sd = Add-DcomcDescriptorAce -Descriptor $sd -Sid $addition.sid -Mask $addition.mask
        }
        return $sd
    }

    function Join-TestKeys {
        # Get-DcomcDescriptorAceKey's keys as one string, after checking they come as one string array.
        param([hashtable] $Descriptor)
        $keys = Get-DcomcDescriptorAceKey -Descriptor $Descriptor
        , $keys | Should -BeOfType [string[]]
        return $keys -join ' ; '
    }

    function Set-TestBytes {
        # A copy of Bytes with Values written from Offset on (to build malformed descriptors).
        param([byte[]] $Bytes, [int] $Offset, [byte[]] $Values)
        $copy = [byte[]] $Bytes.Clone()
        [Array]::Copy($Values, 0, $copy, $Offset, $Values.Length)
        return , $copy
    }

    # dcom-facts section 3.2's worked example, O:BAG:BAD:(A;;CCDCLCSWRP;;;S-1-5-32-562):
    # header | DACL @0x14 (rev 2, size 0x20, 1 ACE) | owner BA @0x34 | group BA @0x44.
    $script:WorkedExample = '01000480340000004400000000000000140000000200200001000000000018001f000000010200000000000520000000320200000102000000000005200000002002000001020000000000052000000020020000'
}

Describe 'the codec file' {
    It 'is ASCII without a BOM and uses only Windows PowerShell 5.1 syntax' {
        $path = "$PSScriptRoot/../../templates/powershell/engine/20-SecurityDescriptor.ps1"
        $bytes = [IO.File]::ReadAllBytes($path)
        @($bytes | Where-Object -FilterScript { $_ -gt 127 }).Count | Should -Be 0
        $tokens = $null
        $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseFile((Resolve-Path $path).Path, [ref] $tokens, [ref] $errors)
        @($errors).Count | Should -Be 0
        $newer = $ast.FindAll({
                param($node)
                $name = $node.GetType().Name
                ($name -in @('TernaryExpressionAst', 'PipelineChainAst', 'TypeDefinitionAst', 'UsingStatementAst')) -or
                ($node -is [System.Management.Automation.Language.BinaryExpressionAst] -and $node.Operator -eq 'QuestionQuestion') -or
                ($node -is [System.Management.Automation.Language.AssignmentStatementAst] -and $node.Operator -eq 'QuestionQuestionEquals') -or
                ($node -is [System.Management.Automation.Language.MemberExpressionAst] -and $node.NullConditional) -or
                ($node -is [System.Management.Automation.Language.IndexExpressionAst] -and $node.NullConditional)
            }, $true)
        @($newer).Count | Should -Be 0
        [IO.File]::ReadAllText($path) | Should -Not -Match '(?m)AsHashtable|Export-ModuleMember|^\s*(using|class)\s'
    }

    It 'defines the engine API and gives every function a comment' {
        $path = "$PSScriptRoot/../../templates/powershell/engine/20-SecurityDescriptor.ps1"
        $ast = [System.Management.Automation.Language.Parser]::ParseFile((Resolve-Path $path).Path, [ref] $null, [ref] $null)
        $functions = @($ast.FindAll({ param($node) $node -is [System.Management.Automation.Language.FunctionDefinitionAst] }, $true))
        $names = @($functions | ForEach-Object -Process { $_.Name })
        foreach ($api in @('ConvertTo-DcomcSidBytes', 'ConvertFrom-DcomcSidBytes', 'ConvertFrom-DcomcSecurityDescriptor', 'ConvertTo-DcomcSecurityDescriptor', 'New-DcomcSecurityDescriptor', 'Add-DcomcDescriptorAce', 'Get-DcomcDescriptorAceKey', 'Get-DcomcDescriptorMask')) {
            $names | Should -Contain $api
        }
        foreach ($function in $functions) {
            $function.Extent.Text.Split("`n")[1] | Should -Match '^\s+# \S' -Because "$($function.Name) starts with a one-line comment"
        }
    }

    It 'runs these tests under Set-StrictMode 3.0' {
        { $null = $thisVariableWasNeverSet } | Should -Throw
    }
}

Describe 'the shipped descriptors (examples/*.yaml, built by the Python compiler)' {
    Context '<Where>' -ForEach $descriptorCases {
        It 'decodes to the compiler''s owner, group and ACEs' {
            $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $Hex)
            $sd.Control | Should -Be 0x8004
            $sd.Owner | Should -Be $Owner
            $sd.Group | Should -Be $Group
            $sd.Sacl | Should -BeNullOrEmpty
            $sd.Dacl.Revision | Should -Be 2
            @($sd.Dacl.Aces).Count | Should -Be $Aces.Count
            for ($i = 0; $i -lt $Aces.Count; $i++) {
                $sd.Dacl.Aces[$i].Type | Should -Be 0
                $sd.Dacl.Aces[$i].Flags | Should -Be $Aces[$i].flags
                $sd.Dacl.Aces[$i].Mask | Should -Be $Aces[$i].mask
                $sd.Dacl.Aces[$i].Sid | Should -BeExactly $Aces[$i].sid
            }
        }

        It 're-encodes the decoded descriptor to the identical bytes' {
            $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $Hex)
            ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $sd) | Should -BeExactly $Hex
        }

        It 'builds the identical bytes with New-DcomcSecurityDescriptor from its ACEs' {
            $sd = New-DcomcSecurityDescriptor -Aces @(foreach ($ace in $Aces) { @{ Sid = $ace.sid; Mask = $ace.mask } })
            ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $sd) | Should -BeExactly $Hex
        }

        It 'gives the ACE keys and per-SID masks of its ACEs' {
            $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $Hex)
            $expected = Get-TestSortedKeys -Keys @(foreach ($ace in $Aces) { Get-TestAceKey -Ace $ace })
            Join-TestKeys -Descriptor $sd | Should -BeExactly ($expected -join ' ; ')
            foreach ($ace in $Aces) {
                Get-DcomcDescriptorMask -Descriptor $sd -Sid $ace.sid | Should -Be $ace.mask
            }
            Get-DcomcDescriptorMask -Descriptor $sd -Sid 'S-1-5-21-9-9-9-999' | Should -Be 0
        }
    }
}

Describe 'Add-DcomcDescriptorAce agrees with dcomc.windows.sd.merge_aces' {
    It '<Where>' -ForEach $mergeCases {
        if ($null -ne $PythonError) {
            $PythonError | Should -Match 'mixes old-format'
            { Add-TestAdditions -BaseHex $BaseHex -Additions $Additions } | Should -Throw -ExpectedMessage '*mixes old-format (EXECUTE only) and new-format masks*'
        }
        else {
            $merged = Add-TestAdditions -BaseHex $BaseHex -Additions $Additions
            ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $merged) | Should -BeExactly $MergedHex
        }
    }

    It 'matches the complete limit values of the .reg files' -ForEach @(@{ Descriptors = $descriptorCases; Merges = $mergeCases }) {
        $compared = 0
        foreach ($merge in $Merges) {
            $reg = @($Descriptors | Where-Object -FilterScript { $_.Where -eq ('reg: ' + $merge.Where.Replace(' Machine', ' Ole\Machine')) })
            if ($reg.Count -eq 1) {
                $merged = Add-TestAdditions -BaseHex $merge.BaseHex -Additions $merge.Additions
                ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $merged) | Should -BeExactly $reg[0].Hex
                $compared++
            }
        }
        $compared | Should -Be @($Descriptors | Where-Object -FilterScript { $_.Where -like 'reg: *\Machine*' }).Count
        $compared | Should -BeGreaterThan 0
    }

    It 'leaves its input descriptor unchanged' {
        $bytes = ConvertFrom-TestHex -Hex $script:WorkedExample
        $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes $bytes
        $before = $sd | ConvertTo-Json -Depth 6
        $grown = Add-DcomcDescriptorAce -Descriptor $sd -Sid 'S-1-5-32-562' -Mask 0x20
        $added = Add-DcomcDescriptorAce -Descriptor $sd -Sid 'S-1-5-7' -Mask 3
        $sd | ConvertTo-Json -Depth 6 | Should -BeExactly $before
        ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $sd) | Should -BeExactly $script:WorkedExample
        Join-TestKeys -Descriptor $grown | Should -BeExactly (@('A|S-1-5-32-562|63') -join ' ; ')
        Join-TestKeys -Descriptor $added | Should -BeExactly (@('A|S-1-5-32-562|31', 'A|S-1-5-7|3') -join ' ; ')
        $grown.Dacl.Aces[0].Raw[4] | Should -Be 0x3f
    }

    It 'refuses a descriptor without a DACL and a mask that is not 32 bits' {
        $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $script:WorkedExample)
        $noDacl = @{ Control = 0x8000; Owner = $sd.Owner; Group = $sd.Group; Sacl = $null; Dacl = $null }
        { Add-DcomcDescriptorAce -Descriptor $noDacl -Sid 'S-1-5-7' -Mask 3 } | Should -Throw -ExpectedMessage '*no DACL*'
        { Add-DcomcDescriptorAce -Descriptor $sd -Sid 'S-1-5-7' -Mask 4294967296 } | Should -Throw -ExpectedMessage '*outside 0..4294967295*'
        { Add-DcomcDescriptorAce -Descriptor $sd -Sid 'S-1-5-7' -Mask -1 } | Should -Throw -ExpectedMessage '*outside*'
    }
}

Describe 'Samba decodes what the engine encodes' -ForEach @(@{ Descriptors = $descriptorCases; Merges = $mergeCases }) {
    BeforeAll {
        $items = @(foreach ($case in $Descriptors) {
                $sd = New-DcomcSecurityDescriptor -Aces @(foreach ($ace in $case.Aces) { @{ Sid = $ace.sid; Mask = $ace.mask } })
                @{ hex = (ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $sd)); sddl = $case.Sddl }
            })
        $script:SambaDescriptors = Invoke-TestSamba -Items $items
        $merged = @(foreach ($case in @($Merges | Where-Object -FilterScript { $null -eq $_.PythonError })) {
                $sd = Add-TestAdditions -BaseHex $case.BaseHex -Additions $case.Additions
                @{ hex = (ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $sd)); sddl = $case.MergedSddl }
            })
        $script:SambaMerges = Invoke-TestSamba -Items $merged
    }

    It 'reads the expected owner, group and ACEs, and the same SDDL as Samba''s parse of the compiler''s SDDL' {
        $script:SambaDescriptors.Count | Should -Be $Descriptors.Count
        for ($i = 0; $i -lt $Descriptors.Count; $i++) {
            $samba = $script:SambaDescriptors[$i]
            $case = $Descriptors[$i]
            $samba.control | Should -Be 0x8004 -Because $case.Where
            $samba.owner | Should -BeExactly $case.Owner
            $samba.group | Should -BeExactly $case.Group
            $samba.sacl | Should -BeNullOrEmpty
            $samba.dacl.revision | Should -Be 2
            @($samba.dacl.aces).Count | Should -Be $case.Aces.Count
            for ($j = 0; $j -lt $case.Aces.Count; $j++) {
                $samba.dacl.aces[$j].type | Should -Be 0
                $samba.dacl.aces[$j].flags | Should -Be 0
                $samba.dacl.aces[$j].mask | Should -Be $case.Aces[$j].mask
                $samba.dacl.aces[$j].sid | Should -BeExactly $case.Aces[$j].sid
            }
            $samba.sddl | Should -BeExactly $samba.expected_sddl -Because $case.Where
        }
    }

    It 'reads the merged limits as the SDDL the Python merge meant' {
        $script:SambaMerges.Count | Should -BeGreaterThan 8
        foreach ($samba in $script:SambaMerges) {
            $samba.sddl | Should -Match '^O:BAG:BAD:\([AD];'
            $samba.sddl | Should -BeExactly $samba.expected_sddl
        }
    }

    It 'packs in .NET''s order (owner, group, DACL) and with ACL revision 4, which the engine reads and writes back in Windows'' order' {
        for ($i = 0; $i -lt $Descriptors.Count; $i++) {
            $samba = ConvertFrom-TestHex -Hex $script:SambaDescriptors[$i].packed
            [BitConverter]::ToUInt32($samba, 4) | Should -Be 20 -Because 'Samba puts the owner first'
            $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes $samba
            $sd.Dacl.Revision | Should -Be 4
            $expected = ConvertFrom-TestHex -Hex $Descriptors[$i].Hex
            $expected[20] = 4
            ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $sd) | Should -BeExactly (ConvertTo-TestHex -Bytes $expected)
            $sd.Dacl.Revision = 2
            ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $sd) | Should -BeExactly $Descriptors[$i].Hex
        }
    }
}

Describe 'a descriptor with a SACL (mandatory label), an object ACE and an INHERIT_ONLY ACE' {
    BeforeAll {
        # Packed by Samba's ndr_pack (owner, group, SACL, DACL order; ACL revision 4) from
        # O:BA G:BA D:(OA;;CCDC;bf967aba-0de6-11d0-a285-00aa003049e2;;WD)(A;IO;0x1f;;;BA)(A;;CCDC;;;SY)
        # S:(ML;;NW;;;HI) - the ML ACE set through samba's ace object (its SDDL parser lacks ML).
        $script:Header = '0100148014000000240000003400000050000000'
        $script:Ba = '01020000000000052000000020020000'
        $script:Sacl = '04001c0001000000' + '1100140001000000010100000000001000300000'
        $script:ObjectAce = '050028000300000001000000ba7a96bfe60dd011a28500aa003049e2010100000000000100000000'
        $script:InheritOnlyAce = '000818001f000000' + $script:Ba
        $script:SystemAce = '0000140003000000010100000000000512000000'
        $script:DaclHeader = '04005c0003000000'
        $script:Original = $script:Header + $script:Ba + $script:Ba + $script:Sacl + $script:DaclHeader + $script:ObjectAce + $script:InheritOnlyAce + $script:SystemAce
        $script:Decoded = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $script:Original)
        $edited = Add-DcomcDescriptorAce -Descriptor $script:Decoded -Sid 'S-1-5-18' -Mask 4
        $edited = Add-DcomcDescriptorAce -Descriptor $edited -Sid 'S-1-5-32-544' -Mask 3
        $script:Edited = $edited
        $script:Written = ConvertTo-TestHex -Bytes (ConvertTo-DcomcSecurityDescriptor -Descriptor $edited)
        $script:Samba = Invoke-TestSamba -Items @(@{ hex = $script:Original }, @{ hex = $script:Written })
    }

    It 'decodes the SACL verbatim and every ACE, parsing only the allow ACEs' {
        $script:Decoded.Control | Should -Be 0x8014
        ConvertTo-TestHex -Bytes $script:Decoded.Sacl | Should -BeExactly $script:Sacl
        $script:Decoded.Dacl.Revision | Should -Be 4
        $aces = $script:Decoded.Dacl.Aces
        @($aces | ForEach-Object -Process { $_.Type }) | Should -Be @(5, 0, 0)
        $aces[0].Sid | Should -BeNullOrEmpty
        $aces[0].Mask | Should -BeNullOrEmpty
        ConvertTo-TestHex -Bytes $aces[0].Raw | Should -BeExactly $script:ObjectAce
        $aces[1].Flags | Should -Be 0x08
        $aces[1].Sid | Should -BeExactly 'S-1-5-32-544'
        $aces[2].Mask | Should -Be 3
        Get-DcomcDescriptorMask -Descriptor $script:Decoded -Sid 'S-1-5-32-544' | Should -Be 0 -Because 'an INHERIT_ONLY ACE grants nothing here'
        Join-TestKeys -Descriptor $script:Decoded | Should -BeExactly (@('A|S-1-5-18|3', 'A|S-1-5-32-544|31|8', "X|$($script:ObjectAce)") -join ' ; ')
    }

    It 'writes Windows'' order and keeps the SACL and every other ACE byte for byte' {
        # header | SACL @0x14 (28 bytes) | DACL @0x30 (116 bytes, 4 ACEs) | owner @0xa4 | group @0xb4
        $dacl = '04007400' + '0400' + '0000' + $script:ObjectAce + $script:InheritOnlyAce + '0000140007000000010100000000000512000000' + '0000180003000000' + $script:Ba
        $expected = '01001480' + 'a4000000' + 'b4000000' + '14000000' + '30000000' + $script:Sacl + $dacl + $script:Ba + $script:Ba
        $script:Written | Should -BeExactly $expected
        Get-DcomcDescriptorMask -Descriptor $script:Edited -Sid 'S-1-5-32-544' | Should -Be 3
        Get-DcomcDescriptorMask -Descriptor $script:Edited -Sid 'S-1-5-18' | Should -Be 7
    }

    It 'reads the same in Samba before and after the edit, apart from the two edits' {
        $before = $script:Samba[0]
        $after = $script:Samba[1]
        $after.control | Should -Be $before.control
        $after.owner | Should -BeExactly $before.owner
        $after.group | Should -BeExactly $before.group
        ($after.sacl | ConvertTo-Json -Depth 5 -Compress) | Should -BeExactly ($before.sacl | ConvertTo-Json -Depth 5 -Compress)
        $before.sacl.aces[0].type | Should -Be 17
        $before.sacl.aces[0].sid | Should -BeExactly 'S-1-16-12288'
        $after.dacl.revision | Should -Be 4
        @($after.dacl.aces).Count | Should -Be 4
        ($after.dacl.aces[0] | ConvertTo-Json -Compress) | Should -BeExactly ($before.dacl.aces[0] | ConvertTo-Json -Compress)
        ($after.dacl.aces[1] | ConvertTo-Json -Compress) | Should -BeExactly ($before.dacl.aces[1] | ConvertTo-Json -Compress)
        $after.dacl.aces[2].sid | Should -BeExactly 'S-1-5-18'
        $after.dacl.aces[2].mask | Should -Be 7
        $after.dacl.aces[3].sid | Should -BeExactly 'S-1-5-32-544'
        $after.dacl.aces[3].flags | Should -Be 0
        $after.dacl.aces[3].mask | Should -Be 3
    }

    It 'round-trips unchanged when nothing is added, in Windows'' order' {
        $again = ConvertTo-DcomcSecurityDescriptor -Descriptor $script:Decoded
        $reread = ConvertFrom-DcomcSecurityDescriptor -Bytes $again
        ($reread | ConvertTo-Json -Depth 6 -Compress) | Should -BeExactly ($script:Decoded | ConvertTo-Json -Depth 6 -Compress)
        (ConvertTo-TestHex -Bytes $again).Substring(40, 56) | Should -BeExactly $script:Sacl
    }

    It 'refuses Raw bytes that do not match the ACE they stand for' {
        $copy = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $script:Original)
        $copy.Dacl.Aces[0].Type = 6
        { ConvertTo-DcomcSecurityDescriptor -Descriptor $copy } | Should -Throw -ExpectedMessage '*Raw bytes do not match*'
        $copy.Dacl.Aces[0].Type = 5
        $copy.Dacl.Aces[0].Raw = [byte[]] @(5, 0, 8, 0, 0, 0)
        { ConvertTo-DcomcSecurityDescriptor -Descriptor $copy } | Should -Throw -ExpectedMessage '*at least 4 bytes and a multiple of 4*'
        $copy = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $script:Original)
        $copy.Sacl = [byte[]] (ConvertFrom-TestHex -Hex ($script:Sacl + '00000000'))
        { ConvertTo-DcomcSecurityDescriptor -Descriptor $copy } | Should -Throw -ExpectedMessage '*exactly one ACL*'
    }
}

Describe 'malformed descriptors' {
    BeforeDiscovery {
        # Mutations of the worked example: DACL @20 (ACE @28, its SID @36), owner @52, group @68.
        $malformed = @(
            @{ Name = 'empty'; Edit = @(); Cut = 0; Message = '*truncated: 0 bytes*' }
            @{ Name = 'a 19-byte header'; Edit = @(); Cut = 19; Message = '*truncated: 19 bytes*' }
            @{ Name = 'cut inside the owner SID, leaving the group offset past the end'; Edit = @(); Cut = 60; Message = '*offset 68 is past the end of the 60-byte descriptor*' }
            @{ Name = 'cut inside the group SID'; Edit = @(); Cut = 80; Message = '*group SID at offset 68 needs 16 bytes but only 12 remain*' }
            @{ Name = 'SD revision 2'; Edit = @(0, 2); Cut = -1; Message = '*security descriptor revision 2*' }
            @{ Name = 'no SE_SELF_RELATIVE'; Edit = @(2, 0x04, 0x00); Cut = -1; Message = '*lacks SE_SELF_RELATIVE*' }
            @{ Name = 'NULL DACL'; Edit = @(16, 0); Cut = -1; Message = '*NULL DACL*' }
            @{ Name = 'DACL offset without SE_DACL_PRESENT'; Edit = @(2, 0x00, 0x80); Cut = -1; Message = '*lacks SE_DACL_PRESENT*' }
            @{ Name = 'SACL offset without SE_SACL_PRESENT'; Edit = @(12, 20); Cut = -1; Message = '*lacks SE_SACL_PRESENT*' }
            @{ Name = 'owner offset past the end'; Edit = @(4, 0x00, 0x01); Cut = -1; Message = '*owner offset 256 is past the end*' }
            @{ Name = 'owner offset into the header'; Edit = @(4, 18); Cut = -1; Message = '*owner offset 18 points into the 20-byte header*' }
            @{ Name = 'owner offset not aligned'; Edit = @(4, 54); Cut = -1; Message = '*owner offset 54 is not 4-byte aligned*' }
            @{ Name = 'ACL revision 3'; Edit = @(20, 3); Cut = -1; Message = '*DACL at offset 20 has revision 3*' }
            @{ Name = 'AclSize past the end'; Edit = @(22, 72); Cut = -1; Message = '*DACL (AclSize 72) at offset 20 needs 72 bytes but only 64 remain*' }
            @{ Name = 'AclSize not a multiple of 4'; Edit = @(22, 34); Cut = -1; Message = '*invalid AclSize 34*' }
            @{ Name = 'AclSize smaller than its ACE'; Edit = @(22, 16); Cut = -1; Message = '*DACL ACE #0 at offset 28 needs 24 bytes but only 8 remain*' }
            @{ Name = 'AceCount 1 in an empty ACL'; Edit = @(22, 8); Cut = -1; Message = '*AceCount 1 and AclSize 8 are inconsistent: only 0 ACEs fit*' }
            @{ Name = 'AceCount 2 with room for 1'; Edit = @(24, 2); Cut = -1; Message = '*AceCount 2 and AclSize 32 are inconsistent: only 1 ACEs fit*' }
            @{ Name = 'AceSize too small for its SID'; Edit = @(30, 20); Cut = -1; Message = '*SID of DACL ACE #0 at offset 36 needs 16 bytes but only 12 remain*' }
            @{ Name = 'AceSize below 16'; Edit = @(30, 12); Cut = -1; Message = '*invalid AceSize 12 (must be >= 16*' }
            @{ Name = 'AceSize not a multiple of 4'; Edit = @(30, 26); Cut = -1; Message = '*invalid AceSize 26*' }
            @{ Name = 'object ACE of size 0'; Edit = @(28, 5, 0, 0, 0); Cut = -1; Message = '*invalid AceSize 0 (must be >= 4*' }
            @{ Name = 'owner SID with 16 sub-authorities'; Edit = @(53, 16); Cut = -1; Message = '*owner SID at offset 52 has 16 sub-authorities, at most 15 allowed*' }
            @{ Name = 'ACE SID with 16 sub-authorities'; Edit = @(37, 16); Cut = -1; Message = '*SID of DACL ACE #0 at offset 36 has 16 sub-authorities*' }
            @{ Name = 'group SID revision 2'; Edit = @(68, 2); Cut = -1; Message = '*group SID at offset 68 has SID revision 2, expected 1*' }
        )
    }

    BeforeAll {
        function New-TestMalformed {
            # The worked example with Edit (offset, bytes...) applied and cut to Cut bytes (-1: whole).
            param([object[]] $Edit, [int] $Cut)
            $bytes = ConvertFrom-TestHex -Hex $script:WorkedExample
            if ($Edit.Count -gt 0) {
                $bytes = Set-TestBytes -Bytes $bytes -Offset $Edit[0] -Values ([byte[]] @($Edit | Select-Object -Skip 1))
            }
            if ($Cut -ge 0) {
                $bytes = [byte[]] @($bytes | Select-Object -First $Cut)
            }
            return , $bytes
        }
    }

    It 'the unmutated worked example is accepted by both readers' {
        $sd = ConvertFrom-DcomcSecurityDescriptor -Bytes (ConvertFrom-TestHex -Hex $script:WorkedExample)
        Join-TestKeys -Descriptor $sd | Should -BeExactly (@('A|S-1-5-32-562|31') -join ' ; ')
        @(Invoke-TestReference -Mode '--check-malformed' -Text (ConvertTo-Json -InputObject @($script:WorkedExample))) | Should -Be @('ok')
    }

    It '<Name> throws, here and in the Python reader' -ForEach $malformed {
        $bytes = New-TestMalformed -Edit $Edit -Cut $Cut
        { ConvertFrom-DcomcSecurityDescriptor -Bytes $bytes } | Should -Throw -ExpectedMessage $Message
        $python = @(Invoke-TestReference -Mode '--check-malformed' -Text (ConvertTo-Json -InputObject @(ConvertTo-TestHex -Bytes $bytes)))
        $python.Count | Should -Be 1
        $python[0] | Should -Not -Be 'ok'
    }

    It 'a truncated or invalid SID throws in ConvertFrom-DcomcSidBytes' {
        $sid = ConvertTo-DcomcSidBytes -Sid 'S-1-5-21-1-2-3-1001'
        { ConvertFrom-DcomcSidBytes -Bytes ([byte[]] @($sid | Select-Object -First 7)) } | Should -Throw -ExpectedMessage '*needs 8 bytes but only 7 remain*'
        { ConvertFrom-DcomcSidBytes -Bytes ([byte[]] @($sid | Select-Object -First 27)) } | Should -Throw -ExpectedMessage '*needs 28 bytes but only 27 remain*'
        { ConvertFrom-DcomcSidBytes -Bytes $sid -Offset 4 } | Should -Throw -ExpectedMessage '*SID revision*'
        { ConvertFrom-DcomcSidBytes -Bytes $sid -Offset 28 } | Should -Throw -ExpectedMessage '*needs 8 bytes but only 0 remain*'
        { ConvertFrom-DcomcSidBytes -Bytes ([byte[]] @(1, 16, 0, 0, 0, 0, 0, 5)) } | Should -Throw -ExpectedMessage '*16 sub-authorities, at most 15*'
    }
}

Describe 'SID strings and bytes' {
    BeforeAll {
        $script:Valid = @(
            'S-1-5-32-544', 'S-1-5-21-1-2-3-1001', 'S-1-15-3-1024-2405443489-874036122-4286035555-1823921565-1746547431-2453885448-3625952902-991631256',
            'S-1-1-0', 'S-1-5', 'S-1-0-0', 'S-1-16-12288', 'S-1-5-32-562', 'S-1-15-2-1',
            'S-1-4294967295-1', 'S-1-4294967296-1', 'S-1-20015998341291-4294967295', 'S-1-281474976710655-0',
            'S-1-5-21-1-2-3-4-5-6-7-8-9-10-11-12-13-14', 'S-1-05-032-0544', 'S-1-000000000000005-0000000018'
        )
        $script:Invalid = @(
            '', 'S-1', 'S-1-', 'S-1-5-', 'S-2-5-32', 's-1-5-32-544', 'S-1-5-32-544 ', " S-1-5-32-544", "S-1-5-32-544`n",
            'S-1-281474976710656-1', 'S-1-5-4294967296', 'S-1-1234567890123456-1', 'S-1-5-12345678901', 'S-1-5--1',
            'S-1-5-21-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15', 'S-1-5-x', 'S-1-5-+1', 'S-1-5-1.0', 'S-1-0x1234567890ABC-1', 'S-1-0x-1'
        )
        $script:PythonSids = Invoke-TestReference -Mode '--check-sids' -Text (ConvertTo-Json -InputObject @($script:Valid + $script:Invalid))
    }

    It 'encodes and decodes every SID the compiler accepts exactly as the compiler does' {
        for ($i = 0; $i -lt $script:Valid.Count; $i++) {
            $python = $script:PythonSids[$i]
            $python.valid | Should -BeTrue -Because $script:Valid[$i]
            $bytes = ConvertTo-DcomcSidBytes -Sid $script:Valid[$i]
            ConvertTo-TestHex -Bytes $bytes | Should -BeExactly $python.hex -Because $script:Valid[$i]
            ConvertFrom-DcomcSidBytes -Bytes $bytes | Should -BeExactly $python.back
        }
    }

    It 'refuses every string the compiler refuses' {
        for ($i = 0; $i -lt $script:Invalid.Count; $i++) {
            $script:PythonSids[$script:Valid.Count + $i].valid | Should -BeFalse -Because "Python refuses '$($script:Invalid[$i])'"
            $text = $script:Invalid[$i]
            { ConvertTo-DcomcSidBytes -Sid $text } | Should -Throw -ExpectedMessage '*malformed SID*' -Because "'$text' is not a SID"
        }
    }

    It 'lays out revision, count, big-endian authority and little-endian sub-authorities' {
        # S-1-5-21-1-2-3-1001: 01 | 05 | 00 00 00 00 00 05 | 21 | 1 | 2 | 3 | 1001 = 0x3e9
        ConvertTo-TestHex -Bytes (ConvertTo-DcomcSidBytes -Sid 'S-1-5-21-1-2-3-1001') | Should -BeExactly '010500000000000515000000010000000200000003000000e9030000'
        ConvertTo-TestHex -Bytes (ConvertTo-DcomcSidBytes -Sid 'S-1-4294967296-1') | Should -BeExactly '010100010000000001000000'
        $buffer = [byte[]] (@(0xAA, 0xBB, 0xCC, 0xDD) + (ConvertTo-DcomcSidBytes -Sid 'S-1-15-3-1024-1'))
        ConvertFrom-DcomcSidBytes -Bytes $buffer -Offset 4 | Should -BeExactly 'S-1-15-3-1024-1'
    }

    It 'also reads the 0x authority Windows writes for authorities of 2^32 and more, and writes it back in decimal as Python does' {
        ConvertTo-TestHex -Bytes (ConvertTo-DcomcSidBytes -Sid 'S-1-0x1234567890AB-1') | Should -BeExactly '01011234567890ab01000000'
        ConvertFrom-DcomcSidBytes -Bytes (ConvertTo-DcomcSidBytes -Sid 'S-1-0x1234567890AB-1') | Should -BeExactly 'S-1-20015998341291-1'
        ConvertFrom-DcomcSidBytes -Bytes (ConvertTo-DcomcSidBytes -Sid 'S-1-0xffffffffffff-4294967295') | Should -BeExactly 'S-1-281474976710655-4294967295'
    }
}
