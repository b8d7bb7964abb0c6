"""`dcomc diff` (spec/bundle against spec/bundle) and `dcomc drift` (a PC's report against
its plan), through the command line."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from dcomc import __version__
from dcomc.cli import main
from dcomc.pipeline import Compiled, compile_file

ROOT = Path(__file__).resolve().parents[2]
PLANT7 = ROOT / "examples" / "plant7-workgroup.yaml"
PLANT9 = ROOT / "examples" / "plant9-domain.yaml"
BASE: dict[str, Any] = yaml.safe_load(PLANT7.read_text(encoding="utf-8"))
Change = Callable[[dict[str, Any]], None]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def modified(tmp_path: Path, change: Change, name: str = "modified.yaml") -> Path:
    spec = copy.deepcopy(BASE)
    change(spec)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def build(spec: Path, out: Path) -> Path:
    result = run("build", spec, "-o", out, "--no-msi")
    assert result.exit_code == 0, result.output
    return out


def add_host_access_firewall(spec: dict[str, Any]) -> None:
    """The three edits of the main case: a host, a server's access rights, a firewall scope."""
    spec["hosts"]["HMI03"] = {"address": "10.7.3.23", "clients": ["hmi"]}
    spec["servers"]["kepware"]["access"] = {"OPC Users": ["remote_access"]}
    spec["machine"]["server"]["firewall"]["remote"] = ["10.7.3.0/24"]


def changes(data: dict[str, Any]) -> dict[str, Any]:
    """host → its change; for a changed host, resource id → (change, changed fields)."""
    out: dict[str, Any] = {}
    for host in data["hosts"]:
        if host["change"] != "changed":
            out[host["name"]] = host["change"]
            continue
        out[host["name"]] = {
            r["id"]: (r["change"], tuple(f["field"] for f in r.get("fields", [])))
            for r in host["resources"]}
        if host["attributes"]:
            out[host["name"]]["(host)"] = tuple(a["field"] for a in host["attributes"])
    return out


# --- diff ------------------------------------------------------------------------------------


def test_spec_against_itself_is_identical() -> None:
    result = run("diff", PLANT7, PLANT7)
    assert result.exit_code == 0, result.output
    assert "No differences: 3 hosts, 46 resources identical." in result.stdout
    data = as_json(run("diff", PLANT7, PLANT7, "--json"))
    assert data["identical"] is True
    assert data["hosts"] == [] and data["site"] is None
    assert data["summary"] == dict.fromkeys(data["summary"], 0)


def test_a_renamed_copy_of_the_spec_is_identical(tmp_path: Path) -> None:
    """Who generated what (spec name, dcomc version) is shown, never a difference."""
    copy_ = tmp_path / "site-copy.yml"
    copy_.write_bytes(PLANT7.read_bytes())
    result = run("diff", PLANT7, copy_)
    assert result.exit_code == 0, result.output
    assert "site-copy.yml (spec" in result.stdout


