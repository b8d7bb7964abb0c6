"""`dcomc import`: captures of brownfield PCs (docs/capture.md) -> a commented site spec that
reproduces what they show, as far as a spec can say it and `dcomc check` accepts it.

The rules (docs/capture.md#import-rules): every PC is a host (its first IPv4 address); every
OPC server is a server (a catalog product when its CLSID is known, else its own identifiers);
a program the firewall lets in that is no server is a client keyed by its executable's name
(a guess, commented), and a PC other PCs' server rules admit without a client program runs
one inside its server's service (a guess); `calls` come from what the servers' rules admit;
local users and groups found on several PCs, or that a server, an ACL or a group needs, are
site accounts (no password is ever captured: `prompt`), domain accounts keep the SID some PC
resolved; ACEs name site accounts and well-known principals by name, other accounts by the
DOMAIN\\name the PC resolved, and a SID nobody resolved stays a SID with a comment; an AppID
without its own ACL gets the PC's machine-wide default ACL where the PC sets one. Machine
values (and firewall profiles and scopes) are written only where they differ from what dcomc
plans by default, and a value `check` refuses as insecure (authentication below packet
integrity) is left to dcomc's default with a comment saying what the PC has.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from dcomc.checks.names import DESCRIPTION_MAX
from dcomc.diagnostics import escaped
from dcomc.front.catalog import exe_stem, key_from, key_of_clsid
from dcomc.front.load import yaml_quote as quote
from dcomc.readback.capture import Capture, applying, as_list
from dcomc.windows.sd import ACCESS_RIGHTS, LAUNCH_RIGHTS, Ace, parse_sddl
from dcomc.windows.sdbinary import from_binary
from dcomc.windows.sids import SPEC_ALIASES
from dcomc_targets.regfile import DEFAULT_APP_ACL, DEFAULT_LIMITS

AUTH_LEVELS = {1: "none", 2: "connect", 3: "call", 4: "packet", 5: "packet_integrity",
               6: "packet_privacy"}
IMPERSONATION = {1: "anonymous", 2: "identify", 3: "impersonate", 4: "delegate"}
WELL_KNOWN = {w.sid: w.name for w in SPEC_ALIASES}
LOCAL_RID = re.compile(r"^S-1-5-21-\d+-\d+-\d+-(\d+)$")
BUILTIN_LOGONS = {"localsystem", ".\\localsystem", "nt authority\\localservice",
                  "nt authority\\networkservice", "nt authority\\local service",
                  "nt authority\\network service"}


def value(text: str) -> str:
    """A YAML scalar that reads back as exactly `text`: single-quoted, or double-quoted with
    escapes when it holds a character a line must not show raw (a newline in a captured
    description: a single-quoted scalar would fold it into a space)."""
    if escaped(text) == text:
        return quote(text)
    return '"' + "".join(_escape(c) for c in text) + '"'


def _escape(char: str) -> str:
    """One character of a double-quoted YAML scalar: printable ASCII as itself, anything else
    as its \\u or \\U escape (a line of the spec stays printable ASCII)."""
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return char
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass
class Account:
    """A local user or group seen on the PCs, by name (case-insensitive)."""

    name: str
    group: bool
    description: str = ""
    never_expires: bool = False
    pcs: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    member_of: set[str] = field(default_factory=set)
    needed: bool = False
    runs_service: bool = False


@dataclass
class HostEntry:
    """One PC's host entry, its machine block written once the role blocks are known."""

    lines: list[str]
    roles: tuple[str, ...]
    machine: list[str]                # body of its `machine:` (discovery, security policy)
    limits: dict[str, tuple[str, ...]]  # launch/access -> principal lines beyond the default


@dataclass
class Site:
    """What the import collects before it writes the spec."""

    accounts: dict[str, Account] = field(default_factory=dict)
    domain_accounts: dict[str, str] = field(default_factory=dict)  # DOMAIN\name -> SID
    servers: dict[str, list[str]] = field(default_factory=dict)   # key -> lines
    clsid_keys: dict[str, str] = field(default_factory=dict)
    clients: dict[str, list[str]] = field(default_factory=dict)
    client_programs: dict[str, str] = field(default_factory=dict)  # program (lower) -> key
    # computer -> (address, server keys, client keys), in the order of the captures
    placed: dict[str, tuple[str, list[str], list[str]]] = field(default_factory=dict)
    # (computer, server key) -> the addresses its firewall rule admits (None: any, unknown)
    admitted: dict[tuple[str, str], set[str] | None] = field(default_factory=dict)
    hosts: list[HostEntry] = field(default_factory=list)
    captures: Sequence[Capture] = ()

    @cached_property
    def domain_logons(self) -> set[str]:
        """The Log On accounts of the servers' services on any of the PCs, as the PCs wrote
        them (`.\\opcsvc`, `PLANT9\\svc-opc`, `LocalSystem`)."""
        return {str((s.get("Service") or {}).get("StartName") or "")
                for c in self.captures for s in c.servers() if isinstance(s.get("Service"), dict)}

    @cached_property
    def service_logons(self) -> set[str]:
        """The account names (lower case, without domain) a server's service logs on as, on
        any of the PCs."""
        return {name.rpartition("\\")[2].lower() for name in self.domain_logons}

    @cached_property
    def callers(self) -> list[tuple[Capture, set[str]]]:
        """Each capture with the addresses its server rules admit (_callers), read once for
        the site rather than once per PC that looks for a hidden client."""
        return [(capture, _callers(capture)) for capture in self.captures]

    @cached_property
    def sids(self) -> dict[str, str]:
        """DOMAIN\\name (lower case) -> SID of every account of another domain that some PC
        resolved (a Log On account has no SID in its capture; a right or an ACL it holds on
        another PC may)."""
        found: dict[str, str] = {}
        for capture in self.captures:
            for sid, name in sorted(capture.names().items()):
                domain = (name or "").rpartition("\\")[0].upper()
                if name and LOCAL_RID.match(sid) and domain != capture.computer.upper():
                    found.setdefault(name.lower(), sid)
        return found


