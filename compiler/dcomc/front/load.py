"""Stage 1, load: YAML text → plain Python data plus a span for every node.

PyYAML's composer gives every node a start mark; we walk the node graph ourselves instead of
using a constructor so that (a) every mapping key and value keeps its place, and (b) a duplicate
key is an error rather than PyYAML's silent last-one-wins — a spec that says `password: prompt`
twice with different text must not quietly keep one of them.

The loaded data then has its host ranges (`HMI[01-24]`) expanded (`front.expand`), so every
later stage sees plain hosts, each with the spans of the range that made it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dcomc.diagnostics import CONTROL_CHARS, NONCHARACTERS, Diagnostics, Span, shown
from dcomc.front.expand import expand_hosts

# A path into the loaded document: mapping keys and sequence indexes, as pydantic's `loc`.
NodePath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Loaded:
    """The document as plain data, and where each node (and each mapping key) came from."""

    data: Any
    spans: dict[NodePath, Span]
    key_spans: dict[NodePath, Span]
    file: str
    # Each host made by a host range → the range's key as written (`HMI07` → `HMI[01-24]`).
    host_ranges: dict[str, str] = field(default_factory=dict)

    def span(self, path: NodePath) -> Span:
        """The span of the deepest existing node on `path` (a missing key points at its parent)."""
        for cut in range(len(path), -1, -1):
            found = self.spans.get(path[:cut])
            if found is not None:
                return found
        return Span(self.file, 1, 1)

    def key_span(self, path: NodePath) -> Span:
        """The span of the mapping key that names `path`, falling back to the node's span."""
        return self.key_spans.get(path) or self.span(path)


_UNSAFE_NAME = re.compile(f"[{CONTROL_CHARS}{NONCHARACTERS}]")


def load_file(path: Path, diags: Diagnostics) -> Loaded | None:
    """Read and load a spec file; None (with diagnostics) when it cannot be loaded."""
    found = _UNSAFE_NAME.search(path.name)
    if found is not None:  # the name is written into every artifact's header (and comments)
        diags.error(Span(str(path), 1, 1), "E201", f"character U+{ord(found.group()):04X} in "
                    f"the spec's file name '{shown(path.name)}': rename the file (its name is "
                    "written into every artifact)")
    try:
        raw = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    except OSError as exc:
        diags.error(Span(str(path), 1, 1), "E001", f"cannot read spec: {exc}")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # placed at the byte, counted in characters
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        span = Span(str(path), raw.count(b"\n", 0, exc.start) + 1, column)
        diags.error(span, "E001", f"cannot read spec: not UTF-8 (byte 0x{raw[exc.start]:02x}: "
                    f"{exc.reason}); save the file as UTF-8")
        return None
    return load_text(text, str(path), diags)


def _offset_span(file: str, text: str, offset: int) -> Span:
    """The line and column of a character offset into `text`."""
    return Span(file, text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset))


# libyaml's composer (same nodes, same marks, eight times faster) when PyYAML has it; the pure
# Python one for a file it refuses, so that the messages stay the same with or without libyaml.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_text(text: str, file: str, diags: Diagnostics) -> Loaded | None:
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = _mark_span(file, mark) if mark else Span(file, 1, 1)
        where = ""
        if exc.context and exc.context_mark and exc.problem_mark:
            where = f" ({exc.context} at line {exc.context_mark.line + 1})"
        diags.error(span, "E001", f"malformed YAML: {exc.problem or exc.context}{where}")
        return None
    except yaml.reader.ReaderError as exc:  # no mark, but the character's offset
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        diags.error(_offset_span(file, text, exc.position), "E001", f"malformed YAML: "
                    f"unacceptable character U+{code:04X}: {exc.reason}")
        return None
    except yaml.YAMLError as exc:
        diags.error(Span(file, 1, 1), "E001", f"malformed YAML: {exc}")
        return None
    except RecursionError:  # the pure-Python parser (no libyaml) on a document thousands deep
        diags.error(Span(file, 1, 1), "E001", "malformed YAML: nested too deeply to read")
        return None
    if root is None:
        diags.error(Span(file, 1, 1), "E001", "the spec is empty")
        return None
    tags = _tag_spans(text, file)
    for span in tags:  # never the value: `password: !!int <secret>` must not echo it
        diags.error(span, "E005", "YAML tags (!!int, !!str, !name, a bare !) are not "
                    "allowed in a spec: remove the tag and write the value plain or quoted")
    if tags:
        return None
    builder = _Builder(file, diags, _expansion_limit(root))
    try:
        data = builder.build(root, ())
    except _LimitError as exc:
        diags.error(exc.span, "E001", exc.message)
        return None
    ranges = expand_hosts(data, builder.spans, builder.key_spans, diags)
    return Loaded(data, builder.spans, builder.key_spans, file, ranges)


