"""Hostile names and paths: through every artifact exactly, or refused at check time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcomc.diagnostics import CompileError
from dcomc.pipeline import compile_file
from dcomc_targets import TARGETS, EmitContext, Options

# The typographic single quotes PowerShell also treats as quotes.
PS_QUOTES = "\u2018\u2019\u201a\u201b"

# Characters that are legal in Windows account names and paths but special somewhere:
# PowerShell, cmd, netsh, INF, .reg, XML, MSI formatted strings.
SPECIAL = "'%^&$`()[]{}! ;,#~Üéß" + PS_QUOTES
# Windows refuses " / \ [ ] : ; | = , + * ? < > @ in account names (checked separately).
NAME_CHARS = st.sampled_from("'%^&$`(){}! #~Üéß" + PS_QUOTES + "abcXYZ019-_")
PATH_CHARS = st.sampled_from(SPECIAL + "abcXYZ019-_ .")

account = st.text(NAME_CHARS, min_size=1, max_size=18).filter(
    lambda s: s.strip() == s and not s.endswith(".") and s.strip(". "))
# A user dcomc creates reaches the MSI, whose code page (1252) has no U+201B (E218); the
# domain account, which does not, keeps every character.
local_account = account.filter(lambda s: "\u201b" not in s)
folder = st.text(PATH_CHARS, min_size=1, max_size=20).filter(
    lambda s: s not in (".", "..") and s.strip() == s and not s.endswith("."))
description = st.text(st.sampled_from(SPECIAL + "\"\\<>&abc "), max_size=40)


def spec(user: str, domain_user: str, server_dir: str, client_dir: str, desc: str) -> Any:
    return {
        "dcomc": 1,
        "site": {"name": "adv", "identity": "mixed", "domain": "PLANT9"},
        "accounts": {
            "users": {
                user: {"password": "prompt", "description": desc,
                       "member_of": ["Administrators"]},
                f"PLANT9\\{domain_user}": {"existing": True,
                                          "sid": "S-1-5-21-1-2-3-1105"},
            },
        },
        "servers": {"srv": {
            "progid": "Vendor.Server.1", "appid": "{6F1C2A7E-3B9D-4E5F-8A21-0C4D7E9B1F36}",
            "executable": f"C:\\Program Files\\{server_dir}\\srv.exe",
            "service": "VendorSvc", "service_account": user,
            "launch": {user: ["local_launch", "remote_launch"],
                       f"PLANT9\\{domain_user}": ["remote_activation"]},
            "access": {f"PLANT9\\{domain_user}": ["remote_access"]},
        }},
        "clients": {"cli": {"executable": f"D:\\{client_dir}\\cli.exe", "run_as": user}},
        "hosts": {"H1": {"address": "10.0.0.1", "servers": ["srv"]},
                  "H2": {"address": "10.0.0.2", "clients": ["cli"]}},
    }


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(local_account, account, folder, folder, description)
def test_hostile_values_round_trip(tmp_path: Path, user: str, domain_user: str,
                                   server_dir: str, client_dir: str, desc: str) -> None:
    path = tmp_path / "adv.yaml"
    path.write_text(yaml.safe_dump(spec(user, domain_user, server_dir, client_dir, desc),
                                   allow_unicode=True), encoding="utf-8")
    comp = compile_file(path)  # all of these are legal Windows names and paths
    ctx = EmitContext(comp.plan, Options(), path.name, comp.sha256)
    for host in comp.plan.hosts:
        for target in TARGETS:
            for artifact in target.emit(host, ctx):
                if artifact.kind == target.kinds[0]:
                    assert target.read(artifact.data) == target.expected(host, ctx)


def test_obrien_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "obrien.yaml"
    path.write_text(yaml.safe_dump(spec('O\'Brien "$(x)"', "d", "a", "b", "x")),
                    encoding="utf-8")
    try:
        compile_file(path)
    except CompileError as exc:
        messages = [d.message for d in exc.diagnostics]
        assert any("invalid account name 'O'Brien \"$(x)\"'" in m for m in messages)
    else:
        raise AssertionError("a name with a double quote must be refused")


def test_bediener_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "umlaut.yaml"
    path.write_text(yaml.safe_dump(spec("Bediener Ü", "O'Brien $(x)", "Ü & %PATH%", "[x]",
                                        "Bediener \"Ü\" $(x)"), allow_unicode=True),
                    encoding="utf-8")
    comp = compile_file(path)
    ctx = EmitContext(comp.plan, Options(), path.name, comp.sha256)
    host = comp.plan.host("H2")
    netsh = next(t for t in TARGETS if t.name == "netsh")
    (artifact,) = netsh.emit(host, ctx)
    rules = netsh.read(artifact.data).rules
    assert "D:\\[x]\\cli.exe" in {r.program for r in rules}
    wix = next(t for t in TARGETS if t.name == "wixfirewall")
    (artifact,) = wix.emit(host, ctx)
    assert b"D:\\[\\[]x[\\]]\\cli.exe" in artifact.data  # literal, not a property reference
    assert "D:\\[x]\\cli.exe" in {r.program for r in wix.read(artifact.data).rules}
