"""PowerShell target: the engine, the entry point, and each host's data file.

- `powershell/DcomConfig.psm1` — the engine (templates/powershell/), identical for every host
  and site: what IT reviews once is what runs everywhere.
- `powershell/Invoke-DcomConfig.ps1` — the entry point (Test, Apply, Report, Rollback).
- `powershell/<HOST>.psd1` — the host's plan as LITERALS ONLY (hashtables, arrays, single-
  quoted strings, integers, $true/$false/$null), so that `Import-PowerShellDataFile` loads it
  in the restricted language and no code can hide in it. Every string goes through
  `quoting.ps_quote`.

All files are UTF-8 with BOM: Windows PowerShell 5.1 reads BOM-less files in the ANSI code
page and would garble `§`, `Ü` or typographic quotes. The reader parses the data file with
tree-sitter-powershell and accepts only the literal subset the writer emits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from enum import Enum
from functools import cache
from typing import Any

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser, Point

from dcomc.plan.model import AceSpec, HostPlan, Resource, data_fields
from dcomc_targets.base import Artifact, EmitContext, template_bytes, templates_dir
from dcomc_targets.quoting import ps_quote, ps_unquote

BOM = b"\xef\xbb\xbf"
ENGINE = "DcomConfig.psm1"
ENTRY = "Invoke-DcomConfig.ps1"
FORMAT_VERSION = 1
# Single-child grammar wrappers between a statement and its literal value.
_WRAPPERS = frozenset({
    "program", "statement_list", "pipeline", "pipeline_chain", "logical_expression",
    "bitwise_expression", "comparison_expression", "additive_expression",
    "multiplicative_expression", "format_expression", "range_expression",
    "array_literal_expression", "unary_expression", "string_literal", "integer_literal",
    "key_expression",
})
# Reading back: values nested deeper than this are refused (dcomc's data files nest about 8
# deep; a deeper one would only exhaust Python's recursion), and tree-sitter gets this long to
# parse a script whose syntax errors `dcomc inspect` lists (its error recovery takes seconds
# on a few hundred kB of garbage; the shipped engine takes milliseconds).
MAX_DEPTH = 64
PARSE_SECONDS = 2.0


# --- plan → data -------------------------------------------------------------------------------


@cache
def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(field, PascalCase key) of a dataclass, looked up once per class."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple((f.name, pascal(f.name)) for f in dataclasses.fields(cls))
    return found


_PLAIN = frozenset({str, int, bool, type(None)})


class _Strings(list[str]):
    """A long tuple of strings of the plan (a firewall rule's remote addresses) as data: a list
    like any other to the comparisons and the JSON of `diff`, `drift` and `explain`, that
    carries the PowerShell literal of its tuple, shared by every equal tuple. With `remote:
    site` a scope can be hundreds of networks, repeated in rules of many hosts; rendering it
    for each rule was a third of a large site's build (issue 18)."""

    __slots__ = ("literals",)
    literals: dict[int, str]  # by indentation: the literal as _render writes it


# Tuples of strings this long or longer are rendered once per distinct tuple (the literals of
# the most recent MAX_LISTS tuples are kept): shorter ones cost less to render than to look up.
MIN_SHARED = 8
MAX_LISTS = 256
_LITERALS: dict[tuple[str, ...], dict[int, str]] = {}


def _strings(value: tuple[Any, ...]) -> list[Any]:
    try:
        literals = _LITERALS.get(value) if type(value[0]) is str else None
    except TypeError:  # an unhashable item: not a tuple of strings
        literals = None
    if literals is None:
        if not all(type(v) is str for v in value):  # exact type: to_data changes a StrEnum
            return [to_data(v) for v in value]
        if len(_LITERALS) >= MAX_LISTS:
            del _LITERALS[next(iter(_LITERALS))]
        literals = _LITERALS[value] = {}
    out = _Strings(value)
    out.literals = literals
    return out


def to_data(value: Any) -> Any:
    """IR values as plain data with PascalCase keys (the engine's vocabulary)."""
    if type(value) in _PLAIN:  # most values: tested first, by exact type (StrEnum is a str)
        return value
    if type(value) is tuple and len(value) >= MIN_SHARED:
        return _strings(value)
    if isinstance(value, AceSpec):
        return {"Principal": to_data(value.principal), "Mask": value.mask}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: to_data(getattr(value, name)) for name, key in _fields(type(value))}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    return value


