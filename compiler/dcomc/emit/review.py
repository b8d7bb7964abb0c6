"""The review report: what IT reads before approving a bundle (OUT/review.html, OUT/REVIEW.md).

One view model, two renderings from templates/review/. Escaping is the environment's job, not
the template author's: the HTML environment autoescapes every value, and the Markdown
environment passes every value through `md_text` by `finalize` (a code span for anything
that could be markup), so a principal named `a|b *c*` can break neither a table nor the page.

The report describes host classes (dcomc.plan.classes), not hosts: what every PC of a class
gets is written once, and what differs per PC (name, address, lints, its files' hashes) is a
row of the class's host table, so a 300-host site with 3 classes reads like a 3-host site.
"""

from __future__ import annotations

import gc
import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache, wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import jinja2
from jinja2 import (
    BytecodeCache,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.bccache import Bucket

from dcomc.diagnostics import Span
from dcomc.emit.render import describe, principal_text
from dcomc.plan.classes import HostClass, host_classes
from dcomc.plan.lint import Finding
from dcomc.plan.model import (
    AppIdAuthLevel,
    AppIdPermission,
    AppIdRunLocation,
    FirewallRule,
    FirewallRuleGroup,
    GroupMember,
    HostPlan,
    LocalGroup,
    LocalUser,
    MachineDcomValue,
    MachineLimitAddition,
    RebootNotice,
    SecurityOption,
    ServiceLogon,
    ServiceStartMode,
    SitePlan,
    UserRight,
)
from dcomc.windows import sd
from dcomc_targets import TARGETS, EmitContext
from dcomc_targets.base import templates_dir
from dcomc_targets.wix import password_accounts

P = ParamSpec("P")
R = TypeVar("R")
# Columns of the permission matrix, as dcomcnfg shows them.
MATRIX = (
    ("Local launch", "launch", 0x02), ("Remote launch", "launch", 0x04),
    ("Local activation", "launch", 0x08), ("Remote activation", "launch", 0x10),
    ("Local access", "access", 0x02), ("Remote access", "access", 0x04),
)  # fmt: skip
MAX_PAIR_ARROWS = 64  # above this many client/server class pairs the diagram draws a bus
TARGET_LABELS = {"reg": ".reg", "secedit": ".inf", "netsh": "netsh", "wixfirewall": "WiX fw",
                 "powershell": "PowerShell", "wix": "MSI"}


PRIVILEGED_GROUPS = frozenset(g.casefold() for g in (
    "Administrators", "Backup Operators", "Power Users", "Server Operators", "Account Operators",
    "Print Operators", "Remote Desktop Users", "Remote Management Users", "Hyper-V Administrators",
    "Network Configuration Operators", "Domain Admins", "Enterprise Admins", "Schema Admins"))
# Rights that only let an account log on; every other right is a privilege worth a second look.
LOGON_RIGHTS = frozenset({"SeServiceLogonRight", "SeBatchLogonRight", "SeNetworkLogonRight",
                          "SeInteractiveLogonRight"})
SHORT_LIST = 6  # longer host and address lists are shortened in the summary


@dataclass(slots=True)
class ClassView:
    """One host class: what each of its PCs gets (once), and what differs per PC."""

    number: int
    anchor: str
    title: str
    roles: tuple[str, ...]
    hosts: list[str]
    hosts_short: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    reboots: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    matrices: list[dict[str, Any]] = field(default_factory=list)
    openings: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, str]] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    lints: list[dict[str, str]] = field(default_factory=list)


