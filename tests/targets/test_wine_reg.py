"""The .reg files imported by a real `reg import` (Wine), then exported by `reg export` and read
back with our reader: every value lands with its data, every deletion deletes, and binary
values are wrapped exactly as regedit's own export wraps them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcomc.pipeline import compile_file
from dcomc_targets import EmitContext, Options
from dcomc_targets.base import decode_utf16
from dcomc_targets.regfile import RegTarget, parse
from tools import require

ROOT = Path(__file__).resolve().parents[2]
CASES = [("plant9-domain.yaml", "UTIL-SRV1"), ("plant7-workgroup.yaml", "SCADA01"),
         ("plant7-workgroup.yaml", "HMI01")]


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    require(shutil.which("wine") is not None, "wine")
    prefix = tmp_path_factory.mktemp("wineprefix")
    env = {**os.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": "-all"}
    subprocess.run(["wine", "wineboot", "-i"], env=env, capture_output=True, check=False,
                   timeout=300)
    yield env
    subprocess.run(["wineserver", "-k"], env=env, capture_output=True, check=False)


def run_reg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["wine", "reg", *args], env=env, capture_output=True, text=True,
                          check=False, timeout=120)


@pytest.mark.parametrize(("spec", "host"), CASES)
def test_reg_import_then_export(wine: dict[str, str], tmp_path: Path, spec: str,
                                host: str) -> None:
    comp = compile_file(ROOT / "examples" / spec)
    ctx = EmitContext(comp.plan, Options(replace_machine_limits=True), spec, comp.sha256)
    (artifact,) = RegTarget().emit(comp.plan.host(host), ctx)
    ours = parse(decode_utf16(artifact.data, ".reg"))
    keys = sorted({op.key for op in ours.ops})
    for key in keys:  # seed values the file must delete
        for op in ours.ops:
            if op.key == key and op.type == "DELETE":
                run_reg(wine, "add", key, "/v", op.name, "/t", "REG_SZ", "/d", "stale", "/f")
    reg_file = tmp_path / "in.reg"
    reg_file.write_bytes(artifact.data)
    imported = run_reg(wine, "import", f"Z:{reg_file}".replace("/", "\\"))
    assert imported.returncode == 0, imported.stderr
    for key in keys:
        exported = tmp_path / "out.reg"
        proc = run_reg(wine, "export", key, f"Z:{exported}".replace("/", "\\"), "/y")
        assert proc.returncode == 0, proc.stderr
        export_text = decode_utf16(exported.read_bytes(), "export")
        theirs = {(op.name.casefold()): op for op in parse(export_text).ops}
        for op in (o for o in ours.ops if o.key == key):
            if op.type == "DELETE":
                assert op.name.casefold() not in theirs, f"{key}\\{op.name} not deleted"
            else:
                assert theirs[op.name.casefold()] == op
        ours_lines = decode_utf16(artifact.data, ".reg").splitlines()
        binaries = tuple(f'"{op.name}"=hex:' for op in ours.ops
                         if op.key == key and op.type == "REG_BINARY")
        for line in export_text.splitlines():  # regedit's wrapping, byte for byte
            if binaries and line.startswith(binaries):
                assert line in ours_lines
