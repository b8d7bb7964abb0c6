"""`dcomc import` (issue 16 item 2) and the capture format's reader (docs/capture.md).

The shipped captures of examples/captures/ are what the real engine writes: the example
plant7-workgroup is built, tests/engine/make-sample-captures.ps1 applies each host's bundle to
a fresh simulated PC and runs `-Mode Capture`, and every shipped file must equal its output
(but `Time`, the simulated clock). Importing them must give a spec that passes `check` and,
for what a capture can see, the original's plan. What differs, and why (see
test_round_trip_keeps_what_a_capture_sees):
  * names: the site is `imported-site`, the server key is the catalog's (`kepserverex-v6`,
    not `kepware`), the client key comes from its executable (`client-hmi`, not `hmi`);
  * OPC Users is written on the server only: the HMIs have the group too (dcomc created it
    everywhere), but only SCADA01's ACLs need it; the import keeps it as found on SCADA01;
  * AppID ACLs are `permissions: exact` with the ACEs the PC has (the guide's Administrators,
    SYSTEM, INTERACTIVE, and SELF as a SID a capture cannot name), where the original adds
    OPC Users to Windows' default;
  * machine values are the role defaults, so the role blocks of the original are not
    written, and EveryoneIncludesAnonymous = 1 is a per-host setting of the HMIs;
  * client run_as is a guess (no capture can see who runs a program), firewall remote scopes
    are dcomc's `site` again;
  * machine limits (machine_limit_addition) differ: the imported exact launch ACL names
    Administrators, SYSTEM and INTERACTIVE, which the plan then adds to the launch limit, and
    the HMIs' ANONYMOUS LOGON access limit of the original's client role is not re-created
    (the import writes no role blocks yet). Not compared here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dcomc.cli import main
from dcomc.emit import bundle
from dcomc.front.importer import import_text
from dcomc.pipeline import compile_file
from dcomc.readback.capture import Capture, load_capture, parse_capture
from dcomc.readback.compare import InputError
from dcomc_targets import Options

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_pester import pwsh

from tools import require

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "plant7-workgroup.yaml"
SHIPPED = ROOT / "examples" / "captures"
SCRIPT = ROOT / "tests" / "engine" / "make-sample-captures.ps1"
REGENERATE = (f"dcomc build {SPEC.relative_to(ROOT)} -o /tmp/b --no-msi && pwsh -NoProfile "
              f"-File {SCRIPT.relative_to(ROOT)} -Bundle /tmp/b -OutDir "
              f"{SHIPPED.relative_to(ROOT)}")


def _shipped() -> list[Capture]:
    return [load_capture(path) for path in sorted(SHIPPED.glob("*.json"))]


def _imported(tmp_path: Path, captures: list[Capture]) -> Path:
    path = tmp_path / "imported.yaml"
    path.write_text(import_text(captures), encoding="utf-8")
    return path


def test_shipped_captures_are_the_engines_output(tmp_path: Path) -> None:
    exe = pwsh()
    require(exe is not None, "PowerShell 7 (pwsh)")
    assert exe is not None
    built, out = tmp_path / "bundle", tmp_path / "captures"
    bundle.build(compile_file(SPEC), Options(), SPEC.name, built)
    run = subprocess.run([exe, "-NoProfile", "-NonInteractive", "-File", str(SCRIPT), "-Bundle",
                          str(built), "-OutDir", str(out)], capture_output=True, text=True,
                         env=dict(os.environ, DCOMC_WORK=str(tmp_path)), timeout=600,
                         check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == sorted(p.name for p in SHIPPED.glob("*.json")) == [
        "HMI01.json", "HMI02.json", "SCADA01.json"], f"regenerate: {REGENERATE}"
    for name in names:
        got = json.loads((out / name).read_text(encoding="utf-8"))
        shipped = json.loads((SHIPPED / name).read_text(encoding="utf-8"))
        got.pop("Time")
        assert shipped.pop("Time").startswith("2026-03-02T07:0")
        assert got == shipped, f"{name} differs from the engine's output; regenerate: {REGENERATE}"


def test_import_of_the_shipped_captures_passes_check(tmp_path: Path) -> None:
    compiled = compile_file(_imported(tmp_path, _shipped()))
    assert sorted(h.name for h in compiled.plan.hosts) == ["HMI01", "HMI02", "SCADA01"]
    assert not [d for d in compiled.diagnostics if "error" in str(d)]


def _ids(compiled: Any, host: str) -> set[str]:
    plan = next(h for h in compiled.plan.hosts if h.name == host)
    return {r.id for r in plan.resources}


def test_round_trip_keeps_what_a_capture_sees(tmp_path: Path) -> None:
    """Build, Apply on the simulated PC, Capture, import: the plan of the imported spec has
    the original's accounts, memberships, service identity, firewall openings and security
    options on every host, with the renamed keys the module docstring lists."""
    original = compile_file(SPEC)
    imported = compile_file(_imported(tmp_path, _shipped()))
    rename = {"plant7-line3": "imported-site", "server-kepware": "server-kepserverex-v6",
              "client-hmi": "client-client-hmi", ":kepware": ":kepserverex-v6"}
    for host in ("SCADA01", "HMI01", "HMI02"):
        want = set()
        for rid in _ids(original, host):
            for old, new in rename.items():
                rid = rid.replace(old, new)
            want.add(rid)
        kinds = ("local_user:", "service_logon:", "user_right:", "firewall_rule:",
                 "security_option:", "machine_dcom_value:")
        got = _ids(imported, host)
        assert {r for r in want if r.startswith(kinds)} <= got, host
    text = _imported(tmp_path, _shipped()).read_text(encoding="utf-8")
    assert "product: kepserverex-v6" in text and "service_account: 'opcsvc'" in text
    assert "'OPC Users': [local_launch, remote_launch, local_activation, remote_activation]" in text
    assert "members: ['opcsvc', 'opcuser']" in text


def _capture(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SHIPPED / "SCADA01.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def test_a_brownfield_server_outside_the_catalog_keeps_its_identifiers(tmp_path: Path) -> None:
    data = _capture()
    server = data["Servers"][0]
    server.update(Clsid="{0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9}", ProgId="Vendor.Mill.2",
                  Bitness=64, Executable=r"C:\Program Files\Mill\mill.exe")
    server["AppIdKey"]["AuthenticationLevel"] = 2
    text = import_text([parse_capture(data, tmp_path / "x.json")])
    assert "progid: 'Vendor.Mill.2'" in text and "bitness: 64" in text
    assert "AuthenticationLevel 2 (connect)" in text and "KB5004442" in text
    path = tmp_path / "mill.yaml"
    path.write_text(text, encoding="utf-8")
    assert [h.name for h in compile_file(path).plan.hosts] == ["SCADA01"]


def test_an_unresolved_sid_stays_a_sid_with_a_comment(tmp_path: Path) -> None:
    text = import_text(_shipped())
    assert "'S-1-5-10': [local_access, remote_access]   # not resolved on SCADA01" in text


@pytest.mark.parametrize(("change", "message"), [
    ({"FormatVersion": 2}, "version 2 is not one this dcomc reads (1); use a newer dcomc"),
    ({"Format": "other"}, "`Format` is not 'dcomc-capture'"),
    ({"Computer": None}, "no `Computer.Name` string"),
    ({"Servers": [{"ProgId": "x"}]}, "Servers[0] has no `Clsid` string"),
    ({"Accounts": []}, "`Accounts` is a list, not an object"),
])
def test_the_reader_refuses_a_malformed_capture(tmp_path: Path, change: dict[str, Any],
                                                 message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_capture(_capture(**change), tmp_path / "c.json")
    assert str(caught.value).endswith(message)
    assert "\n" not in str(caught.value)


def test_cli_import_writes_checks_and_refuses(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "site.yaml"
    args = ["import", *map(str, sorted(SHIPPED.glob("*.json"))), "-o", str(out)]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "3 hosts imported, passes check" in first.output
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    twice = runner.invoke(main, ["import", str(SHIPPED / "HMI01.json"),
                                 str(SHIPPED / "HMI01.json")])
    assert twice.exit_code == 2 and "a second capture of HMI01" in twice.output
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    refused = runner.invoke(main, ["import", str(bad)])
    assert refused.exit_code == 2 and "not a capture" in refused.output


def test_no_password_material_in_captures_or_import() -> None:
    for path in sorted(SHIPPED.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert "PasswordHash" not in text and "Grüße" not in text
    assert "password: prompt" in import_text(_shipped())
