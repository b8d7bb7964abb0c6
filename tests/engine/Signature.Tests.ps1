# Signed bundles on the PC (issue 14, item 5): Windows checks the signature of the entry script
# and the engine under AllSigned, but the data file is read as data, so the engine checks it.
# A signed engine applies (and rolls back) only a data file signed by the same certificate;
# -AllowUnsigned lifts that for sites that do not sign; a file changed after it was signed
# (HashMismatch) is refused always. Each refusal is exit 3 with the PC exactly as it was, decided
# before the first state-changing call. Signatures are simulated (Set-SimFileSignature in
# SimWindows.ps1): the shipped bundles are not signed, and a signed file changed later reports
# HashMismatch there as on Windows.

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Harness.ps1')
    $scada = Get-TestBundle | Where-Object -FilterScript { $_.Name -eq 'plant7-workgroup/SCADA01' }
    $script:Ours = '3F2A9C4E1B7D0A5C8E6F2B1D4A9C7E0F5B3D8A21'
    $script:Theirs = 'C0FFEE00112233445566778899AABBCCDDEEFF01'
    $script:OurSubject = 'CN=Integrator Code Signing, O=Plant Integrator GmbH'

    function Use-Pc {
        <# A fresh simulated PC, and a copy of the bundle's data file in a folder of this test
           (the shared bundle is never changed; the engine file is marked, not edited). #>
        $script:module = Import-SimEngine -Engine $scada.Engine
        $script:data = Initialize-SimPc -Module $script:module -Bundle $scada
        $folder = Join-Path -Path $env:DCOMC_WORK -ChildPath ('sig-' + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory -Path $folder
        $script:dataFile = Join-Path -Path $folder -ChildPath ([IO.Path]::GetFileName($scada.DataFile))
        Copy-Item -LiteralPath $scada.DataFile -Destination $script:dataFile
        $script:fresh = Snapshot
        Sim { Reset-SimCalls }
    }
    function Sim { param([scriptblock] $Script, [object[]] $Arguments = @()) & $script:module $Script @Arguments }
    function Snapshot { Sim { Get-SimSnapshot } }
    function Sign {
        <# -Engine: the module's file; else the data file copy. #>
        param([switch] $Engine, [string] $Status = 'Valid', [string] $Thumbprint = $script:Ours, [string] $Subject = $script:OurSubject)
        $file = $script:dataFile
        if ($Engine) { $file = $scada.Engine }
        Sim { param($f, $s, $t, $n) Set-SimFileSignature -Path $f -Status $s -Thumbprint $t -Subject $n } @($file, $Status, $Thumbprint, $Subject)
    }
    function Run {
        <# One run; sets $script:warnings and $script:errors to its messages. #>
        param([string] $Mode, [hashtable] $With = @{})
        $arguments = @{ Mode = $Mode; DataFile = $script:dataFile; Passwords = (New-TestPassword -Data $script:data) }
        foreach ($key in $With.Keys) { $arguments[$key] = $With[$key] }
        $output = @(Invoke-DcomcConfiguration @arguments 2>&1 3>&1 6>$null)
        # The reboot reminder after an Apply is not what these tests look at.
        $script:warnings = @($output | Where-Object -FilterScript { $_ -is [System.Management.Automation.WarningRecord] -and $_.Message -notlike 'Reboot this PC*' } | ForEach-Object -Process { $_.Message })
        $script:errors = @($output | Where-Object -FilterScript { $_ -is [System.Management.Automation.ErrorRecord] } | ForEach-Object -Process { $_.Exception.Message })
        return @($output | Where-Object -FilterScript { $null -ne $_.PSObject.Properties['ExitCode'] })[-1]
    }
    function Get-Log { param($Outcome) return [IO.File]::ReadAllText($Outcome.LogFile) }
    function Get-BackupName {
        <# The names of the site's backup folders on the simulated PC. #>
        Sim { param($site) @(Get-ChildItem -LiteralPath (Join-Path -Path (Get-DcomcOsDataRoot) -ChildPath "$site/backups") -Directory | ForEach-Object -Process { $_.Name }) } @($script:data.Site)
    }
    function Assert-Refused {
        <# Exit 3, the PC as it was, and no write of any kind (not even dcomc's folders): the
           check came before the first state-changing call. #>
        param($Outcome, [string] $Before, [string] $Like)
        $Outcome.ExitCode | Should -Be 3
        Snapshot | Should -BeExactly $Before
        Get-SimSystemWrite -Module $script:module | Should -BeNullOrEmpty
        Sim { Get-SimWriteCount } | Should -Be 0
        @(Sim { Get-SimCall } | ForEach-Object -Process { $_ }) | Should -Contain 'Get-DcomcOsFileSignature'
        ($script:errors -join "`n") | Should -BeLike $Like
    }
    function Get-FirstWrite {
        <# Index of the first state-changing call (files and folders included), and of the
           last signature read, in this run's call log. #>
        $calls = @(Sim { Get-SimCall } | ForEach-Object -Process { $_ })
        $write = -1
        for ($i = 0; $i -lt $calls.Count; $i++) {
            if ((Sim { param($c) Get-SimOperationKind -Operation $c } @($calls[$i])) -eq 'write') { $write = $i; break }
        }
        $signature = [Math]::Max([array]::LastIndexOf([string[]] $calls, 'Get-DcomcOsFileSignature'), [array]::LastIndexOf([string[]] $calls, 'Read-DcomcOsSignedFile'))
        return @{ Write = $write; Signature = $signature }
    }
}

