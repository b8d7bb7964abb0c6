"""Stage 3, check: whole-spec rules that the models cannot express, reported with spans.

All checks run and report; none stops at the first problem. Codes are stable (docs/errors.md):
E0xx loading, E1xx references, E2xx names and formats, E3xx site rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from dcomc.checks import hosts
from dcomc.checks.context import Context
from dcomc.checks.names import (
    DESCRIPTION_MAX,
    GROUP_NAME_MAX,
    USER_NAME_MAX,
    account_name_problem,
    domain_name_problem,
    netbios_domain_ok,
)
from dcomc.diagnostics import CONTROL_CHARS, NONCHARACTERS, Diagnostics, escaped
from dcomc.front import catalog
from dcomc.front.load import Loaded, NodePath
from dcomc.front.spec import KEY_PATTERN, Spec
from dcomc.plan import flows
from dcomc.plan.principals import Resolver
from dcomc.windows import sids

# Keys that become file, rule and folder names.
_KEY_RE = re.compile(KEY_PATTERN)


def check(spec: Spec, loaded: Loaded, diags: Diagnostics) -> None:
    """Run every rule; problems go into `diags`."""
    ctx = Context(spec, loaded, diags, Resolver(spec))
    for rule in _RULES:
        rule(ctx)


# --- strings --------------------------------------------------------------------------------


def _walk_strings(data: Any, path: NodePath = ()) -> Iterator[tuple[NodePath, str, bool]]:
    """Every string in the document: (path, text, is-a-mapping-key)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*path, key), key, True
            yield from _walk_strings(value, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _walk_strings(item, (*path, i))
    elif isinstance(data, str):
        yield path, data, False


# Control and invisible format characters (the list and why: diagnostics.CONTROL_CHARS), and
# lone surrogates and noncharacters, which no artifact can carry (UTF-8 refuses a surrogate).
_CONTROL = re.compile(f"[{CONTROL_CHARS}]")
_NONCHAR = re.compile(f"[{NONCHARACTERS}]")


def _control_chars(ctx: Context) -> None:
    # A newline inside a name or description would break every line-based artifact (.reg,
    # INF, netsh) and could smuggle a second command or value into it.
    for path, text, is_key in _walk_strings(ctx.loaded.data):
        found = _CONTROL.search(text) or _NONCHAR.search(text)
        if found is None or (not is_key and path and path[-1] == "password"):
            continue  # a password is reported by E206 and never echoed
        bad = found.group()
        what = "key" if is_key else "value"
        ctx.error(path, "E201", f"{_char_name(bad)} in {what} '{_printable(text)}'",
                  key=is_key)


def _char_name(char: str) -> str:
    names = {"\t": "tab", "\n": "newline", "\r": "carriage return"}
    if char in names:
        return f"{names[char]} (U+{ord(char):04X})"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"lone surrogate U+{ord(char):04X}"
    if _NONCHAR.fullmatch(char):
        return f"noncharacter U+{ord(char):04X}"
    if unicodedata.category(char) == "Cf":
        return f"invisible format character U+{ord(char):04X} ({unicodedata.name(char, '?')})"
    return f"control character U+{ord(char):04X}"


def _printable(text: str) -> str:
    return escaped(text)[:60]


# --- names ----------------------------------------------------------------------------------


def _account_names(ctx: Context) -> None:
    for section, limit in (("users", USER_NAME_MAX), ("groups", GROUP_NAME_MAX)):
        for name in getattr(ctx.spec.accounts, section):
            _check_account_name(ctx, ("accounts", section, name), name, limit)


def _check_account_name(ctx: Context, path: NodePath, name: str, limit: int) -> None:
    _, sep, account = name.rpartition("\\")
    if sep:
        if ctx.spec.site.identity == "workgroup":
            ctx.error(path, "E205", f"'{name}' is a domain account, but the site is a "
                      "workgroup (set site.identity: domain or mixed)", key=True)
            return
        problem = domain_name_problem(name)
        if problem:
            ctx.error(path, "E202", problem, key=True)
            return
    problem = account_name_problem(account, limit)
    if problem:
        ctx.error(path, "E202", f"invalid account name '{name}': it {problem}", key=True)


def _collisions(ctx: Context) -> None:
    # Users and groups share one namespace in the SAM; Windows folds case when comparing.
    accounts = [("accounts", "users", n) for n in ctx.spec.accounts.users]
    accounts += [("accounts", "groups", n) for n in ctx.spec.accounts.groups]
    _report_collisions(ctx, accounts, "account")
    for path in accounts:
        builtin = _builtin_name(str(path[-1]))
        if builtin is not None:
            ctx.error(path, "E204", f"'{path[-1]}' is the name of the well-known principal "
                      f"{builtin[0]} ({builtin[1]}); choose another name", key=True)
    for section in ("hosts", "servers", "clients"):
        paths = [(section, n) for n in getattr(ctx.spec, section)]
        _report_collisions(ctx, paths, section[:-1])
    for map_path, mapping in _principal_maps(ctx.spec):
        _principal_collisions(ctx, map_path, mapping)


# Built-in accounts every Windows PC has (RIDs 500 and 501, renamed or not).
_BUILTIN_USERS = {"administrator": ("Administrator", "S-1-5-21-<machine>-500"),
                  "guest": ("Guest", "S-1-5-21-<machine>-501")}


def _builtin_name(name: str) -> tuple[str, str] | None:
    known = sids.well_known(name)
    if known is not None:
        return known.name, known.sid
    for sid, builtin in sids.SID_TO_NAME.items():
        if builtin.casefold() == name.casefold():
            return builtin, sid
    return _BUILTIN_USERS.get(name.casefold())


def _principal_collisions(ctx: Context, map_path: NodePath, mapping: dict[str, Any]) -> None:
    """Two keys of one ACL map that denote the same principal (by SID, or by folded name)."""
    seen: dict[str, str] = {}
    for name in mapping:
        principal = ctx.res.resolve(name)
        if principal is None:
            continue
        identity = principal.sid or principal.name.casefold()
        if identity in seen:
            first = seen[identity]
            line = ctx.loaded.key_span((*map_path, first)).line
            both = f"both denote {principal.sid}" if principal.sid else (
                "Windows compares names case-insensitively")
            ctx.error((*map_path, name), "E204", f"principal '{name}' collides with '{first}' "
                      f"(line {line}): {both}", key=True)
        else:
            seen[identity] = name


def _report_collisions(ctx: Context, paths: Iterable[NodePath], what: str) -> None:
    seen: dict[str, NodePath] = {}
    for path in paths:
        folded = str(path[-1]).casefold()
        if folded in seen:
            first = seen[folded]
            line = ctx.loaded.key_span(first).line
            ctx.error(path, "E204", f"{what} '{path[-1]}' collides with '{first[-1]}' (line "
                      f"{line}): Windows compares names case-insensitively", key=True)
        else:
            seen[folded] = path


def _keys(ctx: Context) -> None:
    site = ctx.spec.site.name
    if not _KEY_RE.match(site):
        ctx.error(("site", "name"), "E212", f"site name '{site}' must be 1-64 "
                  "letters, digits, '.', '_' or '-' (it names folders and rules)")
    elif _windows_reserved(site) or site.endswith("."):
        ctx.error(("site", "name"), "E212", f"site name '{site}' cannot name a folder on "
                  f"Windows ({_why_not_a_folder(site)}); it names the install folder "
                  "dcomc\\<site> on every PC")
    for section in ("servers", "clients"):
        for key in getattr(ctx.spec, section):
            if not _KEY_RE.match(key):
                ctx.error((section, key), "E212", f"{section[:-1]} key '{key}' must be 1-64 "
                          "letters, digits, '.', '_' or '-'", key=True)
    for host in ctx.spec.hosts:
        if (len(host) > 15 or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", host)
                or host.isdigit() or host.endswith("-")):
            ctx.error(("hosts", host), "E213", f"host name '{host}' is not a valid computer "
                      "name (1-15 letters, digits or '-'; not digits only, not ending in '-')",
                      key=True)
        elif _windows_reserved(host):
            ctx.error(("hosts", host), "E213", f"host name '{host}' is a Windows device name: "
                      "its bundle folder and files (<HOST>.psd1, <HOST>.msi...) could not be "
                      "copied to a Windows PC", key=True)


# Device names Windows reserves in every folder, with or without an extension (CON.txt too).
_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"{p}{n}" for p in ("COM", "LPT")
                                                    for n in range(10))})


