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
EXE = "C:\\Program Files\\Example\\opc.exe"
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
    # 1,001 single hosts no network merges: more than Windows Firewall takes in one rule
    "firewall-scope-too-long": (lambda s: role(s, "server")["firewall"].update(
        remote=[f"10.{i // 200}.{i % 200}.7" for i in range(1001)]), "E603"),
    "everyone-anonymous-on-server": (
        lambda s: role(s, "server")["security_policy"].update(everyone_includes_anonymous=True),
        "W614"),
    "classic-on-client": (
        lambda s: role(s, "client")["security_policy"].update(sharing_model="classic"), "W614"),
    "service-password-expires": (
        lambda s: s["accounts"]["users"]["opcsvc"].update(password_never_expires=False),
        "W615"),
    # An entry beyond what the host's servers' launch lists add (the guide's own step).
    "launch-limit-edit": (
        lambda s: s["accounts"]["users"].update(extra={"password": "prompt"})
        or role(s, "server")["dcom"]["launch_limits"].update(extra=["remote_activation"]),
        "W616"),
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
        assert compiled.findings == []


def test_one_finding_names_every_host_it_hits(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "plant9-domain.yaml").read_text())
    spec["machine"]["server"]["dcom"]["launch_limits"]["Everyone"] = ["local_launch"]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    (finding,) = [f for f in compile_file(path).findings if f.code == "W611"]
    assert finding.host == "UTIL-HIST, UTIL-SRV1"
    assert finding.span is not None and finding.span.line > 1


# --- W616 -------------------------------------------------------------------------------------


def w616(change: Change, tmp_path: Path) -> list[str]:
    return [f.message for f in compile_changed(change, tmp_path).findings if f.code == "W616"]


def test_w616_advice_names_the_member_of_to_add(tmp_path: Path) -> None:
    [message] = w616(CASES["launch-limit-edit"][0], tmp_path)
    assert "add `Distributed COM Users` to accounts.users.extra.member_of" in message
    assert "remove extra from machine.server.dcom.launch_limits" in message
    assert "docs/windows.md#machine-limits" in message


def test_w616_for_a_local_group_names_its_members(tmp_path: Path) -> None:
    def change(s: dict[str, Any]) -> None:
        server(s)["launch"] = {"Administrators": ["local_launch"]}  # OPC Users no longer
    [message] = w616(change, tmp_path)
    assert "a local group cannot join another one" in message
    assert "member_of of opcuser, opcsvc" in message


@pytest.mark.parametrize("change", [
    # dcomc's default launch limit (the servers' launch lists): never the user's edit
    lambda s: role(s, "server")["dcom"].pop("launch_limits"),
    # Windows' default limit already admits Administrators remotely and everyone locally
    lambda s: role(s, "server")["dcom"]["launch_limits"].update(
        {"Administrators": ["remote_launch", "remote_activation"]}),
    lambda s: s["accounts"]["users"].update(extra={"password": "prompt"})
    or role(s, "server")["dcom"]["launch_limits"].update(extra=["local_launch"]),
    # SYSTEM and other identities cannot join Distributed COM Users: the advice cannot apply
    lambda s: role(s, "server")["dcom"]["launch_limits"].update(SYSTEM=["remote_launch"]),
    # Distributed COM Users itself
    lambda s: role(s, "server")["dcom"]["launch_limits"].update(
        {"Distributed COM Users": ["remote_launch"]}),
], ids=["default", "administrators", "local-only", "system", "dcom-users"])
def test_w616_stays_silent(change: Change, tmp_path: Path) -> None:
    assert w616(change, tmp_path) == []


def test_default_launch_limit_matches_the_observed_windows_default() -> None:
    """The lint trusts only Windows' documented entries; the observed Windows 10/11 default the
    .reg starts from must grant at least those, or one of the two tables is wrong."""
    from dcomc.windows import sd
    from dcomc.windows.limits import DEFAULT_LAUNCH_LIMIT
    from dcomc_targets.regfile import DEFAULT_LIMITS

    observed = {a.sid: a.mask for a in sd.parse_sddl(DEFAULT_LIMITS["launch"]).dacl or ()}
    for sid, mask in DEFAULT_LAUNCH_LIMIT.items():
        assert observed.get(sid, 0) & mask == mask, sid


