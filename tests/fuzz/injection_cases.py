# ruff: noqa: RUF001 - typographic quotes are what the payloads are made of
"""The cases of the injection test (test_injection.py): every string field of the spec format,
how a payload is put into it, what its grammar refuses, and where its value must read back.

A spec is `site_doc(values)`: one site (mixed identity) with a local user, a service account, a
domain user and group, a site group, two servers, two clients and three hosts, every string
field of the format in use once. `values` maps a field, named by its path in the JSON Schema of
the format (`dcomc schema`; `*` a map key, `[]` a list item), to its value; a field left out
keeps the default below, and a reference (member_of, run_as, the keys of an ACL...) left out
names what it refers to, so renaming the user renames it everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Hostile strings: each means something to some artifact language (PowerShell, .reg, INF,
# netsh, XML, the WiX preprocessors and binder, MSI formatted strings, Markdown, cmd), or is
# text outside ASCII or outside the MSI's code page, or a character check must refuse.
PAYLOADS: tuple[str, ...] = (
    "O'Brien \"$(x)\"", "$(env.HOME)", "$(var.X)", "$$", "$$$", "x$", "$x", "${x}", "@(1)",
    "'@", "@'", "`", "`$x", "'", "\"", "\\\"", "\\", "\\\\", "‘’“”", "‚‛", "!(bind.x)",
    "!(loc.x)", "--", "---", "x-", "-->", "<!--", "]]>", "&amp;", "<script>", ";", "a;b",
    "#", "<#x#>", "%PATH%", "[Section]", "[x]", "{x}", "a=b", "a,b", "a b", "^!x!&|",
    "**x**", "..", "Łukasz", "用户😀", "Grüße €", "e\u0301", "a\nb", "a\u202eb",
)

# Kinds of artifact, as test_injection reads them.
PSD1, REG, INF, NETSH = "powershell-data", "reg", "inf", "netsh"
WXS, FRAGMENT, FIREWALL = "wix-product", "wix-fragment", "wix-firewall"
KINDS = frozenset({PSD1, REG, INF, NETSH, WXS, FRAGMENT, FIREWALL})
REVIEW = "review"  # review.html and REVIEW.md, of a few payloads (test_review_...)
EXACT, WITHIN = "exact", "within"  # the value is a whole literal, or inside one literal

GUID = "{6F1C2A7E-3B9D-4E5F-8A21-0C4D7E9B1F36}"
FILE = "(file name)"  # not a field: the spec's file name, written into every artifact

DEFAULTS: dict[str, str] = {
    "site.name": "plant-x",
    "site.description": "Line 3",
    "site.domain": "PLANT9",
    "accounts.users.*": "opcuser",
    "accounts.users.*.description": "Identity of the clients",
    "accounts.users.*.password": "prompt",
    "accounts.users.*.sid": "S-1-5-21-1-2-3-1105",
    "accounts.groups.*": "OPC Users",
    "accounts.groups.*.description": "May call the servers",
    "accounts.groups.*.sid": "S-1-5-21-1-2-3-2210",
    "servers.*": "srv",
    "servers.*.product": "kepserverex-v6",
    "servers.*.progid": "Vendor.Server.1",
    "servers.*.clsid": GUID,
    "servers.*.appid": GUID,
    "servers.*.executable": "C:\\Program Files\\Vendor\\srv.exe",
    "servers.*.service": "VendorSvc",
    "clients.*": "hmi",
    "clients.*.description": "Operator HMI",
    "clients.*.executable": "D:\\HMI\\hmi.exe",
    "clients.*.service": "HistorianSvc",
    "hosts.*": "SRV1",
    "hosts.*.address": "10.0.0.1",
    "hosts.*.description": "Server PC",
    "hosts.*.machine.firewall.remote.[]": "10.9.0.0/24",
    "machine.server.firewall.remote.[]": "10.8.0.0/24",
    "machine.client.firewall.remote.[]": "10.7.0.0/24",
    "hosts.*.machine.rpc_ports": "5000-5100",
    "machine.server.rpc_ports": "5000-5100",
    "machine.client.rpc_ports": "5000-5100",
    FILE: "spec.yaml",
}

# Reference fields: they name a user, a group, a server or a client defined elsewhere.
REFERS_TO: dict[str, str] = {
    "accounts.users.*.member_of.[]": "accounts.groups.*",
    "accounts.groups.*.members.[]": "accounts.users.*",
    "servers.*.service_account": "service account",
    "servers.*.launch.*": "accounts.groups.*",
    "servers.*.access.*": "accounts.users.*",
    "clients.*.run_as": "accounts.users.*",
    "hosts.*.servers.[]": "servers.*",
    "hosts.*.clients.[]": "clients.*",
    "accounts.users.*.hosts.[]": "hosts.*",
    "accounts.groups.*.hosts.[]": "hosts.*",
    "clients.*.calls.[]": "servers.*",
    "clients.*.calls.*": "servers.*",
    "clients.*.calls.*.[]": "hosts.*",
    "hosts.*.machine.dcom.access_limits.*": "accounts.groups.*",
    "hosts.*.machine.dcom.launch_limits.*": "accounts.users.*",
    "machine.server.dcom.access_limits.*": "accounts.users.*",
    "machine.server.dcom.launch_limits.*": "accounts.groups.*",
    "machine.client.dcom.access_limits.*": "accounts.groups.*",
    "machine.client.dcom.launch_limits.*": "accounts.users.*",
}


LAUNCH = ["local_launch", "remote_launch", "local_activation", "remote_activation"]


def site_doc(values: Mapping[str, str]) -> dict[str, Any]:
    """The spec with `values` in its fields (see the module docstring)."""

    def v(path: str) -> str:
        if path in values:
            return values[path]
        if path in REFERS_TO:
            target = REFERS_TO[path]
            return "opcsvc" if target == "service account" else v(target)
        return DEFAULTS[path]

    domain = v("site.domain")
    remote = "machine.{}.firewall.remote.[]"
    # every remote list admits the site's hosts too: check refuses a flow a firewall blocks
    address = v("hosts.*.address")
    site = ["10.0.0.0/24", *([] if address.startswith("10.0.0.") else [address])]
    return {
        "dcomc": 1,
        "site": {"name": v("site.name"), "description": v("site.description"),
                 "identity": "mixed", "domain": domain},
        "accounts": {
            "users": {
                v("accounts.users.*"): {
                    "description": v("accounts.users.*.description"),
                    "password": v("accounts.users.*.password"),
                    "member_of": [v("accounts.users.*.member_of.[]")],
                    "hosts": [v("accounts.users.*.hosts.[]"), "SRV2", "CLI1"]},
                "opcsvc": {"password": "prompt", "member_of": ["Administrators"]},
                f"{domain}\\svc-opc": {"existing": True, "sid": v("accounts.users.*.sid")},
            },
            "groups": {
                v("accounts.groups.*"): {"description": v("accounts.groups.*.description"),
                                         "members": [v("accounts.groups.*.members.[]")],
                                         "hosts": [v("accounts.groups.*.hosts.[]"), "SRV2",
                                                   "CLI1"]},
                f"{domain}\\OPC Operators": {"existing": True,
                                             "sid": v("accounts.groups.*.sid")},
            },
        },
        "servers": {
            v("servers.*"): {
                "progid": v("servers.*.progid"), "clsid": v("servers.*.clsid"),
                "appid": v("servers.*.appid"), "executable": v("servers.*.executable"),
                "service": v("servers.*.service"), "process_mode": "service",
                "service_account": v("servers.*.service_account"),
                "launch": {v("servers.*.launch.*"): LAUNCH,
                           f"{domain}\\OPC Operators": ["remote_activation"]},
                "access": {v("servers.*.access.*"): ["remote_access"],
                           f"{domain}\\svc-opc": ["local_access"]},
            },
            "kep": {"product": v("servers.*.product"), "process_mode": "interactive",
                    "launch": {v("accounts.groups.*"): LAUNCH},
                    "access": {f"{domain}\\OPC Operators": ["remote_access"],
                               v("accounts.groups.*"): ["remote_access"]}},
        },
        "clients": {
            v("clients.*"): {"description": v("clients.*.description"),
                             "executable": v("clients.*.executable"),
                             "run_as": v("clients.*.run_as"),
                             "calls": [v("clients.*.calls.[]"), "kep"]},
            "collector": {"service": v("clients.*.service"), "run_as": v("accounts.users.*"),
                          "calls": {v("clients.*.calls.*"): [v("clients.*.calls.*.[]")],
                                    "kep": ["SRV2"]}},
        },
        "hosts": {
            v("hosts.*"): {
                "address": v("hosts.*.address"), "description": v("hosts.*.description"),
                "servers": [v("hosts.*.servers.[]")],
                "machine": {
                    "rpc_ports": v("hosts.*.machine.rpc_ports"),
                    "dcom": {"access_limits": {v("hosts.*.machine.dcom.access_limits.*"):
                                               ["remote_access"]},
                             "launch_limits": {v("hosts.*.machine.dcom.launch_limits.*"):
                                               LAUNCH}},
                    "firewall": {"remote": [v("hosts.*.machine.firewall.remote.[]"),
                                            *site]}},
            },
            "SRV2": {"address": "10.0.0.3", "servers": ["kep"]},
            "CLI1": {"address": "10.0.0.2",
                     "clients": [v("hosts.*.clients.[]"), "collector"]},
        },
        "machine": {
            role: {
                "rpc_ports": v(f"machine.{role}.rpc_ports"),
                "dcom": {"access_limits": {v(f"machine.{role}.dcom.access_limits.*"):
                                           ["local_access", "remote_access"]},
                         "launch_limits": {v(f"machine.{role}.dcom.launch_limits.*"):
                                           LAUNCH}},
                "firewall": {"remote": [v(remote.format(role)), *site]},
            } for role in ("server", "client")
        },
    }


# --- the fields: how a payload goes in, what refuses it, where it must read back ---------------

Grammar = Callable[[str], str | None]  # the value → why the field's grammar refuses it, or None


@dataclass(frozen=True)
class Field:
    """One string field: `place` makes its value from a payload; `grammar` says why check must
    refuse a value (codes, reason) or None; `reaches` where the value must read back, as a
    whole literal (EXACT) or inside one (WITHIN, a comment or a composed name)."""

    place: Callable[[str], str]
    grammar: Callable[[str], tuple[frozenset[str], str] | None]
    reaches: Mapping[str, str] = field(default_factory=dict)


def _chars(value: str, chars: str) -> str:
    return " ".join(sorted({c for c in value if c in chars}))


_INVISIBLE = ("Cc", "Cf", "Cs", "Zl", "Zp")


def control(value: str) -> str | None:
    """A control or invisible character, which check refuses in every field (E201)."""
    bad = [c for c in value if unicodedata.category(c) in _INVISIBLE]
    return f"control or invisible character U+{ord(bad[0]):04X}" if bad else None


def rule(codes: str, *tests: Grammar) -> Callable[[str], tuple[frozenset[str], str] | None]:
    """A grammar: the first test that finds a problem gives the reason; `codes` are the errors
    check may report for it (E201 always, for a control character)."""
    allowed = frozenset({*codes.split(), "E201"})

    def grammar(value: str) -> tuple[frozenset[str], str] | None:
        for test in (control, *tests):
            why = test(value)
            if why is not None:
                return allowed, why
        return None

    return grammar


def free(value: str) -> str | None:
    return None


def max_len(limit: int) -> Grammar:
    return lambda value: f"longer than {limit}" if len(value) > limit else None


def pattern(regex: str, what: str) -> Grammar:
    compiled = re.compile(regex)
    return lambda value: None if compiled.fullmatch(value) else f"not {what}"


_ACCOUNT_BAD = '"/\\[]:;|=,+*?<>@'


def account(value: str) -> str | None:
    """Windows account names (lusrmgr, New-LocalUser)."""
    if not value.strip(". "):
        return "empty or only dots and spaces"
    if _chars(value, _ACCOUNT_BAD):
        return f"Windows refuses {_chars(value, _ACCOUNT_BAD)} in an account name"
    if value.endswith(".") or value != value.strip():
        return "ends with a dot or is padded with spaces"
    return None


def cp1252(value: str) -> str | None:
    """A user dcomc creates reaches the MSI, built with code page 1252."""
    missing = [c for c in value if c.encode("cp1252", "replace") == b"?" and c != "?"]
    return f"not in the MSI's code page 1252: {''.join(missing)}" if missing else None


def netbios(value: str) -> str | None:
    bad = _chars(value, '\\/:*?"<>|')
    return f"a NetBIOS domain name cannot hold {bad}" if bad else None


def service_name(value: str) -> str | None:
    bad = _chars(value, '/\\"')
    if not value.strip() or value != value.strip():
        return "empty or padded with spaces"
    return f"Windows refuses / and \\, netsh cannot quote \": {bad}" if bad else None


def windows_path(value: str) -> str | None:
    if not re.fullmatch(r'(?:[A-Za-z]:|%[A-Za-z_]\w*%)(?:\\[^\\/:*?"<>|]+)+', value, re.ASCII):
        return 'a path segment cannot be empty or hold / : * ? " < > |'
    if any(part in (".", "..") for part in value.split("\\")):
        return "a path segment cannot be . or .."
    if re.search(r"[!$]\((?:loc|wix|bind|bindpath)\.", value):
        return "a WiX binder variable, which no escape keeps literal in the firewall fragment"
    return None


_KEY = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_ZONE = r"fe80::\d%[A-Za-z0-9._-]{1,64}"
NAME = "a name of letters, digits, '.', '_' or '-'"


def not_a_reference(value: str) -> str | None:
    return "names no user, group, server or client of the site"


def never(value: str) -> str | None:
    return "not the one value allowed (`prompt`)" if value != "prompt" else None


# Where a field's value reaches: the review shows every value below but the client and host
# descriptions (which reach nothing); a name, address or file name is in every artifact's
# header comment.
HEADERS = {REVIEW: WITHIN, REG: WITHIN, INF: WITHIN, NETSH: WITHIN, WXS: WITHIN,
           FRAGMENT: WITHIN, FIREWALL: WITHIN}
PLAN = {REVIEW: WITHIN, PSD1: EXACT}  # in the data file whole, and in the review
RULE = {**PLAN, NETSH: EXACT, FIREWALL: EXACT}  # a firewall rule's program or remote address
ZONE = rule("E220", pattern(_ZONE, "a zone"))
SID = rule("E209", pattern(r"S-1-5-21-1-2-3-\d+", "a SID"))
REFERENCE = rule("E101 E102 E103 E105 E202", not_a_reference)
PORTS = rule("E232", pattern(r"5000-(?:[5-9]\d{3}|[1-5]\d{4})", "a port range lo-hi"))

FIELDS: dict[str, Field] = {
    "site.name": Field(lambda p: f"s{p}", rule("E212", pattern(_KEY, NAME),
                                               lambda v: "ends with '.'" if v[-1] == "." else None),
                       {**HEADERS, PSD1: EXACT, FRAGMENT: EXACT}),
    "site.description": Field(lambda p: f"<sd>{p}</sd>", rule("", free), {REVIEW: WITHIN}),
    "site.domain": Field(lambda p: p, rule("E202 E102", max_len(15), netbios),
                         {**PLAN, PSD1: WITHIN}),
    "accounts.users.*": Field(lambda p: p, rule("E202 E218", max_len(20), account, cp1252),
                              {**PLAN, WXS: EXACT, REG: WITHIN, INF: WITHIN}),
    "accounts.users.*.description": Field(lambda p: p, rule("E211", max_len(48)), PLAN),
    "accounts.users.*.password": Field(lambda p: p, rule("E206", never)),
    "accounts.users.*.sid": Field(lambda p: f"S-1-5-21-1-2-3-{p}", SID),
    "accounts.groups.*": Field(lambda p: f"G{p}", rule("E202 E127", account),
                               {**PLAN, REG: WITHIN}),
    "accounts.groups.*.description": Field(lambda p: p, rule("", free), PLAN),
    "accounts.groups.*.sid": Field(lambda p: f"S-1-5-21-1-2-3-{p}", SID),
    "servers.*": Field(lambda p: f"s{p}", rule("E212", pattern(_KEY, NAME)),
                       {**PLAN, REG: WITHIN, NETSH: WITHIN, FIREWALL: WITHIN}),
    "servers.*.product": Field(lambda p: p, rule("E110", lambda v: "not a catalog product")),
    "servers.*.progid": Field(lambda p: f"Vendor.{p}.1",
                              rule("E215", pattern(r"[A-Za-z][A-Za-z0-9.]{0,38}", "a ProgID")),
                              {PSD1: EXACT}),
    "servers.*.clsid": Field(lambda p: f"{{{p}}}", rule("E214", lambda v: "not a GUID")),
    "servers.*.appid": Field(lambda p: f"{{{p}}}", rule("E214", lambda v: "not a GUID")),
    "servers.*.executable": Field(lambda p: f"C:\\Program Files\\{p}\\srv.exe",
                                  rule("E216", windows_path), RULE),
    "servers.*.service": Field(lambda p: p, rule("E217", service_name), PLAN),
    "clients.*": Field(lambda p: f"c{p}", rule("E212", pattern(_KEY, NAME)),
                       {**PLAN, PSD1: WITHIN, NETSH: WITHIN, FIREWALL: WITHIN}),
    "clients.*.description": Field(lambda p: f"<cd>{p}</cd>", rule("", free)),
    "clients.*.executable": Field(lambda p: f"D:\\{p}\\hmi.exe", rule("E216", windows_path),
                                  RULE),
    "clients.*.service": Field(lambda p: p, rule("E217", service_name), {**PLAN, NETSH: EXACT}),
    "hosts.*": Field(lambda p: f"H{p}1",
                     rule("E213", pattern(r"[A-Za-z0-9-]{1,15}", "a computer name")),
                     {**HEADERS, PSD1: EXACT}),
    "hosts.*.address": Field(lambda p: f"fe80::1%{p}", ZONE, {**HEADERS, PSD1: EXACT}),
    "hosts.*.description": Field(lambda p: f"<hd>{p}</hd>", rule("", free)),
    "hosts.*.machine.firewall.remote.[]": Field(lambda p: f"fe80::3%{p}", ZONE, RULE),
    "machine.server.firewall.remote.[]": Field(lambda p: f"fe80::2%{p}", ZONE, RULE),
    "machine.client.firewall.remote.[]": Field(lambda p: f"fe80::4%{p}", ZONE, RULE),
    **{f"{where}.rpc_ports": Field(lambda p: f"5000-{p}", PORTS)
       for where in ("hosts.*.machine", "machine.server", "machine.client")},
    FILE: Field(lambda p: f"{p}.yaml", rule("", free), {**HEADERS, PSD1: WITHIN}),
    **{path: Field(lambda p: p, REFERENCE) for path in REFERS_TO},
}