def _windows_reserved(name: str) -> bool:
    return name.split(".", 1)[0].upper() in _DEVICES


def _why_not_a_folder(name: str) -> str:
    return "a device name" if _windows_reserved(name) else "Windows drops a final '.'"


# --- accounts -------------------------------------------------------------------------------


def _accounts(ctx: Context) -> None:
    for name, user in ctx.spec.accounts.users.items():
        path: NodePath = ("accounts", "users", name)
        _check_password(ctx, path, name, user.password, user.existing)
        _check_sid(ctx, path, user.sid, user.existing)
        if user.description and len(user.description) > DESCRIPTION_MAX:
            ctx.error((*path, "description"), "E211", f"description of '{name}' is longer "
                      f"than {DESCRIPTION_MAX} characters")
    for name, group in ctx.spec.accounts.groups.items():
        _check_sid(ctx, ("accounts", "groups", name), group.sid, group.existing)


def _check_password(
    ctx: Context, path: NodePath, name: str, password: str | None, existing: bool
) -> None:
    # Never echo the value: it may be a real password.
    if password is not None and password != "prompt":
        ctx.error((*path, "password"), "E206", f"literal password for '{name}': a spec never "
                  "holds a password; write `password: prompt` (asked at install time)")
    elif existing and password is not None:
        ctx.error((*path, "password"), "E207", f"'{name}' is an existing account: dcomc does "
                  "not set its password; remove `password`")
    elif not existing and password is None:
        ctx.error(path, "E207", f"user '{name}' is created by dcomc and needs `password: "
                  "prompt` (or `existing: true` if it already exists)", key=True)


