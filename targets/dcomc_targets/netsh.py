"""netsh script (`netsh -f FILE`): inbound firewall rules and the network discovery group.

Each rule is first deleted by name, then added, so running the script again converges to the
same rules instead of piling up duplicates (`add rule` has no "replace": docs/windows.md#firewall).
Rule groups are addressed by their resource string (`@FirewallAPI.dll,-32752`), never by the
display name, which is localized ("Netzwerkerkennung" on German Windows). That netsh matches a
group by its resource string is unverified (docs/windows.md#firewall): if not, netsh prints "No
rules match the specified criteria" — loud, not silent — and the PowerShell engine, which
uses `Enable-NetFirewallRule -Group` (documented to take the resource string), does it instead.

Byte format: UTF-8 without BOM, CRLF; `#` comment lines (as in `netsh dump` output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dcomc.plan.model import FirewallRule, FirewallRuleGroup, HostPlan
from dcomc_targets.base import Artifact, EmitContext, text_lines, utf8_crlf
from dcomc_targets.quoting import netsh_list, netsh_ports, netsh_value

PREFIX = "advfirewall firewall"


@dataclass(frozen=True, slots=True, order=True)
class NetshRule:
    name: str
    protocol: str
    local_port: str | None
    program: str | None
    service: str | None
    profiles: tuple[str, ...]
    remote: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class NetshContent:
    rules: tuple[NetshRule, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...]  # (resource string, profiles)


def _rule(r: FirewallRule) -> NetshRule:
    return NetshRule(r.name, r.protocol, r.local_port, r.program, r.service, r.profiles,
                     r.remote, r.description)


def add_rule_line(rule: NetshRule) -> str:
    """The `add rule` line: every value from the plan is one quoted literal (quoting.py); only
    the fixed keywords dir=in, action=allow are bare."""
    parts = [f"{PREFIX} add rule", f"name={netsh_value(rule.name)}", "dir=in", "action=allow",
             f"protocol={netsh_value(rule.protocol)}"]
    if rule.local_port:
        parts.append(f"localport={netsh_ports(rule.local_port)}")
    if rule.program:
        parts.append(f"program={netsh_value(rule.program)}")
    if rule.service:
        parts.append(f"service={netsh_value(rule.service)}")
    parts.append(f"profile={netsh_list(rule.profiles)}")
    parts.append(f"remoteip={netsh_list(rule.remote)}")
    parts.append(f"description={netsh_value(rule.description)}")
    return " ".join(parts)


class NetshTarget:
    name: str = "netsh"
    kinds: tuple[str, ...] = ("netsh",)

    def emit(self, host: HostPlan, ctx: EmitContext) -> list[Artifact]:
        lines = [f"# {line}" for line in ctx.header_lines(host, "Firewall rules (netsh)")]
        lines += [f"# Run elevated: netsh -f {host.name}.netsh",
                  "# Each rule is deleted and added again, so a second run changes nothing."]
        for r in host.of_kind(FirewallRule):
            lines += ["#", f"# {r.display_name} ({r.prov.guide})",
                      f"{PREFIX} delete rule name={netsh_value(r.name)}",
                      add_rule_line(_rule(r))]
        for g in host.of_kind(FirewallRuleGroup):
            lines += ["#", f"# Enable the {g.display_name} rule group by its resource string "
                           f"({g.prov.guide}); unverified, see the PowerShell engine"]
            lines += [f"{PREFIX} set rule group={netsh_value(g.group)} "
                      f"profile={netsh_list([p])} new enable=yes" for p in g.profiles]
        return [Artifact(f"firewall/{host.name}.netsh", "netsh", utf8_crlf(lines))]

    def expected(self, host: HostPlan, ctx: EmitContext) -> NetshContent:
        return NetshContent(
            tuple(_rule(r) for r in host.of_kind(FirewallRule)),
            tuple((g.group, g.profiles) for g in host.of_kind(FirewallRuleGroup)),
        )

    def covers(self, host: HostPlan, ctx: EmitContext) -> set[str]:
        return {r.id for r in host.of_kind(FirewallRule)} | {
            g.id for g in host.of_kind(FirewallRuleGroup)}

    def read(self, data: bytes) -> NetshContent:
        return parse(data.decode("utf-8"))

    def sniff(self, data: bytes, name: str) -> bool:
        return name.endswith(".netsh") or PREFIX.encode() in data[:4096]

    def inspect(self, data: bytes) -> Any:
        content = self.read(data)
        return {
            "kind": "netsh",
            "rules": [_rule_json(r) for r in content.rules],
            "groups": [{"group": g, "profiles": list(p)} for g, p in content.groups],
        }


def _rule_json(rule: NetshRule) -> dict[str, Any]:
    return {"name": rule.name, "protocol": rule.protocol, "local_port": rule.local_port,
            "program": rule.program, "service": rule.service, "profiles": list(rule.profiles),
            "remote": list(rule.remote), "description": rule.description}


# --- reader ------------------------------------------------------------------------------------


# One argument: a bare word (`new`), or `tag=` and then either one quoted literal or a bare
# value of address, list and keyword characters; each ends at a space or the end of the line. A
# quote anywhere else (`name="a"b`, `name=a"b c"`) is refused, so a value is read as exactly the
# literal the writer quoted (netsh would glue the pieces together).
_WORD = re.compile(r'([A-Za-z]+)(?:=(?:"([^"]*)"|([A-Za-z0-9.:/,_-]*)))?(?= |$)')
# The arguments each command may take; anything else, or one given twice, is refused (netsh keeps
# one of two `remoteip=`, and a reader must not guess which).
_ALLOWED = {
    "delete rule": {"name"},
    "add rule": {"name", "dir", "action", "protocol", "localport", "program", "service",
                 "profile", "remoteip", "description"},
    "set rule": {"group", "profile", "enable"},
}


def words(line: str) -> list[tuple[str, str | None]]:
    """A netsh line as (word, value) pairs: value None for a bare word, else the literal."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(line):
        if line[pos] == " ":
            pos += 1
            continue
        found = _WORD.match(line, pos)
        if found is None:
            raise ValueError(f"netsh: cannot read an argument at {line[pos:pos + 40]!r}")
        word, quoted, bare = found.groups()
        value = quoted if quoted is not None else bare
        out.append((word, value))
        pos = found.end()
    return out