def test_modified_copy_reports_exactly_the_changes(tmp_path: Path) -> None:
    new = modified(tmp_path, add_host_access_firewall)
    result = run("diff", PLANT7, new, "--json")
    assert result.exit_code == 1, result.output
    data = as_json(result)
    assert data["identical"] is False
    fw = "firewall_rule:dcomc-plant7-line3-"
    # The clients' rules admit the servers that call them back (`remote: site` follows the
    # flows), which HMI03 does not change; OPCEnum's access ACL is the union of the host's
    # servers' access lists.
    assert changes(data) == {
        "HMI03": "added",
        "SCADA01": {"appid_permission:kepware/access": ("changed", ("Aces",)),
                    "appid_permission:opcenum/access": ("changed", ("Aces",)),
                    f"{fw}opcenum": ("changed", ("Remote",)),
                    f"{fw}rpc-epmap": ("changed", ("Remote",)),
                    f"{fw}server-kepware": ("changed", ("Remote",))},
    }
    hosts = {h["name"]: h for h in data["hosts"]}
    hmi01_ids = [r.id for r in compile_file(PLANT7).plan.host("HMI01").resources]
    assert hosts["HMI03"]["resources"] == hmi01_ids
    assert hosts["HMI03"]["address"] == "10.7.3.23"
    assert hosts["HMI03"]["roles"] == ["client"]
    scada = {r["id"]: r for r in hosts["SCADA01"]["resources"]}
    (aces,) = scada["appid_permission:kepware/access"]["fields"]
    assert [a["Mask"] for a in aces["old"]] == [0x7]  # EXECUTE + local + remote access
    assert [a["Mask"] for a in aces["new"]] == [0x5]  # EXECUTE + remote access
    assert aces["old"][0]["Principal"]["Name"] == aces["new"][0]["Principal"]["Name"]
    (remote,) = scada[f"{fw}rpc-epmap"]["fields"]
    # before: the server's callers (the HMIs), not the whole site
    assert remote == {"field": "Remote", "old": ["10.7.3.21", "10.7.3.22"],
                      "new": ["10.7.3.0/24"]}
    assert data["summary"] == {"hosts_added": 1, "hosts_removed": 0, "hosts_changed": 1,
                               "resources_added": 10, "resources_removed": 0,
                               "resources_changed": 5}

    text = run("diff", PLANT7, new)
    assert text.exit_code == 1
    out = text.stdout
    assert "+ host HMI03 (10.7.3.23), roles: client; 10 resources" in out
    assert "    + local_user:opcuser" in out
    assert ("~ Aces: [OPC Users: local_access, remote_access] -> [OPC Users: remote_access]"
            in out)
    assert '~ Remote: ["10.7.3.21", "10.7.3.22"] -> ["10.7.3.0/24"]' in out
    assert "Hosts: 1 to add, 0 to remove, 1 to change. Resources: 10 to add, 0 to remove, " \
           "5 to change." in out


def test_one_change_is_the_only_difference(tmp_path: Path) -> None:
    def server_scope(spec: dict[str, Any]) -> None:
        spec["machine"]["server"]["firewall"]["remote"] = ["10.7.3.0/24"]

    data = as_json(run("diff", PLANT7, modified(tmp_path, server_scope), "--json"))
    fw = "firewall_rule:dcomc-plant7-line3-"
    assert changes(data) == {"SCADA01": {f"{fw}opcenum": ("changed", ("Remote",)),
                                         f"{fw}rpc-epmap": ("changed", ("Remote",)),
                                         f"{fw}server-kepware": ("changed", ("Remote",))}}


def test_removed_host_and_changed_address(tmp_path: Path) -> None:
    def edit(spec: dict[str, Any]) -> None:
        del spec["hosts"]["HMI02"]
        spec["hosts"]["HMI01"]["address"] = "10.7.3.30"

    new = modified(tmp_path, edit)
    data = as_json(run("diff", PLANT7, new, "--json"))
    got = changes(data)
    assert got["HMI02"] == "removed"
    assert got["HMI01"]["(host)"] == ("Address",)
    hmi01 = next(h for h in data["hosts"] if h["name"] == "HMI01")
    assert hmi01["attributes"] == [{"field": "Address", "old": "10.7.3.21", "new": "10.7.3.30"}]
    text = run("diff", PLANT7, new).stdout
    assert "- host HMI02 (10.7.3.22), roles: client; 10 resources" in text
    assert '~ Address: "10.7.3.21" -> "10.7.3.30"' in text
    # the reverse diff adds what this one removes
    back = changes(as_json(run("diff", new, PLANT7, "--json")))
    assert back["HMI02"] == "added"


def test_added_resource_lists_its_fields(tmp_path: Path) -> None:
    def discovery(spec: dict[str, Any]) -> None:
        spec["machine"]["client"]["network_discovery"] = True

    text = run("diff", PLANT7, modified(tmp_path, discovery)).stdout
    assert "    + firewall_rule_group:@FirewallAPI.dll,-32752" in text
    assert '        Group = "@FirewallAPI.dll,-32752"' in text
    assert '        Profiles = ["domain", "private"]' in text


