"""`dcomc drift SPEC FOLDER`: a site's reports at once, on the sample reports the real engine
wrote (examples/reports/: HMI01 and SCADA01 in sync, HMI02 with its DCOM authentication level
lowered after the Apply). Hosts are matched by the computer name in each report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dcomc.pipeline import Compiled, compile_file
from dcomc.readback.compare import InputError
from dcomc.readback.drift import (
    SiteDrift,
    drift_folder,
    drift_reports,
    site_json,
    site_text,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "plant7-workgroup.yaml"
SAMPLES = ROOT / "examples" / "reports"
LOWERED = "machine_dcom_value:LegacyAuthenticationLevel"


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    return compile_file(SPEC)


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def write(folder: Path, name: str, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def in_sync(name: str) -> dict[str, Any]:
    """A sample report with every resource compliant (HMI02 as it was right after Apply)."""
    data = sample(name)
    for res in data["Resources"]:
        res["Compliant"] = True
    return data


def site(compiled: Compiled, *paths: Path) -> SiteDrift:
    return drift_folder(compiled, SPEC, paths)


def test_the_sample_folder(compiled: Compiled) -> None:
    result = site(compiled, SAMPLES)
    assert result.hosts == ("HMI01", "HMI02", "SCADA01")
    assert (result.in_sync, result.drifted, result.missing) == (("HMI01", "SCADA01"), ("HMI02",),
                                                                ())
    assert result.has_drift and not result.unknown and not result.superseded
    data = site_json(result)
    assert data["drift"] is True and data["site"] == "plant7-line3"
    assert data["summary"] == {"hosts": 3, "in_sync": 2, "drifted": 1, "missing": 0,
                               "unknown": 0, "superseded": 0}
    assert [(h["host"], h["status"], Path(h["report"]).name) for h in data["hosts"]] == [
        ("HMI01", "in_sync", "HMI01.json"), ("HMI02", "drifted", "HMI02.json"),
        ("SCADA01", "in_sync", "SCADA01.json")]
    hmi02 = next(r for r in data["results"] if r["host"] == "HMI02")
    assert [d["id"] for d in hmi02["drifted"]] == [LOWERED]
    json.dumps(data, allow_nan=False)  # strict JSON


def test_the_sample_folder_as_text(compiled: Compiled) -> None:
    text = site_text(site(compiled, SAMPLES))
    lines = text.splitlines()
    assert lines[0] == f"Site plant7-line3: 3 hosts against {SPEC}"
    assert lines[2].startswith("  = HMI01    in sync: 10 compliant, 0 drifted, 0 missing, 0 extra")
    assert lines[3].startswith("  ~ HMI02    drifted: 9 compliant, 1 drifted, 0 missing, 0 extra")
    assert lines[4].startswith("  = SCADA01  in sync: 26 compliant")
    assert "drift: 2 in sync, 1 drifted, 0 without a report, 0 unknown reports" in lines
    # the drifted host in full, as the one-report form shows it
    assert f"  ~ {LOWERED}  drifted: should be 5  [§4.2 step 6]" in lines
    assert text.count("Host HMI02: report") == 1 and "Host HMI01" not in text


def test_every_host_in_sync_is_no_drift(compiled: Compiled, tmp_path: Path) -> None:
    for name in ("HMI01", "HMI02", "SCADA01"):
        write(tmp_path, f"{name}.json", in_sync(name))
    result = site(compiled, tmp_path)
    assert not result.has_drift and result.in_sync == result.hosts
    assert site_text(result).endswith(
        "no drift: 3 in sync, 0 drifted, 0 without a report, 0 unknown reports\n")


def test_a_host_without_a_report_is_drift(compiled: Compiled, tmp_path: Path) -> None:
    write(tmp_path, "a.json", in_sync("HMI01"))
    write(tmp_path, "b.json", in_sync("SCADA01"))
    result = site(compiled, tmp_path)
    assert result.missing == ("HMI02",) and result.has_drift
    assert site_json(result)["hosts"][1] == {"host": "HMI02", "status": "missing",
                                             "report": None}
    assert "  ? HMI02    no report" in site_text(result).splitlines()


def test_a_report_of_another_computer_is_unknown(compiled: Compiled, tmp_path: Path) -> None:
    stray = in_sync("HMI01") | {"Computer": "HMI09"}
    path = write(tmp_path, "HMI09.json", stray)
    result = site(compiled, SAMPLES / "HMI01.json", SAMPLES / "SCADA01.json", path)
    assert [r.path for r in result.unknown] == [path]
    assert result.missing == ("HMI02",)
    assert site_json(result)["unknown"] == [{
        "report": str(path), "computer": "HMI09", "host": "HMI01", "site": "plant7-line3",
        "time": stray["Time"]}]
    assert (f"  + HMI09  report {path} of a computer the spec does not have (it ran the bundle "
            "of host 'HMI01')") in site_text(result)


def test_computer_names_match_ignoring_case(compiled: Compiled, tmp_path: Path) -> None:
    write(tmp_path, "x.json", sample("HMI02") | {"Computer": "hmi02"})
    result = site(compiled, tmp_path)
    assert result.drifted == ("HMI02",) and not result.unknown


def test_the_computer_counts_not_the_data_file(compiled: Compiled, tmp_path: Path) -> None:
    """HMI01 that ran HMI02's data file with -Force: HMI01's plan against what it reported."""
    write(tmp_path, "HMI01.json", in_sync("HMI02") | {"Computer": "HMI01"})
    result = site(compiled, tmp_path)
    (hmi01,) = result.results
    assert hmi01.host == "HMI01" and result.drifted == ("HMI01",)
    assert hmi01.stale == ("the PC ran the bundle of host 'HMI02' (-Force); build and deploy "
                           "HMI01's own bundle",)
    # both HMIs have the same resource ids (one client rule for both): only the bundle is wrong
    assert not hmi01.missing and not hmi01.extra


def test_the_newest_report_of_a_computer_counts(compiled: Compiled, tmp_path: Path) -> None:
    newer = in_sync("HMI02") | {"Time": "2026-03-09T06:00:00.0000000Z"}
    old = shutil.copy(SAMPLES / "HMI02.json", tmp_path / "z-old.json")
    new = write(tmp_path, "a-new.json", newer)
    result = site(compiled, tmp_path)
    assert result.in_sync == ("HMI02",) and [r.path for r in result.superseded] == [Path(old)]
    assert site_json(result)["hosts"][1]["report"] == str(new)
    assert f"  - {old}: an older report of HMI02, not counted" in site_text(result)


@pytest.mark.parametrize("time", [None, "yesterday", "2026-03-02T06:01:16", "same"])
def test_two_reports_without_an_order_are_refused(compiled: Compiled, tmp_path: Path,
                                                   time: str | None) -> None:
    other = sample("HMI02")
    other["Time"] = other["Time"] if time == "same" else time
    write(tmp_path, "one.json", sample("HMI02"))
    write(tmp_path, "two.json", other)
    with pytest.raises(InputError, match=r"one\.json and .*two\.json are both reports of "
                       r"computer 'HMI02' and their times do not tell which is newer"):
        site(compiled, tmp_path)


def test_the_same_file_twice_counts_once(compiled: Compiled, tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(SAMPLES / "HMI02.json")
    result = site(compiled, SAMPLES, SAMPLES / "HMI02.json", link)
    assert not result.superseded and result.drifted == ("HMI02",)


def test_only_json_files_of_the_folder_are_read(compiled: Compiled, tmp_path: Path) -> None:
    write(tmp_path, "HMI02.JSON", sample("HMI02"))
    (tmp_path / "notes.txt").write_text("not a report", encoding="utf-8")
    write(tmp_path / "old", "HMI01.json", {"not": "read: subfolders are not"})
    result = site(compiled, tmp_path)
    assert result.drifted == ("HMI02",) and result.missing == ("HMI01", "SCADA01")


@pytest.mark.parametrize(("make", "needle"), [
    (lambda d: d, "no report (*.json) in this folder"),
    (lambda d: d / "gone.json", "cannot read the report"),
    (lambda d: write(d, "bad.json", {"Host": 7}), "bad.json: not a report"),
])
def test_bad_input_is_one_line(compiled: Compiled, tmp_path: Path, make: Any,
                               needle: str) -> None:
    with pytest.raises(InputError) as caught:
        site(compiled, make(tmp_path))
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_hostile_names_are_escaped(compiled: Compiled, tmp_path: Path) -> None:
    write(tmp_path, "x.json", in_sync("HMI01") | {"Computer": "EVIL\r\nerror: forged\x1b[2J"})
    text = site_text(site(compiled, SAMPLES, tmp_path))
    assert "\r" not in text and "\x1b" not in text
    assert "  + EVIL\\x0d\\x0aerror: forged\\x1b[2J  report" in text


def test_drift_reports_picks_the_form(compiled: Compiled) -> None:
    """One file: that PC's drift as before; a folder or several files: the site."""
    one = drift_reports(compiled, SPEC, [SAMPLES / "HMI02.json"])
    assert one.has_drift and one.data["host"] == "HMI02" and "hosts" not in one.data
    assert one.text.startswith("Host HMI02: report ")
    two = drift_reports(compiled, SPEC, [SAMPLES / "HMI01.json", SAMPLES / "SCADA01.json"])
    assert two.has_drift and two.data["summary"]["missing"] == 1
    folder = drift_reports(compiled, SPEC, [SAMPLES])
    assert folder.data == site_json(site(compiled, SAMPLES))
    assert folder.text == site_text(site(compiled, SAMPLES))