def test_lint_and_flow_verifier_judge_by_one_default_launch_limit() -> None:
    """W616 and the flow verifier (and explain, through it) read windows/limits.py: the same
    holders with the same rights, and Performance Log Users (observed, not documented) in
    neither."""
    from dcomc.plan import lint, verify
    from dcomc.windows.limits import DEFAULT_LAUNCH_LIMIT

    host = compile_file(ROOT / "examples" / "plant7-workgroup.yaml").plan.hosts[0]
    verifier = {p.sid: mask for p, mask, label in verify.limit_holders(host, "launch")
                if label.startswith("Windows default limit")}
    assert verifier == dict(DEFAULT_LAUNCH_LIMIT) == {
        "S-1-5-32-544": 0x1F, "S-1-5-32-562": 0x1F, "S-1-1-0": 0x0B}
    remote = {sid for sid, mask in DEFAULT_LAUNCH_LIMIT.items() if mask & 0x10}
    for sid, mask in [*DEFAULT_LAUNCH_LIMIT.items(), ("S-1-5-32-559", 0x0B)]:
        assert not lint._beyond_default(sid, mask), sid
        assert lint._beyond_default(sid, 0x1F) == (sid not in remote), sid


# --- E401: check and build --self-contained refuse the same -------------------------------------


def e401(args: list[str]) -> set[str]:
    from click.testing import CliRunner

    from dcomc.cli import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    return {line for line in result.output.splitlines() if line.endswith("[E401]")}


@pytest.mark.parametrize("name", ["plant7-workgroup.yaml", "plant9-domain.yaml"])
def test_check_and_build_self_contained_refuse_the_same(name: str, tmp_path: Path) -> None:
    spec = str(ROOT / "examples" / name)
    checked = e401(["check", "--self-contained", spec])
    built = e401(["build", "--self-contained", "--no-msi", "-o", str(tmp_path / "out"), spec])
    assert checked and checked == built


def test_every_e401_says_how_to_compile_it() -> None:
    lines = e401(["check", "--self-contained", str(ROOT / "examples" / "plant9-domain.yaml")])
    for line in lines:
        assert ("give `servers." in line or "give the client its `executable:`" in line), line
        assert "build without --self-contained" in line


def test_e401_for_a_domain_account_without_sid(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "plant9-domain.yaml").read_text())
    del spec["accounts"]["groups"]["PLANT9\\OPC Operators"]["sid"]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    lines = e401(["check", "--self-contained", str(path)])
    assert any("give `accounts.groups.PLANT9\\OPC Operators.sid`" in line for line in lines)


def test_e401_is_silent_without_self_contained() -> None:
    compiled = compile_file(ROOT / "examples" / "plant9-domain.yaml")
    assert not any(d.code == "E401" for d in compiled.diagnostics)
    from dcomc.plan.lint import Findings

    assert isinstance(compiled.findings, Findings)
    assert {f.code for f in compiled.findings.pending} == {"E401"}