def tokens(line: str) -> list[str]:
    """A netsh line's arguments as text, quotes dropped: `k="v w"` is the one token `k=v w`."""
    return [word if value is None else f"{word}={value}" for word, value in words(line)]


def parse(text: str) -> NetshContent:
    rules: list[NetshRule] = []
    groups: dict[str, list[str]] = {}
    deleted: set[str] = set()
    for line in text_lines(text):
        if not line.strip() or line.startswith("#"):
            continue
        parsed = words(line)
        head = [word for word, value in parsed[:4] if value is None]
        if head[:2] != ["advfirewall", "firewall"] or len(head) < 4:
            raise ValueError(f"netsh: unexpected command {line[:60]!r}")
        verb = f"{head[2]} {head[3]}"
        if verb not in _ALLOWED:
            raise ValueError(f"netsh: unsupported command {verb!r}")
        args = _args(parsed[4:], _ALLOWED[verb], verb == "set rule")
        if verb == "delete rule":
            deleted.add(_need(args, "name"))
        elif verb == "add rule":
            rules.append(_parsed_rule(args, deleted))
        else:
            if args.get("enable") != "yes":
                raise ValueError("netsh: set rule without `new enable=yes`")
            groups.setdefault(_need(args, "group"), []).append(_need(args, "profile"))
    return NetshContent(tuple(rules), tuple((g, tuple(p)) for g, p in groups.items()))


def _args(parsed: list[tuple[str, str | None]], allowed: set[str], new: bool) -> dict[str, str]:
    args: dict[str, str] = {}
    for word, value in parsed:
        if value is None:
            if word == "new" and new and "enable" not in args:
                continue
            raise ValueError(f"netsh: expected key=value, got {word!r}")
        if word not in allowed:
            raise ValueError(f"netsh: unexpected argument {word!r}")
        if word in args:
            raise ValueError(f"netsh: argument {word!r} given twice")
        args[word] = value
    return args


def _need(args: dict[str, str], key: str) -> str:
    if key not in args:
        raise ValueError(f"netsh: missing argument {key!r}")
    return args[key]


def _parsed_rule(args: dict[str, str], deleted: set[str]) -> NetshRule:
    name = _need(args, "name")
    if name not in deleted:
        raise ValueError(f"netsh: rule {name!r} is added without being deleted first")
    if (args.get("dir"), args.get("action")) != ("in", "allow"):
        raise ValueError(f"netsh: rule {name!r} is not an inbound allow rule")
    return NetshRule(
        name=name,
        protocol=_need(args, "protocol"),
        local_port=args.get("localport"),
        program=args.get("program"),
        service=args.get("service"),
        profiles=tuple(_need(args, "profile").split(",")),
        remote=tuple(_need(args, "remoteip").split(",")),
        description=args.get("description", ""),
    )