class Principals:
    """SIDs of one capture -> spec principal names (marking the site accounts they need)."""

    def __init__(self, capture: Capture, site: Site) -> None:
        self.capture, self.site = capture, site
        self.names = capture.names()
        self.computer = capture.computer.upper()

    def local(self, sid: str) -> Account | None:
        full = self.names.get(sid) or ""
        domain, _, name = full.rpartition("\\")
        if domain.upper() != self.computer or not LOCAL_RID.match(sid):
            return None
        return self.site.accounts.get(name.lower())

    def name(self, sid: str) -> tuple[str, str | None]:
        """The principal's spec name and a comment when it had to guess."""
        if sid in WELL_KNOWN:
            return WELL_KNOWN[sid], None
        account = self.local(sid)
        if account is not None:
            account.needed = True
            return account.name, None
        full = self.names.get(sid)
        if full and "\\" in full and LOCAL_RID.match(sid):
            self.site.domain_accounts[full] = sid
            return full, None
        comment = f"not resolved on {self.capture.computer}" if not full else f"{full} there"
        return sid, comment


def _collect_accounts(captures: Sequence[Capture], site: Site) -> None:
    for capture in captures:
        accounts = capture.part("Accounts")
        for user in as_list(accounts.get("Users")):
            _add_account(site, capture, user, group=False)
        for group in as_list(accounts.get("Groups")):
            _add_account(site, capture, group, group=True)


def _add_account(site: Site, capture: Capture, entry: dict[str, Any], group: bool) -> None:
    match = LOCAL_RID.match(str(entry.get("Sid", "")))
    if not match or int(match.group(1)) < 1000 or entry.get("Disabled"):
        return  # built-in accounts and groups exist on every PC: never site accounts
    name = str(entry.get("Name", ""))
    account = site.accounts.setdefault(name.lower(), Account(name, group))
    account.pcs.add(capture.computer.upper())
    account.description = account.description or str(entry.get("Description") or "")
    account.never_expires = account.never_expires or bool(entry.get("PasswordNeverExpires"))


def _collect_memberships(captures: Sequence[Capture], site: Site) -> None:
    for capture in captures:
        principals = Principals(capture, site)
        for group in as_list(capture.part("Accounts").get("Groups")):
            sid = str(group.get("Sid", ""))
            target = principals.local(sid) if not sid.startswith("S-1-5-32-") else None
            for member in as_list(group.get("Members")):
                _add_membership(principals, sid, target, str(member))


def _add_membership(principals: Principals, group_sid: str, target: Account | None,
                    member: str) -> None:
    user = principals.local(member)
    if target is not None:
        name, _ = principals.name(member)
        target.members.add(name)
        target.needed = True
    elif user is not None and group_sid in WELL_KNOWN and group_sid != "S-1-5-32-545":
        user.member_of.add(WELL_KNOWN[group_sid])  # Users holds every user: not written


RIGHTS = {"launch": LAUNCH_RIGHTS, "access": ACCESS_RIGHTS}


def masks(aces: Sequence[Ace]) -> dict[str, int]:
    """SID -> the rights its allow ACEs grant (ORed: Windows grants the union)."""
    granted: dict[str, int] = {}
    for ace in aces:
        if ace.allow and ace.kind is None:
            granted[ace.sid] = granted.get(ace.sid, 0) | ace.mask
    return granted


def default_masks(sddl: str) -> dict[str, int]:
    return masks(parse_sddl(sddl).dacl or ())


def holds(aces: Sequence[Ace], default: dict[str, int]) -> bool:
    """Whether an ACL grants at least everything `default` grants."""
    granted = masks(aces)
    return all(granted.get(sid, 0) & mask == mask for sid, mask in default.items())


def extra(aces: Sequence[Ace], default: dict[str, int]) -> list[Ace]:
    """The rights beyond `default`: one allow ACE per SID that has more (with all its
    rights, as the PC has them), then each ACE a spec cannot say (deny, object ACEs)."""
    merged = [Ace(sid, mask) for sid, mask in masks(aces).items() if mask & ~default.get(sid, 0)]
    return merged + [ace for ace in aces if not ace.allow or ace.kind is not None]