def test_spec_against_its_own_bundle_is_identical(tmp_path: Path) -> None:
    out = build(PLANT7, tmp_path / "bundle")
    for old, new in ((PLANT7, out), (out, PLANT7), (PLANT7, out / "manifest.json")):
        result = run("diff", old, new)
        assert result.exit_code == 0, result.output
        assert "No differences: 3 hosts, 46 resources identical." in result.stdout
    data = as_json(run("diff", PLANT7, out, "--json"))
    assert data["old"]["kind"] == "spec" and data["new"]["kind"] == "bundle"
    assert data["old"]["spec_sha256"] == data["new"]["spec_sha256"]
    assert data["new"]["generator"] == f"dcomc {__version__}"


def test_plant9_against_its_bundle_is_identical(tmp_path: Path) -> None:
    out = build(PLANT9, tmp_path / "bundle9")
    result = run("diff", PLANT9, out)
    assert result.exit_code == 0, result.output


def test_bundle_against_bundle(tmp_path: Path) -> None:
    new_spec = modified(tmp_path, add_host_access_firewall)
    a = build(PLANT7, tmp_path / "a")
    a2 = build(PLANT7, tmp_path / "a2")
    b = build(new_spec, tmp_path / "b")
    assert run("diff", a, a2).exit_code == 0
    bundles = run("diff", a, b, "--json")
    assert bundles.exit_code == 1
    specs = as_json(run("diff", PLANT7, new_spec, "--json"))
    # the same plan differences, whichever form each side comes in
    assert as_json(bundles)["hosts"] == specs["hosts"]
    assert as_json(run("diff", PLANT7, b, "--json"))["hosts"] == specs["hosts"]
    assert as_json(run("diff", a, new_spec, "--json"))["hosts"] == specs["hosts"]