def _expansion_limit(root: yaml.Node) -> int:
    """How many values the builder may make: each alias (*name) copies its anchor's subtree, so
    a few lines can stand for 10**9 values (a "billion laughs" document) and loading would
    never end. Reusing a permission block a few dozen times stays far below this."""
    seen: set[int] = set()
    stack = [root]
    while stack:  # the distinct nodes, each alias counted once
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack += [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return 50 * len(seen) + 100_000


MAX_DEPTH = 32  # a spec nests 8 levels at most; Python's own recursion limit is 1,000


class _LimitError(Exception):
    """The document is beyond what a spec can be: too deep, or aliases that expand too far."""

    def __init__(self, span: Span, message: str) -> None:
        super().__init__(message)
        self.span, self.message = span, message


def yaml_quote(text: str) -> str:
    """A YAML single-quoted scalar for one line of text: the only escape is '' for '."""
    return "'" + text.replace("'", "''") + "'"


def load_data(text: str) -> Any:
    """Plain data of a YAML file shipped with dcomc (catalog, knowledge base): no spans."""
    return yaml.load(text, Loader=_FAST_LOADER)


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as fast_error:
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)  # raises, with the usual message
        except RecursionError:  # too deep for the Python parser: libyaml's message then
            raise fast_error from None


_TAGGED = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)


def _tag_spans(text: str, file: str) -> list[Span]:
    """Where the document gives a node an explicit tag. A tag picks the constructor (`!!int
    xyz`, `!!timestamp nope` raise inside PyYAML, `!foo` has none) or changes a value's type
    behind its text, so a spec has none. The composed nodes cannot tell `!!int 5` from `5`;
    the parser's events can (their tag is None unless one is written), and a tag starts with
    `!`, so a document without one is not parsed twice."""
    if "!" not in text:
        return []
    try:
        events = list(yaml.parse(text, Loader=_FAST_LOADER))
    except yaml.YAMLError:  # libyaml refuses what PyYAML's parser took (a surrogate escape)
        events = list(yaml.parse(text, Loader=yaml.SafeLoader))
    return [_mark_span(file, event.start_mark)
            for event in events if isinstance(event, _TAGGED) and event.tag is not None]


def _mark_span(file: str, mark: Any) -> Span:
    return Span(file, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns a composed node graph into data, recording spans and refusing duplicate keys."""

    def __init__(self, file: str, diags: Diagnostics, limit: int) -> None:
        self.file = file
        self.diags = diags
        self.limit, self._made = limit, 0
        self.spans: dict[NodePath, Span] = {}
        self.key_spans: dict[NodePath, Span] = {}
        self._scalar = yaml.SafeLoader("")  # only its scalar resolver/constructor are used

    def build(self, node: yaml.Node, path: NodePath) -> Any:
        span = self.spans[path] = _mark_span(self.file, node.start_mark)
        self._made += 1
        if self._made > self.limit:
            raise _LimitError(span, f"the spec's aliases (*name) expand to more than "
                              f"{self.limit:,} values (here, inside an anchored part): write "
                              "the repeated parts out, or alias less")
        if len(path) > MAX_DEPTH:
            raise _LimitError(span, f"nested deeper than {MAX_DEPTH} levels: a spec never is")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: NodePath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_seen: dict[str, Span] = {}
        for key_node, value_node in node.value:
            key_span = _mark_span(self.file, key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.diags.error(key_span, "E002", "YAML merge keys (<<) are not supported")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.diags.error(key_span, "E002", "a mapping key must be a plain string")
                continue
            key = self._key_text(key_node)
            if key in first_seen:
                self.diags.error(
                    key_span,
                    "E002",
                    f"duplicate key '{key}' (first defined at line {first_seen[key].line})",
                )
                continue
            first_seen[key] = key_span
            self.key_spans[(*path, key)] = key_span
            out[key] = self.build(value_node, (*path, key))
        return out

    def _key_text(self, node: yaml.ScalarNode) -> str:
        # Keys are names (users, hosts, servers): keep them as written, even `yes` or `1`.
        return str(node.value)
