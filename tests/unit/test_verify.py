"""The flow verifier (issue 12 item 3): for each flow, the first thing Windows will refuse, with
the spec place to fix and the error it will produce. One spec per case, each a small change of
a site that verifies clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcomc.diagnostics import CompileError, Diagnostic
from dcomc.explain import report
from dcomc.pipeline import compile_file
from dcomc.plan.verify import RULES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [*sorted((ROOT / "examples").glob("*.yaml")), ROOT / "examples" / "large" /
            "large-site.yaml", ROOT / "examples" / "flows" / "line4-flows.yaml"]

BASE = """\
dcomc: 1
site: {name: line}
accounts:
  users:
    opcuser: {password: prompt, member_of: [Distributed COM Users]OPCUSER}
    opcsvc: {password: prompt, member_of: [Administrators]OPCSVC}
servers:
  kepware:
    product: kepserverex-v6
    service_account: opcsvc
    authentication_level: packet_integrity
    launch: {opcuser: [local_launch, remote_launch, local_activation, remote_activation]}
    access: {opcuser: [local_access, remote_access]}
clients:
  hmi: {executable: 'C:\\HMI\\hmi.exe', run_as: opcuser, calls: [kepware]}
hosts:
  SCADA01: {address: 10.0.0.10, servers: [kepware]}
  HMI01:
    address: 10.0.0.21
    clients: [hmi]