def _collector_paused(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` without the cyclic garbage collector: the report allocates hundreds of
    thousands of small containers and makes no reference cycles, and at the end of a large
    build each collection pass also walks the whole plan (10,000 hosts: 1.6 s of the
    report's 3.2 s). Reference counting still frees everything."""

    @wraps(function)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused


@_collector_paused
def build_view(plan: SitePlan, ctx: EmitContext, findings: list[Finding],
               artifacts: dict[str, list[dict[str, str]]], *,
               msis_built: bool = False, signer: Any = None,
               site_package: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The report's data; `artifacts` are the manifest's entries (kind, path, sha256) per host,
    the MSIs among them when `msis_built`; `signer` the signing certificate (sign.CertInfo)
    when the bundle is signed, so that the approval names it; `site_package` the manifest's
    entries of the site package (--site-msi), which the digest covers too."""
    site_package = site_package or []
    files = _artifacts(plan, artifacts, site_package)
    site = SiteIndex(frozenset(h.address for h in plan.hosts), _findings_by_host(findings))
    classes = [_class(c, ctx, findings, files, site) for c in host_classes(plan)]
    del files["_per_host"]  # now in the classes' rows
    return {
        "site": plan.site, "description": plan.description or "", "identity": plan.identity,
        "domain": plan.domain or "", "generator": f"dcomc {ctx.version}",
        "spec": ctx.spec_name, "spec_sha256": ctx.spec_sha256, "classes": classes,
        "host_count": len(plan.hosts), "lints": _site_lints(findings, ctx.spec_name),
        "resources": sum(len(h.resources) for h in plan.hosts),
        "diagram": _diagram(classes, plan), "flows": _class_flows(classes, plan),
        "msis_built": msis_built, **files,
        "signer": None if signer is None else signer.json(),
        "install_dir": f"%ProgramFiles%\\dcomc\\{plan.site}\\",  # where the MSI puts the engine
        "site_package": [{**a, "label": KIND_LABELS.get(a["kind"], a["kind"])}
                         for a in site_package],
        "site_msi": next((a["path"] for a in site_package if a["kind"] == "msi"), ""),
    }  # fmt: skip


# --- artifacts and their hashes ----------------------------------------------------------------

def _artifacts(plan: SitePlan, artifacts: dict[str, list[dict[str, str]]],
               site_package: list[dict[str, str]]) -> dict[str, Any]:
    """The bundle digest, the files identical on every host (listed once), and the columns of
    the per-host hash tables (one per remaining kind, in manifest order)."""
    # the manifest's own entries, only read here: copying 100,000 dicts cost 0.5 s
    listed = [a for h in plan.hosts for a in artifacts.get(h.name, [])]
    by_rel: dict[str, set[str]] = {}
    for a in listed:
        by_rel.setdefault(_relative(a["path"]), set()).add(a["sha256"])
    # one pass: a count per path scanned every artifact for every path (quadratic: 5.5 of a
    # 1,000-host build's 7 s)
    counts = Counter(_relative(a["path"]) for a in listed)
    shared = {rel for rel, digests in by_rel.items()
              if len(digests) == 1 and counts[rel] == len(plan.hosts)}
    first = artifacts.get(plan.hosts[0].name, []) if plan.hosts else []
    kinds = list(dict.fromkeys(a["kind"] for a in first if _relative(a["path"]) not in shared))
    return {
        "digest": bundle_digest([*listed, *site_package]),
        "files": len(listed) + len(site_package),
        "shared": [{"path": rel, "kind": a["kind"], "sha256": a["sha256"]}
                   for a in first if (rel := _relative(a["path"])) in shared],
        "columns": [{"kind": k, "label": KIND_LABELS.get(k, k)} for k in kinds],
        "_per_host": {h.name: {a["kind"]: a for a in artifacts.get(h.name, [])}
                      for h in plan.hosts},
    }  # fmt: skip


KIND_LABELS = {"msi": "MSI", "powershell-data": "data .psd1", "reg": ".reg", "inf": ".inf",
               "netsh": ".netsh", "wix-firewall": "WiX firewall", "wix-product": "WiX product",
               "wix-site-product": "WiX product of the site package",
               "wix-script": "custom actions (JScript)"}


def _relative(path: str) -> str:
    """A host's artifact path without the host folder."""
    return path.partition("/")[2]


def bundle_digest(artifacts: list[dict[str, str]]) -> str:
    """sha256 of the `sha256sum` lines of every host artifact, sorted by path: one hash that
    pins the whole bundle but its reports (which carry it). The report says how to compute
    it on the bundle folder."""
    lines = sorted((f"{a['sha256']}  {a['path']}\n" for a in artifacts),
                   key=lambda line: (line[66:].encode(), line))  # a path once: never a tie
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# --- one host class ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SiteIndex:
    """What every class looks up in the whole site, worked out once per report: scanning
    every host (or every lint) again for each of 2,000 classes made the review quadratic."""

    addresses: frozenset[str]  # every host's address: is a rule's scope the whole site?
    findings: dict[str, list[int]]  # host name -> indexes of the lints that name it


def _findings_by_host(findings: list[Finding]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for i, f in enumerate(findings):
        for name in dict.fromkeys(f.host.split(", ") if f.host else ()):
            found.setdefault(name, []).append(i)
    return found


def _class(cls: HostClass, ctx: EmitContext, findings: list[Finding],
           files: dict[str, Any], site: SiteIndex) -> ClassView:
    host = cls.first
    names = [h.name for h in cls.hosts]
    count = f"{len(names)} host" + ("s" if len(names) != 1 else "")
    view = ClassView(cls.number, f"class-{cls.number}",
                     f"Class {cls.number}: {' and '.join(cls.roles)}, {count}", cls.roles,
                     names, _shorten(names))
    view.rows = [_row(h, files) for h in cls.hosts]
    view.accounts = _accounts(host)
    view.settings = [describe(r) for r in host.resources
                     if isinstance(r, SecurityOption | MachineDcomValue | ServiceStartMode)]
    view.permissions = [describe(r) for r in host.resources if isinstance(
        r, AppIdPermission | MachineLimitAddition | AppIdAuthLevel | AppIdRunLocation)]
    view.reboots = [r.reason for r in host.of_kind(RebootNotice)]
    view.changes = _changes(host, ctx)
    view.matrices = _matrices(host)
    view.openings = _openings(host, site.addresses)
    view.secrets = [{"account": a, "property": f"DCOMC_PASSWORD_{n}"}
                    for n, a in enumerate(password_accounts(host), start=1)]
    view.manual = _manual(host)
    # the lints that name one of the class's hosts, in the findings' order, each once
    hits = sorted({i for name in names for i in site.findings.get(name, ())})
    view.lints = [_lint(findings[i], ctx.spec_name) for i in hits]
    return view


def _row(host: HostPlan, files: dict[str, Any]) -> dict[str, Any]:
    """What differs per PC of a class: its name, address and files' hashes (the lints that
    name it are listed with the class's)."""
    own = files["_per_host"][host.name]
    return {"name": host.name, "address": host.address,
            "hashes": [own[c["kind"]]["sha256"] if c["kind"] in own else ""
                       for c in files["columns"]],
            "paths": [own[c["kind"]]["path"] if c["kind"] in own else ""
                      for c in files["columns"]]}


def _shorten(items: list[str]) -> str:
    if len(items) <= SHORT_LIST:
        return ", ".join(items)
    return f"{', '.join(items[:3])}, … {items[-1]} ({len(items)} in all)"


def _accounts(host: HostPlan) -> list[dict[str, Any]]:
    """Accounts, memberships, rights and Log On accounts; privileged ones flagged."""
    found: list[dict[str, Any]] = []
    for r in host.resources:
        if isinstance(r, LocalUser | LocalGroup | ServiceLogon):
            found.append({"text": describe(r), "privileged": False})
        elif isinstance(r, GroupMember):
            found.append({"text": describe(r),
                          "privileged": r.group.name.casefold() in PRIVILEGED_GROUPS})
        elif isinstance(r, UserRight):
            found.append({"text": describe(r), "privileged": r.right not in LOGON_RIGHTS})
    return found


def _changes(host: HostPlan, ctx: EmitContext) -> list[dict[str, Any]]:
    carriers = {t.name: t.covers(host, ctx) for t in TARGETS}
    return [{"id": r.id, "kind": r.kind, "what": describe(r), "guide": r.prov.guide,
             "source": _where(r.prov.span, ctx.spec_name),
             "artifacts": ", ".join(TARGET_LABELS[name] for name, ids in carriers.items()
                                    if r.id in ids)}
            for r in host.resources]


def _openings(host: HostPlan, site: frozenset[str]) -> list[dict[str, Any]]:
    found = []
    for r in host.of_kind(FirewallRule):
        what = (f"TCP port {r.local_port}" if r.local_port else
                f"program {r.program}" if r.program else f"service {r.service}")
        short = (f"every host of this site ({len(r.remote)} addresses)"
                 if set(r.remote) == site and len(r.remote) > SHORT_LIST
                 else _shorten(list(r.remote)))
        found.append({"name": r.name, "what": what, "profiles": ", ".join(r.profiles),
                      "remote": ", ".join(r.remote), "remote_short": short})
    found += [{"name": g.group, "what": f"rule group {g.display_name}",
               "profiles": ", ".join(g.profiles), "remote": "as Windows defines it",
               "remote_short": "as Windows defines it"}
              for g in host.of_kind(FirewallRuleGroup)]
    return found


def _matrices(host: HostPlan) -> list[dict[str, Any]]:
    tables: dict[str, dict[str, dict[str, int]]] = {}
    for p in host.of_kind(AppIdPermission):
        title = f"AppID {p.app.key}"
        for ace in p.aces:
            row = tables.setdefault(title, {}).setdefault(principal_text(ace.principal), {})
            row[p.which] = row.get(p.which, 0) | ace.mask
    for m in host.of_kind(MachineLimitAddition):
        title = "Machine limits (added to Windows' own)"
        row = tables.setdefault(title, {}).setdefault(principal_text(m.principal), {})
        row[m.which] = row.get(m.which, 0) | m.mask
    return [{"title": title, "columns": [c[0] for c in MATRIX],
             "rows": [{"principal": who, "cells": [bool(masks.get(kind, 0) & bit)
                                                   for _, kind, bit in MATRIX]}
                      for who, masks in rows.items()]}
            for title, rows in tables.items()]


def _manual(host: HostPlan) -> list[str]:
    steps = []
    apps = sorted({p.app.key for p in host.of_kind(AppIdPermission) if p.app.key != "opcenum"})
    for app in apps:
        steps.append(f"{app}: in the OPC server's own settings, choose the process mode and "
                     "check \"Use DCOM configuration settings\" (guide §3, §3.1); no "
                     "automation for it is known.")
    steps.append("Reboot the PC after the first Apply: DCOM machine settings may only take "
                 "effect after a reboot (guide §4.3).")
    if "client" in host.roles:
        steps.append("Run each OPC client as its run_as user (guide §2.1 note).")
    return steps


def _lint(f: Finding, spec_name: str) -> dict[str, str]:
    return {"code": f.code, "severity": str(f.lint.severity), "title": f.lint.title,
            "message": f.message, "source": _where(f.span, spec_name)}


def _where(span: Span | None, spec_name: str) -> str:
    """`spec.yaml:12:5` with the spec's file name only: the same bytes from any folder."""
    return f"{spec_name}:{span.line}:{span.col}" if span else ""


def _site_lints(findings: list[Finding], spec_name: str) -> list[dict[str, str]]:
    """The site's lints; one lint repeated per host with the host's name in front (`H: ...`)
    is one row naming its hosts, so 299 HMIs do not make 299 rows."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        prefix = f"{f.host}: " if f.host else ""
        text = f.message[len(prefix):] if prefix and f.message.startswith(prefix) else f.message
        groups.setdefault((f.code, text, _where(f.span, spec_name)), []).append(f)
    rows = []
    for (code, text, source), found in groups.items():
        hosts = [h for f in found for h in (f.host or "").split(", ") if h]
        rows.append({**_lint(found[0], spec_name), "source": source, "hosts": _shorten(hosts),
                     "message": found[0].message if len(found) == 1 else text, "code": code})
    return rows


def _flow_pairs(classes: list[ClassView], plan: SitePlan) -> list[tuple[ClassView, ClassView]]:
    """(client class, server class) of every flow of the plan between two PCs, once each, in
    class order: the flows the spec declares (or, without `calls`, every client to every
    server), never a pair no flow joins."""
    of_host = {h.casefold(): c for c in classes for h in c.hosts}
    found = {(of_host[f.client_host.casefold()].number, of_host[f.server_host.casefold()].number)
             for f in plan.flows if not f.local}
    by_number = {c.number: c for c in classes}
    return [(by_number[a], by_number[b]) for a, b in sorted(found)]


def _class_flows(classes: list[ClassView], plan: SitePlan) -> list[dict[str, Any]]:
    """The flows between host classes, for the text of the report."""
    return [{"client": c.title, "client_anchor": c.anchor, "client_hosts": c.hosts_short,
             "server": s.title, "server_anchor": s.anchor, "server_hosts": s.hosts_short}
            for c, s in _flow_pairs(classes, plan)]


def _diagram(classes: list[ClassView], plan: SitePlan) -> dict[str, Any]:
    """Boxes of the host classes and arrows of their DCOM flows (clients → servers, callbacks
    back): a class is one box however many PCs it has, so 300 hosts draw like 3."""
    clients = [c for c in classes if "client" in c.roles]
    servers = [c for c in classes if "server" in c.roles]
    row, top, box = 60, 40, 40
    height = top + row * max(len(clients), len(servers), 1) + 10
    boxes = [_box(c, 20, top + i * row, "client") for i, c in enumerate(clients)]
    boxes += [_box(c, 440, top + i * row, "server") for i, c in enumerate(servers)]
    # by number, not list.index: that compared ClassViews field by field, each against every
    # box before it (2,000 classes: 0.8 s)
    client_row = {c.number: i for i, c in enumerate(clients)}
    server_row = {c.number: j for j, c in enumerate(servers)}
    pairs = [(client_row[c.number], server_row[s.number]) for c, s in _flow_pairs(classes, plan)]
    mid = box // 2
    if len(pairs) <= MAX_PAIR_ARROWS:
        flows = [{"x1": 240, "y1": top + i * row + mid, "x2": 440, "y2": top + j * row + mid,
                  "client": clients[i].number, "server": servers[j].number}
                 for i, j in pairs]
        return {"width": 660, "height": height, "boxes": boxes, "flows": flows, "bus": None}
    # Many classes: one arrow per class to a shared bus, so the drawing grows linearly.
    flows = [{"x1": 240, "y1": top + i * row + mid, "x2": 340, "y2": top + i * row + mid}
             for i in range(len(clients))]
    flows += [{"x1": 340, "y1": top + j * row + mid, "x2": 440, "y2": top + j * row + mid}
              for j in range(len(servers))]
    bus = {"x": 340, "y1": top + 10, "y2": height - 20}
    return {"width": 660, "height": height, "boxes": boxes, "flows": flows, "bus": bus}


def _box(c: ClassView, x: int, y: int, side: str) -> dict[str, Any]:
    hosts = c.hosts_short if len(c.hosts_short) <= 30 else c.hosts_short[:29] + "…"
    count = f"{len(c.hosts)} host" + ("s" if len(c.hosts) != 1 else "")
    return {"label": f"Class {c.number} · {count}", "hosts": hosts, "x": x, "y": y,
            "side": side, "anchor": c.anchor}


# --- rendering ---------------------------------------------------------------------------------

# Every character that can start markup anywhere in a line: emphasis, code, links and images,
# HTML and autolinks, tables, headings, strikethrough and fences (`~`), entities (`&rlm;`).
# CommonMark reads a backslash before any ASCII punctuation as that character, so each is
# written escaped.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~&])")
# Bare URLs and addresses that GFM turns into links: `scheme://`, `www.` and `name@domain`
# (not `@FirewallAPI.dll`, which has no name before the `@`).
_MD_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=[\w.+-])(?=@)")
# What opens a block when the value starts a line (the description, a list item): a list
# marker (`- `, `+ `, `1. `, `1) `), a thematic break or setext underline (`---`, `===`).
_MD_LINE_START = re.compile(r"[-+=](?=[-+= ]|$)|\d{1,9}(?=[.)](?: |$))")
_MD_ANY = re.compile(r"[\\`*_{}\[\]<>|#!~&@\r\n]|://|(?i:www\.)|^[-+= \d]")