def _decode(value: Any) -> tuple[Ace, ...] | str:
    """The DACL of a captured descriptor value, or why it does not decode."""
    try:
        return from_binary(bytes.fromhex(str(value.get("Data")))).dacl or ()
    except ValueError as exc:
        return f"# the descriptor on the PC does not decode ({exc}): not imported"


def _ace_lines(aces: Sequence[Ace], rights: dict[str, int], principals: Principals) -> list[str]:
    """ACEs as spec lines (`principal: [rights]`); what a spec cannot say is a comment."""
    lines: list[str] = []
    for ace in aces:
        name, comment = principals.name(ace.sid)
        granted = [right for right, bit in rights.items() if ace.mask & bit]
        if not ace.allow or ace.kind is not None or not granted:
            lines.append(f"# {'deny' if not ace.allow else 'an'} ACE for {name} "
                         f"(0x{ace.mask:x}) is not imported")
            continue
        tail = f"   # {comment}" if comment else ""
        lines.append(f"{value(name)}: [{', '.join(granted)}]{tail}")
    return lines


def _server_key(server: dict[str, Any], site: Site) -> tuple[str, str | None]:
    known = key_of_clsid(str(server["Clsid"]))
    if known is not None:
        return known, known
    return key_from((server.get("ProgId"), server.get("Name"), exe_stem(server.get("Executable")),
                     server["Clsid"]),
                    set(site.servers) | set(site.clients), "server"), None


def _service_lines(server: dict[str, Any], principals: Principals) -> list[str]:
    service = server.get("Service")
    if not isinstance(service, dict):
        return ["process_mode: interactive      # no service runs it on the PC"]
    lines = ["process_mode: service"]
    start = str(service.get("StartName") or "")
    domain, _, name = start.rpartition("\\")
    if start.lower() in BUILTIN_LOGONS or not name:
        lines.append(f"# its service {service.get('Name')} logs on as {start}: the guide "
                     "(§3.2) wants a dedicated account; add service_account to set one")
        return lines
    account = principals.site.accounts.get(name.lower())
    if domain in (".", principals.computer) and account is not None:
        account.needed = account.runs_service = True
        lines.append(f"service_account: {value(account.name)}")
    else:
        lines.append(f"service_account: {value(start)}")
        principals.site.domain_accounts.setdefault(start, "")
    return lines


def _identity_lines(server: dict[str, Any], product: str | None) -> list[str]:
    if product:
        return [f"product: {product}              # known to the catalog by its CLSID"]
    lines = ["# not in dcomc's catalog: its identifiers as the PC registers them"]
    if server.get("ProgId"):
        lines.append(f"progid: {value(str(server['ProgId']))}")
    lines.append(f"clsid: {value(str(server['Clsid']).upper())}")
    if server.get("AppId"):
        lines.append(f"appid: {value(str(server['AppId']).upper())}")
    if server.get("Executable"):
        lines.append(f"executable: {value(str(server['Executable']))}")
    service = server.get("Service")
    if isinstance(service, dict) and service.get("Name"):
        lines.append(f"service: {value(str(service['Name']))}")
    lines.append(f"bitness: {int(server.get('Bitness') or 32)}")
    return lines


def _auth_lines(appid: dict[str, Any]) -> list[str]:
    level = appid.get("AuthenticationLevel")
    if not isinstance(level, int) or level not in AUTH_LEVELS:
        return ["authentication_level: default"]
    if level < 5:
        return [f"# the PC's AppID has AuthenticationLevel {level} ({AUTH_LEVELS[level]}): "
                "below packet integrity, refused by Windows since KB5004442; dcomc leaves "
                "the machine default (packet_integrity)", "authentication_level: default"]
    return [f"authentication_level: {AUTH_LEVELS[level]}"]


def _block(key: str, body: list[str]) -> list[str]:
    """`key:` over its indented lines; only the comments when no line is an entry (a key
    over nothing would be null, which the spec refuses)."""
    if all(line.startswith("#") for line in body):
        return body
    return [f"{key}:"] + ["  " + line for line in body]


def _acls(appid: dict[str, Any], ole: dict[str, Any]) -> dict[str, tuple[Ace, ...] | str | None]:
    """The launch and access DACLs that apply to the AppID (capture.applying: its own values,
    else the PC's machine-wide DefaultLaunch/AccessPermission in `ole`); None: neither
    (Windows' default applies); str: undecodable."""
    acls: dict[str, tuple[Ace, ...] | str | None] = {}
    for which in RIGHTS:
        stored = applying(appid, ole, f"{which.title()}Permission")
        acls[which] = None if stored is None else _decode(stored)
    return acls


def _from_default(appid: dict[str, Any], ole: dict[str, Any], which: str) -> bool:
    """Whether the ACL that applies is the PC's machine-wide default, not the AppID's own."""
    name = f"{which.title()}Permission"
    return applying(appid, {}, name) is None and applying(appid, ole, name) is not None