"""


def compiled_errors(tmp_path: Path, text: str) -> list[Diagnostic]:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CompileError) as caught:
        compile_file(path)
    return [d for d in caught.value.diagnostics if d.code.startswith(("E5", "W5"))]


def spec(**edits: str) -> str:
    text = BASE.replace("OPCUSER", edits.pop("opcuser", "")).replace(
        "OPCSVC", edits.pop("opcsvc", ""))
    for old, new in edits.items():
        assert old.replace("_", " ") in text or old in text, old
        text = text.replace(old, new)
    return text


def only(found: list[Diagnostic], code: str, line: int) -> Diagnostic:
    assert [d.code for d in found] == [code], [str(d) for d in found]
    diag = found[0]
    assert diag.span is not None and diag.span.line == line, str(diag)
    assert diag.message.startswith("flow hmi on HMI01 → kepware on SCADA01: ")
    return diag


def test_the_base_site_verifies_clean(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(spec(), encoding="utf-8")
    assert not compile_file(path, strict=True).verified


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_shipped_examples_verify_clean(path: Path) -> None:
    assert not compile_file(path).verified


def test_client_identity_missing_on_the_server_host(tmp_path: Path) -> None:
    # opcuser kept to the HMI by its own host list: the server PC has no opcuser to log on
    found = compiled_errors(tmp_path, spec(opcuser=", hosts: [HMI01]"))
    diag = only(found, "E502", 5)
    assert "runs as opcuser, which the plan does not create on SCADA01" in diag.message
    assert diag.message.endswith("Windows: 0x80070005")


def test_client_identity_not_in_the_launch_acl(tmp_path: Path) -> None:
    text = spec(**{"    launch: {opcuser:": "    permissions: exact\n    launch: {Administrators:"})
    diag = only(compiled_errors(tmp_path, text), "E505", 13)
    assert "kepware's launch permissions (exact) do not give opcuser remote activation" in (
        diag.message)
    assert "Windows: 0x80070005, event 10016" in diag.message


def test_add_mode_launch_acl_without_the_client_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(spec(**{"    launch: {opcuser:": "    launch: {Administrators:"}),
                    encoding="utf-8")
    found = [d for d in compile_file(path).diagnostics if d.code.startswith("W5")]
    assert [d.code for d in found] == ["W515"]
    assert "only a current ACL of the AppID on SCADA01 could" in found[0].message
    with pytest.raises(CompileError):
        compile_file(path, strict=True)


def test_machine_launch_limit_without_the_client(tmp_path: Path) -> None:
    text = spec(**{"[Distributed COM Users]": "[]",
                   "hosts:\n": "machine:\n  server:\n    dcom: {launch_limits: {}}\nhosts:\n"})
    diag = only(compiled_errors(tmp_path, text), "E504", 15)
    assert "SCADA01's machine launch limit (MachineLaunchRestriction) does not give opcuser " \
           "remote activation" in diag.message


def test_firewall_scope_without_the_client_host(tmp_path: Path) -> None:
    text = spec(**{"hosts:\n": "machine:\n  server:\n    firewall: {remote: [10.0.0.99]}\n"
                               "hosts:\n"})
    diag = only(compiled_errors(tmp_path, text), "E501", 20)
    assert "SCADA01's firewall: the rule for TCP 135 does not admit HMI01 (10.0.0.21)" in (
        diag.message)
    assert diag.message.endswith("Windows: 0x800706BA")


def test_client_firewall_without_the_server_calling_back(tmp_path: Path) -> None:
    text = spec(**{"    clients: [hmi]\n": "    clients: [hmi]\n    machine:\n      firewall: "
                                            "{remote: [10.0.9.0/24]}\n"})
    diag = only(compiled_errors(tmp_path, text), "E508", 18)
    assert "HMI01's firewall (callbacks): the rule for TCP 135 does not admit SCADA01" in (
        diag.message)


def test_authentication_level_below_packet_integrity(tmp_path: Path) -> None:
    found = compiled_errors(tmp_path, spec(**{"authentication_level: packet_integrity":
                                              "authentication_level: connect"}))
    diag = only(found, "E503", 11)
    assert "kepware's AuthenticationLevel is connect, below packet_integrity" in diag.message
    assert "event 10036/10037/10038" in diag.message


# The service account kept to the server PC: kepware calls back as an identity the HMI does
# not know, so only the anonymous fallback can let its callbacks in.
NO_AUTH = {"opcsvc": ", hosts: [SCADA01]"}


def client_machine(dcom: str, policy: str) -> dict[str, str]:
    return {"    clients: [hmi]\n": f"    clients: [hmi]\n    machine:\n      dcom: {dcom}\n"
                                    f"      security_policy: {policy}\n"}


def test_callback_without_identity_or_anonymous_fallback(tmp_path: Path) -> None:
    text = spec(**NO_AUTH, **client_machine("{access_limits: {}}",
                                            "{everyone_includes_anonymous: false}"))
    diag = only(compiled_errors(tmp_path, text), "E509", 15)
    assert "kepware on SCADA01 logs on as opcsvc, which does not exist on HMI01, and HMI01 " \
           "has no anonymous fallback" in diag.message
    assert "Windows: 0x80040202 or 0x80070005" in diag.message


def test_machine_access_limit_without_the_caller(tmp_path: Path) -> None:
    text = spec(**NO_AUTH, **client_machine(
        "{access_limits: {ANONYMOUS LOGON: [local_access]}}",
        "{everyone_includes_anonymous: false}"))
    diag = only(compiled_errors(tmp_path, text), "E506", 22)
    assert "calls back as ANONYMOUS LOGON, which HMI01's machine access limit admits locally " \
           "only" in diag.message


def test_anonymous_fallback_in_place_verifies(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(spec(**NO_AUTH), encoding="utf-8")  # the defaults give the fallback
    assert not compile_file(path).verified


def test_explain_shows_the_same_findings(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(spec(opcuser=", hosts: [HMI01]"), encoding="utf-8")
    compiled = compile_file(path, flow_errors=False)
    assert [f.code for f in compiled.verified] == ["E502"]
    found = report.lookup("0x80070005")
    assert found is not None
    text = report.explain_text(*found, compiled, str(path))
    message = compiled.verified[0].message
    assert f"error: {message[:60]}" in " ".join(text.split())
    data = report.explain_json(*found, compiled, str(path))
    assert [f["code"] for f in data["flows"]] == ["E502"]
    other = report.lookup("0x800706BA")
    assert other is not None
    assert report.explain_json(*other, compiled, str(path))["flows"] == []


def test_every_rule_names_the_windows_error() -> None:
    for rule in RULES.values():
        assert rule.windows and all(c.startswith("0x") or c.isdigit() for c in rule.windows)
        assert rule.code[0] == ("E" if rule.severity == "error" else "W")