def md_escape(value: Any) -> str:
    """Markdown-safe text: no value can open a block, a fence, an entity, a link or a table
    cell wherever the template puts it. Every special character is escaped, bare URLs are
    broken (`http\\://`, `www\\.`), a list marker or rule at the start is escaped, a leading
    space (which could make an indented code block) is written `&#32;`, and line breaks are
    flattened."""
    text = "" if value is None else str(value)
    if _MD_ANY.search(text) is None:  # most values: one scan, nothing to change
        return text
    text = _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")
    text = _MD_AUTOLINK.sub("\\\\", text)
    start = _MD_LINE_START.match(text)
    if start is not None:
        end = start.end()
        text = "\\" + text if text[0] in "-+=" else f"{text[:end]}\\{text[end:]}"
    if text.startswith(" "):
        text = "&#32;" + text[1:]
    return text


# Values the Markdown report writes as they are: letters, digits and punctuation that opens no
# markup anywhere in a line (what could still start a block at a line's start is checked
# apart: `_MD_LINE_START`). Everything else goes into a code span.
_MD_PLAIN = re.compile(r"[^\W_]|[ .,:;()/'\"%$§?=+-]")
_MD_PLAIN_RUN = re.compile(f"(?:{_MD_PLAIN.pattern})*")
_MD_LINK_START = re.compile(r"(?i)://|www\.")
_BACKTICKS = re.compile(r"`+")