def _additions(acls: dict[str, tuple[Ace, ...] | str | None]) -> dict[str, list[Ace]] | None:
    """Per ACL the ACEs beyond Windows' default (an absent ACL is the default), or None when
    one ACL lacks part of the default or does not decode: `permissions: add` cannot say it."""
    added: dict[str, list[Ace]] = {}
    for which, acl in acls.items():
        default = default_masks(DEFAULT_APP_ACL[which])
        if isinstance(acl, str) or (acl is not None and not holds(acl, default)):
            return None
        added[which] = extra(acl or (), default)
    return added


def _opcenum_masks(capture: Capture) -> dict[str, dict[str, int]]:
    """Per ACL, what OPCEnum's AppID grants on the PC: dcomc narrows it to the principals of
    the host's servers, so it shows which of them a server's spec named."""
    opcenum = capture.data.get("OpcEnum")
    appid = opcenum.get("AppIdKey") if isinstance(opcenum, dict) else None
    ole = capture.part("Machine").get("Ole") or {}
    acls = _acls(appid, ole) if isinstance(appid, dict) else {}
    return {which: masks(acl) for which, acl in acls.items() if isinstance(acl, tuple)}


def _named_in_default(acl: tuple[Ace, ...], added: list[Ace], opcenum: dict[str, int],
                      default: dict[str, int]) -> list[Ace]:
    """The principals of Windows' default that OPCEnum's ACL grants too (the rights both
    grant): a spec of this PC named them, so OPCEnum is narrowed to them again."""
    granted, named = masks(acl), {ace.sid for ace in added}
    return [Ace(sid, granted[sid] & opcenum[sid]) for sid in default
            if sid not in named and sid in opcenum and granted.get(sid, 0) & opcenum[sid]]


def _permission_lines(appid: dict[str, Any], principals: Principals) -> list[str]:
    """`add` with what the PC grants beyond Windows' default ACLs when both ACLs hold that
    default (the engine then gives a fresh PC the same ACLs), else `exact` as on the PC."""
    ole = principals.capture.part("Machine").get("Ole") or {}
    acls = _acls(appid, ole)
    added = _additions(acls)
    opcenum = _opcenum_masks(principals.capture)
    lines: list[str] = []
    for which, acl in acls.items():
        if acl is None:
            lines.append(f"# no {which.title()}Permission on the PC: Windows' default applies")
            continue
        if _from_default(appid, ole, which):
            lines.append(f"# no {which.title()}Permission on the PC: its Default"
                         f"{which.title()}Permission applies, written here")
        if isinstance(acl, str):
            lines += _block(which, [acl])
            continue
        aces = extra(acl, {}) if added is None else added[which] + _named_in_default(
            acl, added[which], opcenum.get(which, {}), default_masks(DEFAULT_APP_ACL[which]))
        lines += _block(which, _ace_lines(aces, RIGHTS[which], principals))
    if added is None:
        lines.append("permissions: exact             # the PC's ACLs lack part of Windows' "
                     "default: as the PC has them")
    elif any(acls.values()):
        lines.append("# permissions: add (the default): these are added to Windows' default "
                     "ACLs, which the PC's ACLs hold")
    return lines


def _server_lines(server: dict[str, Any], product: str | None,
                  principals: Principals) -> list[str]:
    appid = server.get("AppIdKey") if isinstance(server.get("AppIdKey"), dict) else {}
    assert isinstance(appid, dict)
    lines = _identity_lines(server, product) + _service_lines(server, principals)
    lines += _auth_lines(appid) + _permission_lines(appid, principals)
    if appid.get("RunAs"):
        lines.append(f"# RunAs on the PC: {appid['RunAs']} (not managed by dcomc)")
    return lines


def _collect_servers(capture: Capture, site: Site, principals: Principals) -> list[str]:
    keys: list[str] = []
    for server in capture.servers():
        clsid = str(server["Clsid"]).upper()
        if clsid not in site.clsid_keys:
            key, product = _server_key(server, site)
            site.clsid_keys[clsid] = key
            site.servers[key] = _server_lines(server, product, principals)
        keys.append(site.clsid_keys[clsid])
    return sorted(set(keys))


def _run_as(capture: Capture, site: Site) -> list[str]:
    """A guess at the account a client runs as (a capture cannot see who runs a program): a
    site user of its PC that logs on no service, else one that does, else a domain account a
    server's service logs on as (a domain PC's users are the domain's). Only the account it
    names is marked needed."""
    services = site.service_logons
    users = sorted((a for a in site.accounts.values() if not a.group
                    and capture.computer.upper() in a.pcs), key=lambda a: a.name.lower())
    for user in sorted(users, key=lambda a: a.name.lower() in services):
        user.needed = True
        runs = "runs a service" if user.name.lower() in services else "runs no service"
        return [f"run_as: {value(user.name)}            # guessed: a user of that PC who {runs}"
                "; set the account the client really runs as"]
    computers = {c.computer.upper() for c in site.captures} | {"", "."}
    domain = sorted(name for name in site.domain_logons if name.lower() not in BUILTIN_LOGONS
                    and name.rpartition("\\")[0].upper() not in computers)
    if domain:
        site.domain_accounts.setdefault(domain[0], "")
        return [f"run_as: {value(domain[0])}            # guessed: the domain account a "
                "server's service logs on as; set the account the client really runs as"]
    return ["# run_as: the account the client runs as (no local user found on the PC)"]


