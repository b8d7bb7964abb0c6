"""Stage 3, check (continued): the rules on servers, clients, hosts and firewall scopes.

Run by `site.check` with the others, in its order; each rule reports through the context's
`error` and `principal` (see `context.Context`), so that every problem is found in one pass.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from dcomc.checks.context import Context
from dcomc.diagnostics import did_you_mean
from dcomc.front import catalog
from dcomc.front.load import NodePath
from dcomc.front.spec import (
    GUID_PATTERN,
    PROGID_PATTERN,
    RUN_AS_VALUES,
    WIX_VARIABLE_PATTERN,
    Spec,
)
from dcomc.plan import flows
from dcomc.plan.flows import expand_hosts

_GUID_RE = re.compile(GUID_PATTERN)
# ProgID rules (docs/windows.md#appid): ≤ 39 chars, letters/digits/dots only, no leading digit.
_PROGID_RE = re.compile(PROGID_PATTERN)
# A drive path or an environment-variable root, then path segments free of forbidden chars.
_EXE_RE = re.compile(r'^(?:[A-Za-z]:|%[A-Za-z_][A-Za-z0-9_]*%)(?:\\[^\\/:*?"<>|]+)+$')
_WIX_VARIABLE = re.compile(WIX_VARIABLE_PATTERN)


def servers(ctx: Context) -> None:
    for key, server in ctx.spec.servers.items():
        path: NodePath = ("servers", key)
        product = catalog.product(server.product) if server.product else None
        if server.product and product is None:
            names = ", ".join(catalog.products())
            hint = did_you_mean(server.product, catalog.products())
            ctx.error((*path, "product"), "E110", f"unknown product '{server.product}'{hint} "
                      f"(known: {names}; or give progid/clsid instead)")
        elif product is None and not (server.progid or server.clsid or server.appid):
            ctx.error(path, "E111", f"server '{key}' needs `product` or at least one of "
                      "progid, clsid, appid", key=True)
        _formats(ctx, path, server.progid, server.clsid, server.appid, server.executable)
        _service_identity(ctx, path, key, server, product)
        if server.service is not None:
            _check_service_name(ctx, (*path, "service"), server.service)
        if server.run_as is not None and server.run_as not in RUN_AS_VALUES:
            _run_as_account(ctx, (*path, "run_as"), server.run_as)


def _formats(ctx: Context, path: NodePath, progid: str | None, clsid: str | None,
             appid: str | None, executable: str | None) -> None:
    if progid is not None and not _PROGID_RE.match(progid):
        ctx.error((*path, "progid"), "E215", f"invalid ProgID '{progid}': at most 39 letters, "
                  "digits and dots, not starting with a digit")
    for field, value in (("clsid", clsid), ("appid", appid)):
        if value is not None and not _GUID_RE.match(value):
            ctx.error((*path, field), "E214", f"invalid {field} '{value}': expected a GUID in "
                      "braces, {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}")
    if executable is not None:
        _check_executable(ctx, (*path, "executable"), executable)


def _check_executable(ctx: Context, path: NodePath, executable: str) -> None:
    if not _EXE_RE.match(executable) or not executable.lower().endswith(".exe"):
        ctx.error(path, "E216", f"invalid executable path '{executable}': expected a full "
                  "Windows path to an .exe such as C:\\Program Files\\Vendor\\server.exe")
    elif any(part in (".", "..") for part in executable.split("\\")):
        ctx.error(path, "E216", f"executable path '{executable}' must not contain . or ..")
    elif _WIX_VARIABLE.search(executable):
        ctx.error(path, "E216", f"executable path '{executable}' contains a WiX variable "
                  "reference (!(loc. !(wix. !(bind. $(loc. ...), which the WiX firewall "
                  "fragment cannot keep literal")


def _check_service_name(ctx: Context, path: NodePath, name: str) -> None:
    """A Windows service name (CreateService: at most 256 characters, no / or \\); a `"` is
    allowed by Windows but no netsh or INF value can hold one."""
    bad = sorted({c for c in name if c in '/\\"'})
    if not name.strip() or name != name.strip():
        problem = "is empty or starts or ends with a space"
    elif len(name) > 256:
        problem = "is longer than 256 characters"
    elif bad:
        problem = f"contains {' '.join(bad)} (Windows refuses / and \\; netsh cannot quote \")"
    else:
        return
    ctx.error(path, "E217", f"invalid service name '{name}': it {problem}")


def _run_as_account(ctx: Context, path: NodePath, value: str) -> None:
    """"This user" (an account) on the Identity tab is refused: Windows keeps its password as an
    LSA secret that only the COM configuration tools write, through an interface Microsoft does
    not document for it (docs/windows.md#runas), and dcomc puts no password in a file or on a
    command line."""
    hint = did_you_mean(value, RUN_AS_VALUES)
    ctx.error(path, "E231", f"run_as '{value}'{hint}: an account (\"This user\") cannot be "
              "configured by dcomc: Windows keeps its password as an LSA secret that only "
              "dcomcnfg writes, and dcomc never puts a password in a file or on a command "
              "line; use interactive_user or launching_user, or a service with "
              "service_account (process_mode: service)")


def _service_identity(ctx: Context, path: NodePath, key: str, server: Any, product: Any) -> None:
    mode, service = flows.process_mode(server), flows.server_service(server)
    product_unknown = server.product is not None and product is None  # E110 says it all
    if mode == "service" and not service and not product_unknown:
        ctx.error(path, "E115", f"server '{key}' runs as a service, but its service name is "
                  "unknown: give `service`", key=True)
    if mode == "service" and not server.service_account:
        ctx.error(path, "E116", f"server '{key}' runs as a service and needs "
                  "`service_account` so that clients can authenticate its callbacks (guide "
                  "§3.2)", key=True)
    if server.service_account:
        if mode == "interactive":
            ctx.error((*path, "service_account"), "E116", f"server '{key}' is interactive: "
                      "service_account applies only to process_mode: service")
        _service_account(ctx, (*path, "service_account"), server.service_account)


def _service_account(ctx: Context, path: NodePath, name: str) -> None:
    principal = ctx.principal(path, name)
    if principal is None:
        return
    if not ctx.res.is_user(principal):
        ctx.error(path, "E117", f"'{name}' is not a user account and cannot log on a service")
        return
    user_key = ctx.res.user_key(name)
    if user_key is None or ctx.spec.accounts.users[user_key].existing:
        return  # an existing account's memberships are not known here
    groups = ctx.spec.accounts.users[user_key].member_of
    if not any(_is_administrators(ctx, g) for g in groups):
        ctx.error(path, "E117", f"service account '{name}' must be a member of Administrators "
                  "(guide §3.2 note): add Administrators to its member_of")


def _is_administrators(ctx: Context, name: str) -> bool:
    principal = ctx.res.resolve(name)
    return principal is not None and principal.sid == "S-1-5-32-544"


def clients(ctx: Context) -> None:
    for key, client in ctx.spec.clients.items():
        path: NodePath = ("clients", key)
        if client.executable is not None:
            _check_executable(ctx, (*path, "executable"), client.executable)
        if client.service is not None:
            _check_service_name(ctx, (*path, "service"), client.service)
        if not client.executable and not client.service:
            ctx.error(path, "E118", f"client '{key}' needs `executable` or `service`", key=True)
        if client.run_as is None:
            ctx.error(path, "E119", f"client '{key}' needs `run_as`: an OPC client must run as "
                      "the authenticated user (guide §2.1 note)", key=True)
        else:
            principal = ctx.principal((*path, "run_as"), client.run_as)
            if principal is not None and not ctx.res.is_user(principal):
                ctx.error((*path, "run_as"), "E119", f"run_as '{client.run_as}' is not a user")
        _calls(ctx, (*path, "calls"), key, client.calls)


def _calls(ctx: Context, path: NodePath, key: str,
           calls: list[str] | dict[str, list[str]] | None) -> None:
    """A client's `calls`: defined servers (E103), and hosts of the site that run them
    (E104); a flow to nothing would silently configure nothing."""
    if calls is None:
        return
    servers = ctx.spec.servers
    for i, server in enumerate(calls):
        where = (*path, server) if isinstance(calls, dict) else (*path, i)
        if server not in servers:
            defined = ", ".join(servers) or "none defined"
            ctx.error(where, "E103", f"client '{key}' calls undefined server '{server}'"
                      f"{did_you_mean(server, servers)} (defined: {defined})",
                      key=isinstance(calls, dict))
        elif isinstance(calls, dict):
            _called_hosts(ctx, where, server, calls[server])


def _called_hosts(ctx: Context, path: NodePath, server: str, names: list[str]) -> None:
    running = [h for h, host in ctx.spec.hosts.items() if server in host.servers]
    for i, name in enumerate(names):
        hosts = _host_refs(ctx, (*path, i), name)
        if hosts is None:
            continue
        strays = [h for h in hosts if h not in running]
        if strays:
            ctx.error((*path, i), "E104", f"host '{name}' does not run server '{server}' "
                      f"(it runs on: {', '.join(running) or 'no host'})")


def _host_refs(ctx: Context, path: NodePath, name: str) -> list[str] | None:
    """The hosts a computer name or host range key stands for; None with E105 when it names
    no host of the site."""
    hosts = expand_hosts(ctx.spec, ctx.loaded, [name])
    if not hosts:
        written = sorted({*ctx.loaded.host_ranges.values(),
                          *(h for h in ctx.spec.hosts if h not in ctx.loaded.host_ranges)})
        ctx.error(path, "E105", f"unknown host '{name}': not a host or host range key of "
                  f"the site{did_you_mean(name, written)}")
        return None
    return hosts


def account_hosts(ctx: Context) -> None:
    """An account's `hosts:` names hosts of the site (E105)."""
    accounts = ctx.spec.accounts
    for section, items in (("users", accounts.users), ("groups", accounts.groups)):
        for name, account in items.items():
            for i, host in enumerate(account.hosts or []):
                _host_refs(ctx, ("accounts", section, name, "hosts", i), host)


def hosts(ctx: Context) -> None:
    addresses: dict[str, str] = {}
    for name, host in ctx.spec.hosts.items():
        path: NodePath = ("hosts", name)
        problem = address_problem(host.address, allow_network=False)
        if problem:
            ctx.error((*path, "address"), "E220", f"invalid address '{host.address}' of host "
                      f"'{name}': {problem}")
        elif host.address in addresses:
            ctx.error((*path, "address"), "E221", f"address {host.address} of '{name}' is "
                      f"already the address of '{addresses[host.address]}'")
        else:
            addresses[host.address] = name
        if not host.servers and not host.clients:
            ctx.error(path, "E310", f"host '{name}' has neither servers nor clients", key=True)
        _refs(ctx, (*path, "servers"), host.servers, ctx.spec.servers, "server")
        _refs(ctx, (*path, "clients"), host.clients, ctx.spec.clients, "client")
        _port_range_needed(ctx, name, host)
    account_hosts(ctx)


def _port_range_needed(ctx: Context, name: str, host: Any) -> None:
    """E320: `firewall.open: rpc_ports` on a host whose roles give no `rpc_ports`: the rule
    would open no port, and the servers would listen on Windows' whole dynamic range."""
    roles = [r for r, on in (("server", host.servers), ("client", host.clients)) if on]
    if any(effective(ctx.spec, name, role, "rpc_ports")[0] for role in roles):
        return
    for role in roles:
        value, where = effective(ctx.spec, name, role, "firewall", "open")
        if value == "rpc_ports" and where is not None:
            ctx.error(where, "E320", f"firewall.open is rpc_ports on host '{name}', but no "
                      f"rpc_ports range is set for it: add `rpc_ports: 5000-5100` to "
                      f"machine.{role} (or the host's machine), or open programs")


def effective(spec: Spec, host: str, role: str, *keys: str) -> tuple[Any, NodePath | None]:
    """A machine setting of a host's role as lowering layers it (the host's own `machine`,
    then `machine.<role>`; the built-in defaults have no range and open programs)."""
    layers: list[tuple[NodePath, Any]] = [(("hosts", host, "machine"), spec.hosts[host].machine),
                                          (("machine", role), getattr(spec.machine, role))]
    for base, layer in layers:
        node = layer
        for key in keys:
            node = getattr(node, key, None) if node is not None else None
        if node is not None:
            return node, (*base, *keys)
    return None, None


def _refs(ctx: Context, path: NodePath, names: list[str], known: dict[str, Any], what: str) -> None:
    for i, name in enumerate(names):
        if name not in known:
            defined = ", ".join(known) or "none defined"
            ctx.error((*path, i), "E101", f"undefined {what} '{name}'"
                      f"{did_you_mean(name, known)} (defined: {defined})")


# An IPv6 zone (`fe80::1%12`) names the interface: its index, or a name without spaces, commas,
# `=` or quotes. Python's ipaddress takes anything after `%`, and an address reaches netsh and
# WiX: `fe80::1%x remoteip=any` or `fe80::1%x,any` would open a rule to every address.
_ZONE_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def address_problem(text: str, *, allow_network: bool) -> str | None:
    """Why `text` is not an IPv4 or IPv6 address (or, with `allow_network`, a network such as
    10.9.0.0/24), or None."""
    expected = ("expected an IPv4 or IPv6 address or a network such as 10.9.0.0/24"
                if allow_network else "expected an IPv4 or IPv6 address")
    address, slash, prefix = text.partition("/")
    if slash and (not allow_network or not re.fullmatch(r"0|[1-9][0-9]{0,2}", prefix)):
        return expected
    if "%" in address:
        zone = address.partition("%")[2]
        if not _ZONE_RE.fullmatch(zone):
            return ("an IPv6 zone (after %) must be a Windows interface index or name of 1-64 "
                    "letters, digits, '.', '_' or '-'")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return expected
    if not slash:
        return None
    try:
        net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    except ValueError:
        return "the prefix length is out of range"
    if net.network_address != ip:
        return f"host bits are set (did you mean {net}?)"
    return None


def firewall_remote(ctx: Context) -> None:
    for base, layer in _machine_layers(ctx.spec):
        if layer.rpc_ports is not None:
            _rpc_ports(ctx, (*base, "rpc_ports"), layer.rpc_ports)
        if layer.firewall is None:
            continue
        if layer.firewall.profiles == []:
            ctx.error((*base, "firewall", "profiles"), "E222", "profiles: an empty list "
                      "applies the rules to no network (netsh reads `profile=` as an error); "
                      "list domain, private or public, or leave the key out")
        if not isinstance(layer.firewall.remote, list):
            continue
        if not layer.firewall.remote:
            ctx.error((*base, "firewall", "remote"), "E222", "remote: an empty list allows "
                      "nobody; write `site`, `any` or addresses")
        for i, entry in enumerate(layer.firewall.remote):
            problem = address_problem(entry, allow_network=True)
            if problem is None:
                continue
            what = "network" if "/" in entry and problem.startswith(("host", "the prefix")) \
                else "remote address"
            ctx.error((*base, "firewall", "remote", i), "E220", f"invalid {what} '{entry}': "
                      f"{problem}")


# Dynamic ports are taken from 1024 up: the ports below belong to well-known services, and the
# documented per-server Endpoints range is 1024-65535 (docs/windows.md#rpc-ports).
_RPC_PORTS_RE = re.compile(r"([0-9]{1,5})-([0-9]{1,5})")


def _rpc_ports(ctx: Context, path: NodePath, text: str) -> None:
    found = _RPC_PORTS_RE.fullmatch(text)
    low, high = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    if not 1024 <= low <= high <= 65535:
        ctx.error(path, "E232", f"invalid rpc_ports '{text}': expected a range lo-hi with "
                  "1024 <= lo <= hi <= 65535, e.g. 5000-5100")


def _machine_layers(spec: Spec) -> Iterator[tuple[NodePath, Any]]:
    for role in ("server", "client"):
        layer = getattr(spec.machine, role)
        if layer is not None:
            yield ("machine", role), layer
    for name, host in spec.hosts.items():
        if host.machine is not None:
            yield ("hosts", name, "machine"), host.machine


