"""Security lints: each case is plant7 with one insecure change, and the code it must raise."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcomc.diagnostics import CompileError
from dcomc.pipeline import compile_file
from dcomc.plan.lint import LINTS

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
Change = Callable[[dict[str, Any]], None]


def server(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["servers"]["kepware"]  # type: ignore[no-any-return]


def role(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return spec["machine"][name]  # type: ignore[no-any-return]


CASES: dict[str, tuple[Change, str]] = {
    "appid-auth-none": (lambda s: server(s).update(authentication_level="none"), "E601"),
    "appid-auth-connect": (lambda s: server(s).update(authentication_level="connect"), "E601"),
    "machine-auth-connect": (
        lambda s: role(s, "client")["dcom"].update(authentication_level="connect"), "E602"),
    "everyone-launch": (
        lambda s: server(s)["launch"].update(Everyone=["remote_launch", "remote_activation"]),
        "W611"),
    "anonymous-launch-limit": (
        lambda s: role(s, "server")["dcom"]["launch_limits"].update(
            {"ANONYMOUS LOGON": ["remote_launch"]}), "W611"),
    "anonymous-access-on-app": (
        lambda s: server(s)["access"].update({"ANONYMOUS LOGON": ["remote_access"]}), "W612"),
    "anonymous-limit-without-opcenum": (lambda s: role(s, "server").update(opcenum=False),
                                        "W612"),
    "firewall-any": (lambda s: role(s, "server")["firewall"].update(remote="any"), "W613"),
    # The effective rule (issue 17): networks that cover every address are as open as `any`.
    "firewall-all-ipv4": (
        lambda s: role(s, "server")["firewall"].update(remote=["0.0.0.0/0"]), "W613"),
    "firewall-ipv4-halves": (lambda s: role(s, "server")["firewall"].update(
        remote=["10.7.3.0/24", "0.0.0.0/1", "128.0.0.0/1"]), "W613"),
    "firewall-all-ipv6": (
        lambda s: role(s, "client")["firewall"].update(remote=["10.7.3.0/24", "::/0"]), "W613"),
    "everyone-anonymous-on-server": (
        lambda s: role(s, "server")["security_policy"].update(everyone_includes_anonymous=True),
        "W614"),
    "classic-on-client": (
        lambda s: role(s, "client")["security_policy"].update(sharing_model="classic"), "W614"),
    "service-password-expires": (
        lambda s: s["accounts"]["users"]["opcsvc"].update(password_never_expires=False),
        "W615"),
    "launch-limit-edit": (lambda s: None, "W616"),  # plant7 as shipped edits the launch limit
}


def compile_changed(change: Change, tmp_path: Path, *, strict: bool = False) -> Any:
    spec = copy.deepcopy(BASE)
    change(spec)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return compile_file(path, strict=strict)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_lint_case(case: str, tmp_path: Path) -> None:
    change, code = CASES[case]
    if LINTS[code].severity == "error":
        with pytest.raises(CompileError) as info:
            compile_changed(change, tmp_path)
        assert code in {d.code for d in info.value.diagnostics}
        return
    compiled = compile_changed(change, tmp_path)
    assert code in {f.code for f in compiled.findings}
    assert code in {d.code for d in compiled.diagnostics if d.severity == "warning"}
    with pytest.raises(CompileError):  # --strict turns the warning into an error
        compile_changed(change, tmp_path, strict=True)


def test_kb5004442_message_explains(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as info:
        compile_changed(CASES["appid-auth-none"][0], tmp_path)
    message = next(d.message for d in info.value.diagnostics if d.code == "E601")
    assert "March 2023" in message and "packet_integrity" in message


def test_shipped_examples_have_no_security_errors() -> None:
    for name in ("plant7-workgroup.yaml", "plant9-domain.yaml"):
        compiled = compile_file(ROOT / "examples" / name)
        assert all(f.lint.severity == "warning" for f in compiled.findings)
        assert {f.code for f in compiled.findings} == {"W616"}


def test_one_finding_names_every_host_it_hits() -> None:
    compiled = compile_file(ROOT / "examples" / "plant9-domain.yaml")
    (finding,) = compiled.findings
    assert finding.host == "UTIL-HIST, UTIL-SRV1"
    assert finding.span is not None and finding.span.line == 78