def _client_key(program: str, site: Site) -> str:
    """The key of the client that is `program` (one per executable, compared as Windows does:
    without case): its file name, `-2`... when another program or a server has it."""
    known = site.client_programs.get(program.lower())
    if known is None:
        known = site.client_programs[program.lower()] = key_from(
            (exe_stem(program),), set(site.servers) | set(site.clients), "client")
    return known


def _collect_clients(capture: Capture, site: Site) -> list[str]:
    keys: list[str] = []
    for rule in as_list(capture.part("Firewall").get("Rules")):
        program = str(rule.get("Program") or "")
        if rule.get("Why") != "program" or not rule.get("Enabled") or not program:
            continue
        key = _client_key(program, site)
        if key not in site.clients:   # its first PC's guesses, made (and marked needed) once
            site.clients[key] = [
                f"# guessed: {capture.computer}'s firewall lets {program} in (rule "
                f"{rule.get('Name')}); remove this client if it is no OPC client",
                f"executable: {value(program)}", *_run_as(capture, site)]
        keys.append(key)
    return sorted(set(keys))


def _callers(capture: Capture) -> set[str]:
    """The addresses a PC's server executable rules admit (`remote: site`: the servers'
    callers; its TCP 135 rule also admits the servers that call its clients back)."""
    return {str(a) for r in as_list(capture.part("Firewall").get("Rules"))
            if r.get("Enabled") and r.get("Why") == "server_executable"
            for a in as_list(r.get("RemoteAddress"))}


def _hidden_client(capture: Capture, site: Site) -> list[str]:
    """A client the capture cannot see: the PC has no client program in its firewall, yet
    another PC's server rules admit it (a caller), and a service of its own runs a server (a
    client inside that service, whose callbacks enter through the server's rule). A guess."""
    address = _address(capture)[0]
    services = [s["Service"] for s in capture.servers() if isinstance(s.get("Service"), dict)
                and s["Service"].get("Name")]
    called = [c.computer for c, callers in site.callers if c is not capture and address in callers]
    if not services or not called:
        return []
    name = str(services[0]["Name"])
    key = key_from((f"{name}-client",), set(site.servers) | set(site.clients), "client")
    site.clients[key] = [
        f"# guessed: {', '.join(called)} admit {capture.computer} to their servers, which "
        f"shows no client program: a client inside its service {name}; check it",
        f"service: {value(name)}", *_run_as(capture, site)]
    return [key]


def _collect_admitted(capture: Capture, site: Site, servers: list[str]) -> None:
    """What each server's rule on this PC admits (its callers when the rule names single
    addresses); None when the rule admits more or the PC has none for it."""
    rules = {str(r.get("Program") or "").lower(): r
             for r in as_list(capture.part("Firewall").get("Rules"))
             if r.get("Enabled") and r.get("Why") == "server_executable"}
    executables = {site.clsid_keys[str(s["Clsid"]).upper()]: str(s.get("Executable") or "")
                   for s in capture.servers()}
    for key in servers:
        rule = rules.get(executables.get(key, "").lower())
        found = {str(a) for a in as_list(rule.get("RemoteAddress"))} if rule else set()
        single = found and all(map(_single, found))
        site.admitted[(capture.computer.upper(), key)] = found if single else None


def _calls_lines(site: Site, client: str) -> list[str]:
    """`calls:` when the servers' rules show that the client's PCs call only some of them
    (omitted when they call every one, or a rule does not say: dcomc's default is all)."""
    mine = {site.placed[c][0] for c in site.placed if client in site.placed[c][2]}
    called: dict[str, list[str]] = {}
    every = True
    for computer, (_, servers, _) in site.placed.items():
        for key in servers:
            admitted = site.admitted.get((computer, key))
            if admitted is None or admitted & mine or site.placed[computer][0] in mine:
                called.setdefault(key, []).append(computer)
            else:
                every = False
    if every:
        return []
    hosts = {key: [c for c in site.placed if key in site.placed[c][1]] for key in called}
    if all(called[key] == hosts[key] for key in called):
        return [f"calls: [{', '.join(sorted(called))}]   # the servers whose rules admit it"]
    return ["calls:                        # the servers whose rules admit it, and where"] + [
        f"  {key}: [{', '.join(called[key])}]" for key in sorted(called)]


def _single(address: str) -> bool:
    """Whether a firewall rule's remote entry is one address (not a network, range or
    keyword), as Windows shows it."""
    return re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", address) is not None


def _address(capture: Capture) -> tuple[str, str | None]:
    addresses = [str(a) for a in as_list(capture.part("Computer").get("Addresses"))]
    ipv4 = [a for a in addresses if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a)]
    if ipv4:
        return ipv4[0], None if len(ipv4) == 1 else f"also {', '.join(ipv4[1:])}"
    return "192.0.2.1", "no IPv4 address captured: put the PC's address here"


