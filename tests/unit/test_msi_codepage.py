"""E218: what reaches an MSI fits its code page (1252), and nothing else is refused for it.

wixl 0.101 crashed (exit -11, no location) on an account outside Windows-1252 (Łukasz, Ω,
CJK; issue 17). `check` refuses exactly the accounts that reach an MSI (users dcomc creates,
the Log On accounts of configured services) and only for characters that code page lacks; the
real wixl builds every character it has.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcomc.checks import names
from dcomc.checks import site as check
from dcomc.diagnostics import CompileError
from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc_targets import Options, msi
from tools import require


def _spec(users: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "dcomc": 1,
        "site": {"name": "cp", "description": "Łódź 用户"},
        "accounts": {"users": {u: {"password": "prompt"} for u in users},
                     "groups": {"Grupa Łódź Ω": {"description": "Ω 用户",
                                                "members": list(users)}}},
        "clients": {"hmi": {"executable": "C:\\Łódź\\Ω\\hmi.exe", "run_as": users[0]}},
        "hosts": {"HMI01": {"address": "10.0.0.1", "clients": ["hmi"],
                            "description": "Ω"}},
        **extra,
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "cp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _codes(path: Path) -> list[str]:
    try:
        compile_file(path)
    except CompileError as exc:
        return [d.code for d in exc.diagnostics.items if d.severity == "error"]
    return []


# Every non-ASCII character of Windows-1252 that an account name may hold (not a control or
# format character, E201; not one Windows refuses, E202), in names of at most 20 characters.
CP1252 = [c for c in map(chr, range(0xA0, 0x2123)) if check._in_msi_codepage(c)
          and check._CONTROL.search(c) is None and c not in names.BAD_ACCOUNT_CHARS]
NAMES = ["u" + "".join(CP1252[i:i + 19]) for i in range(0, len(CP1252), 19)]


def test_every_windows_1252_letter_is_allowed_in_an_account(tmp_path: Path) -> None:
    assert len(CP1252) == 122  # 0xA0-0xFF but the soft hyphen, and the 27 of 0x80-0x9F
    assert _codes(_write(tmp_path, _spec(NAMES))) == []


@pytest.mark.parametrize("name", ["Łukasz", "Ωmega", "用户", "a😀", "ā", "ǅ", "ﬁ", "e\u0301"])
def test_an_account_outside_it_is_refused(tmp_path: Path, name: str) -> None:
    assert _codes(_write(tmp_path, _spec(["opcuser", name]))) == ["E218"]


def test_existing_accounts_are_refused_only_as_service_log_on(tmp_path: Path) -> None:
    data = _spec(["opcuser"])
    data["site"].update(identity="mixed", domain="PLANT9")
    data["accounts"]["users"]["PLANT9\\Łukasz"] = {"existing": True}
    data["clients"]["studio"] = {"executable": "C:\\s.exe", "run_as": "PLANT9\\Łukasz"}
    data["hosts"]["HMI01"]["clients"].append("studio")
    assert _codes(_write(tmp_path, data)) == []  # a plain client's run_as: not in the MSI
    data["clients"]["studio"]["service"] = "StudioSvc"
    assert _codes(_write(tmp_path, data)) == ["E218"]
    data["hosts"]["HMI01"]["clients"].remove("studio")  # on no host: configured nowhere
    assert _codes(_write(tmp_path, data)) == []


def test_what_check_allows_builds_with_wixl(tmp_path: Path) -> None:
    """The whole of Windows-1252 in account names, and anything in values that never reach
    the MSI (group, descriptions, paths, a domain account that is not a service's), build."""
    require(shutil.which("wixl") is not None, "wixl")
    data = _spec(NAMES)
    data["site"].update(identity="mixed", domain="PLANT9")
    data["clients"]["studio"] = {"executable": "C:\\用户\\s.exe", "run_as": "PLANT9\\Łukasz"}
    data["hosts"]["HMI01"]["clients"].append("studio")
    compiled = compile_file(_write(tmp_path, data))
    out = tmp_path / "out"
    bundle.build(compiled, Options(), "cp.yaml", out, bundle.MsiRequest("1.0.0"))
    assert (out / "HMI01" / "HMI01.msi").is_file()


def test_the_refused_accounts_crash_wixl(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The reason for E218: without it the same spec reaches wixl, which fails."""
    require(shutil.which("wixl") is not None, "wixl")
    path = _write(tmp_path, _spec(["Łukasz"]))
    monkeypatch.setattr(check, "_RULES", tuple(
        rule for rule in check._RULES if rule is not check._msi_accounts))
    compiled = compile_file(path)
    with pytest.raises(msi.MsiError, match="wixl failed"):
        bundle.build(compiled, Options(), path.name, tmp_path / "out",
                     bundle.MsiRequest("1.0.0"))