def resource_data(resource: Resource, spec_name: str) -> dict[str, Any]:
    head = {
        "Id": resource.id,
        "Kind": resource.kind,
        "Phase": resource.phase,
        "Guide": resource.prov.guide,
        "Source": _source(resource, spec_name),
    }
    return head | {pascal(name): to_data(getattr(resource, name))
                   for name in data_fields(type(resource))}


def _source(resource: Resource, spec_name: str) -> str | None:
    """Where the spec says it: the spec's file name only, so that the same spec gives the same
    bytes from any folder."""
    span = resource.prov.span
    return f"{spec_name}:{span.line}:{span.col}" if span else None


def host_data(host: HostPlan, ctx: EmitContext) -> dict[str, Any]:
    """The data file's content: the plan, and the hash of what the host is built from."""
    data = plan_data(host, ctx)
    resources = data.pop("Resources")
    return data | {"InputsSha256": ctx.inputs_sha256(host), "Resources": resources}


def plan_data(host: HostPlan, ctx: EmitContext) -> dict[str, Any]:
    """The host's plan in the data file's form, without its inputs hash (hashed for it)."""
    return _plan_head(host, ctx) | {
        "Resources": [resource_data(r, ctx.spec_name) for r in host.resources]}


def _plan_head(host: HostPlan, ctx: EmitContext) -> dict[str, Any]:
    return {
        "FormatVersion": FORMAT_VERSION,
        "Site": ctx.plan.site,
        "Host": host.name,
        "Address": host.address,
        "Roles": list(host.roles),
        "Generator": f"dcomc {ctx.version}",
        "Spec": ctx.spec_name,
    }


# --- data → .psd1 text -------------------------------------------------------------------------


def render(value: Any, indent: int = 0) -> str:
    """A PowerShell literal for plain data; strings only through ps_quote."""
    out: list[str] = []
    _render(value, indent, out)
    return "".join(out)


class _Rendered(str):
    """A value already rendered (a resource's literal, `_data_literal`): written as it is."""

    __slots__ = ()


# The literals of the most recent MAX_RESOURCES distinct resources, by (resource, guide
# section): equal resources (frozen dataclasses, compared field by field but the provenance)
# have equal data but their Source, the place in the spec, which is cut out of the cached
# literal (before, after) and written per resource. Most resources of a site are the same on
# many of its hosts (10,000 hosts: 100,000 resources, under 10,000 distinct); rendering each
# of them again was most of the data file's cost (issue 18).
MAX_RESOURCES = 8192
_RESOURCES: dict[tuple[Resource, str], tuple[str, str] | None] = {}
RESOURCE_INDENT = 2  # a resource's dict in the data file: @{ Resources = @( @{ ...
_SOURCE = "dcomc-source-3f0c9b7e5d21"  # stands for the Source in a cached literal


def _data_literal(host: HostPlan, ctx: EmitContext) -> str:
    """render(host_data(host, ctx)) (test_emit_caches compares them), each resource's literal
    made once per distinct resource: its data (resource_data) only then."""
    literals = []
    for resource in host.resources:
        key = (resource, resource.prov.guide)
        if key not in _RESOURCES:
            if len(_RESOURCES) >= MAX_RESOURCES:
                del _RESOURCES[next(iter(_RESOURCES))]
            item = resource_data(resource, ctx.spec_name) | {"Source": _SOURCE}
            _RESOURCES[key] = _source_cut(render(item, RESOURCE_INDENT))
        parts = _RESOURCES[key]
        literals.append(_Rendered(
            render(resource_data(resource, ctx.spec_name), RESOURCE_INDENT) if parts is None
            else parts[0] + _scalar(_source(resource, ctx.spec_name)) + parts[1]))
    return render(_plan_head(host, ctx) | {"InputsSha256": ctx.inputs_sha256(host),
                                           "Resources": literals})


def _source_cut(literal: str) -> tuple[str, str] | None:
    """The literal around its Source placeholder; None if it is not there exactly once."""
    before, found, after = literal.partition(ps_quote(_SOURCE))
    return (before, after) if found and _SOURCE not in before + after else None