AfterAll {
    Get-Module -Name 'DcomConfig' | Remove-Module -Force
}

Describe 'an unsigned engine (the bundles as dcomc builds them without signing)' {
    It 'applies an unsigned data file and logs that its signature was not required' {
        Use-Pc
        $outcome = Run 'Apply'
        $outcome.ExitCode | Should -Be 0
        Get-Log $outcome | Should -Match 'signature: the engine is not signed: the signature of the data file is not required \(it is NotSigned\)'
        $script:warnings | Should -BeNullOrEmpty
    }

    It 'applies a signed data file too, with a warning that the engine is not the one released with it' {
        Use-Pc
        Sign
        $outcome = Run 'Apply'
        $outcome.ExitCode | Should -Be 0
        ($script:warnings -join "`n") | Should -BeLike '*is signed (Valid, by CN=Integrator Code Signing*but the engine is not*'
        Get-Log $outcome | Should -Match 'WARN .*signature: the data file .* is signed'
    }

    It 'refuses a data file changed after it was signed, even with -AllowUnsigned, and changes nothing' {
        Use-Pc
        Sign
        [IO.File]::AppendAllText($script:dataFile, "`r`n# one more line`r`n")
        Assert-Refused -Outcome (Run 'Apply' @{ AllowUnsigned = $true }) -Before $script:fresh -Like '*Apply refused before any change*changed after it was signed (its signature: HashMismatch)*tampered*'
    }
}

