"""`dcomc explain`: the knowledge base, the accepted number forms, and causes pointed at a plan."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from pydantic import ValidationError

from dcomc.cli import main
from dcomc.explain import knowledge
from dcomc.explain import report as explain

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
PLANT9 = ROOT / "examples" / "plant9-domain.yaml"
BASE: dict[str, Any] = yaml.safe_load(PLANT7.read_text(encoding="utf-8"))

# Every accepted spelling of each known code.
FORMS: dict[str, list[str]] = {
    "0x80070005": ["0x80070005", "0X80070005", "80070005", "HR=80070005", "2147942405",
                   "-2147024891"],
    "0x800706BA": ["0x800706BA", "0x800706ba", "800706BA", "2147944122", "-2147023174"],
    "0x80040202": ["0x80040202", "80040202", "2147746306", "-2147220990"],
    "10036": ["10036", "event 10036"],
    "10037": ["10037"],
    "10038": ["10038"],
    "0x80080005": ["0x80080005", "80080005", "HR=80080005", "2148007941", "-2146959355"],
    "0x80040154": ["0x80040154", "80040154", "2147746132", "-2147221164"],
    "0x8001011C": ["0x8001011C", "0x8001011c", "2147549468", "-2147417828"],
    "10016": ["10016", "event 10016"],
}
# Where the statements of the knowledge base may come from (see the header of explain.yaml).
# Only what ships (the guide, docs/windows.md, dcomc's README) or is public (a URL, a KB).
SOURCE_TAGS = ("guide §", "docs/windows.md#", "https://", "KB", "dcomc", "[inference]")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def explain_json(*args: str | Path) -> Any:
    result = run("explain", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def modified(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    spec = copy.deepcopy(BASE)
    change(spec)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# --- the knowledge base ----------------------------------------------------------------------


def test_knowledge_base_covers_exactly_the_sourced_codes() -> None:
    kb = knowledge.knowledge()
    assert list(kb.codes) == list(FORMS)
    for entry in kb.codes.values():
        assert entry.causes


def test_every_statement_names_its_source() -> None:
    for key, entry in knowledge.knowledge().codes.items():
        sources = [entry.name_source, entry.meaning_source,
                   *(s.source for s in entry.seen_as),
                   *(c.source for c in entry.causes), *(c.check_source for c in entry.causes)]
        for source in sources:
            assert any(tag in source for tag in SOURCE_TAGS), (key, source)
        for cause in entry.causes:
            assert cause.guide is None or cause.guide.startswith("§"), (key, cause.title)


def test_every_name_has_a_public_source() -> None:
    """A code's name is backed by a Microsoft page or KB a user can open (not only by
    docs/windows.md, which restates it)."""
    for key, entry in knowledge.knowledge().codes.items():
        if key == "0x80070005" or key.startswith("1003"):  # KB5004442 via docs/windows.md
            assert "docs/windows.md#kb5004442" in entry.name_source, key
            continue
        assert "https://" in entry.name_source or "KB" in entry.name_source, key


@pytest.mark.parametrize(("broken", "message"), [
    ({"kind": "appid_acl", "what": "x"}, "unknown resource kind 'appid_acl'"),
    ({"kind": "firewall_rule", "where": {"port": "135"}, "what": "x"},
     "firewall_rule has no field 'port'"),
    ({"analysis": "auth_level", "kind": "reboot", "what": "x"}, "exactly one of"),
    ({"analysis": "auth_level", "where": {"name": "x"}, "what": "x"}, "`where` goes with"),
    ({"analysis": "guesswork", "what": "x"}, "analysis"),
])
def test_knowledge_base_model_refuses_bad_look_at(broken: dict[str, Any], message: str) -> None:
    raw = yaml.safe_load(
        (ROOT / "compiler" / "dcomc" / "data" / "explain.yaml").read_text(encoding="utf-8"))
    raw["codes"]["0x80070005"]["causes"][0]["look_at"] = [broken]
    with pytest.raises(ValidationError) as info:
        knowledge.KnowledgeBase.model_validate(raw)
    assert message in str(info.value)


def test_knowledge_base_model_refuses_non_canonical_keys() -> None:
    raw = yaml.safe_load(
        (ROOT / "compiler" / "dcomc" / "data" / "explain.yaml").read_text(encoding="utf-8"))
    raw["codes"]["80070005"] = raw["codes"].pop("0x80070005")
    with pytest.raises(ValidationError, match="0x and 8 upper-case hex digits"):
        knowledge.KnowledgeBase.model_validate(raw)


# --- number forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key", "kind", "value"), [
    ("0x80070005", "0x80070005", "hresult", 0x80070005),
    ("80070005", "0x80070005", "hresult", 0x80070005),  # as Windows prints HR=80070005
    ("2147942405", "0x80070005", "hresult", 0x80070005),
    ("-2147024891", "0x80070005", "hresult", 0x80070005),
    (" hr=800706ba ", "0x800706BA", "hresult", 0x800706BA),
    ("10036", "10036", "event", 10036),
    ("Event 10038", "10038", "event", 10038),
    ("-1", "0xFFFFFFFF", "hresult", 0xFFFFFFFF),
])
def test_parse_code(text: str, key: str, kind: str, value: int) -> None:
    code = explain.parse_code(text)
    assert code == explain.Code(key, kind, value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "hello", "0x", "0x1FFFFFFFF", "-2147483649",
                                  "4294967296", "8007000G"])
def test_parse_code_refuses(text: str) -> None:
    assert explain.parse_code(text) is None


@pytest.mark.parametrize(("key", "text"),
                         [(key, text) for key, texts in FORMS.items() for text in texts])
def test_explain_every_code_in_every_form(key: str, text: str) -> None:
    result = run("explain", text)
    assert result.exit_code == 0, result.output
    entry = knowledge.knowledge().codes[key]
    assert result.stdout.startswith(f"{key}  {entry.name}\n")
    assert "Likely causes, most likely first:" in result.stdout
    for rank, cause in enumerate(entry.causes, 1):
        assert f"\n{rank}. {cause.title}" in result.stdout
    data = explain_json(text)
    assert data["code"] == key and data["name"] == entry.name
    assert [c["title"] for c in data["causes"]] == [c.title for c in entry.causes]
    assert all("findings" not in c for c in data["causes"])  # no spec, no findings


def test_hresult_forms_are_shown() -> None:
    data = explain_json("-2147024891")
    assert data["forms"] == {"hex": "0x80070005", "unsigned": 2147942405,
                             "signed": -2147024891}
    assert "  also written: 80070005, 2147942405, -2147024891" in run(
        "explain", "0x80070005").stdout
    assert explain_json("10037")["forms"] == {"event": 10037}


def test_access_denied_names_the_guide_and_kb5004442() -> None:
    data = explain_json("0x80070005")
    titles = [c["title"] for c in data["causes"]]
    assert titles[0].startswith("The client's account is not in the server application's")
    guides = {c["guide"] for c in data["causes"]}
    assert {"§4.1 steps 10-28", "§4.2 steps 9-21", "§7.1", "§2.1", "§4.3"} <= guides
    kinds = {look.get("kind") for c in data["causes"] for look in c["look_at"]}
    assert {"appid_permission", "machine_limit_addition", "security_option"} <= kinds
    assert any("KB5004442" in t for t in titles)


@pytest.mark.parametrize("text", ["0x800706BE", "0x80070776", "10028",
                                  "hello", "-9999999999", "5"])
def test_unknown_code_exits_2_with_the_known_codes(text: str) -> None:
    result = run("explain", text)
    assert result.exit_code == 2
    assert f"unknown code {text!r}; known codes:" in result.stderr
    for known in ("0x80070005 (E_ACCESSDENIED)", "0x800706BA (RPC_S_SERVER_UNAVAILABLE)",
                  "0x80040202 (CONNECT_E_CANNOTCONNECT)", "10036 (DCOM event, server side)",
                  "10037", "10038"):
        assert known in result.stderr


# --- with a spec -----------------------------------------------------------------------------


def findings_of(data: dict[str, Any], rank: int) -> list[dict[str, Any]]:
    return data["causes"][rank - 1]["findings"]  # type: ignore[no-any-return]


def test_access_denied_points_at_plant7_appid_permissions() -> None:
    data = explain_json("0x80070005", "--spec", PLANT7)
    assert data["spec"] == str(PLANT7)
    found = findings_of(data, 1)
    perms = {f["resource"]: f for f in found if f["status"] == "info"}
    assert set(perms) == {"appid_permission:kepware/access", "appid_permission:kepware/launch",
                          "appid_permission:opcenum/access", "appid_permission:opcenum/launch"}
    assert {f["host"] for f in perms.values()} == {"SCADA01"}
    launch = perms["appid_permission:kepware/launch"]["data"]
    assert launch["which"] == "launch"
    assert [a["principal"]["name"] for a in launch["aces"]] == ["OPC Users"]
    assert "LaunchPermission += OPC Users" in perms["appid_permission:kepware/launch"]["value"]
    # each client host's run_as user, in each of those ACLs, via the OPC Users group
    identity = [f for f in found if f["data"] and "client_host" in f["data"]]
    assert {(f["data"]["client_host"], f["resource"]) for f in identity} == {
        (h, r) for h in ("HMI01", "HMI02") for r in perms}
    for f in identity:
        assert f["status"] == "ok"
        assert f["data"]["run_as"] == "opcuser" and f["data"]["granted"] is True
        assert f["data"]["via"].startswith("via OPC Users (group_member:OPC Users/opcuser")
        assert ("remote_access" in f["data"]["rights"]) or (
            "remote_activation" in f["data"]["rights"])

    text = run("explain", "0x80070005", "--spec", PLANT7).stdout
    assert f"   In {PLANT7}:" in text
    assert "     SCADA01 appid_permission:kepware/launch: kepware AppID resolved on the PC" in text
    flat = " ".join(text.split())  # findings wrap at 100 columns
    assert ("ok SCADA01 appid_permission:kepware/access: HMI01 client hmi runs as opcuser: "
            "access on kepware: granted via OPC Users") in flat


def test_access_denied_other_causes_on_plant7() -> None:
    data = explain_json("0x80070005", "--spec", PLANT7)
    limit = findings_of(data, 2)
    assert {f["resource"] for f in limit} == {"machine_limit_addition:access/S-1-5-7",
                                             "machine_limit_addition:launch/OPC Users"}
    checked = [f for f in limit if f["status"] == "ok"]
    assert {f["data"]["client_host"] for f in checked} == {"HMI01", "HMI02"}
    (force_guest,) = findings_of(data, 3)
    assert (force_guest["host"], force_guest["resource"]) == ("SCADA01",
                                                              "security_option:ForceGuest")
    assert force_guest["data"]["value"] == 0
    accounts = findings_of(data, 4)
    assert {(f["host"], f["resource"]) for f in accounts if f["status"] == "ok"} == {
        ("SCADA01", "local_user:opcuser"), ("HMI01", "local_user:opcuser"),
        ("HMI02", "local_user:opcuser"), ("SCADA01", "local_user:opcsvc"),
        ("HMI01", "local_user:opcsvc"), ("HMI02", "local_user:opcsvc")}
    levels = {(f["host"], f["resource"]): f["status"] for f in findings_of(data, 5)}
    assert levels[("SCADA01", "appid_auth_level:opcenum")] == "ok"
    assert levels[("SCADA01", "appid_auth_level:kepware")] == "info"  # default: machine level
    assert levels[("HMI01", "machine_dcom_value:LegacyAuthenticationLevel")] == "ok"


def test_client_outside_the_acls_is_a_problem(tmp_path: Path) -> None:
    def viewer(spec: dict[str, Any]) -> None:
        spec["accounts"]["users"]["opcview"] = {"description": "read-only viewer",
                                                "password": "prompt"}
        spec["clients"]["viewer"] = {"executable": "C:\\Viewer\\viewer.exe", "run_as": "opcview"}
        spec["hosts"]["HMI02"]["clients"] = ["viewer"]

    spec = modified(tmp_path, viewer)
    data = explain_json("0x80070005", "--spec", spec)
    identity = [f for f in findings_of(data, 1) if f["data"] and "client_host" in f["data"]]
    hmi02 = [f for f in identity if f["data"]["client_host"] == "HMI02"]
    assert len(hmi02) == 4
    for f in hmi02:
        assert f["status"] == "problem" and f["data"]["granted"] is False
        right = "activation" if f["data"]["which"] == "launch" else "access"
        assert f["value"].endswith("runs as opcview: " + f"{f['data']['which']} on "
                                   f"{f['data']['app']}: not granted (remote {right})")
    assert all(f["status"] == "ok" for f in identity if f["data"]["client_host"] == "HMI01")
    text = " ".join(run("explain", "0x80070005", "--spec", spec).stdout.split())
    assert "!! SCADA01 appid_permission:kepware/launch: HMI02 client viewer runs as opcview" in text


def test_explain_judges_acls_as_the_flow_verifier_does(tmp_path: Path) -> None:
    """One judgement (plan/verify.py `admission`): an ACE naming the client's account with
    local access only does not hide the group's remote access (explain took the first holder
    naming the account, and called it a problem); an account named with local rights only is
    a problem for both, naming that ACE."""
    def local_only(spec: dict[str, Any]) -> None:
        spec["servers"]["kepware"]["access"]["opcuser"] = ["local_access"]

    spec = modified(tmp_path, local_only)
    assert run("check", spec).exit_code == 0  # the verifier: remote access via OPC Users
    identity = [f for f in findings_of(explain_json("0x80070005", "--spec", spec), 1)
                if f["data"] and "client_host" in f["data"]]
    access = [f for f in identity if f["resource"] == "appid_permission:kepware/access"]
    assert len(access) == 2 and all(f["status"] == "ok" for f in access)
    assert all(f["data"]["via"].startswith("via OPC Users") for f in access)

    def local_only_alone(spec: dict[str, Any]) -> None:
        spec["servers"]["kepware"]["access"] = {"opcuser": ["local_access"]}

    spec = modified(tmp_path, local_only_alone)
    checked = run("check", "--format", "json", spec)
    codes = {d["code"] for d in json.loads(checked.stdout)["diagnostics"]}
    assert "E507" in codes or "W517" in codes
    identity = [f for f in findings_of(explain_json("0x80070005", "--spec", spec), 1)
                if f["data"] and "client_host" in f["data"]]
    access = [f for f in identity if f["resource"] == "appid_permission:kepware/access"]
    assert access and all(f["status"] == "problem" for f in access)
    assert all("named (ACE), without the right needed (remote access)" in f["value"]
               for f in access)


def test_domain_group_membership_is_unknown() -> None:
    data = explain_json("0x80070005", "--spec", PLANT9)
    identity = [f for f in findings_of(data, 1) if f["data"] and "client_host" in f["data"]]
    assert identity
    assert {f["status"] for f in identity} == {"unknown"}
    assert all(f["data"]["granted"] is None for f in identity)
    (domain,) = findings_of(data, 4)
    assert domain["host"] == "*" and "domain site" in domain["value"]


def test_firewall_scope_flags_a_peer_outside_the_rule(tmp_path: Path) -> None:
    def narrow(spec: dict[str, Any]) -> None:
        spec["hosts"]["HMI02"]["machine"] = {"firewall": {"remote": ["10.7.9.0/24"]}}

    data = explain_json("0x800706BA", "--spec", modified(tmp_path, narrow))
    server_side = findings_of(data, 1)
    assert {f["host"] for f in server_side} == {"SCADA01"}
    assert {f["status"] for f in server_side} == {"ok"}
    client_side = {(f["host"], f["resource"]): f for f in findings_of(data, 2)}
    bad = client_side[("HMI02", "firewall_rule:dcomc-plant7-line3-rpc-epmap")]
    assert bad["status"] == "problem"
    assert bad["value"].endswith("does not admit SCADA01 (10.7.3.10)")
    assert client_side[("HMI01", "firewall_rule:dcomc-plant7-line3-rpc-epmap")]["status"] == "ok"


def test_callback_identity_on_plant7() -> None:
    data = explain_json("0x80040202", "--spec", PLANT7)
    identity = findings_of(data, 2)
    logon = [f for f in identity if f["status"] == "info"]
    assert [f["resource"] for f in logon] == ["service_logon:KEPServerEXV6"]
    on_clients = {f["host"]: f for f in identity if f["status"] == "ok"}
    assert set(on_clients) == {"HMI01", "HMI02"}
    assert on_clients["HMI01"]["resource"] == "local_user:opcsvc"
    # the callback identity exists on the clients, but is an administrator only where its
    # service runs (issue 12: the flows place Administrators)
    assert on_clients["HMI01"]["value"].endswith("exists on HMI01")
    assert "administrator" not in on_clients["HMI01"]["value"]


def test_events_point_at_levels_and_addresses() -> None:
    data = explain_json("10036", "--spec", PLANT7)
    addresses = findings_of(data, 1)
    assert {(f["host"], f["value"]) for f in addresses} == {
        ("HMI01", "10.7.3.21, roles: client"), ("HMI02", "10.7.3.22, roles: client"),
        ("SCADA01", "10.7.3.10, roles: server")}
    data = explain_json("10038", "--spec", PLANT7)
    legacy = [f for f in findings_of(data, 1)
              if f["resource"] == "machine_dcom_value:LegacyAuthenticationLevel"]
    assert {f["host"] for f in legacy} == {"HMI01", "HMI02", "SCADA01"}
    assert {f["status"] for f in legacy} == {"ok"}


def test_explain_with_a_broken_spec_exits_2(tmp_path: Path) -> None:
    spec = modified(tmp_path, lambda s: s["hosts"]["HMI01"].update(clients=["nope"]))
    result = run("explain", "0x80070005", "--spec", spec)
    assert result.exit_code == 2


def test_every_analysis_the_knowledge_base_may_name_exists() -> None:
    from typing import get_args

    from dcomc.explain.analyses import ANALYSES

    assert set(get_args(knowledge.Analysis)) == set(ANALYSES)


# --- the codes of issue 13 (10016, 0x80080005, 0x80040154, 0x8001011C) ----------------------


def resources_of(data: dict[str, Any], rank: int) -> set[tuple[str, str]]:
    return {(f["host"], f["resource"]) for f in findings_of(data, rank)}


def test_server_exec_failure_points_at_the_service_logon() -> None:
    data = explain_json("0x80080005", "--spec", PLANT7)
    assert data["name"] == "CO_E_SERVER_EXEC_FAILURE"
    assert resources_of(data, 1) >= {("SCADA01", "service_logon:KEPServerEXV6"),
                                     ("SCADA01", "user_right:SeServiceLogonRight/opcsvc")}
    assert all(host == "SCADA01" for host, _ in resources_of(data, 1))  # servers only
    assert {r for _, r in resources_of(data, 2)} == {
        "firewall_rule:dcomc-plant7-line3-opcenum",
        "firewall_rule:dcomc-plant7-line3-server-kepware"}


def test_class_not_registered_points_at_the_server_applications() -> None:
    data = explain_json("0x80040154", "--spec", PLANT7)
    assert data["name"] == "REGDB_E_CLASSNOTREG"
    assert resources_of(data, 1) == {("SCADA01", "appid_run_location:kepware"),
                                     ("SCADA01", "appid_run_location:opcenum")}
    assert resources_of(data, 2) == {("SCADA01", "appid_permission:opcenum/access"),
                                     ("SCADA01", "appid_permission:opcenum/launch")}


def test_remote_disabled_points_at_enable_dcom_on_every_host() -> None:
    data = explain_json("0x8001011C", "--spec", PLANT7)
    assert data["name"] == "RPC_E_REMOTE_DISABLED"
    assert resources_of(data, 1) == {(h, "machine_dcom_value:EnableDCOM")
                                     for h in ("SCADA01", "HMI01", "HMI02")}
    # Microsoft documents no cause: the entry must say the cause is dcomc's inference.
    assert "[inference]" in data["causes"][0]["source"]


def test_event_10016_points_at_launch_acls_and_limits() -> None:
    data = explain_json("10016", "--spec", PLANT7)
    assert data["forms"] == {"event": 10016}
    assert resources_of(data, 1) >= {("SCADA01", "appid_permission:kepware/launch"),
                                     ("SCADA01", "appid_permission:opcenum/launch")}
    assert {r for _, r in resources_of(data, 2) if r and r.startswith("machine_limit")} == {
        "machine_limit_addition:launch/OPC Users"}
    assert [c["guide"] for c in data["causes"]] == ["§4.1 steps 10-18", "§4.2 steps 13-21", None]