def _check_sid(ctx: Context, path: NodePath, sid: str | None, existing: bool) -> None:
    if sid is None:
        return
    if not sids.is_sid(sid):
        ctx.error((*path, "sid"), "E209",
                  f"invalid SID '{sid}' (expected S-1-<authority>-<sub>...)")
    elif not existing:
        ctx.error((*path, "sid"), "E208", "a SID can only be given for an `existing: true` "
                  "account: a new local account gets a different SID on every PC")


def _memberships(ctx: Context) -> None:
    for name, user in ctx.spec.accounts.users.items():
        for i, group in enumerate(user.member_of):
            path: NodePath = ("accounts", "users", name, "member_of", i)
            _check_group_target(ctx, path, group)
    for name, group_def in ctx.spec.accounts.groups.items():
        gpath: NodePath = ("accounts", "groups", name)
        if group_def.members and group_def.existing:
            ctx.error((*gpath, "members"), "E127", f"'{name}' is an existing group: dcomc "
                      "cannot manage its members; list them on the users instead")
        for i, member in enumerate(group_def.members):
            ctx.principal((*gpath, "members", i), member)


def _check_group_target(ctx: Context, path: NodePath, name: str) -> None:
    principal = ctx.principal(path, name)
    if principal is not None and not ctx.res.can_hold_members(principal):
        ctx.error(path, "E127", f"'{name}' is not a group whose members this PC can change (a "
                  "site group dcomc creates, or Administrators, Users, Distributed COM Users, "
                  "Performance Log Users)")


def _principal_maps(spec: Spec) -> Iterator[tuple[NodePath, dict[str, Any]]]:
    for key, server in spec.servers.items():
        yield ("servers", key, "launch"), server.launch
        yield ("servers", key, "access"), server.access
    layers: list[tuple[NodePath, Any]] = [
        (("machine", role), getattr(spec.machine, role)) for role in ("server", "client")
    ]
    layers += [(("hosts", h, "machine"), host.machine) for h, host in spec.hosts.items()]
    for base, layer in layers:
        if layer is not None and layer.dcom is not None:
            for which in ("access_limits", "launch_limits"):
                mapping = getattr(layer.dcom, which)
                if mapping is not None:
                    yield (*base, "dcom", which), mapping


def _permissions(ctx: Context) -> None:
    for path, mapping in _principal_maps(ctx.spec):
        for name, rights in mapping.items():
            ctx.principal((*path, name), name, key=True)
            if not rights:
                ctx.error((*path, name), "E128", f"no rights listed for '{name}'", key=True)


# --- site rules -----------------------------------------------------------------------------


def _site(ctx: Context) -> None:
    site = ctx.spec.site
    if site.identity in ("domain", "mixed") and not site.domain:
        ctx.error(("site", "identity"), "E301", f"a {site.identity} site needs `site.domain` "
                  "(the NetBIOS domain name)")
    if site.domain and not netbios_domain_ok(site.domain):
        ctx.error(("site", "domain"), "E202", f"invalid NetBIOS domain name '{site.domain}'")


def _service_logons(ctx: Context) -> None:
    """One service, one Log On account, on every host (the second would silently win)."""
    for name, host in ctx.spec.hosts.items():
        seen: dict[str, tuple[str, str, str]] = {}
        for service, account, origin in _host_service_accounts(ctx.spec, host):
            folded, account_key = service.casefold(), account.casefold()
            if folded in seen and seen[folded][0] != account_key:
                _, first, first_origin = seen[folded]
                ctx.error(("hosts", name), "E311", f"service '{service}' on host '{name}' is "
                          f"given two Log On accounts: '{first}' ({first_origin}) and "
                          f"'{account}' ({origin})", key=True)
            seen.setdefault(folded, (account_key, account, origin))


