"""Security lints over the plan: what catches the insecure "just make it work" recipes.

Each lint has a stable code and a severity (errors always fail a build; warnings fail it only
with --strict). They run on the lowered plan, so they judge what will really be applied —
defaults and per-host overrides included — and point at the spec line that caused it.
Sources: KB5004442 (dcom-facts §5), the guide, and peers.md pain points 1 and 4.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dcomc.diagnostics import Diagnostics, Severity, Span
from dcomc.front.spec import Spec
from dcomc.plan.model import (
    AppIdAuthLevel,
    AppIdPermission,
    FirewallRule,
    HostPlan,
    MachineDcomValue,
    MachineLimitAddition,
    PrincipalKind,
    Resource,
    SecurityOption,
    ServiceLogon,
    SitePlan,
)

PKT_INTEGRITY = 5
EVERYONE, ANONYMOUS = "S-1-1-0", "S-1-5-7"
LAUNCH_BITS = 0x1E  # local/remote launch and activation
BUILTIN_LOGONS = {"S-1-5-18": "SYSTEM", "S-1-5-19": "LOCAL SERVICE", "S-1-5-20": "NETWORK SERVICE"}


@dataclass(frozen=True, slots=True)
class Lint:
    code: str
    severity: Severity
    title: str


LINTS: dict[str, Lint] = {lint.code: lint for lint in (
    Lint("E601", Severity.ERROR, "AppID authentication level below packet integrity "
         "(KB5004442)"),
    Lint("E602", Severity.ERROR, "machine default authentication level below packet "
         "integrity (KB5004442)"),
    Lint("W611", Severity.WARNING, "Everyone or ANONYMOUS LOGON may launch or activate"),
    Lint("W612", Severity.WARNING, "ANONYMOUS LOGON access that neither OPCEnum nor callbacks "
         "need"),
    Lint("W613", Severity.WARNING, "firewall rule open to any remote address"),
    Lint("W614", Severity.WARNING, "security option on the side the guide does not put it"),
    Lint("W615", Severity.WARNING, "service account whose password expires"),
    Lint("W616", Severity.WARNING, "machine launch-limit edit where Distributed COM Users "
         "membership would do"),
    Lint("W617", Severity.WARNING, "account a workgroup cannot share across PCs"),
)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    host: str | None
    message: str
    span: Span | None

    @property
    def lint(self) -> Lint:
        return LINTS[self.code]


def lint(spec: Spec, plan: SitePlan) -> list[Finding]:
    """Every finding; one per code, message and spec place, naming all the hosts it hits."""
    hosts: dict[tuple[str, str, Span | None], list[str]] = {}
    for finding in [*(f for h in plan.hosts for rule in _HOST_RULES for f in rule(h)),
                    *_accounts(spec, plan)]:
        names = hosts.setdefault((finding.code, finding.message, finding.span), [])
        if finding.host and finding.host not in names:
            names.append(finding.host)
    merged = [Finding(code, ", ".join(names) or None, f"{', '.join(names)}: {message}"
                      if names else message, span)
              for (code, message, span), names in hosts.items()]
    return sorted(merged, key=lambda f: (f.span or Span("", 0, 0), f.code, f.message))


def report(findings: list[Finding], diags: Diagnostics, *, strict: bool) -> None:
    """Findings as diagnostics; with strict, warnings become errors."""
    for f in findings:
        if f.lint.severity is Severity.ERROR or strict:
            diags.error(f.span, f.code, f.message)
        else:
            diags.warning(f.span, f.code, f.message)


def _finding(code: str, host: HostPlan, resource: Resource, message: str) -> Finding:
    return Finding(code, host.name, message, resource.prov.span)


# --- KB5004442 ------------------------------------------------------------------------------


def _authentication(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(AppIdAuthLevel):
        if r.value is not None and r.value < PKT_INTEGRITY:
            yield _finding("E601", host, r, (
                f"{r.app.key}: AuthenticationLevel {r.level} is below packet_integrity; since "
                "March 2023 (KB5004442) Windows refuses DCOM activations below packet integrity "
                "and the setting cannot be turned off: use packet_integrity or packet_privacy"))
    for r in host.of_kind(MachineDcomValue):
        if r.name == "LegacyAuthenticationLevel" and isinstance(r.data, int) and (
                r.data < PKT_INTEGRITY):
            yield _finding("E602", host, r, (
                f"the machine default authentication level ({r.data}) is below "
                "packet integrity (5); KB5004442 hardening makes activations at that level "
                "fail with 0x80070005: use packet_integrity"))


# --- anonymous and Everyone -----------------------------------------------------------------


def _launch_exposure(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(AppIdPermission):
        if r.which != "launch":
            continue
        for ace in r.aces:
            if ace.principal.sid in (EVERYONE, ANONYMOUS) and ace.mask & LAUNCH_BITS:
                yield _finding("W611", host, r, (
                    f"{r.app.key}: {ace.principal.name} may launch/activate the server; grant "
                    "a dedicated group instead (peers.md pain point 4)"))
    for m in host.of_kind(MachineLimitAddition):
        if m.which == "launch" and m.principal.sid in (EVERYONE, ANONYMOUS):
            yield _finding("W611", host, m, (
                f"the machine launch limit is opened to {m.principal.name}"))


def _anonymous_access(host: HostPlan) -> Iterator[Finding]:
    has_opcenum = any(r.app.key == "opcenum" for r in host.of_kind(AppIdPermission))
    callbacks = "client" in host.roles
    for m in host.of_kind(MachineLimitAddition):
        if m.which == "access" and m.principal.sid == ANONYMOUS and not (has_opcenum or callbacks):
            yield _finding("W612", host, m, (
                "ANONYMOUS LOGON is added to the machine access limit, but this "
                "host neither runs OPCEnum nor receives OPC callbacks (guide §4.2 step 11)"))
    for r in host.of_kind(AppIdPermission):
        if r.which == "access" and r.app.key != "opcenum":
            for ace in r.aces:
                if ace.principal.sid == ANONYMOUS:
                    yield _finding("W612", host, r, (
                        f"{r.app.key}: ANONYMOUS LOGON may call the server; OPC DA clients "
                        "authenticate, only OPCEnum browsing is anonymous"))


# --- firewall and policies ------------------------------------------------------------------


def _firewall(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(FirewallRule):
        opened = open_to_any(r.remote)
        if opened:
            yield _finding("W613", host, r, (
                f"firewall rule {r.name} allows {opened}; use `site` or "
                "the plant network (guide §5: restore the firewall with exact exceptions)"))


@functools.lru_cache(maxsize=256)
def open_to_any(remote: tuple[str, ...]) -> str | None:
    """What a remote scope effectively opens to everyone, or None: `any` itself, or networks
    that together cover every IPv4 or IPv6 address (0.0.0.0/0, ::/0, or 0.0.0.0/1 plus
    128.0.0.0/1), as the firewall reads the list. Cached: most rules of a site share one scope
    (`site`), which has 80 networks in a 1,000-host site."""
    if "any" in remote:
        return "any remote address"
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for entry in remote:
        try:
            net = ipaddress.ip_network(re.sub(r"%[^/]*", "", entry), strict=False)  # no zone
        except ValueError:
            continue  # check refuses it; nothing to judge
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    whole = [name for name, everything, collapsed in (
        ("IPv4", ipaddress.IPv4Network("0.0.0.0/0"), list(ipaddress.collapse_addresses(v4))),
        ("IPv6", ipaddress.IPv6Network("::/0"), list(ipaddress.collapse_addresses(v6))))
        if everything in collapsed]
    return f"every {' and every '.join(whole)} address (as open as `any`)" if whole else None


def _policy_side(host: HostPlan) -> Iterator[Finding]:
    for r in host.of_kind(SecurityOption):
        if r.value_name == "EveryoneIncludesAnonymous" and r.value and (
                host.roles == ("server",)):
            yield _finding("W614", host, r, (
                "Everyone includes anonymous on a server-only host; the guide "
                "enables it on clients only (§7.2)"))
        if r.value_name == "ForceGuest" and r.value == 0 and host.roles == ("client",):
            yield _finding("W614", host, r, (
                "classic sharing model on a client-only host; the guide sets it "
                "on servers only (§7.1)"))


def _launch_limits(host: HostPlan) -> Iterator[Finding]:
    for m in host.of_kind(MachineLimitAddition):
        if m.which == "launch" and m.principal.sid != "S-1-5-32-562" and (
                m.principal.sid not in (EVERYONE, ANONYMOUS)):
            yield _finding("W616", host, m, (
                f"the machine launch limit is edited for {m.principal.name}; Windows already "
                "lets Distributed COM Users launch and activate remotely (dcom-facts §2.1): "
                "make the account a member of Distributed COM Users instead and drop "
                "launch_limits"))


_HOST_RULES: tuple[Callable[[HostPlan], Iterator[Finding]], ...] = (
    _authentication, _launch_exposure, _anonymous_access, _firewall, _policy_side,
    _launch_limits,
)


# --- accounts -------------------------------------------------------------------------------


def _accounts(spec: Spec, plan: SitePlan) -> Iterator[Finding]:
    for host in plan.hosts:
        for r in host.of_kind(ServiceLogon):
            yield from _service_account(spec, host, r)


def _service_account(spec: Spec, host: HostPlan, r: ServiceLogon) -> Iterator[Finding]:
    account = r.account
    user = spec.accounts.users.get(account.name)
    if user is not None and not user.password_never_expires:
        yield _finding("W615", host, r, (
            f"{account.name} runs the service {r.service} but its password expires: the "
            "server stops authenticating the day it does (password_never_expires: true)"))
    if plan_is_workgroup(spec) and account.sid in BUILTIN_LOGONS:
        yield _finding("W617", host, r, (
            f"{r.service} logs on as {BUILTIN_LOGONS[account.sid]}, which cannot authenticate "
            "to another PC of a workgroup; use a site account (guide §3.2)"))
    if plan_is_workgroup(spec) and user is not None and user.existing and (
            account.kind is PrincipalKind.LOCAL):
        yield _finding("W617", host, r, (
            f"{account.name} is an existing local account: dcomc cannot make its password the "
            "same on every PC, which a workgroup needs (guide §2.1)"))


def plan_is_workgroup(spec: Spec) -> bool:
    return spec.site.identity == "workgroup"