def md_text(value: Any) -> str:
    """A value in REVIEW.md, readable as plain text and unable to reshape the page: plain
    words stay as they are (`opcsvc`, `10.7.3.10`); anything that could be markup is a code
    span (`` `local_user:opcsvc` ``, `` `C:\\Program Files` ``), whose content CommonMark
    takes literally: no emphasis, entity, link, HTML or escape inside. Its fence is one
    backtick longer than the longest run in the value, so the value cannot close it; its
    `|` is marked (`_PIPE`) and becomes `\\|` in a table row, where GFM splits cells before
    it reads code spans (and drops that backslash), and stays `|` elsewhere, where the
    backslash would show (`_pipes`); line breaks are flattened."""
    if type(value) is str:
        return _md_str(value)
    return _md_str("" if value is None else str(value))


@lru_cache(maxsize=4096)  # the texts of a class's tables recur in every class like it
def _md_str(value: str) -> str:
    text = value.replace("\r", " ").replace("\n", " ")
    if _plain(text):
        return text
    fence = "`" * (1 + max((len(run) for run in _BACKTICKS.findall(text)), default=0))
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text.replace('|', _PIPE)}{pad}{fence}"


# A code span's `|` until the line it lands in is known: NUL, which no value can hold (check
# refuses control characters in every string, E201, and in the spec's file name).
_PIPE = "\x00"


