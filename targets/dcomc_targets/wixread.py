"""Firewall exceptions of any WiX source, v3 (`http://schemas.microsoft.com/wix/
FirewallExtension`) and v4 and later (`http://wixtoolset.org/schemas/v4/wxs/firewall`), read
into the rule model of the netsh reader (netshread.rule_json), so a rule reads the same
whichever file carries it.

Attributes map to netsh options: Name, Description, Program (or the parent File's `[#Id]`, or
File=), Port (localport), Protocol, Scope and RemoteAddress children (remoteip), Profile,
Outbound (dir), and the v4/v5 additions Action, Enabled, EdgeTraversal, InterfaceType, Grouping,
LocalScope/LocalAddress (localip), RemotePort, Service. WiX's defaults are filled in (inbound,
allow, all profiles, any address, TCP when a port is given). An attribute or child this reader
does not model is listed as unsupported with its line, never dropped.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from dcomc_targets.netshread import ADDRESS_KEYWORDS, DEFAULTS, addresses, rule_json
from dcomc_targets.quoting import msi_unformatted
from dcomc_targets.readerror import ReadError

V3_NS = "http://schemas.microsoft.com/wix/FirewallExtension"
V4_NS = "http://wixtoolset.org/schemas/v4/wxs/firewall"
NAMESPACES = {V3_NS: "v3", V4_NS: "v4"}
# attribute -> netsh option (value taken as written, case-folded where netsh has a set)
_PLAIN = {"Name": "name", "Description": "description", "Port": "localport",
          "RemotePort": "remoteport", "Grouping": "group", "Service": "service"}
_IGNORED = ("Id", "IgnoreFailure", "OnUpdate")  # installer behaviour, not the rule


def sniff(data: bytes) -> bool:
    return V3_NS.encode() in data or V4_NS.encode() in data


def parse(data: bytes) -> dict[str, Any]:
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False,
                                                             no_network=True))
    except etree.XMLSyntaxError as error:
        line, col = error.position if error.position else (0, 0)
        raise ReadError(f"not well-formed XML: {' '.join(str(error.msg).split())}", line,
                        col) from None
    rules: list[dict[str, Any]] = []
    unsupported: list[str] = []
    versions: set[str] = set()
    for ns, version in NAMESPACES.items():
        for exc in root.iter(f"{{{ns}}}FirewallException"):
            versions.add(version)
            rules.append(_rule(exc, ns, unsupported))
    return {"kind": "generic WiX firewall", "wix": "/".join(sorted(versions)) or "none",
            "rules": rules, "unsupported": unsupported}


def _rule(exc: etree._Element, ns: str, unsupported: list[str]) -> dict[str, Any]:
    line = exc.sourceline or 0
    options: dict[str, str] = {**DEFAULTS, "dir": "in", "action": "allow"}
    for attr, value in exc.attrib.items():
        name = str(attr)
        if not _attribute(options, name, str(value)):
            unsupported.append(f"line {line}: FirewallException {name}={str(value)[:40]!r}")
    remote = [(a.text or "").strip() for a in exc.iter(f"{{{ns}}}RemoteAddress")]
    local = [(a.text or "").strip() for a in exc.iter(f"{{{ns}}}LocalAddress")]
    if remote:
        options["remoteip"] = addresses(",".join(remote))
    if local:
        options["localip"] = addresses(",".join(local))
    for child in exc:
        if isinstance(child.tag, str) and etree.QName(child).localname not in (
                "RemoteAddress", "LocalAddress"):
            unsupported.append(f"line {child.sourceline}: <{etree.QName(child).localname}> "
                               "in a FirewallException")
    if "program" not in options:
        parent = exc.getparent()
        if parent is not None and etree.QName(parent).localname == "File" and parent.get("Id"):
            options["program"] = f"[#{parent.get('Id')}]"  # the file this element is in
    if "protocol" not in exc.attrib:  # WiX's default: TCP for a port, else any protocol
        options["protocol"] = "tcp" if "localport" in options else "any"
    return {"line": line, "component": _component(exc), **rule_json(options)}


def _attribute(options: dict[str, str], name: str, value: str) -> bool:
    """Set the netsh option for one attribute; False when this reader does not model it."""
    folded = value.casefold()
    if name in _PLAIN:
        options[_PLAIN[name]] = value
    elif name == "Program":
        options["program"] = msi_unformatted(value) if "[\\" in value else value
    elif name == "File":
        options["program"] = f"[#{value}]"
    elif name == "Protocol":
        options["protocol"] = folded
    elif name in ("Scope", "RemoteScope") and folded in ADDRESS_KEYWORDS:
        options["remoteip"] = folded
    elif name == "LocalScope" and folded in ADDRESS_KEYWORDS:
        options["localip"] = folded
    elif name == "Profile":
        options["profile"] = "any" if folded == "all" else folded
    elif name == "Outbound":
        options["dir"] = "out" if folded == "yes" else "in"
    elif name == "Action":
        options["action"] = folded
    elif name == "Enabled":
        options["enable"] = folded
    elif name == "EdgeTraversal":
        options["edge"] = folded
    elif name == "InterfaceType":
        options["interfacetype"] = folded
    else:
        return name in _IGNORED
    return True


def _component(exc: etree._Element) -> str | None:
    for node in exc.iterancestors():
        if etree.QName(node).localname == "Component":
            return node.get("Id")
    return None