Describe 'a signed engine' {
    It 'applies a data file signed by the same certificate (thumbprints compared without case), logs the signer, and rolls back' {
        Use-Pc
        Sign -Engine
        Sign -Thumbprint $script:Ours.ToLowerInvariant()
        $outcome = Run 'Apply'
        $outcome.ExitCode | Should -Be 0
        Get-Log $outcome | Should -Match ('signature: the engine and the data file are signed by CN=Integrator Code Signing, O=Plant Integrator GmbH \(thumbprint {0}\)' -f $script:Ours)
        $script:warnings | Should -BeNullOrEmpty
        (Run 'Test').ExitCode | Should -Be 0
        (Run 'Rollback').ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $script:fresh
    }

    It 'reads both signatures before the first state-changing call of an Apply that goes on' {
        Use-Pc
        Sign -Engine
        Sign
        (Run 'Apply').ExitCode | Should -Be 0
        $order = Get-FirstWrite
        $order.Write | Should -BeGreaterThan 0
        $order.Signature | Should -BeGreaterOrEqual 0
        $order.Signature | Should -BeLessThan $order.Write
        # the engine's signature by its path; the data file's with its bytes, in one call
        @(Sim { Get-SimCall } | ForEach-Object -Process { $_ } | Where-Object -FilterScript { $_ -eq 'Get-DcomcOsFileSignature' }).Count | Should -Be 1
        @(Sim { Get-SimCall } | ForEach-Object -Process { $_ } | Where-Object -FilterScript { $_ -eq 'Read-DcomcOsSignedFile' }).Count | Should -Be 1
    }

    It 'applies the bytes whose signature it checked: a data file replaced right after it was read is not read again' {
        Use-Pc
        Sign -Engine
        Sign
        $original = [IO.File]::ReadAllBytes($script:dataFile)
        # Another process rewrites the file as soon as the engine has read it: a plan for another
        # PC, unsigned. Read again by path (to parse it, or to check it), it would be refused.
        Sim { $script:Sim['AfterSignedRead'] = { param($full) [IO.File]::WriteAllText($full, ([IO.File]::ReadAllText($full)).Replace("Host = 'SCADA01'", "Host = 'ELSEWHERE'")) } }
        $outcome = Run 'Apply'
        $outcome.ExitCode | Should -Be 0
        [IO.File]::ReadAllBytes($script:dataFile) | Should -Not -Be $original  # it was rewritten
        Get-Log $outcome | Should -Match 'signature: the engine and the data file are signed by'
        $script:errors | Should -BeNullOrEmpty
        @(Sim { Get-SimCall } | ForEach-Object -Process { $_ } | Where-Object -FilterScript { $_ -eq 'Read-DcomcOsSignedFile' }).Count | Should -Be 1
        Sim { $script:Sim.Remove('AfterSignedRead'); Reset-SimCalls }
        # the next run reads the rewritten file: its bytes no longer hold their signature
        Assert-Refused -Outcome (Run 'Rollback') -Before (Snapshot) -Like '*changed after it was signed (its signature: HashMismatch)*'
    }

    It 'refuses Apply of an unsigned data file (exit 3, nothing changed), naming -AllowUnsigned' {
        Use-Pc
        Sign -Engine
        Assert-Refused -Outcome (Run 'Apply') -Before $script:fresh -Like '*Apply refused before any change: The engine is signed by CN=Integrator Code Signing*but the data file * is not: it is not signed.*tampered*-AllowUnsigned*'
    }

    It 'refuses a data file signed by another certificate, naming both signers' {
        Use-Pc
        Sign -Engine
        Sign -Thumbprint $script:Theirs -Subject 'CN=Someone Else'
        Assert-Refused -Outcome (Run 'Apply') -Before $script:fresh -Like ('*it is signed by another certificate: CN=Someone Else (thumbprint {0})*' -f $script:Theirs)
        ($script:errors -join "`n") | Should -BeLike ('*signed by CN=Integrator Code Signing, O=Plant Integrator GmbH (thumbprint {0})*' -f $script:Ours)
    }

    It 'refuses a data file of the same signer whose signature does not verify on this PC (<_>)' -ForEach @('NotTrusted', 'UnknownError') {
        Use-Pc
        Sign -Engine
        Sign -Status $_
        Assert-Refused -Outcome (Run 'Apply') -Before $script:fresh -Like ('*its signature is {0} on this PC (*' -f $_)
    }

    It 'refuses a data file changed after it was signed, even with -AllowUnsigned' {
        Use-Pc
        Sign -Engine
        Sign
        $text = [IO.File]::ReadAllText($script:dataFile)
        [IO.File]::WriteAllText($script:dataFile, $text.Replace('FormatVersion', 'FormatVersion '))
        Assert-Refused -Outcome (Run 'Apply' @{ AllowUnsigned = $true }) -Before $script:fresh -Like '*changed after it was signed (its signature: HashMismatch)*'
    }

    It 'refuses an engine changed after it was signed, even with -AllowUnsigned' {
        Use-Pc
        Sign -Engine -Status 'HashMismatch'
        Sign
        Assert-Refused -Outcome (Run 'Apply' @{ AllowUnsigned = $true }) -Before $script:fresh -Like '*The engine DcomConfig.psm1 was changed after it was signed (its signature: HashMismatch)*'
    }

    It 'refuses when the engine''s own signature does not verify here (NotTrusted), -AllowUnsigned lifts it' {
        Use-Pc
        Sign -Engine -Status 'NotTrusted'
        Sign -Status 'NotTrusted'
        Assert-Refused -Outcome (Run 'Apply') -Before $script:fresh -Like '*The engine''s own signature is NotTrusted on this PC (*root certificate which is not trusted*)*trusted on this PC, or run with -AllowUnsigned*'
        $outcome = Run 'Apply' @{ AllowUnsigned = $true }
        $outcome.ExitCode | Should -Be 0
        ($script:warnings -join "`n") | Should -BeLike '*-AllowUnsigned: going on although The engine''s own signature is NotTrusted*'
    }
}

