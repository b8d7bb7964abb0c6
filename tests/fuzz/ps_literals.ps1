# Reads PowerShell data files with the real PowerShell parser and prints, per file, one line of
# JSON: the parse errors, every AST node outside the literal subset dcomc writes, the string
# constants (values and keys) as PowerShell reads them, the comments, and the data itself as
# SafeGetValue gives it (what Import-PowerShellDataFile would load). One process for a batch:
# the paths are the lines of the file named by the only argument (UTF-8).
param([Parameter(Mandatory)][string] $ListFile)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$Ast = 'System.Management.Automation.Language'
# The literal subset: hashtables, arrays, single-quoted strings and bare keys, integers (a
# negative one is a unary minus), and $true/$false/$null. Nothing here runs or reads state.
$Allowed = @(
    'ScriptBlockAst', 'NamedBlockAst', 'PipelineAst', 'CommandExpressionAst', 'HashtableAst',
    'ArrayExpressionAst', 'StatementBlockAst', 'ArrayLiteralAst', 'StringConstantExpressionAst',
    'ConstantExpressionAst', 'VariableExpressionAst', 'UnaryExpressionAst'
)

foreach ($path in [IO.File]::ReadAllLines($ListFile, [Text.Encoding]::UTF8)) {
    if (-not $path) { continue }
    $tokens = $null
    $errors = $null
    $root = [System.Management.Automation.Language.Parser]::ParseFile($path, [ref] $tokens,
        [ref] $errors)
    $bad = [Collections.Generic.List[string]]::new()
    $strings = [Collections.Generic.List[string]]::new()
    foreach ($node in $root.FindAll({ $true }, $true)) {
        $type = $node.GetType().Name
        $text = $node.Extent.Text
        if ($Allowed -notcontains $type) {
            $bad.Add("$type $text")
        } elseif ($node -is [System.Management.Automation.Language.StringConstantExpressionAst]) {
            if ('SingleQuoted', 'BareWord' -notcontains $node.StringConstantType) {
                $bad.Add("$($node.StringConstantType) string $text")
            }
            $strings.Add($node.Value)
        } elseif ($node -is [System.Management.Automation.Language.VariableExpressionAst]) {
            if ('true', 'false', 'null' -notcontains $node.VariablePath.UserPath) {
                $bad.Add("variable $text")
            }
        } elseif ($node -is [System.Management.Automation.Language.UnaryExpressionAst]) {
            if ($node.TokenKind -ne 'Minus' -or
                $node.Child -isnot [System.Management.Automation.Language.ConstantExpressionAst]) {
                $bad.Add("unary $text")
            }
        }
    }
    $data = $null
    $statements = $root.EndBlock.Statements
    if ($statements.Count -eq 1 -and $statements[0] -is "$Ast.PipelineAst" -and
        $statements[0].PipelineElements.Count -eq 1) {
        try {
            $data = $statements[0].PipelineElements[0].Expression.SafeGetValue()
        } catch {
            $bad.Add("SafeGetValue: $($_.Exception.InnerException.Message)")
        }
    } else {
        $bad.Add("$($statements.Count) statements, expected one hashtable")
    }
    $comments = @($tokens | Where-Object Kind -EQ 'Comment' | ForEach-Object Text)
    [ordered]@{
        Path = $path
        Errors = @($errors | ForEach-Object { "$($_.Extent.StartLineNumber): $($_.Message)" })
        Bad = $bad.ToArray()
        Strings = $strings.ToArray()
        Comments = $comments
        Data = $data
    } | ConvertTo-Json -Depth 100 -Compress -EscapeHandling EscapeNonAscii
}