def _render(value: Any, indent: int, out: list[str]) -> None:
    """Append the literal of `value` to `out` (one list for the whole file: nested literals
    are not joined level by level)."""
    if not isinstance(value, dict | list):
        out.append(_scalar(value))
    elif not value:
        out.append("@{}" if isinstance(value, dict) else "@()")
    else:
        pad = "    " * (indent + 1)
        out.append("@{\n" if isinstance(value, dict) else "@(\n")
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        for key, item in items:
            out.append(pad if key is None else f"{pad}{_key(key)} = ")
            if type(item) is _Rendered:
                out.append(item)
            elif type(item) is _Strings:
                literal = item.literals.get(indent + 1)
                if literal is None:
                    literal = item.literals[indent + 1] = render(list(item), indent + 1)
                out.append(literal)
            elif isinstance(item, dict | list):
                _render(item, indent + 1, out)
            else:  # most items: no call for a scalar
                out.append(_scalar(item))
            out.append("\n")
        out.append("    " * indent + ("}" if isinstance(value, dict) else ")"))


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return ps_quote(value)
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if value is None:
        return "$null"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"no PowerShell literal for {type(value).__name__}")


@cache
def _key(key: str) -> str:
    if key.isidentifier() and key.isascii():
        return key
    return ps_quote(key)


def data_file(host: HostPlan, ctx: EmitContext) -> bytes:
    """The host's data file (<HOST>.psd1), byte for byte."""
    header = [f"# {line}" for line in ctx.header_lines(host, "Data of the dcomc engine")]
    header += ["# Literals only: loaded with Import-PowerShellDataFile (restricted language).",
               f"# Run: .\\{ENTRY} [-Mode Test|Apply|Report|Rollback]"]
    return _bom_crlf("\n".join(header) + "\n" + _data_literal(host, ctx) + "\n")


class PowerShellTarget:
    name: str = "powershell"
    kinds: tuple[str, ...] = ("powershell-data", "powershell-engine", "powershell-entry")

    def emit(self, host: HostPlan, ctx: EmitContext) -> list[Artifact]:
        return [
            Artifact(f"powershell/{host.name}.psd1", "powershell-data", data_file(host, ctx)),
            Artifact(f"powershell/{ENGINE}", "powershell-engine", _static(ENGINE)),
            Artifact(f"powershell/{ENTRY}", "powershell-entry", _static(ENTRY)),
        ]

    def expected(self, host: HostPlan, ctx: EmitContext) -> dict[str, Any]:
        return host_data(host, ctx)

    def covers(self, host: HostPlan, ctx: EmitContext) -> set[str]:
        return {r.id for r in host.resources}  # the engine applies every resource

    def read(self, data: bytes) -> Any:
        return parse_data(_text(data))

    def sniff(self, data: bytes, name: str) -> bool:
        return name.endswith((".psd1", ".psm1", ".ps1"))

    def inspect(self, data: bytes) -> Any:
        text = _text(data)
        key = hashlib.sha256(data).digest()
        script = _SCRIPTS.get(key)
        if script is None:
            # One parse serves both views: the data file's literals and, for anything else,
            # the script's functions and syntax errors (it was parsed once for each).
            deadline = time.monotonic() + PARSE_SECONDS
            root, source = parse_tree(text, seconds=PARSE_SECONDS)
            try:
                found = _data_value(root, source) if not root.has_error else None
            except ValueError:
                found = None  # not a data file: show it as a script
            if isinstance(found, dict):
                return {"kind": "powershell-data", **found}
            script = _SCRIPTS[key] = _script_walk(root, source, deadline)
            if len(_SCRIPTS) > MAX_SCRIPTS:  # the oldest goes (a fuzzer reads millions)
                del _SCRIPTS[next(iter(_SCRIPTS))]
        functions, errors = script
        return {"kind": "powershell-script", "functions": list(functions),
                "syntax_errors": [f"{r}:{c}: {snippet}" for r, c, snippet in errors]}


ENGINE_PARTS = "engine"


def _template_text(*parts: str) -> str:
    """A template's text without any byte-order mark of its own: the writer adds exactly one
    (a second one is a U+FEFF character that breaks the first line of the script)."""
    return template_bytes(*parts).decode("utf-8-sig").lstrip("\ufeff")


@cache
def engine_text() -> str:
    """The engine module: the part files in the order of their names, each under a comment
    that names it, so a reviewer can find a line of the .psm1 in the source."""
    folder = templates_dir() / "powershell" / ENGINE_PARTS
    names = sorted(p.name for p in folder.glob("*.ps1"))
    return "\n".join(f"# --- {ENGINE_PARTS}/{name} ---\n"
                     + _template_text("powershell", ENGINE_PARTS, name).rstrip("\n") + "\n"
                     for name in names)


