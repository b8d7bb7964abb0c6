"""Injection property (issue 17): every string field of the spec, every hostile payload, every
artifact language.

For each (field, payload) the spec (injection_cases.site_doc with the payload in that field) is
either refused by check, with an error of the field's grammar at a line that holds the value,
exactly when the grammar forbids a character of it (E201 controls, account names, paths...), or
it is accepted. The accepted payloads are then built, one spec per payload carrying it in every
field that accepts it, and each artifact is read back by dcomc's own reader and by an independent
one:

- PowerShell data files: the real PowerShell parser (one pwsh for the batch: ParseFile, no node
  outside the literal subset, SafeGetValue equal to the plan) and tree-sitter-powershell;
- .reg: Wine's `reg import` into a scratch prefix, then `reg export` (one prefix per session);
- INF: Samba's gp_inf parser (tests/targets/samba_inf.py, one /usr/bin/python3 for the batch);
- WiX: lxml, each value as wixl's preprocessor reads it (quoting.wix_unpreprocessed, defines
  substituted) in the product and payload fragment, as candle's in the firewall fragment
  (quoting.wix_untext), comments through quoting.xml_uncomment;
- netsh: dcomc's netsh reader.

Every reader must agree with the plan, and each field's value must be found whole: as one
literal (EXACT) or inside one literal or comment (WITHIN) of every kind of artifact the field
reaches (injection_cases.FIELDS); a field said to reach none must be in none. The tools are
required: a missing one fails the test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import yaml
from injection_cases import (
    EXACT,
    FIELDS,
    FILE,
    FIREWALL,
    FRAGMENT,
    INF,
    KINDS,
    NETSH,
    PAYLOADS,
    PSD1,
    REG,
    REVIEW,
    WXS,
    site_doc,
)
from lxml import etree
from markdown_it import MarkdownIt

from dcomc.pipeline import Compiled, compile_file
from dcomc_targets import TARGETS, Artifact, EmitContext, Options
from dcomc_targets.base import decode_utf16
from dcomc_targets.powershell import BOM, parse_tree
from dcomc_targets.quoting import (
    ps_unquote,
    wix_undefine,
    wix_unpreprocessed,
    wix_untext,
    xml_uncomment,
)
from dcomc_targets.regfile import RegOp
from dcomc_targets.regfile import parse as parse_reg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "targets"))

from test_powershell import data_violations, text_of, walk

HERE = Path(__file__).resolve().parent
SAMBA_INF = HERE.parent / "targets" / "samba_inf.py"
SYSTEM_PYTHON = "/usr/bin/python3"
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: a third of the time
MARK = "\ue000\ue001"  # stands for the payload while a spec is made (private use: in no value)


def need(tool: str) -> str:
    """The path of a tool the test drives; a missing one fails (CI installs them all)."""
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is required by the injection test but not installed")
    return found


# --- specs ---------------------------------------------------------------------------------


def yaml_quoted(text: str) -> str:
    """A YAML double-quoted scalar of `text`, every character that is not plainly visible (or a
    quote or backslash) written as an escape, so that the spec file holds exactly `text`."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif not char.isprintable() or char in "\u2028\u2029":
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out) + '"'


def spec_text(doc: Any, payload: str) -> tuple[str, set[int]]:
    """The YAML of `doc` with MARK as `payload`, and the lines that hold it."""
    originals: dict[str, str] = {}

    def tokenize(node: Any) -> Any:
        if isinstance(node, dict):
            return {tokenize(k): tokenize(v) for k, v in node.items()}
        if isinstance(node, list):
            return [tokenize(item) for item in node]
        if isinstance(node, str) and MARK in node:
            token = f"zqxtoken{len(originals)}qxz"
            originals[token] = node.replace(MARK, payload)
            return token
        return node

    text = yaml.dump(tokenize(doc), Dumper=DUMPER, sort_keys=False, width=1 << 20)
    lines: set[int] = set()
    for token, value in originals.items():
        for found in re.finditer(token, text):
            lines.add(text.count("\n", 0, found.start()) + 1)
        text = text.replace(token, yaml_quoted(value))
    return text, lines


