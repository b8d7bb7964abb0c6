"""The review report: what IT reads before approving a bundle (OUT/review.html, OUT/REVIEW.md).

One view model, two renderings from templates/review/. Escaping is the environment's job, not
the template author's: the HTML environment autoescapes every value, and the Markdown
environment passes every value through `md_escape` by `finalize`, so a principal named
`a|b *c*` can break neither a table nor the page.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

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
from dcomc.plan.lint import Finding
from dcomc.plan.model import (
    AppIdPermission,
    FirewallRule,
    FirewallRuleGroup,
    HostPlan,
    MachineLimitAddition,
    SitePlan,
)
from dcomc.windows import sd
from dcomc_targets import TARGETS, EmitContext
from dcomc_targets.base import templates_dir
from dcomc_targets.wix import password_accounts

# Columns of the permission matrix, as dcomcnfg shows them.
MATRIX = (
    ("Local launch", "launch", 0x02), ("Remote launch", "launch", 0x04),
    ("Local activation", "launch", 0x08), ("Remote activation", "launch", 0x10),
    ("Local access", "access", 0x02), ("Remote access", "access", 0x04),
)  # fmt: skip
MAX_PAIR_ARROWS = 64  # above this many client/server pairs the diagram draws a bus
TARGET_LABELS = {"reg": ".reg", "secedit": ".inf", "netsh": "netsh", "wixfirewall": "WiX fw",
                 "powershell": "PowerShell", "wix": "MSI"}


@dataclass(slots=True)
class HostView:
    name: str
    address: str
    roles: tuple[str, ...]
    changes: list[dict[str, Any]] = field(default_factory=list)
    matrices: list[dict[str, Any]] = field(default_factory=list)
    openings: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)
    lints: list[dict[str, str]] = field(default_factory=list)
    artifacts: list[dict[str, str]] = field(default_factory=list)


def build_view(plan: SitePlan, ctx: EmitContext, findings: list[Finding],
               artifacts: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """The report's data; `artifacts` are the manifest's entries (path, sha256) per host."""
    hosts = [_host(host, ctx, findings, artifacts.get(host.name, [])) for host in plan.hosts]
    return {
        "site": plan.site, "description": plan.description or "", "identity": plan.identity,
        "domain": plan.domain or "", "generator": f"dcomc {ctx.version}",
        "spec": ctx.spec_name, "spec_sha256": ctx.spec_sha256, "hosts": hosts,
        "servers": [h.name for h in hosts if "server" in h.roles],
        "clients": [h.name for h in hosts if "client" in h.roles],
        "lints": [_lint(f, ctx.spec_name) for f in findings],
        "diagram": _diagram(plan),
        "resources": sum(len(h.resources) for h in plan.hosts),
    }  # fmt: skip


def _host(host: HostPlan, ctx: EmitContext, findings: list[Finding],
          artifacts: list[dict[str, str]]) -> HostView:
    view = HostView(host.name, host.address, host.roles)
    carriers = {t.name: t.covers(host, ctx) for t in TARGETS}
    for r in host.resources:
        by = [TARGET_LABELS[name] for name, ids in carriers.items() if r.id in ids]
        view.changes.append({"id": r.id, "kind": r.kind, "what": describe(r),
                             "guide": r.prov.guide, "source": _where(r.prov.span, ctx.spec_name),
                             "artifacts": ", ".join(by)})
    view.matrices = _matrices(host)
    view.openings = [_opening(r) for r in host.of_kind(FirewallRule)]
    view.openings += [{"name": g.group, "what": f"rule group {g.display_name}",
                       "profiles": ", ".join(g.profiles), "remote": "as Windows defines it"}
                      for g in host.of_kind(FirewallRuleGroup)]
    view.secrets = list(password_accounts(host))
    view.manual = _manual(host)
    view.lints = [_lint(f, ctx.spec_name) for f in findings
                  if f.host and host.name in f.host.split(", ")]
    view.artifacts = sorted(({"path": a["path"], "sha256": a["sha256"]} for a in artifacts),
                            key=lambda a: a["path"])
    return view


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


def _opening(r: FirewallRule) -> dict[str, str]:
    what = (f"TCP port {r.local_port}" if r.local_port else
            f"program {r.program}" if r.program else f"service {r.service}")
    return {"name": r.name, "what": what, "profiles": ", ".join(r.profiles),
            "remote": ", ".join(r.remote)}


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


def _diagram(plan: SitePlan) -> dict[str, Any]:
    """Box positions and arrows of the DCOM flows (clients → servers, callbacks back)."""
    clients = [h.name for h in plan.hosts if "client" in h.roles]
    servers = [h.name for h in plan.hosts if "server" in h.roles]
    row, top = 56, 40
    height = top + row * max(len(clients), len(servers), 1) + 20
    boxes = [{"name": n, "x": 20, "y": top + i * row, "side": "client"}
             for i, n in enumerate(clients)]
    boxes += [{"name": n, "x": 460, "y": top + i * row, "side": "server"}
              for i, n in enumerate(servers)]
    if len(clients) * len(servers) <= MAX_PAIR_ARROWS:
        flows = [{"x1": 200, "y1": top + i * row + 14, "x2": 460, "y2": top + j * row + 14}
                 for i in range(len(clients)) for j in range(len(servers))
                 if clients[i] != servers[j]]
        return {"width": 660, "height": height, "boxes": boxes, "flows": flows, "bus": None}
    # A large site: one arrow per host to a shared bus, so the page grows linearly.
    flows = [{"x1": 200, "y1": top + i * row + 14, "x2": 330, "y2": top + i * row + 14}
             for i in range(len(clients))]
    flows += [{"x1": 330, "y1": top + j * row + 14, "x2": 460, "y2": top + j * row + 14}
              for j in range(len(servers))]
    bus = {"x": 330, "y1": top + 10, "y2": height - 20}
    return {"width": 660, "height": height, "boxes": boxes, "flows": flows, "bus": bus}


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
        return _Env(autoescape=False, finalize=md_escape, **common)
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


def render(view: dict[str, Any]) -> dict[str, bytes]:
    """review.html and REVIEW.md, UTF-8."""
    html = _env(False).get_template("review.html.j2").render(view=view, rights=sd.LAUNCH_RIGHTS)
    md = _env(True).get_template("review.md.j2").render(view=view)
    return {"review.html": html.encode("utf-8"), "REVIEW.md": md.encode("utf-8")}