@cache
def _static(name: str) -> bytes:
    if name == ENGINE:
        return _bom_crlf(engine_text())
    return _bom_crlf(_template_text("powershell", name))


def _bom_crlf(text: str) -> bytes:
    return BOM + text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _text(data: bytes) -> str:
    if not data.startswith(BOM):
        raise ValueError("PowerShell file without a UTF-8 BOM (Windows PowerShell 5.1 would "
                         "read it in the ANSI code page)")
    return data[len(BOM):].decode("utf-8")


# --- reader: tree-sitter-powershell ------------------------------------------------------------


@cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def parse_tree(text: str, *, stop_at_error: bool = False,
               seconds: float | None = None) -> tuple[Node, bytes]:
    """The syntax tree of `text` and its UTF-8 bytes. With `stop_at_error`, parsing stops at
    the first syntax error (ValueError `syntax error near line:column`) instead of
    recovering, which can take seconds on garbage; with `seconds`, a parse that takes longer
    is abandoned (ValueError)."""
    source = text.encode("utf-8")
    if not stop_at_error and seconds is None:
        return _parser().parse(source).root_node, source
    deadline = time.monotonic() + seconds if seconds is not None else None
    reached = [0, 0]  # byte offset, and whether an error stopped the parse

    def read(offset: int, _point: Point) -> bytes:
        return source[offset : offset + 65536]

    def stop(offset: int, has_error: bool) -> bool:
        reached[0] = offset
        if stop_at_error and has_error:
            reached[1] = 1
            return True
        return deadline is not None and time.monotonic() > deadline

    try:
        tree = _parser().parse(read, progress_callback=stop)
    except ValueError:  # cancelled by `stop`
        _parser().reset()  # or the next parse would resume this one
        offset = reached[0]
        if reached[1]:
            line = source.count(b"\n", 0, offset) + 1
            col = offset - (source.rfind(b"\n", 0, offset) + 1) + 1
            excerpt = source[offset : offset + 40].decode("utf-8", "replace")
            raise ValueError(f"syntax error near {line}:{col}: {excerpt!r}") from None
        raise ValueError(f"the parse took over {seconds:g} s and was abandoned (reached byte "
                         f"{offset} of {len(source)}): garbled or nested too deeply") from None
    return tree.root_node, source


def syntax_errors(text: str) -> list[tuple[int, int, str]]:
    """ERROR and MISSING nodes: (line, column, source excerpt), 1-based."""
    root, source = parse_tree(text)
    return list(_script_walk(root, source, float("inf"))[1])


def _first_error(root: Node, source: bytes) -> tuple[int, int, str]:
    """The first ERROR or MISSING node of a tree that has one, as syntax_errors gives it;
    only nodes that contain an error are entered (a tree can have millions of nodes)."""
    node = root
    while not (node.type == "ERROR" or node.is_missing):
        child = next((c for c in node.children if c.has_error), None)
        if child is None:
            break
        node = child
    excerpt = source[node.start_byte : node.start_byte + 60].decode("utf-8", "replace")
    return node.start_point[0] + 1, node.start_point[1] + 1, excerpt


# The script view of each script read so far, by the SHA-256 of its bytes: a bundle holds the
# same 75 kB engine (and entry point) in every host's folder, and `inspect` of 1,000 hosts
# spent nearly all its time parsing them again (issue 18). Data files are not kept: each
# host's is its own, and a script's view is small (names and errors, as tuples that no caller
# can change).
MAX_SCRIPTS = 64
_SCRIPTS: dict[bytes, tuple[tuple[str, ...], tuple[tuple[int, int, str], ...]]] = {}


def _script_walk(root: Node, source: bytes, deadline: float,
                 ) -> tuple[tuple[str, ...], tuple[tuple[int, int, str], ...]]:
    """The function names and syntax_errors of a parsed script in one walk, done by `deadline`
    (ValueError otherwise): a few hundred kB of garbage make a tree of a million nodes."""
    names: list[str] = []
    errors: list[tuple[int, int, str]] = []
    cursor = root.walk()
    visited = 0
    while True:  # pre-order: the functions in file order
        node = cursor.node
        assert node is not None
        visited += 1
        if visited % 4096 == 0 and time.monotonic() > deadline:
            raise ValueError(f"PowerShell: the script is too large or garbled to read in "
                             f"{PARSE_SECONDS:g} s ({len(source)} bytes)")
        if node.type == "ERROR" or node.is_missing:
            excerpt = source[node.start_byte : node.start_byte + 60].decode("utf-8", "replace")
            errors.append((node.start_point[0] + 1, node.start_point[1] + 1, excerpt))
        elif node.type == "function_statement":
            name = next((c for c in node.children if c.type == "function_name"), None)
            if name is not None:
                names.append(source[name.start_byte : name.end_byte].decode("utf-8", "replace"))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return tuple(names), tuple(sorted(errors))


