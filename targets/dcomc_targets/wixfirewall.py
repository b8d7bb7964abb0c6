"""WiX v3 Fragment with the Firewall extension (`fire:FirewallException`), for OEMs who build
their installers with the WiX toolset (`candle -ext WixFirewallExtension`).

wixl (msitools) does not know the Firewall extension: this file is kept OUT of wixl's inputs
(the MSI target applies the firewall through the PowerShell engine instead).

WiX v3's FirewallException takes ONE profile (domain, private, public or all) and has no
service attribute (docs/windows.md#firewall): a rule for two profiles becomes two
exceptions named `<rule>-<profile>`; a rule that allows a service by name cannot be expressed
and is listed in a comment instead, never dropped silently. Every value taken from the plan
goes through `_formatted`: the firewall custom action formats each column it reads (name,
remote addresses, port, program, description; WixFirewallExtension's firewall.cpp reads them
with WcaGetRecordFormattedString), and so does Windows Installer the Registry table's key,
name and value, so `[`, `]`, `{` and `}` are escaped (`[\\[]`, quoting.msi_formatted) to stay
literal; then candle's preprocessor, which expands `$(...)` in every attribute and text, gets
each `$` doubled (quoting.wix_text). The reader undoes both (`_unformatted`).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from lxml import etree

from dcomc.plan.model import FirewallRule, HostPlan
from dcomc_targets.base import Artifact, EmitContext, listed_ids, templates_dir
from dcomc_targets.quoting import (
    msi_formatted,
    msi_unformatted,
    wix_id,
    wix_text,
    wix_untext,
    xml_comment,
    xml_uncomment,
)
from dcomc_targets.wix import guid, windows_names

WIX_NS = "http://schemas.microsoft.com/wix/2006/wi"
FIRE_NS = "http://schemas.microsoft.com/wix/FirewallExtension"
NSMAP: Any = {None: WIX_NS, "fire": FIRE_NS}  # lxml: None is the default namespace
ALL_PROFILES = ("domain", "private", "public")
# Fixed namespace for component GUIDs: same site, host and rule → same GUID in every build.
GUID_NAMESPACE = uuid.UUID("5a0c3c9e-6f0b-4a7e-9d55-0dc0c0dc0c01")
PENDING_TITLE = "NOT IN THIS FRAGMENT - WiX v3 cannot express it; netsh or PowerShell does it:"


@dataclass(frozen=True, slots=True, order=True)
class WixRule:
    name: str
    port: str | None
    program: str | None
    profiles: tuple[str, ...]
    remote: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class WixFirewallContent:
    group: str
    rules: tuple[WixRule, ...]
    pending: tuple[str, ...]


def component_group_id(host: str) -> str:
    return wix_id("DcomcFirewall", host)


def _expressible(rule: FirewallRule) -> bool:
    return rule.service is None


def _profiles(profiles: tuple[str, ...]) -> list[str]:
    return ["all"] if set(profiles) == set(ALL_PROFILES) else list(profiles)


class WixFirewallTarget:
    name: str = "wixfirewall"
    kinds: tuple[str, ...] = ("wix-firewall",)

    def emit(self, host: HostPlan, ctx: EmitContext) -> list[Artifact]:
        root = etree.Element(f"{{{WIX_NS}}}Wix", nsmap=NSMAP)
        for line in [*ctx.header_lines(host, "WiX v3 firewall fragment"), *_usage(host)]:
            root.append(etree.Comment(f" {xml_comment(line)} "))
        pending = [r for r in host.of_kind(FirewallRule) if not _expressible(r)]
        if pending:
            root.append(etree.Comment(f" {PENDING_TITLE} "))
            for r in pending:
                line = ctx.not_compiled(host, "wixfirewall", r, "allows a service by name")
                root.append(etree.Comment(f"   {xml_comment(line)} "))
        fragment = etree.SubElement(root, f"{{{WIX_NS}}}Fragment")
        group = etree.SubElement(fragment, f"{{{WIX_NS}}}ComponentGroup",
                                 Id=component_group_id(host.name))
        for rule in host.of_kind(FirewallRule):
            if _expressible(rule):
                group.append(_component(ctx, host, rule))
        data = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
        return [Artifact(f"firewall/{host.name}-firewall.wxs", "wix-firewall", data)]

    def expected(self, host: HostPlan, ctx: EmitContext) -> WixFirewallContent:
        rules = tuple(
            WixRule(r.name, r.local_port, r.program, r.profiles, r.remote, r.description)
            for r in host.of_kind(FirewallRule) if _expressible(r)
        )
        pending = tuple(r.id for r in host.of_kind(FirewallRule) if not _expressible(r))
        return WixFirewallContent(component_group_id(host.name), rules, pending)

    def covers(self, host: HostPlan, ctx: EmitContext) -> set[str]:
        return {r.id for r in host.of_kind(FirewallRule) if _expressible(r)}

    def read(self, data: bytes) -> WixFirewallContent:
        validate(data)
        return parse(data)

    def sniff(self, data: bytes, name: str) -> bool:
        return FIRE_NS.encode() in data[:4096]

    def inspect(self, data: bytes) -> Any:
        content = self.read(data)
        return {"kind": "wix-firewall", "component_group": content.group,
                "rules": [_rule_json(r) for r in content.rules], "pending": list(content.pending)}


def _usage(host: HostPlan) -> list[str]:
    return [
        "Include it in your product with <ComponentGroupRef Id=\""
        f"{component_group_id(host.name)}\"/> and build with -ext WixFirewallExtension.",
        "Not an input of wixl: wixl does not know the Firewall extension.",
    ]


def _component(ctx: EmitContext, host: HostPlan, rule: FirewallRule) -> etree._Element:
    names = windows_names(ctx.plan.site, host.name)  # stable when only the case changes
    comp = etree.Element(f"{{{WIX_NS}}}Component", Id=wix_id("DcomcFw", host.name, rule.name),
                         Directory="TARGETDIR",
                         Guid=guid(*names, rule.name.lower(), namespace=GUID_NAMESPACE))
    comp.append(etree.Comment(f" {xml_comment(rule.display_name)} ({rule.prov.guide}) "))
    etree.SubElement(comp, f"{{{WIX_NS}}}RegistryValue", Root="HKLM",
                     Key=_formatted(f"Software\\dcomc\\{ctx.plan.site}\\firewall"),
                     Name=_formatted(rule.name), Type="string", Value=_formatted(ctx.version),
                     KeyPath="yes")
    profiles = _profiles(rule.profiles)
    for profile in profiles:
        name = rule.name if len(profiles) == 1 else f"{rule.name}-{profile}"
        comp.append(_exception(host, rule, name, profile))
    return comp


def _exception(host: HostPlan, rule: FirewallRule, name: str, profile: str) -> etree._Element:
    attrs = {"Id": wix_id("DcomcFwEx", host.name, name), "Name": _formatted(name),
             "Description": _formatted(rule.description), "Profile": profile,
             "IgnoreFailure": "no"}
    attrs["Protocol"] = "tcp"  # as the netsh rule: TCP only (DCOM runs over ncacn_ip_tcp)
    if rule.local_port:
        attrs["Port"] = _formatted(rule.local_port)
    if rule.program:
        attrs["Program"] = _formatted(rule.program)
    if rule.remote == ("any",):
        attrs["Scope"] = "any"
    exc = etree.Element(f"{{{FIRE_NS}}}FirewallException", attrs)
    if rule.remote != ("any",):
        exc.extend(copy.deepcopy(_remote_addresses(rule.remote)))
    return exc


@lru_cache(maxsize=256)
def _remote_addresses(remote: tuple[str, ...]) -> etree._Element:
    """An element holding one RemoteAddress per address, built once per list and copied (never
    changed): the `site` scope is the same list in every rule of every host, and it grows with
    the site (a 1,000-host site: 80 networks, in 4 exceptions a host); lxml copies built
    elements three times faster than it builds them."""
    holder = etree.Element(f"{{{FIRE_NS}}}FirewallException", nsmap=NSMAP)
    for address in remote:
        etree.SubElement(holder, f"{{{FIRE_NS}}}RemoteAddress").text = _formatted(address)
    return holder


def _formatted(value: str) -> str:
    """A value of a Formatted column, as the fragment's text: literal to Windows Installer
    (msi_formatted) and to candle's preprocessor (wix_text)."""
    return wix_text(msi_formatted(value))