def _machine_lines(capture: Capture) -> tuple[list[str], list[str]]:
    """Comments on what dcomc will change, and the host `machine:` body (values that differ
    from what dcomc plans by default)."""
    machine = capture.part("Machine")
    ole, lsa = machine.get("Ole") or {}, machine.get("Lsa") or {}
    lines: list[str] = []
    legacy = (ole.get("LegacyAuthenticationLevel") or {}).get("Data")
    legacy = legacy if isinstance(legacy, int) and not isinstance(legacy, bool) else None
    if legacy is None or legacy < 5:
        lines.append(f"# DCOM default authentication on the PC: {AUTH_LEVELS.get(legacy or 2)}"
                     " (below packet integrity): dcomc raises it to packet_integrity")
    enable = (ole.get("EnableDCOM") or {}).get("Data")
    if isinstance(enable, str) and enable.upper() == "N":
        lines.append("# DCOM is disabled on the PC (EnableDCOM N): dcomc enables it")
    guest = (lsa.get("ForceGuest") or {}).get("Data") == 1
    anonymous = (lsa.get("EveryoneIncludesAnonymous") or {}).get("Data") == 1
    discovery = capture.part("NetworkDiscovery").get("EnabledRules")
    body: list[str] = _firewall_lines(capture)
    if isinstance(discovery, int) and discovery > 0:
        body.append("network_discovery: true      # some of its rules are enabled on the PC")
    if guest or anonymous:
        body.append("security_policy:")
        if guest:
            body.append("  sharing_model: guest_only   # ForceGuest 1 on the PC")
        if anonymous:
            body.append("  everyone_includes_anonymous: true   # as on the PC")
    return lines + _default_acl_lines(ole) + _policy_lines(machine), body


def _default_acl_lines(ole: dict[str, Any]) -> list[str]:
    """The PC's machine-wide default AppID ACLs, which the spec cannot set: said, and written
    into the ACLs of its servers without their own (where they apply)."""
    return [f"# the PC sets Default{which.title()}Permission (the ACL of AppIDs without their "
            "own): the spec has no setting for it; its servers without their own ACL get it "
            "as theirs" for which in RIGHTS
            if (ole.get(f"Default{which.title()}Permission") or {}).get("Exists")]


PROFILES = ("domain", "private", "public")
DEFAULT_PROFILES = ["domain", "private"]   # dcomc's default for both roles


def _profiles(text: Any) -> list[str]:
    """A rule's Profile as Windows shows it ('Domain, Private', 'Any') as the spec's list."""
    named = [p.strip().lower() for p in str(text or "").split(",")]
    return list(PROFILES) if "any" in named else [p for p in PROFILES if p in named]


def _network(address: str) -> str:
    """Windows' display of a network (10.9.0.0/255.255.255.0) as the spec writes it (/24)."""
    base, _, mask = address.partition("/")
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", mask):
        bits = "".join(f"{int(part):08b}" for part in mask.split("."))
        return f"{base}/{bits.count('1')}"
    return address


def _firewall_lines(capture: Capture) -> list[str]:
    """The host's `firewall:` where its rules differ from dcomc's default: their profiles,
    and their remote addresses when they are not single addresses (`site` gives those: the
    hosts whose flows need the rule): `any`, or the PC's networks and addresses."""
    rules = [r for r in as_list(capture.part("Firewall").get("Rules")) if r.get("Enabled")]
    if not rules:
        return []
    lines: list[str] = []
    # one profile set per host in a spec: the one most of its rules have (the first on a tie)
    profiles = list(Counter(tuple(_profiles(r.get("Profile"))) for r in rules).most_common(1)[0][0])
    if profiles and profiles != DEFAULT_PROFILES:
        lines.append(f"  profiles: [{', '.join(profiles)}]   # as the PC's rules have them")
    remote = sorted({str(a) for r in rules for a in as_list(r.get("RemoteAddress"))})
    if "Any" in remote:
        lines.append("  remote: any                # the PC's rules admit any address")
    elif not all(map(_single, remote)):
        shown = ", ".join(value(_network(a)) for a in remote)
        lines.append(f"  remote: [{shown}]   # as the PC's rules admit")
    return ["firewall:", *lines] if lines else []


def _policy_lines(machine: dict[str, Any]) -> list[str]:
    """A Group Policy limit overrides the registry limit dcomc merges into: say so."""
    policy = machine.get("Policy") or {}
    return [f"# Group Policy sets {name} on the PC: it overrides the limits dcomc merges"
            for name in ("MachineLaunchRestriction", "MachineAccessRestriction")
            if (policy.get(name) or {}).get("Exists")]


LIMIT_VALUES = {"launch": "MachineLaunchRestriction", "access": "MachineAccessRestriction"}


def _launch_entries(server_lines: list[str]) -> list[str]:
    """The principal lines of a server's `launch:` block as _server_lines wrote them."""
    if "launch:" not in server_lines:
        return []
    after = server_lines[server_lines.index("launch:") + 1:]
    entries = [line[2:] for line in after[:next((i for i, line in enumerate(after)
                                                 if not line.startswith("  ")), len(after))]]
    return [line for line in entries if not line.startswith("#")]


