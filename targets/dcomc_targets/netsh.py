"""netsh script (`netsh -f FILE`): inbound firewall rules and the network discovery group.

Each rule is first deleted by name, then added, so running the script again converges to the
same rules instead of piling up duplicates (dcom-facts §8.1: `add rule` has no "replace").
Rule groups are addressed by their resource string (`@FirewallAPI.dll,-32752`), never by the
display name, which is localized ("Netzwerkerkennung" on German Windows). That netsh matches a
group by its resource string is UNVERIFIED (dcom-facts §8.4): if it does not, netsh prints "No
rules match the specified criteria" — loud, not silent — and the PowerShell engine, which
uses `Enable-NetFirewallRule -Group` (documented to take the resource string), does it instead.

Byte format: UTF-8 without BOM, CRLF; `#` comment lines (as in `netsh dump` output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcomc.model import FirewallRule, FirewallRuleGroup, HostPlan
from dcomc_targets.base import Artifact, EmitContext, text_lines, utf8_crlf
from dcomc_targets.quoting import netsh_value

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
    parts = [f"{PREFIX} add rule", f"name={netsh_value(rule.name)}", "dir=in", "action=allow",
             f"protocol={rule.protocol}"]
    if rule.local_port:
        parts.append(f"localport={rule.local_port}")
    if rule.program:
        parts.append(f"program={netsh_value(rule.program)}")
    if rule.service:
        parts.append(f"service={netsh_value(rule.service)}")
    parts.append(f"profile={','.join(rule.profiles)}")
    parts.append(f"remoteip={','.join(rule.remote)}")
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
            lines += [f"{PREFIX} set rule group={netsh_value(g.group)} profile={p} new enable=yes"
                      for p in g.profiles]
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


def tokens(line: str) -> list[str]:
    """Split a netsh line on spaces outside double quotes; `k="v w"` stays one token `k=v w`."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == " " and not quoted:
            if current:
                out.append("".join(current))
                current = []
        else:
            current.append(char)
    if quoted:
        raise ValueError(f"netsh: unbalanced quote in {line[:60]!r}")
    if current:
        out.append("".join(current))
    return out


def parse(text: str) -> NetshContent:
    rules: list[NetshRule] = []
    groups: dict[str, list[str]] = {}
    deleted: set[str] = set()
    for line in text_lines(text):
        if not line.strip() or line.startswith("#"):
            continue
        words = tokens(line)
        if words[:2] != ["advfirewall", "firewall"] or len(words) < 4:
            raise ValueError(f"netsh: unexpected command {line[:60]!r}")
        verb, args = f"{words[2]} {words[3]}", _args(words[4:])
        if verb == "delete rule":
            deleted.add(args["name"])
        elif verb == "add rule":
            rules.append(_parsed_rule(args, deleted))
        elif verb == "set rule":
            groups.setdefault(args["group"], []).append(args["profile"])
        else:
            raise ValueError(f"netsh: unsupported command {verb!r}")
    return NetshContent(tuple(rules), tuple((g, tuple(p)) for g, p in groups.items()))


def _args(words: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if key == "new":
            continue
        if not sep:
            raise ValueError(f"netsh: expected key=value, got {word!r}")
        args[key] = value
    return args


def _parsed_rule(args: dict[str, str], deleted: set[str]) -> NetshRule:
    name = args["name"]
    if name not in deleted:
        raise ValueError(f"netsh: rule {name!r} is added without being deleted first")
    if (args.get("dir"), args.get("action")) != ("in", "allow"):
        raise ValueError(f"netsh: rule {name!r} is not an inbound allow rule")
    return NetshRule(
        name=name,
        protocol=args["protocol"],
        local_port=args.get("localport"),
        program=args.get("program"),
        service=args.get("service"),
        profiles=tuple(args["profile"].split(",")),
        remote=tuple(args["remoteip"].split(",")),
        description=args.get("description", ""),
    )