def test_a_data_file_with_the_other_sides_hash_is_not_read(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    """A bundle's data file whose sha256 (its manifest's, the file checked) is that of the
    other side's (the file a build of the spec would write, or the other bundle's) is the
    same plan: it is not read (issue 18: 1,000 hosts, 1 s of 2.5); of two bundles alike, one
    is read (for the resources' count). An edited data file is read and compared, whatever
    its manifest says."""
    from dcomc.readback import compare

    reads: list[str] = []
    read_psd1 = compare._read_psd1

    def counting(path: Path, folder: Path) -> dict[str, Any]:
        reads.append(path.name)
        return read_psd1(path, folder)

    monkeypatch.setattr(compare, "_read_psd1", counting)
    out = build(PLANT7, tmp_path / "bundle")
    assert "No differences: 3 hosts, 46 resources identical." in run("diff", PLANT7, out).stdout
    assert reads == []
    again = build(PLANT7, tmp_path / "again")
    assert "No differences: 3 hosts, 46 resources identical." in run("diff", out, again).stdout
    assert sorted(reads) == ["HMI01.psd1", "HMI02.psd1", "SCADA01.psd1"]  # one side: counted
    psd1 = out / "HMI01" / "powershell" / "HMI01.psd1"
    psd1.write_bytes(psd1.read_bytes().replace(b"10.7.3.21", b"10.7.3.99"))
    reads.clear()
    data = as_json(run("diff", PLANT7, out, "--json"))
    assert reads == ["HMI01.psd1"]
    assert data["new"]["tampered"] == [{"path": "HMI01/powershell/HMI01.psd1",
                                        "problem": "edited"}]
    assert [h["name"] for h in data["hosts"]] == ["HMI01"]


def test_hand_edits_to_a_bundle_are_differences(tmp_path: Path) -> None:
    """The .psd1 is compared by content; every other artifact by its manifest hash, so a .reg
    edited, a file removed or one added after the build is reported, not missed."""
    out = build(PLANT7, tmp_path / "bundle")
    reg = out / "SCADA01" / "reg" / "SCADA01.reg"
    reg.write_bytes(reg.read_bytes() + b"\r\x00\n\x00")  # one more (empty) line
    (out / "HMI01" / "secedit" / "HMI01.inf").unlink()
    (out / "HMI02" / "firewall" / "extra.cmd").write_text("netsh advfirewall set allprofiles "
                                                          "state off")
    result = run("diff", PLANT7, out)
    assert result.exit_code == 1, result.output
    assert ("! new bundle: SCADA01/reg/SCADA01.reg was changed after dcomc wrote it (its "
            "sha256 is not the manifest's)") in result.stdout
    assert "! new bundle: HMI01/secedit/HMI01.inf is listed in the manifest but missing" in (
        result.stdout)
    assert ("! new bundle: HMI02/firewall/extra.cmd is not listed in the manifest (dcomc did "
            "not write it)") in result.stdout
    data = as_json(run("diff", out, PLANT7, "--json"))
    assert data["identical"] is False and data["hosts"] == []
    assert data["old"]["tampered"] == [
        {"path": "HMI01/secedit/HMI01.inf", "problem": "missing"},
        {"path": "SCADA01/reg/SCADA01.reg", "problem": "edited"},
        {"path": "HMI02/firewall/extra.cmd", "problem": "unlisted"}]
    assert data["new"]["tampered"] == []


@pytest.mark.parametrize("case", ["folder-without-manifest", "text-file", "spec-with-errors",
                                  "broken-psd1", "psd1-without-bom", "missing-psd1"])
def test_bad_input_exits_2(case: str, tmp_path: Path) -> None:
    path: Path = tmp_path / "x"
    if case == "folder-without-manifest":
        path.mkdir()
        message = "not a dcomc bundle"
    elif case == "text-file":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
        message = "neither a spec"
    elif case == "spec-with-errors":
        path = modified(tmp_path, lambda s: s["hosts"]["HMI01"].update(clients=["nope"]))
        message = "a spec has errors"
    else:
        path = build(PLANT7, tmp_path / "bundle")
        psd1 = path / "HMI01" / "powershell" / "HMI01.psd1"
        if case == "broken-psd1":
            psd1.write_bytes(psd1.read_bytes().replace(b"Resources = @(", b"Resources = $(x"))
            message = "HMI01.psd1: psd1:"
        elif case == "psd1-without-bom":
            psd1.write_bytes(psd1.read_bytes()[3:])
            message = "no UTF-8 BOM"
        else:
            psd1.unlink()
            message = "cannot read the host's data file"
    result = run("diff", PLANT7, path)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


# --- drift -----------------------------------------------------------------------------------

# What the engine's Test functions say for a compliant resource of each kind (DcomConfig.psm1).
REASONS = {
    "local_user": "exists", "local_group": "exists", "group_member": "is a member",
    "user_right": "granted", "service_logon": "logs on as .\\opcsvc",
    "appid_run_location": "runs on this computer", "appid_permission": "ACL as planned",
    "machine_limit_addition": "rights granted by the limit", "firewall_rule": "rule as planned",
    "reboot": "no machine DCOM change in this run",
}


def report_for(compiled: Compiled, host_name: str = "SCADA01") -> dict[str, Any]:
    """A realistic Report-mode JSON of a compliant PC, built from the host's plan."""
    host = compiled.plan.host(host_name)
    resources = []
    for res in host.resources:
        reason = REASONS.get(res.kind)
        if res.kind == "appid_auth_level":
            value = res.fields_dict()["value"]
            reason = "default" if value is None else f"AuthenticationLevel {value}"
        elif res.kind == "machine_dcom_value":
            reason = str(res.fields_dict()["data"])
        elif res.kind == "security_option":
            fields = res.fields_dict()
            reason = f"{fields['value_name']} = {fields['value']}"
        resources.append({"Id": res.id, "Compliant": True, "Reason": reason,
                          "State": {"Present": True}})
    return {"Site": compiled.plan.site, "Host": host.name, "Computer": host.name,
            "Generator": f"dcomc {__version__}", "Time": "2024-05-06T07:08:09.1234567Z",
            "Resources": resources}


def write_report(tmp_path: Path, report: Any, encoding: str = "utf-8") -> Path:
    path = tmp_path / "report.json"
    text = json.dumps(report, indent=4) if not isinstance(report, str) else report
    path.write_bytes(text.encode(encoding) if encoding != "utf-16" else b"\xff\xfe"
                     + text.encode("utf-16-le"))
    return path


@pytest.fixture(scope="module")
def plant7() -> Compiled:
    return compile_file(PLANT7)


def test_all_compliant_report_is_no_drift(plant7: Compiled, tmp_path: Path) -> None:
    report = write_report(tmp_path, report_for(plant7))
    result = run("drift", PLANT7, report)
    assert result.exit_code == 0, result.output
    assert "no drift: 26 compliant, 0 drifted, 0 missing, 0 extra" in result.stdout
    data = as_json(run("drift", PLANT7, report, "--json"))
    assert data["drift"] is False
    assert data["host"] == "SCADA01" and data["computer"] == "SCADA01"
    assert data["compliant"] == [r.id for r in plant7.plan.host("SCADA01").resources]
    assert data["drifted"] == data["missing"] == data["extra"] == data["stale"] == []


def test_flipped_missing_and_extra_entries(plant7: Compiled, tmp_path: Path) -> None:
    report = report_for(plant7)
    by_id = {r["Id"]: r for r in report["Resources"]}
    flips = {
        "appid_permission:kepware/access": "the ACL differs from the plan",
        "firewall_rule:dcomc-plant7-line3-rpc-epmap":
            "RemoteAddress is Any, should be 10.7.3.10,10.7.3.21,10.7.3.22",
        "service_logon:KEPServerEXV6": "logs on as LocalSystem, not .\\opcsvc",
    }
    for rid, reason in flips.items():
        by_id[rid].update(Compliant=False, Reason=reason, State={"StartName": "LocalSystem"})
    # the PC ran an older bundle: one planned resource absent, one since dropped present
    report["Resources"] = [r for r in report["Resources"]
                           if r["Id"] != "machine_limit_addition:launch/OPC Users"]
    report["Resources"].append({"Id": "firewall_rule:dcomc-plant7-line3-server-old",
                                "Compliant": True, "Reason": "rule as planned", "State": None})
    path = write_report(tmp_path, report)

    result = run("drift", PLANT7, path, "--json")
    assert result.exit_code == 1, result.output
    data = as_json(result)
    assert data["drift"] is True
    assert {d["id"]: d["reason"] for d in data["drifted"]} == flips
    assert next(d for d in data["drifted"] if d["id"].startswith("service"))["guide"] == "§3.2"
    assert [m["id"] for m in data["missing"]] == ["machine_limit_addition:launch/OPC Users"]
    assert data["missing"][0]["guide"] == "§4.2 steps 13-21"
    assert data["extra"] == [{"id": "firewall_rule:dcomc-plant7-line3-server-old",
                              "compliant": True, "reason": "rule as planned"}]
    assert data["summary"] == {"compliant": 22, "drifted": 3, "missing": 1, "extra": 1,
                               "stale": 0}

    text = run("drift", PLANT7, path).stdout
    assert ("  ~ appid_permission:kepware/access  drifted: the ACL differs from the plan  "
            "[§4.1 steps 19-28]") in text
    assert "  ? machine_limit_addition:launch/OPC Users  missing from the report" in text
    assert "  + firewall_rule:dcomc-plant7-line3-server-old  in the report (compliant), " \
           "not in the plan" in text
    assert "drift: 22 compliant, 3 drifted, 1 missing, 1 extra" in text


def test_client_host_and_case_insensitive_host(plant7: Compiled, tmp_path: Path) -> None:
    report = report_for(plant7, "HMI02")
    report["Host"] = "hmi02"
    result = run("drift", PLANT7, write_report(tmp_path, report))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Host HMI02:")
    assert "no drift: 10 compliant" in result.stdout


@pytest.mark.parametrize(("field", "value", "message"), [
    ("Generator", "dcomc 0.0.1", "generated by 'dcomc 0.0.1'"),
    ("SpecSha256", "0" * 64, "built from another version of the spec"),
    ("Spec", "plant7-old.yaml", "built from 'plant7-old.yaml'"),
    ("Site", "plant7-line2", "for site 'plant7-line2'"),
])
def test_stale_bundle_is_drift(plant7: Compiled, tmp_path: Path, field: str, value: str,
                               message: str) -> None:
    report = report_for(plant7) | {field: value}
    result = run("drift", PLANT7, write_report(tmp_path, report))
    assert result.exit_code == 1, result.output
    assert "! stale bundle: " in result.stdout and message in result.stdout
    assert "26 compliant, 0 drifted, 0 missing, 0 extra, stale bundle (1)" in result.stdout


def test_matching_spec_fields_are_not_stale(plant7: Compiled, tmp_path: Path) -> None:
    report = report_for(plant7) | {"Spec": "renamed.yaml", "SpecSha256": plant7.sha256.upper()}
    result = run("drift", PLANT7, write_report(tmp_path, report))
    assert result.exit_code == 0, result.output  # the hash decides; the file name may differ


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_report_with_bom_is_read(plant7: Compiled, tmp_path: Path, encoding: str) -> None:
    result = run("drift", PLANT7, write_report(tmp_path, report_for(plant7), encoding))
    assert result.exit_code == 0, result.output


def test_unknown_host_exits_2(plant7: Compiled, tmp_path: Path) -> None:
    report = report_for(plant7) | {"Host": "PLC07"}
    result = run("drift", PLANT7, write_report(tmp_path, report))
    assert result.exit_code == 2
    assert ("the report is for host 'PLC07', which " in result.stderr
            and "(hosts: HMI01, HMI02, SCADA01)" in result.stderr)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: "{ not json", "not a JSON report"),
    (lambda r: [r], "the top level is a list, not an object"),
    (lambda r: {k: v for k, v in r.items() if k != "Host"}, "no `Host` string"),
    (lambda r: r | {"Resources": "none"}, "`Resources` is string, not a list"),
    (lambda r: r | {"Resources": [42]}, "Resources[0] is a number, not an object"),
    (lambda r: r | {"Resources": [{"Compliant": True}]}, "Resources[0]: no `Id` string"),
    (lambda r: r | {"Resources": [{"Id": "reboot", "Compliant": "yes"}]},
     "`Compliant` is string, not true/false"),
    (lambda r: r | {"Resources": [{"Id": "reboot", "Compliant": True, "Reason": 3}]},
     "`Reason` is number, not a string"),
    (lambda r: r | {"Resources": r["Resources"][:2] + r["Resources"][:1]},
     "Resources[2]: resource 'local_user:opcsvc' is listed twice"),
])
def test_bad_report_exits_2(plant7: Compiled, tmp_path: Path,
                            mutate: Callable[[dict[str, Any]], Any], message: str) -> None:
    result = run("drift", PLANT7, write_report(tmp_path, mutate(report_for(plant7))))
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_drift_with_a_broken_spec_exits_2(plant7: Compiled, tmp_path: Path) -> None:
    spec = modified(tmp_path, lambda s: s["hosts"]["HMI01"].update(clients=["nope"]))
    result = run("drift", spec, write_report(tmp_path, report_for(plant7)))
    assert result.exit_code == 2
    assert "the spec has errors" in result.stderr
