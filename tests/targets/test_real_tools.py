"""Artifacts read by independent, real parsers: Samba's INF template parser (python3-samba,
Debian's /usr/bin/python3) and impacket's security-descriptor parser.

A missing tool skips locally; CI sets DCOMC_REQUIRE_TOOLS=1 so that it fails instead.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dcomc.pipeline import compile_file
from dcomc.windows import sd, sdbinary
from dcomc_targets import EmitContext, Options
from dcomc_targets.regfile import RegTarget, parse
from dcomc_targets.secedit import SeceditTarget
from tools import require

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "examples").glob("*.yaml"))
SYSTEM_PYTHON = "/usr/bin/python3"


def samba_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import samba.gp_parse.gp_inf"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_samba_reads_inf_like_we_do(spec: Path, tmp_path: Path) -> None:
    require(samba_available(), "python3-samba")
    comp = compile_file(spec)
    ctx = EmitContext(comp.plan, Options(), spec.name, comp.sha256)
    target = SeceditTarget()
    for host in comp.plan.hosts:
        (artifact,) = target.emit(host, ctx)
        path = tmp_path / f"{host.name}.inf"
        path.write_bytes(artifact.data)
        proc = subprocess.run([SYSTEM_PYTHON, str(Path(__file__).with_name("samba_inf.py")),
                               str(path)], capture_output=True, text=True, check=True)
        samba = json.loads(proc.stdout)
        ours = target.read(artifact.data)
        registry = [p["values"][0] for p in samba.get("Registry Values", [])]
        assert registry == [f"{key}={rtype},{data}" for key, rtype, data in ours.registry_values]
        rights = {p["key"]: p["values"] for p in samba.get("Privilege Rights", [])}
        assert rights == {r: [f"*{s}" for s in sids] for r, sids in ours.privilege_rights}
        assert set(samba) <= {"Registry Values", "Privilege Rights"}


def test_samba_sees_rights_of_static_accounts(tmp_path: Path) -> None:
    """plant9's service account has a SID: its right reaches the INF, after the default."""
    comp = compile_file(ROOT / "examples" / "plant9-domain.yaml")
    ctx = EmitContext(comp.plan, Options(), "plant9-domain.yaml", comp.sha256)
    content = SeceditTarget().read(SeceditTarget().emit(comp.plan.host("UTIL-HIST"), ctx)[0].data)
    assert content.privilege_rights == (
        ("SeServiceLogonRight", ("S-1-5-80-0", "S-1-5-21-1004336348-1177238915-682003330-1105")),)


def test_impacket_reads_reg_descriptors() -> None:
    from impacket.ldap.ldaptypes import SR_SECURITY_DESCRIPTOR

    comp = compile_file(ROOT / "examples" / "plant9-domain.yaml")
    ctx = EmitContext(comp.plan, Options(replace_machine_limits=True), "x.yaml", comp.sha256)
    data = RegTarget().emit(comp.plan.host("UTIL-SRV1"), ctx)[0].data
    text = data[2:].decode("utf-16-le")
    content = parse(text)
    binaries = [op for op in content.ops if op.type == "REG_BINARY"]
    assert {op.name for op in binaries} == {"LaunchPermission", "AccessPermission",
                                            "MachineLaunchRestriction",
                                            "MachineAccessRestriction"}
    for op in binaries:
        assert isinstance(op.data, str)
        blob = sdbinary.sddl_to_binary(op.data)
        theirs = SR_SECURITY_DESCRIPTOR(data=blob)
        ours = sd.parse_sddl(op.data)
        assert ours.dacl is not None
        got = [(ace["Ace"]["Sid"].formatCanonical(), ace["Ace"]["Mask"]["Mask"])
               for ace in theirs["Dacl"].aces]
        assert got == [(a.sid, a.mask) for a in ours.dacl]
        assert theirs["OwnerSid"].formatCanonical() == "S-1-5-32-544"