def parse_data(text: str) -> Any:
    """Read a data file back; refuses anything but the literal subset the writer emits
    (ValueError, one line). A syntax error stops the parse where it is found."""
    try:
        root, source = parse_tree(text, stop_at_error=True, seconds=PARSE_SECONDS)
    except ValueError as exc:
        raise ValueError(f"psd1: {exc}") from None
    if root.has_error:  # an error the parse did not stop at (a MISSING node at the end...)
        line, col, excerpt = _first_error(root, source)
        raise ValueError(f"psd1: syntax error at {line}:{col}: {excerpt!r}")
    return _data_value(root, source)


def _data_value(root: Node, source: bytes) -> Any:
    """The one literal of a parsed data file without syntax errors (ValueError otherwise)."""
    values = [c for c in root.children if c.type != "comment"]
    if len(values) != 1:
        raise ValueError("psd1: expected exactly one hashtable")
    return _Literal(source).value(values[0])


class _Literal:
    def __init__(self, source: bytes) -> None:
        self.source = source

    def text(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def value(self, node: Node, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"psd1: values nested deeper than {MAX_DEPTH} levels")
        node = self._unwrap(node)
        kind = node.type
        if kind == "hash_literal_expression":
            return self._hash(node, depth + 1)
        if kind == "array_expression":
            return [self.value(c, depth + 1) for c in self._items(node)]
        if kind == "verbatim_string_characters":
            return ps_unquote(self.text(node))
        if kind == "decimal_integer_literal":
            digits = self.text(node)
            if len(digits) > 20:  # beyond any 64-bit value
                raise ValueError(f"psd1: an integer of {len(digits)} digits")
            return int(digits)
        if kind == "expression_with_unary_operator" and self.text(node).startswith("-"):
            operand = self.value(node.children[-1], depth + 1)
            if isinstance(operand, int) and not isinstance(operand, bool):
                return -operand
        if kind == "variable":
            return self._variable(node)
        raise ValueError(f"psd1: {kind} is not a literal: {self.text(node)[:40]!r}")

    def _unwrap(self, node: Node) -> Node:
        while node.type in _WRAPPERS:
            only = node.child(0) if node.child_count == 1 else None
            if only is not None and only.type != "comment":  # most wrappers: one call
                node = only
                continue
            children = [c for c in node.children if c.type != "comment"]
            if len(children) != 1:
                raise ValueError(f"psd1: unexpected {node.type}: {self.text(node)[:40]!r}")
            node = children[0]
        return node

    def _items(self, node: Node) -> list[Node]:
        body = [c for c in node.children if c.type not in ("@(", ")", "comment")]
        if not body:
            return []
        if len(body) != 1:
            raise ValueError(f"psd1: unexpected array: {self.text(node)[:40]!r}")
        return [c for c in body[0].children if c.type not in ("comment", ";")]

    def _hash(self, node: Node, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for body in (c for c in node.children if c.type == "hash_literal_body"):
            for entry in (c for c in body.children if c.type == "hash_entry"):
                parts = [c for c in entry.children if c.type != "comment"]
                if len(parts) != 3:
                    raise ValueError(f"psd1: unexpected entry: {self.text(entry)[:40]!r}")
                key_node, _, value_node = parts
                key = self._key(key_node)
                if key in out:
                    raise ValueError(f"psd1: duplicate key {key!r}")
                out[key] = self.value(value_node, depth)
        return out

    def _key(self, node: Node) -> str:
        node = self._unwrap(node)
        if node.type == "simple_name":
            return self.text(node)
        if node.type == "verbatim_string_characters":
            return ps_unquote(self.text(node))
        raise ValueError(f"psd1: bad key {self.text(node)[:40]!r}")

    def _variable(self, node: Node) -> Any:
        constants = {"$true": True, "$false": False, "$null": None}
        name = self.text(node).lower()
        if name not in constants:
            raise ValueError(f"psd1: variable {self.text(node)!r} in a data file")
        return constants[name]