def spec_file(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


DIAGNOSTIC = re.compile(r"^(.*):(\d+):(\d+): (error|warning): (.*) \[(E\d+|W\d+)\]$")


def errors_of(exc: Exception) -> list[tuple[int, int, str, str]]:
    """(line, column, code, message) of each error a refused spec was given."""
    assert type(exc).__name__ == "CompileError", f"not refused by check: {exc!r}"
    found = []
    for line in str(exc).splitlines():
        match = DIAGNOSTIC.match(line)
        assert match, f"an error without a place: {line!r}"
        if match.group(4) == "error":
            found.append((int(match.group(2)), int(match.group(3)), match.group(6),
                          match.group(5)))
    assert found, str(exc)
    return found


# --- 1. check: refused exactly where the field's grammar says -------------------------------


def injected(name: str, payload: str) -> tuple[dict[str, str], str]:
    """The values of the spec with `payload` in the field `name`, and the spec's file name."""
    if name == FILE:
        return {}, FIELDS[FILE].place(payload)
    return {name: FIELDS[name].place(MARK)}, "spec.yaml"


def accepts(name: str, payload: str) -> bool:
    return FIELDS[name].grammar(FIELDS[name].place(payload)) is None


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_check_refuses_exactly_what_the_grammar_forbids(name: str, tmp_path: Path) -> None:
    problems: list[str] = []
    for i, payload in enumerate(PAYLOADS):
        values, file_name = injected(name, payload)
        text, lines = spec_text(site_doc(values), payload)
        path = spec_file(tmp_path / str(i), file_name, text)
        refusal = FIELDS[name].grammar(FIELDS[name].place(payload))
        try:
            compile_file(path)
        except Exception as exc:
            errors = errors_of(exc)
            if refusal is None:
                problems.append(f"{payload!r}: refused, but the grammar allows it: {errors}")
                continue
            codes, _ = refusal
            # the refusal at the value (or, for the file name, at 1:1 naming it), with a code
            # of the field's grammar; any error it causes elsewhere (a reference that now names
            # nothing) at its own place, never at the 1:1 fallback
            located = [(line, code) for line, col, code, message in errors if code in codes
                       and ((line, col) == (1, 1) and "file name" in message if name == FILE
                            else line in lines)]
            fallback = [e for e in errors if e[:2] == (1, 1) and "file name" not in e[3]]
            if not located or fallback:
                problems.append(f"{payload!r}: no error of {sorted(codes)} on the value's lines "
                                f"{sorted(lines)}, or one at 1:1: {errors}")
        else:
            if refusal is not None:
                problems.append(f"{payload!r}: accepted, but {refusal[1]}")
    assert not problems, "\n".join(problems)


def refusals() -> dict[str, list[tuple[str, str]]]:
    """Field → (payload, why check refuses it), for the report."""
    out: dict[str, list[tuple[str, str]]] = {}
    for name, spec_field in FIELDS.items():
        for payload in PAYLOADS:
            refusal = spec_field.grammar(spec_field.place(payload))
            if refusal is not None:
                out.setdefault(name, []).append((payload, refusal[1]))
    return out


def test_every_string_field_of_the_format_is_a_case() -> None:
    """The fields come from the format's JSON Schema (`dcomc schema`): a new string field
    fails here until it has a case."""
    schema = json.loads(subprocess.run([sys.executable, "-m", "dcomc", "schema"],
                                       capture_output=True, text=True, check=True).stdout)
    found: set[str] = set()
    enums: set[str] = set()  # strings of a fixed list: their cases may stay, none is needed

    def visit(node: dict[str, Any], path: str) -> None:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        for alternative in node.get("anyOf", []):
            visit(alternative, path)
        if node.get("type") == "string":
            (enums if "enum" in node or "const" in node else found).add(path)
        for key, sub in node.get("properties", {}).items():
            visit(sub, f"{path}.{key}".lstrip("."))
        keyed = list(node.get("patternProperties", {}).values())  # maps: names → values
        if isinstance(node.get("additionalProperties"), dict):
            keyed.append(node["additionalProperties"])
        for sub in keyed:
            found.add(f"{path}.*")
            visit(sub, f"{path}.*")
        if node.get("type") == "array":
            visit(node["items"], f"{path}.[]")

    visit(schema, "")
    assert found - set(FIELDS) == set(), "string fields without a case"
    assert set(FIELDS) - {FILE} - found - enums == set(), "cases of no field"
    # and each case puts its payload into the spec (the file name into the file's name)
    for name in FIELDS:
        values, _ = injected(name, "x")
        assert name == FILE or MARK in json.dumps(site_doc(values), ensure_ascii=False), name


# --- 2. built: one spec per payload, in every field that accepts it -------------------------


@dataclass
class Build:
    payload: str
    values: dict[str, str]  # field → its value in this spec
    compiled: Compiled
    ctx: EmitContext
    artifacts: list[tuple[str, Any, Artifact]]  # (host, target, artifact)
    spec: Path
    files: dict[str, Path] = field(default_factory=dict)  # artifact path in the bundle → file


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> list[Build]:
    root = tmp_path_factory.mktemp("injection")
    out: list[Build] = []
    for i, payload in enumerate(PAYLOADS):
        names = [n for n in FIELDS if accepts(n, payload)]
        if not names:
            continue
        values = {n: FIELDS[n].place(MARK) for n in names if n != FILE}
        file_name = FIELDS[FILE].place(payload) if FILE in names else "spec.yaml"
        text, _ = spec_text(site_doc(values), payload)
        path = spec_file(root / f"p{i}", file_name, text)
        try:
            compiled = compile_file(path)
        except Exception as exc:
            pytest.fail(f"{payload!r} in {', '.join(names)}: each alone is accepted, together "
                        f"refused:\n{exc}")
        ctx = EmitContext(compiled.plan, Options(), path.name, compiled.sha256)
        artifacts = [(host.name, target, artifact) for host in compiled.plan.hosts
                     for target in TARGETS for artifact in target.emit(host, ctx)]
        build = Build(payload, {n: FIELDS[n].place(payload) for n in names}, compiled, ctx,
                      artifacts, path)
        for n, (host, _, artifact) in enumerate(artifacts):
            target_file = root / f"p{i}" / f"a{n}{Path(artifact.path).suffix}"
            target_file.write_bytes(artifact.data)
            build.files[f"{host}/{artifact.path}"] = target_file
        out.append(build)
    return out


def of_kind(builds: list[Build], kind: str) -> Iterator[tuple[Build, str, Any, Artifact]]:
    for build in builds:
        for host, target, artifact in build.artifacts:
            if artifact.kind == kind:
                yield build, host, target, artifact


def host_plan(build: Build, host: str) -> Any:
    return build.compiled.plan.host(host)


def plain(value: Any) -> Any:
    """Plan data as JSON reads it (tuples as lists, dataclasses as dicts)."""
    return json.loads(json.dumps(value, default=lambda o: dataclasses.asdict(o)))


def test_dcomc_reads_every_artifact_as_the_plan_says(builds: list[Build]) -> None:
    problems = []
    for build in builds:
        for host, target, artifact in build.artifacts:
            if artifact.kind != target.kinds[0]:
                continue
            got = target.read(artifact.data)
            if got != target.expected(host_plan(build, host), build.ctx):
                problems.append(f"{build.payload!r} {host}/{artifact.path}: {got}")
    assert not problems, "\n".join(problems)


# --- the literals each reader finds ------------------------------------------------------------


@dataclass
class Found:
    """What one reader read in the artifacts of one kind of one build: its literal values,
    and the text of its comments."""

    literals: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


Readings = dict[tuple[int, str], Found]  # (build index, kind) → what the reader found


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield from strings_in(dataclasses.astuple(value))


def comment_bodies(data: bytes, marker: str) -> list[str]:
    """The comment lines of a line-based artifact (.reg, INF, netsh): text after the marker
    and one space."""
    text = decode_utf16(data, "artifact") if data.startswith(b"\xff\xfe") else data.decode()
    return [line[len(marker):].removeprefix(" ") for line in text.splitlines()
            if line.startswith(marker)]


def check_found(builds: list[Build], readings: Readings, kinds: tuple[str, ...],
                reader: str) -> list[str]:
    """Each field's value is found whole in every kind of artifact it reaches, and the
    header lines (site, host, address, spec file) read back as whole comments."""
    problems = []
    for i, build in enumerate(builds):
        for name, value in build.values.items():
            for kind, how in FIELDS[name].reaches.items():
                if kind not in kinds:
                    continue
                found = readings[(i, kind)]
                if how == EXACT:
                    ok = value in found.literals
                else:
                    ok = any(value in text for text in [*found.literals, *found.comments])
                if not ok:
                    problems.append(f"{reader}: {name} = {value!r} not found {how} in {kind}")
        for kind in set(kinds) & KINDS:  # each artifact (not the review) starts with them
            comments = readings[(i, kind)].comments
            for host in build.compiled.plan.hosts:
                for line in build.ctx.header_lines(host, "")[1:]:
                    if host.name in line and line not in comments:
                        problems.append(f"{reader}: {kind} of {host.name}: header {line!r} "
                                        f"not one comment")
    return problems


# --- PowerShell -------------------------------------------------------------------------------


def test_powershell_reads_literals_only_as_the_plan_says(builds: list[Build],
                                                         tmp_path: Path) -> None:
    pwsh = need("pwsh")
    files = [(i, host, build.files[f"{host}/{artifact.path}"])
             for i, build in enumerate(builds)
             for host, _, artifact in build.artifacts if artifact.kind == PSD1]
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(str(path) for _, _, path in files) + "\n", encoding="utf-8")
    proc = subprocess.run([pwsh, "-NoProfile", "-NonInteractive", "-File",
                           str(HERE / "ps_literals.ps1"), str(listing)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(files)
    problems = []
    readings: Readings = {}
    for (i, host, path), result in zip(files, results, strict=True):
        build = builds[i]
        where = f"{build.payload!r} {host}"
        assert result["Path"] == str(path)
        problems += [f"{where}: syntax error {e}" for e in result["Errors"]]
        problems += [f"{where}: not a literal: {b}" for b in result["Bad"]]
        expected = plain(TARGETS_BY_KIND[PSD1].expected(host_plan(build, host), build.ctx))
        if result["Data"] != expected:
            problems.append(f"{where}: PowerShell reads other data than the plan")
        found = readings.setdefault((i, PSD1), Found())
        found.literals += result["Strings"]
        found.comments += [c.removeprefix("#").removeprefix(" ") for c in result["Comments"]]
    problems += check_found(builds, readings, (PSD1,), "PowerShell")
    assert not problems, "\n".join(problems)


def tree_sitter_readings(builds: list[Build], *,
                         violations: list[str] | None = None) -> Readings:
    """The literals and comments of the data files as tree-sitter-powershell reads them; every
    node outside the literal subset (test_powershell.data_violations) into `violations`."""
    readings: Readings = {}
    for i, build in enumerate(builds):
        found = readings.setdefault((i, PSD1), Found())
        for host, _, artifact in build.artifacts:
            if artifact.kind != PSD1:
                continue
            text = artifact.data.removeprefix(BOM).decode("utf-8")
            if violations is not None:
                violations += [f"{build.payload!r} {host}: {v}" for v in data_violations(text)]
            root, source = parse_tree(text)
            for node in walk(root):
                if node.type == "verbatim_string_characters":
                    found.literals.append(ps_unquote(text_of(node, source)))
                elif node.type == "comment":
                    found.comments.append(text_of(node, source).removeprefix("# "))
    return readings


def test_tree_sitter_reads_literals_only(builds: list[Build]) -> None:
    problems: list[str] = []
    readings = tree_sitter_readings(builds, violations=problems)
    problems += check_found(builds, readings, (PSD1,), "tree-sitter")
    assert not problems, "\n".join(problems)


TARGETS_BY_KIND = {target.kinds[0]: target for target in TARGETS}


# --- .reg: Wine ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    need("wine")
    prefix = tmp_path_factory.mktemp("wineprefix")
    env = {**os.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": "-all"}
    # a persistent server started apart: one that `wine` starts inherits the output pipes of
    # that call, which then waits for the server to exit (seconds after each call)
    subprocess.run(["wineserver", "-p"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=60)
    subprocess.run(["wine", "wineboot", "-i"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=300)
    yield env
    subprocess.run(["wineserver", "-k"], env=env, capture_output=True, check=False)


def windows_path(path: Path) -> str:
    return "Z:" + str(path).replace("/", "\\")


def wine_values(env: dict[str, str], key: str, out: Path) -> dict[tuple[str, str], RegOp]:
    """The values of `key` (not of its subkeys) as `reg export` writes them; none if the key
    does not exist."""
    for _ in range(2):  # once more after a failure (see the import below)
        proc = subprocess.run(["wine", "reg", "export", key, windows_path(out), "/y"],
                              env=env, capture_output=True, check=False, timeout=120)
        if proc.returncode == 0:
            break
    else:
        return {}
    ops = parse_reg(decode_utf16(out.read_bytes(), "reg export")).ops
    return {(op.key.casefold(), op.name.casefold()): op for op in ops
            if op.key.casefold() == key.casefold()}


def test_wine_imports_exactly_what_dcomc_reads(builds: list[Build], wine: dict[str, str],
                                               tmp_path: Path) -> None:
    """The .reg files imported by `reg import`: the payloads are in their comments only (the
    header, and the names in the list of what is left to the engine), so Wine must import
    exactly the values dcomc's reader reads; each key is exported before and after and must
    hold what the files set, in order, over what it held before. Of each build the .reg with
    the most comment lines (the server host's, which lists names): a Wine call is ~0.1 s."""
    imports = []
    for build in builds:
        _, host, target, artifact = max(
            of_kind([build], REG), key=lambda item: len(comment_bodies(item[3].data, ";")))
        imports.append((build, host, build.files[f"{host}/{artifact.path}"],
                        target.read(artifact.data)))
    keys = sorted({op.key for *_, content in imports for op in content.ops})
    state: dict[tuple[str, str], RegOp] = {}
    for key in keys:
        state.update(wine_values(wine, key, tmp_path / "before.reg"))
    problems = []
    for build, host, path, content in imports:
        for _ in range(2):  # once more after a failure: a loaded machine made Wine fail one
            proc = subprocess.run(["wine", "reg", "import", windows_path(path)], env=wine,
                                  capture_output=True, text=True, check=False, timeout=120)
            if proc.returncode == 0:
                break
        else:
            problems.append(f"{build.payload!r} {host}: reg import failed ({proc.returncode}): "
                            f"{proc.stdout}{proc.stderr}")
        for op in content.ops:
            slot = (op.key.casefold(), op.name.casefold())
            if op.type == "DELETE":
                state.pop(slot, None)
            else:
                state[slot] = op
    for key in keys:
        got = wine_values(wine, key, tmp_path / "after.reg")
        want = {slot: op for slot, op in state.items() if slot[0] == key.casefold()}
        if {s: (o.type, o.data) for s, o in got.items()} != {
                s: (o.type, o.data) for s, o in want.items()}:
            problems.append(f"{key}: Wine holds {sorted(got.values())}, the files set "
                            f"{sorted(want.values())}")
    problems += check_found(builds, line_readings(builds, REG, ";"), (REG,), "dcomc .reg")
    assert not problems, "\n".join(problems)


def line_readings(builds: list[Build], kind: str, marker: str) -> Readings:
    """dcomc's reader of a line-based kind, with the comment lines of its artifacts."""
    readings: Readings = {}
    for i, build in enumerate(builds):
        found = readings.setdefault((i, kind), Found())
        for _, target, artifact in build.artifacts:
            if artifact.kind == kind:
                found.literals += strings_in(target.read(artifact.data))
                found.comments += comment_bodies(artifact.data, marker)
    return readings


# --- INF: Samba -------------------------------------------------------------------------------


def test_samba_reads_the_inf_as_the_plan_says(builds: list[Build]) -> None:
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail(f"{SYSTEM_PYTHON} (with python3-samba) is required")
    infs = [(build, host, build.files[f"{host}/{artifact.path}"])
            for build, host, _, artifact in of_kind(builds, INF)]
    proc = subprocess.run([SYSTEM_PYTHON, str(SAMBA_INF), *(str(p) for *_, p in infs)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    problems = []
    for (build, host, _), line in zip(infs, proc.stdout.splitlines(), strict=True):
        samba = json.loads(line)
        plan = TARGETS_BY_KIND[INF].expected(host_plan(build, host), build.ctx)
        values = [param["values"][0] for param in samba.pop("Registry Values", [])]
        rights = {param["key"]: param["values"] for param in samba.pop("Privilege Rights", [])}
        if values != [f"{path}={rtype},{data}" for path, rtype, data in plan.registry_values] \
                or rights != {r: [f"*{s}" for s in sids] for r, sids in plan.privilege_rights} \
                or samba:
            problems.append(f"{build.payload!r} {host}: Samba reads {values} {rights} {samba}")
    problems += check_found(builds, line_readings(builds, INF, ";"), (INF,), "dcomc INF")
    assert not problems, "\n".join(problems)


# --- netsh ------------------------------------------------------------------------------------


def test_netsh_reads_every_value_whole(builds: list[Build]) -> None:
    problems = check_found(builds, line_readings(builds, NETSH, "#"), (NETSH,), "dcomc netsh")
    assert not problems, "\n".join(problems)


# --- WiX: lxml --------------------------------------------------------------------------------

# What each kind's consumer makes of an attribute value or text: wixl's preprocessor (with the
# file's defines) for the product and the payload fragment, candle's for the firewall fragment;
# then, in a Formatted column, Windows Installer's formatting: `[\\c]` is `c`, any other `[...]`
# a property (none is set: empty). Formatted are the firewall custom action's columns (its
# firewall.cpp formats each), the Registry table's key, name and value, a launch condition's
# message and a custom action's command or value.
FORMATTED = {
    FIREWALL: {("FirewallException", "Name"), ("FirewallException", "Description"),
               ("FirewallException", "Port"), ("FirewallException", "Program"),
               ("RemoteAddress", ""), ("RegistryValue", "Key"), ("RegistryValue", "Name"),
               ("RegistryValue", "Value")},
    WXS: {("Condition", "Message"), ("CustomAction", "ExeCommand"), ("CustomAction", "Value")},
    FRAGMENT: set(),
}
FORMATTING = re.compile(r"\[\\(.)\]|\[[^\[\]]*\]")


def xml_found(data: bytes, kind: str) -> Found:
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False,
                                                         no_network=True))
    defines = dict(wix_undefine(node.text or "") for node in root.iter(etree.PI)
                   if isinstance(node, etree._ProcessingInstruction) and node.target == "define")

    def value(element: str, name: str, text: str) -> str:
        read = wix_untext(text) if kind == FIREWALL else wix_unpreprocessed(text, defines)
        if (element, name) in FORMATTED[kind]:
            return FORMATTING.sub(lambda m: m.group(1) or "", read)
        return read

    found = Found()
    for node in root.iter():
        if isinstance(node, etree._Comment):
            text = str(node.text or "")
            found.comments.append(xml_uncomment(text.removeprefix(" ").removesuffix(" ")))
        elif isinstance(node.tag, str):
            element = etree.QName(node).localname
            found.literals += [value(element, str(k), str(v)) for k, v in node.attrib.items()]
            if node.text and node.text.strip():
                found.literals.append(value(element, "", node.text))
    return found


def xml_readings(builds: list[Build]) -> Readings:
    readings: Readings = {}
    for i, build in enumerate(builds):
        for kind in (WXS, FRAGMENT, FIREWALL):
            readings[(i, kind)] = Found()
        for _, _, artifact in build.artifacts:
            if artifact.kind in (WXS, FRAGMENT, FIREWALL):
                got = xml_found(artifact.data, artifact.kind)
                readings[(i, artifact.kind)].literals += got.literals
                readings[(i, artifact.kind)].comments += got.comments
    return readings


def test_xml_reads_every_value_whole(builds: list[Build]) -> None:
    problems = check_found(builds, xml_readings(builds), (WXS, FRAGMENT, FIREWALL), "lxml")
    assert not problems, "\n".join(problems)


# --- fields that reach no artifact --------------------------------------------------------------


def test_fields_said_to_reach_no_artifact_reach_none(builds: list[Build]) -> None:
    """Their values (the site description, which only the review shows, and the client and
    host descriptions) are in no artifact, as read or as written: when one starts to reach an
    artifact, its case must say where."""
    readings = {**tree_sitter_readings(builds), **xml_readings(builds)}
    for kind, marker in ((REG, ";"), (INF, ";"), (NETSH, "#")):
        readings.update(line_readings(builds, kind, marker))
    assert {kind for _, kind in readings} == KINDS
    problems = []
    for i, build in enumerate(builds):
        quiet = {n: v for n, v in build.values.items() if not set(FIELDS[n].reaches) & KINDS}
        texts = [a.data.decode("utf-16-le" if a.data.startswith(b"\xff\xfe") else "utf-8")
                 for _, _, a in build.artifacts]
        for kind in KINDS:
            texts += [*readings[(i, kind)].literals, *readings[(i, kind)].comments]
        problems += [f"{build.payload!r}: {n} = {v!r} is in an artifact"
                     for n, v in quiet.items() if any(v in text for text in texts)]
    assert not problems, "\n".join(problems)


# --- the review report: HTML (lxml) and Markdown (markdown-it-py) ------------------------------

# The payloads that mean something to HTML or Markdown: `dcomc build` (its review) of each of
# their specs, ~0.5 s apiece.
REVIEWED = ("O'Brien \"$(x)\"", "<script>", "&amp;", "**x**", "^!x!&|", "`", "[x]", "#",
            "\\", "--")


def html_found(html: bytes | str) -> Found:
    """Every text node of an HTML document (a value cut by an element is in none whole)."""
    found = Found()
    for node in lxml.html.fromstring(html).iter():
        found.literals += [t for t in (node.text, node.tail) if t]
    return found


def review_of(spec: Path, out: Path) -> tuple[Found, Found]:
    """The review.html and the REVIEW.md (rendered as GitHub renders it: CommonMark and
    tables) of `dcomc build` of `spec`, each read as text nodes."""
    proc = subprocess.run([sys.executable, "-m", "dcomc", "build", str(spec), "-o", str(out),
                           "--no-msi"], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    markdown = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    rendered = markdown.render((out / "REVIEW.md").read_text(encoding="utf-8"))
    return html_found((out / "review.html").read_bytes()), html_found(f"<div>{rendered}</div>")


# Defects this test found where its owner may not change the code: each problem here is
# expected (and must still occur: when it is fixed, remove its entry).
KNOWN: dict[str, str] = {}


def test_review_reads_every_value_whole(builds: list[Build], tmp_path: Path) -> None:
    """The review report, as a browser and a Markdown renderer read it: each field's value
    whole in one text node where the field says it reaches the review (an unescaped `**`,
    `|`, `<` or backtick would cut it into elements), and the descriptions that reach
    nothing are not in it."""
    chosen = [b for b in builds if b.payload in REVIEWED]
    assert len(chosen) == len(REVIEWED)
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(review_of, [b.spec for b in chosen],
                             [tmp_path / f"r{i}" for i in range(len(chosen))]))
    problems = []
    for reader in (0, 1):  # review.html, REVIEW.md
        readings: Readings = {(i, REVIEW): pair[reader] for i, pair in enumerate(done)}
        problems += check_found(chosen, readings, (REVIEW,), ("review.html", "REVIEW.md")[reader])
        problems += [f"{build.payload!r}: {n} = {v!r} is in the review"
                     for i, build in enumerate(chosen) for n, v in build.values.items()
                     if not FIELDS[n].reaches and any(v in text for text in
                                                      readings[(i, REVIEW)].literals)]
    unknown = [p for p in problems if p not in KNOWN]
    assert not unknown, "\n".join(unknown)
    assert set(KNOWN) <= set(problems), f"fixed, remove from KNOWN: {set(KNOWN) - set(problems)}"