Describe '-AllowUnsigned' {
    It 'applies an unsigned data file beside a signed engine, warns, logs it, and rolls back with it' {
        Use-Pc
        Sign -Engine
        $outcome = Run 'Apply' @{ AllowUnsigned = $true }
        $outcome.ExitCode | Should -Be 0
        ($script:warnings -join "`n") | Should -BeLike '*-AllowUnsigned: going on although The engine is signed by*it is not signed*'
        Get-Log $outcome | Should -Match 'WARN .*signature: -AllowUnsigned: going on although'
        Snapshot | Should -Not -Be $script:fresh
        (Run 'Rollback' @{ AllowUnsigned = $true }).ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $script:fresh
    }

    It 'is not needed for a data file of the engine''s signer (no warning)' {
        Use-Pc
        Sign -Engine
        Sign
        (Run 'Apply' @{ AllowUnsigned = $true }).ExitCode | Should -Be 0
        $script:warnings | Should -BeNullOrEmpty
    }
}

Describe 'Rollback' {
    It 'refuses a data file that is no longer signed by the engine''s signer, keeps the backup, and restores with -AllowUnsigned' {
        Use-Pc
        Sign -Engine
        Sign
        (Run 'Apply').ExitCode | Should -Be 0
        $applied = Snapshot
        $backups = Get-BackupName
        Sign -Status 'NotSigned'
        Sim { Reset-SimCalls }
        Assert-Refused -Outcome (Run 'Rollback') -Before $applied -Like '*Rollback refused before any change*it is not signed*'
        Get-BackupName | Should -Be $backups
        (Run 'Rollback' @{ AllowUnsigned = $true }).ExitCode | Should -Be 0
        Snapshot | Should -BeExactly $script:fresh
    }

    It 'refuses a data file changed after it was signed, even with -AllowUnsigned' {
        Use-Pc
        Sign -Engine
        Sign
        (Run 'Apply').ExitCode | Should -Be 0
        $applied = Snapshot
        [IO.File]::AppendAllText($script:dataFile, ' ')
        Sim { Reset-SimCalls }
        Assert-Refused -Outcome (Run 'Rollback' @{ AllowUnsigned = $true }) -Before $applied -Like '*HashMismatch*'
    }
}

Describe 'Test and Report change nothing: they warn and go on' {
    It '<Case>: Test reports the drift (exit 1, not 3) with a warning that Apply would refuse' -ForEach @(
        @{ Case = 'unsigned data file, signed engine'; Data = 'NotSigned'; Like = '*it is not signed*' }
        @{ Case = 'data file changed after signing'; Data = 'Changed'; Like = '*HashMismatch*' }
    ) {
        Use-Pc
        Sign -Engine
        if ($Data -eq 'Changed') {
            Sign
            [IO.File]::AppendAllText($script:dataFile, ' ')
        }
        $outcome = Run 'Test'
        $outcome.ExitCode | Should -Be 1
        @($outcome.Results).Count | Should -Be @($script:data.Resources).Count
        ($script:warnings -join "`n") | Should -BeLike ('*Test changes nothing and goes on, but Apply and Rollback would refuse:{0}' -f $Like)
        Snapshot | Should -BeExactly $script:fresh
    }

    It 'Report writes its file with the warning' {
        Use-Pc
        Sign -Engine
        $report = Join-Path -Path (Split-Path -Path $script:dataFile -Parent) -ChildPath 'report.json'
        (Run 'Report' @{ Path = $report }).ExitCode | Should -Be 0
        Test-Path -LiteralPath $report | Should -BeTrue
        ($script:warnings -join "`n") | Should -BeLike '*Report changes nothing and goes on, but Apply and Rollback would refuse*'
    }
}

