"""Stage 1b, expand: host ranges (`HMI[01-24]`) → plain hosts, before the models see the data.

A key of `hosts:` that holds `[first-last]` stands for one host per number, and its `address`
holds one `[first-last]` with as many numbers: `HMI[01-24]: {address: 10.0.0.[11-34]}` is
HMI01 at 10.0.0.11 … HMI24 at 10.0.0.34, each with the range's other keys. Everything after
this stage (models, checks, plan, artifacts, review) sees only plain hosts; each generated
host keeps the range's spans, so every later diagnostic and every plan provenance points at
the range's lines. There is no per-host override inside a range: a host that differs is
written out on its own, and the range is split around it (`HMI[01-11]`, `HMI12`,
`HMI[13-24]`); a generated name that is already a host is an error, never an override.

Errors are located at the range key (E213 the range, E204 a collision) or at its address
(E220); a range with an error is kept as written (unexpanded), so the models still report
the shape errors of its keys once. This module imports nothing of the loader, which calls it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from dcomc.diagnostics import Diagnostics, Span, shown

NodePath = tuple[str | int, ...]  # as dcomc.front.load.NodePath (which imports this module)

# One range: decimal bounds. Names and addresses may hold one each.
RANGE = re.compile(r"\[([0-9]{1,9})-([0-9]{1,9})\]")  # ASCII: \d would take any script's digits
MAX_RANGE = 10_000  # hosts per range: a plant line has hundreds; a typo must not make 10**9
MAX_GENERATED = 100_000  # hosts from all ranges: a few lines must not stand for millions
NAME_MAX = 15  # NetBIOS computer names (checks.site says why the rest of the rules hold)


@dataclass(frozen=True, slots=True)
class Range:
    """A parsed `[first-last]`: its numbers as written (zero-padded to the first bound)."""

    first: int
    last: int
    width: int
    start: int  # where `[` stands in the text
    end: int  # just after `]`

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    @property
    def widest(self) -> str:
        return str(self.last).zfill(self.width)

    def numbers(self) -> list[str]:
        return [str(n).zfill(self.width) for n in range(self.first, self.last + 1)]

    def fill(self, text: str, number: str) -> str:
        return text[: self.start] + number + text[self.end :]


def is_range_key(key: str) -> bool:
    """Whether a host key is meant as a range (a `[` or `]` is in no computer name)."""
    return "[" in key or "]" in key


def parse_range(text: str, example: str = "HMI[01-24]") -> Range | str:
    """The one range in `text`, or why it is not one."""
    found = list(RANGE.finditer(text))
    rest = RANGE.sub("", text)
    if len(found) != 1 or "[" in rest or "]" in rest:
        return f"expected one range [first-last] of decimal numbers, e.g. {example}"
    first, last = found[0].group(1), found[0].group(2)
    if int(first) > int(last):
        return f"the range counts down ({first} > {last}); write it as [{last}-{first}]"
    if int(last) - int(first) >= MAX_RANGE:
        return f"the range holds more than {MAX_RANGE:,} numbers"
    return Range(int(first), int(last), len(first), found[0].start(), found[0].end())


@dataclass(frozen=True, slots=True)
class _Template:
    """The spans found under a range key, relative to it."""

    spans: list[tuple[NodePath, Span]]
    key_spans: list[tuple[NodePath, Span]]


class _Expander:
    """Rewrites `hosts` of the loaded data in place, with the spans of the generated hosts."""

    def __init__(self, spans: dict[NodePath, Span], key_spans: dict[NodePath, Span],
                 diags: Diagnostics) -> None:
        self.spans, self.key_spans, self.diags = spans, key_spans, diags
        self.origins: dict[str, str] = {}  # generated host → its range key
        self.seen: dict[str, str] = {}  # every host name so far → the key that made it
        # each key's span as loaded: a generated host's spans replace a later same-named host's
        self.written: dict[str, Span] = {}

    def run(self, hosts: dict[str, Any]) -> dict[str, Any]:
        if not any(is_range_key(key) for key in hosts):
            return hosts  # the common case: nothing to rewrite, no spans to copy
        template_spans = self._template_spans(hosts)
        self.written = {key: self.key_spans[("hosts", key)] for key in hosts}
        out: dict[str, Any] = {}
        for key, value in hosts.items():
            expanded = self._expand(key, value) if is_range_key(key) else None
            for name, host in (expanded or {key: value}).items():
                if self._fresh(name, key):
                    out[name] = host
                    if expanded is not None:
                        self._copy_spans(name, template_spans[key])
        return out

    def _fresh(self, name: str, key: str) -> bool:
        """False (with E204 at `key`) when `name` is already a host."""
        first = self.seen.setdefault(name, key)
        if first == key:
            return True
        line = self.written[first].line
        if name == key:
            what = f"host '{name}' is also given by the range '{first}' (line {line})"
        elif first == name:
            what = f"host range '{key}' gives '{name}', which is already a host (line {line})"
        else:
            what = (f"host range '{key}' gives '{name}', which the range '{first}' (line "
                    f"{line}) gives too")
        self.diags.error(self.written[key], "E204", f"{shown(what, 400)}: "
                         "write such a host out on its own and split the range around it")
        return False

    def _expand(self, key: str, value: Any) -> dict[str, Any] | None:
        """The hosts of range `key`, or None (with errors, unless the models will report)."""
        where = self.key_spans[("hosts", key)]
        names = parse_range(key)
        if isinstance(names, str):
            self.diags.error(where, "E213", f"invalid host range '{shown(key)}': {names}")
            return None
        longest = names.fill(key, names.widest)
        if len(longest) > NAME_MAX:
            self.diags.error(where, "E213", f"host range '{shown(key)}' gives names of up to "
                             f"{len(longest)} characters ('{shown(longest)}'); a computer "
                             f"name has at most {NAME_MAX}")
            return None
        if not isinstance(value, dict) or not isinstance(value.get("address"), str):
            return None  # not a host's shape: the models report it, at the range
        if len(self.origins) + names.count > MAX_GENERATED:
            self.diags.error(where, "E213", f"host range '{shown(key)}': the spec's ranges "
                             f"give more than {MAX_GENERATED:,} hosts")
            return None
        addresses = self._addresses(key, value["address"], names)
        if addresses is None:
            return None
        hosts: dict[str, Any] = {}
        for number, address in zip(names.numbers(), addresses, strict=True):
            name = names.fill(key, number)
            hosts[name] = {**copy.deepcopy(value), "address": address}
            self.origins[name] = key
        return hosts

    def _addresses(self, key: str, text: str, names: Range) -> list[str] | None:
        where = self.spans[("hosts", key, "address")]
        found = parse_range(text, example="10.7.3.[21-44]")
        if isinstance(found, str):
            self.diags.error(where, "E220", f"invalid address range '{shown(text)}' of host "
                             f"range '{shown(key)}': {found} (each host needs its own address)")
            return None
        if found.count != names.count:
            self.diags.error(where, "E220", f"address range '{shown(text)}' gives "
                             f"{found.count:,} addresses for the {names.count:,} hosts of "
                             f"'{shown(key)}'")
            return None
        return [found.fill(text, number) for number in found.numbers()]

    def _template_spans(self, hosts: dict[str, Any]) -> dict[str, _Template]:
        """The spans under each range key, gathered in one pass over all spans (not one per
        generated host: a 20,000-host spec has hundreds of thousands)."""
        grouped = {key: _Template([], []) for key in hosts if is_range_key(key)}
        for spans, into in ((self.spans, "spans"), (self.key_spans, "key_spans")):
            for path, span in spans.items():
                if len(path) >= 2 and path[0] == "hosts" and path[1] in grouped:
                    getattr(grouped[str(path[1])], into).append((path[2:], span))
        return grouped

    def _copy_spans(self, name: str, template: _Template) -> None:
        for rest, span in template.spans:
            self.spans[("hosts", name, *rest)] = span
        for rest, span in template.key_spans:
            self.key_spans[("hosts", name, *rest)] = span


def expand_hosts(data: Any, spans: dict[NodePath, Span], key_spans: dict[NodePath, Span],
                 diags: Diagnostics) -> dict[str, str]:
    """Expand the host ranges of a loaded document in place (its `hosts` map and the spans);
    returns each generated host's range key."""
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        return {}  # no hosts map: the models say what is wrong
    expander = _Expander(spans, key_spans, diags)
    data["hosts"] = expander.run(data["hosts"])
    return expander.origins