def _with_launch_principals(body: tuple[str, ...], entries: list[str]) -> tuple[str, ...]:
    """A server host's launch limit additions and the launch principals of its servers the
    PC's limit lacks: dcomc's default (guide §4.2 steps 13-21), so the clients' flows pass."""
    named = {line.split(":")[0] for line in body if not line.startswith("#")}
    added: list[str] = []
    for line in entries:
        if line.split(":")[0] not in named | {a.split(":")[0] for a in added}:
            added.append(line.split("   #")[0] + "   # a launch principal of its servers "
                         "(dcomc's default, guide §4.2)")
    return body + tuple(added)


def _limits(capture: Capture, principals: Principals) -> dict[str, tuple[str, ...]]:
    """Per machine limit, the principal lines the PC grants beyond Windows' default limit
    (what dcomc's add-only merge has to add to a fresh PC's limit to give the same)."""
    ole = capture.part("Machine").get("Ole") or {}
    limits: dict[str, tuple[str, ...]] = {}
    for which, name in LIMIT_VALUES.items():
        value = ole.get(name)
        if not isinstance(value, dict) or not value.get("Exists"):
            limits[which] = ()   # no value: Windows' built-in default limit applies
            continue
        acl = _decode(value)
        default = default_masks(DEFAULT_LIMITS[which])
        if isinstance(acl, str):
            limits[which] = (acl,)
            continue
        narrower = () if holds(acl, default) else (
            f"# the PC's {name} lacks part of Windows' default: dcomc only adds to it",)
        limits[which] = narrower + tuple(_ace_lines(extra(acl, default), RIGHTS[which],
                                                    principals))
    return limits


def _limit_lines(limits: dict[str, tuple[str, ...]]) -> list[str]:
    """`dcom:` with `<which>_limits` maps (`{}`: nothing beyond Windows' default, so the
    role default, ANONYMOUS LOGON remote access, is not added where the PC lacks it)."""
    lines = ["dcom:"]
    for which, body in limits.items():
        if any(not line.startswith("#") for line in body):
            lines += _block(f"  {which}_limits", ["  " + line for line in body])
        else:
            lines += ["  " + line for line in body]
            lines.append(f"  {which}_limits: {{}}     # nothing beyond Windows' default on the PC")
    return lines


def _collect_host(capture: Capture, site: Site) -> None:
    address, note = _address(capture)
    principals = Principals(capture, site)
    servers = _collect_servers(capture, site, principals)
    clients = _collect_clients(capture, site) or _hidden_client(capture, site)
    site.placed[capture.computer.upper()] = (address, servers, clients)
    _collect_admitted(capture, site, servers)
    computer = capture.part("Computer")
    lines = [f"{capture.computer.upper()}:",
             f"  # {computer.get('OsCaption')} {computer.get('OsVersion')}, "
             f"{computer.get('InstallLanguage')}, captured {capture.data.get('Time')}",
             f"  address: {value(address)}" + (f"   # {note}" if note else "")]
    if servers:
        lines.append(f"  servers: [{', '.join(servers)}]")
    if clients:
        lines.append(f"  clients: [{', '.join(clients)}]")
    skipped = [str(s.get("Part")) for s in as_list(capture.data.get("Skipped"))]
    if skipped:
        lines.append(f"  # not captured there: {', '.join(skipped)}")
    comments, body = _machine_lines(capture)
    if servers and capture.data.get("OpcEnum") is None and "Servers" not in skipped:
        body = ["opcenum: false               # no OPCEnum on the PC", *body]
    roles = tuple(role for role, keys in (("server", servers), ("client", clients)) if keys)
    limits = _limits(capture, principals)
    launch = [line for key in servers for line in _launch_entries(site.servers[key])]
    limits["launch"] = _with_launch_principals(limits["launch"], launch)
    site.hosts.append(HostEntry(lines + ["  " + line for line in comments], roles, body,
                                limits))


def _role_limits(site: Site) -> dict[str, dict[str, tuple[str, ...]]]:
    """Per role, the limits most of its one-role hosts have (the first on a tie): the
    `machine.<role>.dcom` block; a host that differs gets its own."""
    blocks: dict[str, dict[str, tuple[str, ...]]] = {}
    for role in ("server", "client"):
        seen = [tuple(h.limits.items()) for h in site.hosts if h.roles == (role,)]
        if seen:
            blocks[role] = dict(Counter(seen).most_common(1)[0][0])
    return blocks


def _host_lines(host: HostEntry, blocks: dict[str, dict[str, tuple[str, ...]]]) -> list[str]:
    """The host's entry with its `machine:` block: its own body, and the limits where the
    role blocks would give it other ones (a host of both roles gets both roles' maps)."""
    given: dict[str, set[str]] = {}
    for role in host.roles:
        for which, granted in blocks.get(role, {}).items():
            given.setdefault(which, set()).update(granted)
    if not all(role in blocks for role in host.roles):
        given = {}
    own = {which: lines for which, lines in host.limits.items()
           if set(lines) != given.get(which)}
    body = host.machine + (_limit_lines(own) if own else [])
    return host.lines + (["  machine:"] + ["    " + line for line in body] if body else [])