Describe 'the entry point' {
    It 'Invoke-DcomConfig.ps1 and Invoke-DcomcConfiguration take -AllowUnsigned as a switch (the script passes its parameters on)' {
        $tokens = $null
        $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseFile($scada.Entry, [ref] $tokens, [ref] $errors)
        $parameter = @($ast.ParamBlock.Parameters | Where-Object -FilterScript { $_.Name.VariablePath.UserPath -eq 'AllowUnsigned' })
        $parameter.Count | Should -Be 1
        $parameter[0].StaticType | Should -Be ([switch])
        $ast.Extent.Text | Should -Match ([regex]::Escape('foreach ($name in $PSBoundParameters.Keys)'))
        $null = Import-SimEngine -Engine $scada.Engine
        (Get-Command -Name 'Invoke-DcomcConfiguration').Parameters['AllowUnsigned'].ParameterType | Should -Be ([switch])
    }
}

Describe 'the simulated signatures' {
    BeforeAll { Use-Pc }

    It 'a missing file throws as Get-AuthenticodeSignature does' {
        { Sim { param($f) Get-DcomcOsFileSignature -Path $f } @(($script:dataFile + '.missing')) } | Should -Throw '*does not exist*'
    }

    It 'a file with a real signature block that no test marked is refused (the simulation cannot verify it)' {
        $file = $script:dataFile + '.signed.psd1'
        [IO.File]::WriteAllText($file, "@{}`r`n# SIG # Begin signature block`r`n# MIIa`r`n# SIG # End signature block`r`n")
        { Sim { param($f) Get-DcomcOsFileSignature -Path $f } @($file) } | Should -Throw 'sim: *real signature block*'
    }

    It 'a marked file reports its signer until its bytes change, then HashMismatch' {
        Sign
        $signature = Sim { param($f) Get-DcomcOsFileSignature -Path $f } @($script:dataFile)
        $signature.Status | Should -Be 'Valid'
        $signature.SignerThumbprint | Should -Be $script:Ours
        $signature.Subject | Should -Be $script:OurSubject
        [IO.File]::AppendAllText($script:dataFile, ' ')
        (Sim { param($f) Get-DcomcOsFileSignature -Path $f } @($script:dataFile)).Status | Should -Be 'HashMismatch'
    }

    It 'Reset-SimWindows forgets the marks' {
        Sign -Engine
        Sim { Reset-SimWindows }
        (Sim { param($f) Get-DcomcOsFileSignature -Path $f } @($scada.Engine)).Status | Should -Be 'NotSigned'
    }
}