def _unformatted(text: str) -> str:
    """Inverse of _formatted."""
    return msi_unformatted(wix_untext(text))


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(templates_dir() / "wix" / "wix-subset.xsd")))


def validate(data: bytes) -> None:
    """Refuse XML outside the WiX subset dcomc generates (raises ValueError with the reason)."""
    doc = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    schema = _schema()
    if not schema.validate(doc):
        errors = str(schema.error_log).strip().splitlines() or ["?"]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValueError(f"WiX fragment invalid: {errors[0]}{more}")


# --- reader ------------------------------------------------------------------------------------


def parse(data: bytes) -> WixFirewallContent:
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    group = root.find(f"{{{WIX_NS}}}Fragment/{{{WIX_NS}}}ComponentGroup")
    if group is None:
        raise ValueError("WiX fragment: no ComponentGroup")
    merged: dict[str, WixRule] = {}
    for exc in group.iter(f"{{{FIRE_NS}}}FirewallException"):
        rule = _read_exception(exc)
        old = merged.get(rule.name)
        profiles = (*old.profiles, *rule.profiles) if old else rule.profiles
        merged[rule.name] = WixRule(rule.name, rule.port, rule.program, profiles, rule.remote,
                                    rule.description)
    return WixFirewallContent(group.get("Id", ""), tuple(merged.values()), _pending(root))


def _read_exception(exc: etree._Element) -> WixRule:
    profile = exc.get("Profile", "all")
    name = _unformatted(exc.get("Name", ""))
    if profile != "all" and name.endswith(f"-{profile}"):
        name = name[: -len(profile) - 1]
    program, port = exc.get("Program"), exc.get("Port")
    remote = tuple(_unformatted(a.text or "") for a in exc.iter(f"{{{FIRE_NS}}}RemoteAddress"))
    return WixRule(
        name=name,
        port=_unformatted(port) if port is not None else None,
        program=_unformatted(program) if program is not None else None,
        profiles=ALL_PROFILES if profile == "all" else (profile,),
        remote=remote or (("any",) if exc.get("Scope") == "any" else ()),
        description=_unformatted(exc.get("Description", "")),
    )


def _pending(root: etree._Element) -> tuple[str, ...]:
    comments = (xml_uncomment(str(node.text or "")) for node in root
                if isinstance(node, etree._Comment))
    return listed_ids(comments, PENDING_TITLE)


def _rule_json(rule: WixRule) -> dict[str, Any]:
    return {"name": rule.name, "port": rule.port, "program": rule.program,
            "profiles": list(rule.profiles), "remote": list(rule.remote),
            "description": rule.description}