@pytest.mark.parametrize("name", ["plant7-workgroup.yaml", "plant9-domain.yaml"])
def test_the_examples_pass_strict(name: str, tmp_path: Path) -> None:
    """--strict is warnings-as-errors: the shipped examples have no warning, in check and build
    alike (what only the PC can resolve is --self-contained's business, not a warning)."""
    from click.testing import CliRunner

    from dcomc.cli import main

    spec = str(ROOT / "examples" / name)
    for args in (["check", "--strict", spec],
                 ["build", "--strict", "--no-msi", "-o", str(tmp_path / "out"), spec]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output


# --- issue 12 items 5, 7: RunAs and the RPC port range (lints W621-W623, checks E231, E232, E320)


def opc(name: str, **keys: Any) -> dict[str, Any]:
    """An OPC server entry with a ProgID and an executable, plus `keys`."""
    return {"progid": f"Example.{name}OPC.1", "executable": EXE, **keys}


def add_panel(run_as: str) -> Change:
    """An interactive server `panel` on SCADA01 with the given run_as (HMI01/02 call it)."""
    def change(s: dict[str, Any]) -> None:
        s["servers"]["panel"] = opc("Panel", process_mode="interactive", run_as=run_as,
                                    launch={"OPC Users": ["local_launch"]})
        s["hosts"]["SCADA01"]["servers"].append("panel")
    return change


def findings(change: Change, tmp_path: Path, code: str) -> list[Any]:
    return [f for f in compile_changed(change, tmp_path).findings if f.code == code]


def errors(change: Change, tmp_path: Path) -> list[Any]:
    with pytest.raises(CompileError) as info:
        compile_changed(change, tmp_path)
    return list(info.value.diagnostics)


def test_w621_launching_user_with_remote_clients(tmp_path: Path) -> None:
    [finding] = findings(add_panel("launching_user"), tmp_path, "W621")
    assert finding.host == "SCADA01"
    assert "panel" in finding.message and "for each client account" in finding.message
    assert "run_as: interactive_user" in finding.message
    assert finding.span is not None  # at the run_as line


def test_w621_silent_for_the_interactive_user_and_for_local_clients_only(tmp_path: Path) -> None:
    assert findings(add_panel("interactive_user"), tmp_path, "W621") == []

    def local_only(s: dict[str, Any]) -> None:
        add_panel("launching_user")(s)
        for name in ("HMI01", "HMI02"):
            s["hosts"].pop(name)
        s["hosts"]["SCADA01"]["clients"] = ["hmi"]
    assert findings(local_only, tmp_path, "W621") == []


def test_w622_run_as_on_a_service(tmp_path: Path) -> None:
    [finding] = findings(lambda s: server(s).update(run_as="interactive_user"), tmp_path, "W622")
    assert "kepware" in finding.message and "ignores RunAs" in finding.message
    assert findings(add_panel("interactive_user"), tmp_path, "W622") == []


@pytest.mark.parametrize(("ports", "size", "fires"), [
    ("5000-5050", 51, True), ("5000-5100", 101, True), ("5000-5101", 102, False)])
def test_w623_range_smaller_than_100_plus_processes(ports: str, size: int, fires: bool,
                                                    tmp_path: Path) -> None:
    # SCADA01 runs kepware and OPCEnum: 100 + 2 ports.
    found = findings(lambda s: role(s, "server").update(rpc_ports=ports), tmp_path, "W623")
    assert bool(found) is fires
    if found:
        assert found[0].host == "SCADA01"
        assert f"has {size} ports" in found[0].message and "at least 102" in found[0].message


def test_e231_run_as_account_is_refused_with_why(tmp_path: Path) -> None:
    [diag] = [d for d in errors(add_panel("opcuser"), tmp_path) if d.code == "E231"]
    assert "LSA secret" in diag.message and "interactive_user or launching_user" in diag.message
    assert diag.span is not None and diag.span.line > 1
    [typo] = [d for d in errors(add_panel("interactive"), tmp_path) if d.code == "E231"]
    assert "did you mean 'interactive_user'" in typo.message


@pytest.mark.parametrize("ports", ["500-600", "6000-5000", "5000-70000", "5000", "a-b"])
def test_e232_bad_port_range(ports: str, tmp_path: Path) -> None:
    diags = errors(lambda s: role(s, "client").update(rpc_ports=ports), tmp_path)
    [diag] = [d for d in diags if d.code == "E232"]
    assert f"invalid rpc_ports '{ports}'" in diag.message and "1024 <= lo <= hi <= 65535" in (
        diag.message)


def test_e320_open_rpc_ports_without_a_range(tmp_path: Path) -> None:
    found = [d for d in errors(lambda s: role(s, "client")["firewall"].update(open="rpc_ports"),
                               tmp_path) if d.code == "E320"]
    assert sorted(d.message.split("'")[1] for d in found) == ["HMI01", "HMI02"]
    assert "add `rpc_ports: 5000-5100` to machine.client" in found[0].message
    # A host's own range satisfies it.
    def with_range(s: dict[str, Any]) -> None:
        role(s, "client")["firewall"]["open"] = "rpc_ports"
        for name in ("HMI01", "HMI02"):
            s["hosts"][name]["machine"] = {"rpc_ports": "5000-5200"}
    compile_changed(with_range, tmp_path)


def test_run_as_appid_resolved_on_the_pc_is_pending_for_self_contained(tmp_path: Path) -> None:
    compiled = compile_changed(add_panel("interactive_user"), tmp_path)
    assert any(f.code == "E401" and "appid_run_as:panel" in f.message
               for f in compiled.findings.pending)


@pytest.mark.parametrize(("remote", "refused"), [
    ([f"10.{i // 200}.{i % 200}.7" for i in range(999)], False),  # the limit itself
    ([f"10.{i // 200}.{i % 200}.7" for i in range(1001)], True),
])
def test_firewall_scope_limit_counts_merged_entries(remote: list[str], refused: bool,
                                                    tmp_path: Path) -> None:
    """Counted as the artifacts write the list (a `site` scope merged into networks, a
    written list as written). The site's clients (10.7.3.0/24) are in every list, so that the
    flows still pass the verifier."""
    scope = [*remote, "10.7.3.0/24"]
    change: Change = lambda s: role(s, "server")["firewall"].update(remote=scope)  # noqa: E731
    if not refused:
        compiled = compile_changed(change, tmp_path)
        assert "E603" not in {f.code for f in compiled.findings}
        return
    with pytest.raises(CompileError) as info:
        compile_changed(change, tmp_path)
    found = [d for d in info.value.diagnostics if d.code == "E603"]
    assert found and "1,002 remote addresses" in found[0].message
    assert found[0].span is not None and found[0].span.line > 1  # the rule's place in the spec