Describe 'the real system layer (Get-AuthenticodeSignature mocked: a Windows-only cmdlet)' {
    BeforeAll {
        Get-Module -Name 'DcomConfig' | Remove-Module -Force
        $script:real = Import-Module -Name $scada.Engine -Force -PassThru -DisableNameChecking
        if (-not (Get-Command -Name 'Get-AuthenticodeSignature' -ErrorAction SilentlyContinue)) {
            # A stand-in with the cmdlet's parameters, so that Pester can mock it.
            function global:Get-AuthenticodeSignature { param([string[]] $FilePath, [string[]] $LiteralPath) }
        }
    }

    It 'returns the status as its name and the signer''s thumbprint and subject' {
        Mock -ModuleName 'DcomConfig' -CommandName 'Get-AuthenticodeSignature' -MockWith {
            $script:AskedFor = $LiteralPath
            [pscustomobject] @{ Status = [System.Management.Automation.SignatureStatus]::Valid; StatusMessage = 'Signature verified.'; SignerCertificate = [pscustomobject] @{ Thumbprint = 'AB' * 20; Subject = 'CN=x' } }
        }
        $signature = & $script:real { Get-DcomcOsFileSignature -Path 'C:\bundle\[HMI01].psd1' }
        $script:AskedFor | Should -Be 'C:\bundle\[HMI01].psd1'
        $signature.Status | Should -BeExactly 'Valid'
        $signature.Status | Should -BeOfType [string]
        $signature.SignerThumbprint | Should -Be ('AB' * 20)
        $signature.Subject | Should -Be 'CN=x'
    }

    It 'reads a file''s bytes and their signature through one handle, and refuses a missing file' {
        Mock -ModuleName 'DcomConfig' -CommandName 'Get-AuthenticodeSignature' -MockWith {
            $script:AskedFor = $LiteralPath
            [pscustomobject] @{ Status = [System.Management.Automation.SignatureStatus]::Valid; StatusMessage = 'Signature verified.'; SignerCertificate = [pscustomobject] @{ Thumbprint = 'CD' * 20; Subject = 'CN=y' } }
        }
        $file = Join-Path -Path $env:DCOMC_WORK -ChildPath ('signed-[1]-{0}.psd1' -f [guid]::NewGuid().ToString('N'))
        $bytes = [byte[]] @(0xEF, 0xBB, 0xBF) + [Text.Encoding]::UTF8.GetBytes("@{ Host = 'Ä' }`r`n")
        [IO.File]::WriteAllBytes($file, $bytes)
        $read = & $script:real { param($f) Read-DcomcOsSignedFile -Path $f } $file
        $script:AskedFor | Should -Be $file
        [Convert]::ToBase64String($read.Bytes) | Should -Be ([Convert]::ToBase64String($bytes))
        $read.Signature.Status | Should -BeExactly 'Valid'
        $read.Signature.SignerThumbprint | Should -Be ('CD' * 20)
        (& $script:real { param($f, $b) Read-DcomcDataFile -Name $f -Content $b } $file $read.Bytes).Host | Should -BeExactly 'Ä'
        { & $script:real { param($f) Read-DcomcOsSignedFile -Path $f } ($file + '.missing') } | Should -Throw
    }

    It 'returns no signer for an unsigned file' {
        Mock -ModuleName 'DcomConfig' -CommandName 'Get-AuthenticodeSignature' -MockWith {
            [pscustomobject] @{ Status = [System.Management.Automation.SignatureStatus]::NotSigned; StatusMessage = 'not signed'; SignerCertificate = $null }
        }
        $signature = & $script:real { Get-DcomcOsFileSignature -Path 'C:\bundle\HMI01.psd1' }
        $signature.Status | Should -BeExactly 'NotSigned'
        $signature.SignerThumbprint | Should -BeNullOrEmpty
        $signature.Subject | Should -BeNullOrEmpty
    }

    It 'decides on those values: a signed engine and an unsigned data file are refused, HashMismatch is not waivable' {
        $valid = @{ Status = 'Valid'; SignerThumbprint = 'AB' * 20; Subject = 'CN=x'; StatusMessage = '' }
        $none = @{ Status = 'NotSigned'; SignerThumbprint = $null; Subject = $null; StatusMessage = '' }
        $broken = @{ Status = 'HashMismatch'; SignerThumbprint = 'AB' * 20; Subject = 'CN=x'; StatusMessage = '' }
        $verdict = & $script:real { param($e, $d) Get-DcomcSignatureVerdict -Engine $e -Data $d -DataFile 'HMI01.psd1' } $valid $none
        $verdict.Refusal | Should -Not -BeNullOrEmpty
        $verdict.Waivable | Should -BeTrue
        $verdict = & $script:real { param($e, $d) Get-DcomcSignatureVerdict -Engine $e -Data $d -DataFile 'HMI01.psd1' } $none $broken
        $verdict.Refusal | Should -BeLike '*HashMismatch*'
        $verdict.Waivable | Should -BeFalse
        # Valid without a signer certificate cannot be matched: refused, not waved through.
        $verdict = & $script:real { param($e, $d) Get-DcomcSignatureVerdict -Engine $e -Data $d -DataFile 'HMI01.psd1' } @{ Status = 'Valid'; SignerThumbprint = $null; Subject = $null; StatusMessage = '' } @{ Status = 'Valid'; SignerThumbprint = $null; Subject = $null; StatusMessage = '' }
        $verdict.Refusal | Should -Not -BeNullOrEmpty
    }
}
