"""Static checks of the PowerShell artifacts for Windows PowerShell 5.1, on the syntax tree of
tree-sitter-powershell (the grammar the reader uses), never on regexes over raw text.

1. Every powershell-* artifact of every host of both examples: UTF-8 with BOM, CRLF only, and
   no ERROR or MISSING node (bar the proven grammar false positives of ALLOWLIST).
2. The language rules over the two static scripts (engine and entry point): no PowerShell 6/7
   syntax or parameters, StrictMode 3.0 and ErrorActionPreference Stop at top level, approved
   verbs, no aliases, no Invoke-Expression, comment-based help on every exported function.
3. The data file holds only the literal subset the writer emits; the reader refuses code.
4. ps_quote: every string reads back as itself, whatever quotes or `$(...)` it holds.

Every checker is first run on tiny samples that MUST be flagged, so that a checker that finds
nothing (e.g. after a grammar update renames a node type) cannot pass vacuously.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tree_sitter import Node

from dcomc.pipeline import compile_file
from dcomc_targets import Artifact, EmitContext, Options
from dcomc_targets.powershell import (
    BOM,
    PowerShellTarget,
    parse_data,
    parse_tree,
    syntax_errors,
)
from dcomc_targets.quoting import ps_quote, ps_unquote

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "examples").glob("*.yaml"))
STATIC = ("DcomConfig.psm1", "Invoke-DcomConfig.ps1")

# --- proven false positives of tree-sitter-powershell: the ONE place they may be accepted ----
#
# Key:   (glob of the artifact path, e.g. "powershell/DcomConfig.psm1" or "powershell/*.psd1",
#         the source line holding the ERROR/MISSING node, stripped of surrounding blanks).
# Value: the proof that the line is valid Windows PowerShell 5.1: what the real parser says
#        ([System.Management.Automation.Language.Parser]::ParseInput(...) on 5.1 returns no
#        error for it) and, where known, the grammar issue. Example of the format:
#
#   ("powershell/DcomConfig.psm1", "ForEach-Object -Process { $_ }"):
#       "5.1 parses it as a command; the grammar takes the leading 'ForEach' for the foreach "
#       "keyword when ForEach-Object starts a statement (tree-sitter-powershell 0.26.4).",
#
# An entry that no longer matches anything fails test_allowlist_entries_are_used.
ALLOWLIST: dict[tuple[str, str], str] = {}


# --- tree helpers ------------------------------------------------------------------------------


def walk(node: Node) -> Iterator[Node]:
    """Every node under `node` (included), in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def text_of(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8")


def line_of(node: Node) -> int:
    return node.start_point[0] + 1


def ancestor(node: Node, kind: str) -> Node | None:
    parent = node.parent
    while parent is not None and parent.type != kind:
        parent = parent.parent
    return parent


def command_name(command: Node, source: bytes) -> str | None:
    """The literal name of a `command` node (None for `& $variable`)."""
    name = next((c for c in walk(command) if c.type == "command_name"), None)
    if name is None or ancestor(name, "command") != command:
        return None
    return text_of(name, source)


def parameter_argument(parameter: Node) -> Node | None:
    """The argument after a `-Name value` or `-Name:value` parameter, if any."""
    sibling = parameter.next_sibling
    while sibling is not None and sibling.type in ("command_argument_sep", ":"):
        sibling = sibling.next_sibling
    if sibling is None or sibling.type == "command_parameter":
        return None
    return sibling


def literal_value(node: Node, source: bytes) -> str:
    """The text of a bare word or a string argument, without its quotes."""
    raw = text_of(node, source).strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def top_level_statements(root: Node) -> list[Node]:
    statements = next((c for c in root.children if c.type == "statement_list"), None)
    if statements is None:
        return []
    return [c for c in statements.children if c.type not in ("comment", "empty_statement")]


# --- 1. encoding, line ends, syntax -----------------------------------------------------------


@functools.cache
def ps_artifacts(spec: Path) -> tuple[tuple[str, Artifact], ...]:
    """(host, artifact) for every powershell-* artifact of every host of a spec."""
    comp = compile_file(spec)
    ctx = EmitContext(comp.plan, Options(), spec.name, comp.sha256)
    return tuple((host.name, artifact) for host in comp.plan.hosts
                 for artifact in PowerShellTarget().emit(host, ctx)
                 if artifact.kind.startswith("powershell-"))


def encoding_problems(data: bytes) -> list[str]:
    problems: list[str] = []
    if not data.startswith(BOM):
        problems.append("no UTF-8 BOM (Windows PowerShell 5.1 reads it in the ANSI code page)")
    body = data.removeprefix(BOM)
    lines = body.split(b"\n")
    bare_lf = [i + 1 for i, line in enumerate(lines[:-1]) if not line.endswith(b"\r")]
    if bare_lf:
        problems.append(f"bare LF (not CRLF) ending line(s) {bare_lf[:10]}")
    bare_cr = [i + 1 for i, line in enumerate(lines) if b"\r" in line.removesuffix(b"\r")]
    if bare_cr:
        problems.append(f"bare CR on line(s) {bare_cr[:10]}")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        problems.append(f"not UTF-8: {error}")
    return problems


def unallowed_syntax_errors(path: str, text: str) -> tuple[list[str], set[tuple[str, str]]]:
    """ERROR/MISSING nodes not in ALLOWLIST, and the ALLOWLIST keys that matched."""
    lines = text.splitlines()
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    for line, col, excerpt in syntax_errors(text):
        source_line = lines[line - 1].strip() if line <= len(lines) else ""
        key = next((k for k in ALLOWLIST
                    if fnmatch.fnmatchcase(path, k[0]) and k[1] == source_line), None)
        if key is not None:
            used.add(key)
            continue
        problems.append(f"{line}:{col}: ERROR/MISSING node at {excerpt!r} "
                        f"(line: {source_line!r})")
    return problems, used


def test_allowlist_format() -> None:
    for key, proof in ALLOWLIST.items():
        assert isinstance(key, tuple) and len(key) == 2, key
        assert key[0].startswith("powershell/"), f"{key}: glob of an artifact path"
        assert key[1] == key[1].strip() and key[1], f"{key}: the stripped source line"
        assert isinstance(proof, str) and len(proof) > 40, f"{key}: give the proof"


def test_checkers_of_part_1_detect_samples() -> None:
    assert encoding_problems(BOM + b"a\r\nb\r\n") == []
    assert len(encoding_problems(b"a\nb\r\n")) == 2  # no BOM, bare LF
    assert encoding_problems(BOM + b"a\rb\r\n")  # bare CR
    assert encoding_problems(BOM + b"\xff\r\n")  # not UTF-8
    for sample in ("$a ?? $b", "if ($a) { 1", "function f {"):
        assert unallowed_syntax_errors("powershell/x.ps1", sample)[0], sample
    assert unallowed_syntax_errors("powershell/x.ps1", "Get-Item -Path 'x'\r\n")[0] == []


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_artifacts_are_bom_crlf_and_parse(spec: Path) -> None:
    artifacts = ps_artifacts(spec)
    assert {a.kind for _, a in artifacts} == set(PowerShellTarget.kinds)
    problems: list[str] = []
    for host, artifact in artifacts:
        where = f"{spec.name} host {host}: {artifact.path}"
        problems += [f"{where}: {p}" for p in encoding_problems(artifact.data)]
        text = artifact.data.removeprefix(BOM).decode("utf-8", "replace")
        errors, _ = unallowed_syntax_errors(artifact.path, text)
        problems += [f"{where}:{e}" for e in errors]
    assert not problems, "\n".join(problems)


def test_allowlist_entries_are_used() -> None:
    used: set[tuple[str, str]] = set()
    for spec in SPECS:
        for _, artifact in ps_artifacts(spec):
            text = artifact.data.removeprefix(BOM).decode("utf-8", "replace")
            used |= unallowed_syntax_errors(artifact.path, text)[1]
    stale = set(ALLOWLIST) - used
    assert not stale, f"ALLOWLIST entries that match nothing any more (remove them): {stale}"


# --- 2. language rules over the static scripts ------------------------------------------------

# Parameters that Windows PowerShell 5.1 does not have, per command ("*": on any command).
# -AsHashtable is PowerShell 6+ everywhere but on Group-Object, which has it since 2.0.
PS7_PARAMETERS: dict[str, frozenset[str]] = {
    "*": frozenset({"parallel", "ashashtable", "asbytestream", "skipcertificatecheck",
                    "skiphttperrorcheck"}),
    "foreach-object": frozenset({"parallel", "throttlelimit", "timeoutseconds", "asjob",
                                 "usenewrunspace"}),
    "convertfrom-json": frozenset({"ashashtable", "depth", "noenumerate"}),
    "convertto-json": frozenset({"asarray", "enumsasstrings", "escapehandling"}),
    "import-powershelldatafile": frozenset({"skiplimitcheck"}),
}
PS51_PARAMETERS: dict[str, frozenset[str]] = {"group-object": frozenset({"ashashtable"})}
# Commands that first shipped with PowerShell 6 or 7.
PS7_COMMANDS = frozenset({
    "join-string", "test-json", "get-error", "convertfrom-markdown", "show-markdown",
    "get-markdownoption", "set-markdownoption", "get-uptime", "remove-alias", "remove-service",
})
# -Encoding values of Windows PowerShell 5.1 (utf8NoBOM, utf8BOM, ansi, code pages: 6+).
PS51_ENCODINGS = frozenset({"unknown", "string", "unicode", "byte", "bigendianunicode", "utf8",
                            "utf7", "utf32", "ascii", "default", "oem", "bigendianutf32"})


def ps7_constructs(text: str) -> list[str]:
    """PowerShell 6/7-only syntax, parameters and commands: 'line: what'."""
    root, source = parse_tree(text)
    found: list[str] = []
    for node in walk(root):
        kind, line = node.type, line_of(node)
        token = text_of(node, source).strip() if node.child_count == 0 else ""
        after = source[node.end_byte : node.end_byte + 1]
        if kind == "pipeline_chain_tail" or (
                kind in ("&&", "||") and (node.parent is None
                                          or node.parent.type != "pipeline_chain_tail")):
            found.append(f"{line}: pipeline chain operator {text_of(node, source).strip()} "
                         "(PowerShell 7)")
        elif kind in ("ERROR", "generic_token") and token in ("??", "??="):
            found.append(f"{line}: null-coalescing operator {token} (PowerShell 7)")
        elif kind == "ERROR" and token == "?" and after in (b".", b"["):
            found.append(f"{line}: null-conditional operator ?{after.decode()} (PowerShell 7)")
        elif kind == "ERROR" and token == "?":
            found.append(f"{line}: ternary operator ? : (PowerShell 7)")
        elif kind == "&" and (node.parent is None
                              or node.parent.type != "command_invokation_operator"):
            found.append(f"{line}: background operator & (PowerShell 6)")
        elif kind == "foreach_parameter":
            found.append(f"{line}: foreach {token or text_of(node, source).strip()} "
                         "(workflows only)")
        elif kind == "command_parameter":
            found += _ps7_parameter(node, source)
        elif kind == "command_name" and text_of(node, source).lower() in PS7_COMMANDS:
            found.append(f"{line}: command {text_of(node, source)} (PowerShell 6/7 only)")
    return found


def _ps7_parameter(parameter: Node, source: bytes) -> list[str]:
    name = text_of(parameter, source).lstrip("-").rstrip(":").lower()
    command = ancestor(parameter, "command")
    cmd = (command_name(command, source) or "").lower() if command is not None else ""
    line = line_of(parameter)
    found: list[str] = []
    banned = PS7_PARAMETERS["*"] | PS7_PARAMETERS.get(cmd, frozenset())
    if name in banned and name not in PS51_PARAMETERS.get(cmd, frozenset()):
        found.append(f"{line}: parameter -{name} of {cmd or 'a command'} (PowerShell 6/7 only)")
    if name == "encoding":
        argument = parameter_argument(parameter)
        nodes = list(walk(argument)) if argument is not None else []
        words = [n for n in nodes if n.type in ("generic_token", "verbatim_string_characters")]
        computed = any(n.type in ("variable", "sub_expression", "command") for n in nodes)
        if len(words) == 1 and not computed \
                and literal_value(words[0], source).lower() not in PS51_ENCODINGS:
            found.append(f"{line}: -Encoding {literal_value(words[0], source)} "
                         "(not a Windows PowerShell 5.1 encoding)")
    return found


# Get-Verb of Windows PowerShell 5.1.
APPROVED_VERBS = frozenset("""
    Add Clear Close Copy Enter Exit Find Format Get Hide Join Lock Move New Open Optimize Pop
    Push Redo Remove Rename Reset Resize Search Select Set Show Skip Split Step Switch Undo
    Unlock Watch Connect Disconnect Read Receive Send Write Backup Checkpoint Compare Compress
    Convert ConvertFrom ConvertTo Dismount Edit Expand Export Group Import Initialize Limit
    Merge Mount Out Publish Restore Save Sync Unpublish Update Debug Measure Ping Repair
    Resolve Test Trace Approve Assert Complete Confirm Deny Disable Enable Install Invoke
    Register Request Restart Resume Start Stop Submit Suspend Uninstall Unregister Wait Block
    Grant Protect Revoke Unblock Unprotect Use
""".split())
_APPROVED_LOWER = {verb.lower(): verb for verb in APPROVED_VERBS}

# Built-in aliases of Windows PowerShell 5.1 and the command to write instead.
ALIASES: dict[str, str] = {
    "%": "ForEach-Object", "?": "Where-Object", "ac": "Add-Content", "cat": "Get-Content",
    "cd": "Set-Location", "chdir": "Set-Location", "clc": "Clear-Content",
    "clear": "Clear-Host", "cls": "Clear-Host", "copy": "Copy-Item", "cp": "Copy-Item",
    "cpi": "Copy-Item", "del": "Remove-Item", "diff": "Compare-Object", "dir": "Get-ChildItem",
    "echo": "Write-Output", "epal": "Export-Alias", "erase": "Remove-Item",
    "etsn": "Enter-PSSession", "fc": "Format-Custom", "fl": "Format-List",
    "foreach": "ForEach-Object", "ft": "Format-Table", "fw": "Format-Wide", "gal": "Get-Alias",
    "gc": "Get-Content", "gci": "Get-ChildItem", "gcm": "Get-Command", "gcs": "Get-PSCallStack",
    "gdr": "Get-PSDrive", "ghy": "Get-History", "gi": "Get-Item", "gl": "Get-Location",
    "gm": "Get-Member", "gp": "Get-ItemProperty", "gps": "Get-Process", "group": "Group-Object",
    "gsv": "Get-Service", "gu": "Get-Unique", "gv": "Get-Variable", "h": "Get-History",
    "history": "Get-History", "icm": "Invoke-Command", "iex": "Invoke-Expression",
    "ipal": "Import-Alias", "ipmo": "Import-Module", "irm": "Invoke-RestMethod",
    "iwr": "Invoke-WebRequest", "kill": "Stop-Process", "ls": "Get-ChildItem", "man": "Get-Help",
    "md": "New-Item -ItemType Directory", "measure": "Measure-Object", "mi": "Move-Item",
    "mount": "New-PSDrive", "move": "Move-Item", "mp": "Move-ItemProperty", "mv": "Move-Item",
    "nal": "New-Alias", "ndr": "New-PSDrive", "ni": "New-Item", "nmo": "New-Module",
    "nv": "New-Variable", "ogv": "Out-GridView", "oh": "Out-Host", "popd": "Pop-Location",
    "ps": "Get-Process", "pushd": "Push-Location", "pwd": "Get-Location",
    "r": "Invoke-History", "rd": "Remove-Item", "rdr": "Remove-PSDrive", "ren": "Rename-Item",
    "ri": "Remove-Item", "rm": "Remove-Item", "rmdir": "Remove-Item", "rni": "Rename-Item",
    "rnp": "Rename-ItemProperty", "rp": "Remove-ItemProperty", "rv": "Remove-Variable",
    "rvpa": "Resolve-Path", "sajb": "Start-Job", "sal": "Set-Alias", "saps": "Start-Process",
    "sasv": "Start-Service", "sbp": "Set-PSBreakpoint", "sc": "Set-Content",
    "select": "Select-Object", "set": "Set-Variable", "shcm": "Show-Command", "si": "Set-Item",
    "sl": "Set-Location", "sleep": "Start-Sleep", "sls": "Select-String", "sort": "Sort-Object",
    "sp": "Set-ItemProperty", "spjb": "Stop-Job", "spps": "Stop-Process",
    "spsv": "Stop-Service", "start": "Start-Process", "sv": "Set-Variable", "tee": "Tee-Object",
    "type": "Get-Content", "where": "Where-Object", "wjb": "Wait-Job", "write": "Write-Output",
    "curl": "Invoke-WebRequest", "wget": "Invoke-WebRequest",
}
FUNCTION_NAME = re.compile(r"^([A-Za-z]+)-([A-Za-z][A-Za-z0-9]*)$")


def command_names(text: str) -> list[tuple[int, str]]:
    """(line, name) of every command called by a literal name."""
    root, source = parse_tree(text)
    return [(line_of(n), text_of(n, source)) for n in walk(root) if n.type == "command_name"]


def alias_uses(text: str) -> list[str]:
    return [f"{line}: alias {name!r} (write {ALIASES[name.lower()]})"
            for line, name in command_names(text) if name.lower() in ALIASES]


def code_from_strings(text: str) -> list[str]:
    """Invoke-Expression and the other ways of running a string as code."""
    root, source = parse_tree(text)
    found: list[str] = []
    for node in walk(root):
        if node.type == "command_name" and text_of(node, source).lower() in (
                "invoke-expression", "iex"):
            found.append(f"{line_of(node)}: {text_of(node, source)} (runs a string as code)")
        if node.type == "invokation_expression":
            member = next((c for c in node.children if c.type == "member_name"), None)
            name = text_of(member, source).lower() if member is not None else ""
            target = text_of(node.children[0], source).lower().replace(" ", "")
            if name in ("invokescript", "newscriptblock") or (
                    name == "create" and target in (
                        "[scriptblock]", "[system.management.automation.scriptblock]")):
                found.append(f"{line_of(node)}: {text_of(node, source)[:60]!r} "
                             "(runs a string as code)")
    return found


def function_verbs(text: str) -> list[str]:
    root, source = parse_tree(text)
    found: list[str] = []
    for node in walk(root):
        if node.type != "function_name":
            continue
        name = text_of(node, source)
        match = FUNCTION_NAME.match(name)
        if match is None:
            found.append(f"{line_of(node)}: function {name} is not Verb-Noun")
        elif match.group(1).lower() not in _APPROVED_LOWER:
            found.append(f"{line_of(node)}: function {name}: {match.group(1)!r} is not an "
                         "approved verb (Get-Verb)")
    return found


def preference_problems(text: str) -> list[str]:
    """Set-StrictMode -Version 3.0 and $ErrorActionPreference = 'Stop' at top level, before
    every other top-level statement."""
    root, source = parse_tree(text)
    statements = top_level_statements(root)
    found: dict[str, int] = {}
    for index, statement in enumerate(statements):
        if statement.type != "pipeline":
            continue
        command = next((c for c in walk(statement) if c.type == "command"), None)
        if command is not None and (command_name(command, source) or "").lower() \
                == "set-strictmode" and ancestor(command, "pipeline") == statement:
            version = next((parameter_argument(p) for p in walk(command)
                            if p.type == "command_parameter"
                            and text_of(p, source).lower().rstrip(":") == "-version"), None)
            if version is not None and literal_value(version, source) == "3.0":
                found.setdefault("strict", index)
        assignment = next((c for c in statement.children if c.type == "assignment_expression"),
                          None)
        if assignment is not None:
            left, *_, right = [c for c in assignment.children if c.type != "comment"]
            operator = next(c for c in assignment.children if c.type == "assignement_operator")
            if text_of(left, source).strip().lower() == "$erroractionpreference" \
                    and text_of(operator, source) == "=" \
                    and text_of(right, source).strip().lower() in ("'stop'", '"stop"'):
                found.setdefault("stop", index)
    problems: list[str] = []
    if "strict" not in found:
        problems.append("no top-level 'Set-StrictMode -Version 3.0'")
    if "stop" not in found:
        problems.append("no top-level \"$ErrorActionPreference = 'Stop'\"")
    for key, index in found.items():
        before = [s for i, s in enumerate(statements[:index])
                  if i not in found.values() and s.type != "using_statement"]
        if before:
            what = "Set-StrictMode" if key == "strict" else "$ErrorActionPreference"
            problems.append(f"{line_of(statements[index])}: {what} must come before every "
                            f"other top-level statement (line {line_of(before[0])})")
    return problems


def exported_functions(root: Node, source: bytes) -> list[tuple[int, str]]:
    names: list[tuple[int, str]] = []
    for command in (n for n in walk(root) if n.type == "command"):
        if (command_name(command, source) or "").lower() != "export-modulemember":
            continue
        for parameter in (n for n in walk(command) if n.type == "command_parameter"):
            if not "-function".startswith(text_of(parameter, source).lower().rstrip(":")):
                continue
            argument = parameter_argument(parameter)
            if argument is None:
                continue
            values = [n for n in walk(argument)
                      if n.type in ("verbatim_string_characters", "generic_token",
                                    "expandable_string_literal")]
            names += [(line_of(n), literal_value(n, source)) for n in values]
    return names


def _is_help(comment: Node, source: bytes) -> bool:
    body = text_of(comment, source)
    return body.startswith("<#") and ".synopsis" in body.lower()


def missing_help(text: str) -> list[str]:
    """Exported functions without comment-based help (`<# .SYNOPSIS ... #>` at the top level of
    the function's body, or directly before `function`, at most one blank line between)."""
    root, source = parse_tree(text)
    functions = {text_of(name, source).lower(): node for node in walk(root)
                 if node.type == "function_statement"
                 for name in node.children if name.type == "function_name"}
    comments = [n for n in walk(root) if n.type == "comment" and _is_help(n, source)]
    problems: list[str] = []
    for line, name in exported_functions(root, source):
        if any(c in name for c in "*?["):
            problems.append(f"{line}: Export-ModuleMember -Function {name}: name each function")
            continue
        function = functions.get(name.lower())
        if function is None:
            problems.append(f"{line}: {name} is exported but not defined")
            continue
        body = [function] + [c for c in function.children if c.type == "script_block"]
        inside = any(c.parent in body or (c.parent is not None and c.parent.parent in body
                                          and c.parent.type == "script_block_body")
                     for c in comments)
        before = any(c.end_byte <= function.start_byte
                     and not source[c.end_byte : function.start_byte].strip()
                     and source[c.end_byte : function.start_byte].count(b"\n") <= 2
                     for c in comments)
        if not (inside or before):
            problems.append(f"{line_of(function)}: exported function {name} has no "
                            "comment-based help (<# .SYNOPSIS ... #>)")
    return problems


# Characters Windows PowerShell reads as quotes or dashes but tree-sitter-powershell does not
# (it parses `$x = \u2018abc\u2019` as a command and `'a\u2018b'` as one string, where 5.1
# ends the string at \u2018): in a static script they would make the syntax check above blind.
PS_QUOTE_LOOKALIKES = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e"
PS_DASH_LOOKALIKES = "\u2013\u2014\u2015"
STRING_NODES = frozenset({"verbatim_string_characters", "verbatim_here_string_characters",
                          "expandable_string_literal", "expandable_here_string_literal"})


def lookalike_problems(text: str) -> list[str]:
    """Typographic quotes outside comments, typographic dashes outside comments and strings."""
    root, source = parse_tree(text)
    found: list[str] = []
    for node in walk(root):
        if node.type == "comment" or (node.child_count and node.type not in STRING_NODES):
            continue
        token = text_of(node, source)
        quotes = sorted({f"U+{ord(c):04X}" for c in token if c in PS_QUOTE_LOOKALIKES})
        dashes = sorted({f"U+{ord(c):04X}" for c in token if c in PS_DASH_LOOKALIKES})
        if node.type in STRING_NODES:
            dashes = []
        if quotes or dashes:
            found.append(f"{line_of(node)}: typographic {', '.join(quotes + dashes)} in "
                         f"{token[:40]!r}: PowerShell reads it as a quote/dash, the grammar does "
                         "not; write [char]0x2019 (or the ASCII character)")
    return found


@functools.cache
def static_script(name: str) -> str:
    """The script as shipped (the engine is joined from its part files), without the BOM."""
    data = PowerShellTarget().emit(*_any_host())[1 if name == "DcomConfig.psm1" else 2].data
    assert data.startswith(BOM) and not data[len(BOM):].startswith(BOM), f"{name}: one BOM"
    return data[len(BOM):].decode("utf-8").replace("\r\n", "\n")


@functools.cache
def _any_host() -> tuple[Any, EmitContext]:
    comp = compile_file(SPECS[0])
    return comp.plan.hosts[0], EmitContext(comp.plan, Options(), SPECS[0].name, comp.sha256)


PS7_SAMPLES = {
    "$x = $a ?? $b": "null-coalescing",
    "$x ??= 1": "null-coalescing",
    "Write-Output ($a ?? 1)": "null-coalescing",
    "${a}?.Name": "null-conditional operator ?.",
    "${a}?[0]": "null-conditional operator ?[",
    "$c ? 1 : 2": "ternary",
    "$r = $c ? 'yes' : 'no'": "ternary",
    "Get-Item x && Get-Item y": "pipeline chain operator &&",
    "Get-Item x || Get-Item y": "pipeline chain operator ||",
    "$x = Get-Item x || Get-Item y": "pipeline chain operator ||",
    "Get-Item x | ForEach-Object -Parallel { $_ }": "parameter -parallel",
    "$t = ConvertFrom-Json -InputObject $j -AsHashtable": "parameter -ashashtable",
    "$b = Get-Content -Path x -AsByteStream": "parameter -asbytestream",
    "Set-Content -Path x -Value y -Encoding utf8NoBOM": "-Encoding utf8NoBOM",
    "Out-File -FilePath x -Encoding:'utf8BOM'": "-Encoding utf8BOM",
    "Start-Sleep 10 &": "background operator",
    "Join-String -InputObject $a": "command Join-String",
}
PS51_SAMPLES = (
    "$a | Where-Object { $_ } | ForEach-Object -Process { $_ }",
    "& $command -Resource $r", "$ok = $?", "Get-Item x 2>&1", "Get-Item x *>&1 | Out-Null",
    "$g = Get-Process | Group-Object -Property Name -AsHashTable -AsString",
    "Set-Content -Path x -Value y -Encoding UTF8", "Add-Content -Path x -Value $v -Encoding $e",
    "$s = 'a ?? b ? c : d && e'", "# $a ?? $b && c", "if ($a -and $b) { $c = $d }",
)


@pytest.mark.parametrize("sample", PS7_SAMPLES, ids=range(len(PS7_SAMPLES)))
def test_ps7_checker_detects_samples(sample: str) -> None:
    found = ps7_constructs(sample)
    assert any(PS7_SAMPLES[sample] in f for f in found), (sample, found)


def test_ps7_checker_accepts_windows_powershell_51() -> None:
    assert {s: ps7_constructs(s) for s in PS51_SAMPLES} == {s: [] for s in PS51_SAMPLES}


def test_other_checkers_detect_samples() -> None:
    aliases = alias_uses("$x | % { $_ } | ? { $_ } | sort\ngci -Path x\nGet-ChildItem -Path x")
    assert [a.split(":")[0] for a in aliases] == ["1", "1", "1", "2"], aliases
    assert len(code_from_strings("iex $s\nInvoke-Expression -Command $s\n"
                                 "[ScriptBlock]::Create($s)\n"
                                 "$ExecutionContext.InvokeCommand.InvokeScript($s)")) == 4
    assert code_from_strings("& $command -A 1\n[guid]::NewGuid()") == []
    assert len(function_verbs("function Grab-Thing {}\nfunction helper {}\n"
                              "function Get-Thing {}\nfunction ConvertTo-Thing {}")) == 2
    good = "param($a)\nSet-StrictMode -Version 3.0\n$ErrorActionPreference = 'Stop'\nGet-X\n"
    assert preference_problems(good) == []
    assert len(preference_problems("function f {\n Set-StrictMode -Version 3.0\n"
                                   " $ErrorActionPreference = 'Stop'\n}\n")) == 2
    assert len(preference_problems("Set-StrictMode -Version 2.0\n"
                                   "$ErrorActionPreference = 'Continue'\n")) == 2
    assert len(preference_problems("Get-X\nSet-StrictMode -Version 3.0\n"
                                   "$ErrorActionPreference = 'Stop'\n")) == 2
    assert len(lookalike_problems("$a = '\u2019'\n$b = \u2018x\u2019\n"
                                  "Get-Item \u2013Path x\n$c = \"\u201c\"\n")) == 4
    assert lookalike_problems("# \u2019 \u2013\n$a = 'x \u2013 y'\n<# \u201c #>\n") == []
    module = ("function Get-A {\n <#\n .SYNOPSIS\n  A.\n #>\n param()\n}\n"
              "<#\n.SYNOPSIS\n B.\n#>\nfunction Get-B { }\n"
              "function Get-C {\n # .SYNOPSIS, but not a block comment\n}\n"
              "<# .SYNOPSIS\n far away #>\n$x = 1\nfunction Get-D { }\n"
              "function Get-E { <# not help #> }\n"
              "Export-ModuleMember -Function 'Get-A', Get-B, 'Get-C', 'Get-D', 'Get-E', "
              "'Get-F'\n")
    problems = missing_help(module)
    assert [re.findall(r"Get-[A-F]\b", p) for p in problems] == [
        ["Get-C"], ["Get-D"], ["Get-E"], ["Get-F"]], problems


@pytest.mark.parametrize("name", STATIC)
def test_static_script_is_windows_powershell_51(name: str) -> None:
    text = static_script(name)
    problems = (ps7_constructs(text) + alias_uses(text) + code_from_strings(text)
                + function_verbs(text) + preference_problems(text) + lookalike_problems(text))
    assert not problems, "\n".join(f"templates/powershell/{name}:{p}" for p in problems)


@pytest.mark.parametrize("name", STATIC)
def test_static_script_has_command_names(name: str) -> None:
    names = command_names(static_script(name))
    assert names, "no command_name node found: has the grammar changed?"


def test_engine_functions_are_found() -> None:
    root, _ = parse_tree(static_script("DcomConfig.psm1"))
    functions = [n for n in walk(root) if n.type == "function_statement"]
    assert len(functions) > 50, "function_statement nodes not found: has the grammar changed?"


def test_exported_functions_have_help() -> None:
    text = static_script("DcomConfig.psm1")
    root, source = parse_tree(text)
    exported = exported_functions(root, source)
    assert exported, "DcomConfig.psm1 exports nothing with Export-ModuleMember -Function"
    problems = missing_help(text)
    assert not problems, "\n".join(f"templates/powershell/DcomConfig.psm1:{p}"
                                   for p in problems)


# --- 3. the data file: literals only ----------------------------------------------------------

# The node types of the literal subset the writer emits (single-child wrappers included).
LITERAL_NODES = frozenset({
    "program", "statement_list", "pipeline", "pipeline_chain", "logical_expression",
    "bitwise_expression", "comparison_expression", "additive_expression",
    "multiplicative_expression", "format_expression", "range_expression",
    "array_literal_expression", "unary_expression", "hash_literal_expression",
    "hash_literal_body", "hash_entry", "key_expression", "simple_name", "string_literal",
    "verbatim_string_characters", "integer_literal", "decimal_integer_literal",
    "array_expression", "variable", "comment", "@{", "}", "@(", ")", "=",
})
# Node types that run code (or read state), with the reason; anything else outside
# LITERAL_NODES is refused too.
CODE_NODES = {
    "command": "a command", "command_name": "a command",
    "expandable_string_literal": "a double-quoted (expanding) string",
    "expandable_here_string_literal": "a double-quoted (expanding) here-string",
    "sub_expression": "a sub-expression $(...)", "script_block_expression": "a script block",
    "script_block": "a script block", "{": "a script block",
    "parenthesized_expression": "a parenthesized pipeline", "invokation_expression":
    "a method call", "member_access": "a member access", "element_access": "an indexer",
    "type_literal": "a type literal", "cast_expression": "a cast",
    "assignment_expression": "an assignment", "ERROR": "a syntax error",
}
CONSTANTS = frozenset({"$true", "$false", "$null"})


def data_violations(text: str) -> list[str]:
    root, source = parse_tree(text)
    found: list[str] = []
    statements = top_level_statements(root)
    if len(statements) != 1:
        found.append(f"{len(statements)} top-level statements, expected one hashtable")
    for node in walk(root):
        where = f"{line_of(node)}:{node.start_point[1] + 1}"
        excerpt = text_of(node, source)[:40]
        if node.is_missing:
            found.append(f"{where}: MISSING {node.type}")
        elif node.type in CODE_NODES:
            found.append(f"{where}: {CODE_NODES[node.type]} ({node.type}) {excerpt!r}")
        elif node.type not in LITERAL_NODES:
            found.append(f"{where}: {node.type} is not in the literal subset {excerpt!r}")
        elif node.type == "variable" and excerpt.lower() not in CONSTANTS:
            found.append(f"{where}: variable {excerpt!r} (only $true, $false, $null)")
        elif node.type == "verbatim_string_characters" and not _written_by_ps_quote(
                text_of(node, source)):
            found.append(f"{where}: string {excerpt!r} not written by ps_quote")
    return found


def _written_by_ps_quote(literal: str) -> bool:
    try:
        return ps_quote(ps_unquote(literal)) == literal
    except ValueError:
        return False


SMUGGLED = {
    "sub-expression": '@{ A = "$(Remove-Item C:\\)" }',
    "expandable string": '@{ A = "x $env:USERNAME" }',
    "parenthesized command": "@{ A = (Get-Date) }",
    "environment variable": "@{ A = $env:PATH }",
    "variable": "@{ A = $PSVersionTable }",
    "script block": "@{ A = { 1 } }",
    "two statements": "@{ A = 1 }\n@{ B = 2 }",
    "statement after": "@{ A = 1 }; Remove-Item -Path x",
    "command in array": "@{ A = @(Get-Process) }",
    "method call": "@{ A = [IO.File]::Delete('x') }",
    "member access": "@{ A = 'x'.Length }",
    "cast": "@{ A = [int] '1' }",
    "here-string": '@{ A = @"\n$(Get-Date)\n"@ }',
    "command as value": "@{ A = Get-Date }",
}


@pytest.mark.parametrize("sample", SMUGGLED.values(), ids=list(SMUGGLED))
def test_data_reader_and_checker_refuse_code(sample: str) -> None:
    with pytest.raises(ValueError, match="psd1"):
        parse_data(sample)
    assert data_violations(sample), sample


def test_data_checker_accepts_the_literal_subset() -> None:
    sample = "# c\n@{\n    A = 'x'\n    B = @(\n        1\n        $true\n    )\n    C = $null\n" \
             "    'd e' = @{}\n    F = @()\n    G = $False\n}\n"
    assert data_violations(sample) == []
    assert parse_data(sample) == {"A": "x", "B": [1, True], "C": None, "d e": {}, "F": [],
                                  "G": False}


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_data_files_are_literals_only(spec: Path) -> None:
    problems: list[str] = []
    count = 0
    for host, artifact in ps_artifacts(spec):
        if artifact.kind != "powershell-data":
            continue
        count += 1
        assert artifact.path == f"powershell/{host}.psd1"
        text = artifact.data.removeprefix(BOM).decode("utf-8")
        try:
            data = parse_data(text)
        except ValueError as error:
            problems.append(f"{artifact.path}: parse_data: {error}")
        else:
            assert isinstance(data, dict) and data["Host"] == host
        problems += [f"{artifact.path}:{v}" for v in data_violations(text)]
    assert count == len(compile_file(spec).plan.hosts)
    assert not problems, "\n".join(problems)


# --- 4. quoting -----------------------------------------------------------------------------

PS_QUOTES = "'\u2018\u2019\u201a\u201b"  # the five characters PowerShell reads as '
NASTY = [
    *PS_QUOTES, "O'Brien", "a\u2018b\u2019c\u201ad\u201be", "'\u2019", "\u2019'", "x'",
    "''", "'x'", "$(x)", "$(Remove-Item C:\\)", '"', '"$(x)"', "`", "`$x", "a`'b", "`'",
    "\u201c$x\u201d\u201e", "$env:PATH", "{ 1 }", "@{", "#", "<# x #>", "'; Remove-Item x; '",
    "\u2019; Remove-Item x; \u2018", "", " ", "\\", "C:\\Program Files (x86)\\x", "\u00a7 \u00dc",
]


def quoted_round_trip(value: str) -> None:
    literal = ps_quote(value)
    text = f"@{{ A = {literal} }}"
    assert syntax_errors(text) == [], (value, text)
    root, source = parse_tree(text)
    strings = [n for n in walk(root) if n.type == "verbatim_string_characters"]
    assert [text_of(n, source) for n in strings] == [literal], (value, text)
    assert data_violations(text) == [], (value, text)
    assert parse_data(text) == {"A": value}, (value, text)


@pytest.mark.parametrize("value", NASTY, ids=range(len(NASTY)))
def test_ps_quote_round_trips(value: str) -> None:
    quoted_round_trip(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))
               | st.sampled_from([*PS_QUOTES, "$", "(", ")", "`", '"', "{", "}", "#", "@"]),
               max_size=40))
def test_ps_quote_round_trips_any_text(value: str) -> None:
    quoted_round_trip(value)