def _host_service_accounts(spec: Spec, host: Any) -> Iterator[tuple[str, str, str]]:
    for key in host.servers:
        server = spec.servers.get(key)
        if server is None or not server.service_account:
            continue
        service = flows.server_service(server)
        if service:
            yield service, server.service_account, f"server '{key}'"
    for key in host.clients:
        client = spec.clients.get(key)
        if client is not None and client.service and client.run_as:
            yield client.service, client.run_as, f"client '{key}'"


# The host MSIs are built with code page 1252, Western European (the .wxs names none: wixl's
# default). Their tables hold each account whose password the install asks for (the property
# DCOMC_ACCOUNT_<n>, the launch condition's message), and wixl 0.101 crashes, without saying
# where, on a character that code page lacks (tried: every character of it builds).
MSI_CODEPAGE = "cp1252"


def _msi_accounts(ctx: Context) -> None:
    """Names that reach the MSI must fit its code page: every user dcomc creates, and the Log
    On account of every service a host configures (a domain account too)."""
    for name, user in ctx.spec.accounts.users.items():
        if not user.existing:
            _msi_text(ctx, ("accounts", "users", name), name, "the hosts' MSIs, which ask for "
                      "its password", key=True)
    for path, account, whose in _service_logon_refs(ctx.spec):
        principal = ctx.res.resolve(account)
        if principal is None:
            continue  # E102
        key = ctx.res.user_key(principal.name)
        if key is not None and not ctx.spec.accounts.users[key].existing:
            continue  # a user dcomc creates: reported at its name
        _msi_text(ctx, path, principal.name, f"the MSI, which asks for its password as the "
                  f"Log On account of {whose}")


def _msi_text(ctx: Context, path: NodePath, name: str, where: str, *,
              key: bool = False) -> None:
    if _CONTROL.search(name) or _NONCHAR.search(name):
        return  # E201 says it
    missing = list(dict.fromkeys(c for c in name if not _in_msi_codepage(c)))
    if not missing:
        return
    chars = ", ".join(f"'{c}' (U+{ord(c):04X})" for c in missing[:3])
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    ctx.error(path, "E218", f"account '{name}' cannot be written into {where}: dcomc builds "
              f"its MSIs with code page 1252 (Western European), which has no {chars}{more}; "
              "use a name in that code page", key=key)


def _in_msi_codepage(char: str) -> bool:
    try:
        char.encode(MSI_CODEPAGE)
    except UnicodeEncodeError:
        return False
    return True


def _service_logon_refs(spec: Spec) -> Iterator[tuple[NodePath, str, str]]:
    """(path, account, whose) of every service Log On account some host sets (as lower does)."""
    on_hosts = {key for host in spec.hosts.values() for key in host.servers}
    for key, server in spec.servers.items():
        service = flows.server_service(server)
        mode = flows.process_mode(server)
        if key in on_hosts and service and server.service_account and mode == "service":
            yield ("servers", key, "service_account"), server.service_account, \
                f"server '{key}'"
    on_hosts = {key for host in spec.hosts.values() for key in host.clients}
    for key, client in spec.clients.items():
        if key in on_hosts and client.service and client.run_as:
            yield ("clients", key, "run_as"), client.run_as, f"the service of client '{key}'"


def _server_executables(ctx: Context) -> None:
    """A server firewall rule needs the executable: refuse to drop it silently (§5.1 step 5)."""
    for name, host in ctx.spec.hosts.items():
        flag, _ = hosts.effective(ctx.spec, name, "server", "firewall", "server_executables")
        if flag is False:
            continue
        for i, key in enumerate(host.servers):
            server = ctx.spec.servers.get(key)
            if server is None or server.executable:
                continue
            product = catalog.product(server.product) if server.product else None
            if server.product and product is None:
                continue  # unknown product: E110 already
            if product is None or not product.executable:
                ctx.error(("hosts", name, "servers", i), "E125", f"the executable of server "
                          f"'{key}' is unknown, so no firewall rule can allow it: give "
                          "`executable`, or set firewall.server_executables: false")


_RULES = (
    _control_chars, _site, _keys, _account_names, _collisions, _accounts, _memberships,
    _permissions, hosts.servers, hosts.clients, hosts.hosts,
    hosts.firewall_remote, _service_logons, _server_executables, _msi_accounts,
)