def _pipes(markdown: str) -> str:
    """The marked `|` of code spans: `\\|` in a table row, `|` in any other line."""
    if _PIPE not in markdown:
        return markdown
    return "\n".join(line.replace(_PIPE, "\\|" if line.startswith("|") else "|")
                     for line in markdown.split("\n"))


def _plain(text: str) -> bool:
    if text.isalnum():  # exactly `[^\W_]+` (both are Unicode's alphanumerics): a hash, a name
        return True  # nothing else to find: no space, `://`, `www.`, list marker or number+`.`
    return (text == "" or (text.strip() == text and _MD_PLAIN_RUN.fullmatch(text) is not None
            and _MD_LINK_START.search(text) is None and _MD_LINE_START.match(text) is None))


def _slug(text: str) -> str:
    """The anchor GitHub and most Markdown viewers give a heading."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


class _Env(Environment):
    """`row.name` reads a dict's key first: the view is made of dicts, and Jinja's own order
    (attribute, then key) costs a caught AttributeError on every cell of the report."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@cache
def _env(markdown: bool) -> Environment:
    """One environment per format and process: its templates are compiled once, and their
    compiled code is kept between runs (`_bytecode_cache`)."""
    loader = FileSystemLoader(str(templates_dir() / "review"))
    common: dict[str, Any] = {"loader": loader, "undefined": StrictUndefined,
                              "bytecode_cache": _bytecode_cache(), "trim_blocks": True,
                              "lstrip_blocks": True, "keep_trailing_newline": True}
    if markdown:
        env = _Env(autoescape=False, finalize=md_text, **common)
        env.filters["slug"] = _slug
        return env
    return _Env(autoescape=select_autoescape(["html", "j2"], default=True), **common)