def _role_lines(blocks: dict[str, dict[str, tuple[str, ...]]]) -> list[str]:
    if not blocks:
        return []
    lines = ["# Machine limits: what the PCs grant beyond Windows' default limits "
             "(docs/windows.md#machine-limits)", "machine:"]
    for role, limits in blocks.items():
        lines += [f"  {role}:"] + ["    " + line for line in _limit_lines(limits)]
    return lines


def _account_lines(site: Site, several: int) -> list[str]:
    users = [a for a in site.accounts.values() if not a.group and _keep(a, several)]
    groups = [a for a in site.accounts.values() if a.group and _keep(a, several)]
    lines = ["accounts:", "  users:"] if users or site.domain_accounts else ["accounts:"]
    for user in sorted(users, key=lambda a: a.name.lower()):
        lines += [f"    {value(user.name)}:", *_pcs_comment(user, several),
                  "      password: prompt          # never captured: asked at install time"]
        if user.description:
            lines.append(f"      description: {value(user.description[:DESCRIPTION_MAX])}")
        if user.never_expires:
            lines.append("      password_never_expires: true")
        lines += _member_of_lines(user)
    for name, sid in sorted(site.domain_accounts.items()):
        sid = sid or site.sids.get(name.lower(), "")
        lines += [f"    {value(name)}:", "      existing: true"]
        lines.append(f"      sid: {sid}" if sid else "      # its SID was not captured")
    if groups:
        lines.append("  groups:")
    for group in sorted(groups, key=lambda a: a.name.lower()):
        lines += [f"    {value(group.name)}:", *_pcs_comment(group, several)]
        if group.description:
            lines.append(f"      description: {value(group.description)}")
        members = sorted(m for m in group.members if m.lower() in site.accounts or "\\" in m)
        lines.append(f"      members: [{', '.join(map(value, members))}]")
    return lines


def _member_of_lines(user: Account) -> list[str]:
    """Its groups; a service's Log On account also in Administrators, which dcomc requires
    (guide §3.2, E117) where the PC had it otherwise (said in a comment)."""
    groups, lines = set(user.member_of), []
    if user.runs_service and "Administrators" not in groups:
        groups.add("Administrators")
        lines.append("      # runs a server's service but is no administrator on the PC: dcomc "
                     "requires it (guide §3.2)")
    if groups:
        lines.append(f"      member_of: [{', '.join(sorted(map(value, groups)))}]")
    return lines


def _keep(account: Account, several: int) -> bool:
    return account.needed or len(account.pcs) >= min(several, 2)


def _pcs_comment(account: Account, several: int) -> list[str]:
    if len(account.pcs) >= 2 or several < 2:
        return []
    return [f"      # found on {', '.join(sorted(account.pcs))} only: needed there"]


def _section(title: str, entries: dict[str, list[str]]) -> list[str]:
    if not entries:
        return []
    lines = [f"{title}:"]
    for key in sorted(entries):
        lines += [f"  {key}:"] + ["    " + line for line in entries[key]]
    return lines


def _site_lines(captures: Sequence[Capture]) -> list[str]:
    joined = [bool(c.part("Computer").get("PartOfDomain")) for c in captures]
    identity = "domain" if all(joined) else "mixed" if any(joined) else "workgroup"
    lines = ["site:", "  name: imported-site                # rename it",
             f"  identity: {identity}"]
    domains = {str(c.part("Computer").get("Domain") or "") for c, j in zip(captures, joined,
                                                                          strict=True) if j}
    if domains:
        netbios = re.sub(r"[^A-Z0-9-]", "", sorted(domains)[0].split(".")[0].upper())[:15]
        guessed = ", ".join(sorted(domains))
        lines.append(f"  domain: {netbios or 'DOMAIN'}   # guessed from {guessed}")
    return lines


def import_text(captures: Sequence[Capture]) -> str:
    """The spec text reproducing the captures (PCs in the order given, each once)."""
    site = Site(captures=captures)
    _collect_accounts(captures, site)
    _collect_memberships(captures, site)
    for capture in captures:
        _collect_host(capture, site)
    blocks = _role_limits(site)
    for key in site.clients:
        site.clients[key] += _calls_lines(site, key)
    header = ["# Imported by `dcomc import` from captures of "
              + ", ".join(c.computer.upper() for c in captures) + " (docs/capture.md).",
              "# Review every comment: they mark what the import had to guess.",
              "dcomc: 1", ""]
    body = (_site_lines(captures) + [""] + _account_lines(site, len(captures)) + [""]
            + _section("servers", site.servers) + _section("clients", site.clients)
            + ["", "hosts:"]
            + ["  " + line for host in site.hosts for line in _host_lines(host, blocks)]
            + [""] + _role_lines(blocks))
    # Captured text (rule names, programs, OS captions, service names) goes into comments and
    # values: a control character in it, a newline above all, would start a YAML line of its
    # own (a `servers:` key from a firewall rule's name). Each line stays one line.
    return "\n".join(escaped(line) for line in header + body) + "\n"