@cache
def _bytecode_cache() -> BytecodeCache | None:
    """Compiling the two templates costs 25 ms, more than rendering a 50-host report: like
    Python's own .pyc files, the compiled code is kept in a private folder of the user's temp
    directory (Jinja's FileSystemBytecodeCache: mode 0700, refused unless owned by the user;
    an entry is used only while its template's source is unchanged). Without a safe folder the
    templates are compiled each run, as before."""
    try:
        return _TolerantCache()
    except (OSError, RuntimeError):
        return None


class _TolerantCache(FileSystemBytecodeCache):
    """A cache must never fail a build: an entry that cannot be read (damaged, truncated) or
    written (a full or read-only temp folder) only means compiling the template this time.

    Jinja keys an entry by template name, file and source only, yet the compiled code also
    depends on the environment's options (autoescape, finalize, whitespace control) and on
    Jinja itself: both are in the key here, so another dcomc or Jinja version never runs code
    compiled under other options."""

    SALT = f"{jinja2.__version__}|{hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}"

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return super().get_cache_key(f"{name}|{self.SALT}", filename)

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # whatever a damaged entry raises (pickle, marshal, I/O)
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


@_collector_paused
def render(view: dict[str, Any]) -> dict[str, bytes]:
    """review.html and REVIEW.md, UTF-8."""
    html = _env(False).get_template("review.html.j2").render(view=view, rights=sd.LAUNCH_RIGHTS)
    md = _pipes(_env(True).get_template("review.md.j2").render(view=view))
    return {"review.html": html.encode("utf-8"), "REVIEW.md": md.encode("utf-8")}
