"""Host ranges (`HMI[01-24]` with `address: 10.7.3.[21-44]`): expanded by the loader into
plain hosts that compile exactly like the hosts written out, with every later diagnostic at
the range's lines; every way a range can be wrong is an error located at it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dcomc.diagnostics import CompileError, Diagnostic, Diagnostics, Span
from dcomc.front import expand
from dcomc.front.load import load_text
from dcomc.pipeline import Compiled, compile_file

HEAD = """\
dcomc: 1
site:
  name: line9
accounts:
  users:
    opcuser:
      password: prompt
clients:
  hmi:
    executable: 'C:\\HMI\\hmi.exe'
    run_as: opcuser
hosts:
"""  # the hosts start at line 13


def compile_hosts(tmp_path: Path, hosts: str) -> Compiled:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + hosts, encoding="utf-8")
    return compile_file(path)


def errors(tmp_path: Path, hosts: str) -> list[tuple[int, int, str, str]]:
    """(line, col, code, message) of each error, in source order."""
    with pytest.raises(CompileError) as caught:
        compile_hosts(tmp_path, hosts)
    return [_where(d) for d in caught.value.diagnostics if d.severity == "error"]


def _where(diag: Diagnostic) -> tuple[int, int, str, str]:
    assert diag.span is not None
    return diag.span.line, diag.span.col, diag.code, diag.message


# --- what a range makes ---------------------------------------------------------------------


def test_a_range_compiles_exactly_like_its_hosts_written_out(tmp_path: Path) -> None:
    ranged = compile_hosts(tmp_path, "  HMI[01-12]:\n    address: 10.7.3.[21-32]\n"
                                     "    description: panel\n    clients: [hmi]\n")
    written = compile_hosts(tmp_path, "".join(
        f"  HMI{n:02}:\n    address: 10.7.3.{20 + n}\n    description: panel\n"
        "    clients: [hmi]\n" for n in range(1, 13)))
    assert ranged.spec == written.spec
    assert list(ranged.spec.hosts) == [f"HMI{n:02}" for n in range(1, 13)]
    assert ranged.plan.hosts == written.plan.hosts  # provenance aside (not compared)


@pytest.mark.parametrize(("key", "address", "names", "addresses"), [
    ("HMI[01-03]", "10.0.0.[7-9]", ["HMI01", "HMI02", "HMI03"], ["10.0.0.7", "10.0.0.8",
                                                                 "10.0.0.9"]),
    ("HMI[1-3]", "10.0.0.[97-99]", ["HMI1", "HMI2", "HMI3"], ["10.0.0.97", "10.0.0.98",
                                                             "10.0.0.99"]),
    ("P[8-10]-HMI", "10.0.[8-10].1", ["P8-HMI", "P9-HMI", "P10-HMI"],
     ["10.0.8.1", "10.0.9.1", "10.0.10.1"]),
    ("HMI[098-100]", "fd00::[98-100]", ["HMI098", "HMI099", "HMI100"],
     ["fd00::98", "fd00::99", "fd00::100"]),
    ("HMI[5-5]", "10.0.0.[5-5]", ["HMI5"], ["10.0.0.5"]),
])  # fmt: skip
def test_names_and_addresses(key: str, address: str, names: list[str],
                             addresses: list[str]) -> None:
    """Numbers are zero-padded to the width of the first bound; the address counts along."""
    diags = Diagnostics()
    loaded = load_text(f"hosts:\n  {key}:\n    address: '{address}'\n", "s.yaml", diags)
    assert loaded is not None and not diags.items
    assert loaded.data["hosts"] == {n: {"address": a} for n, a in zip(names, addresses,
                                                                       strict=True)}
    assert loaded.host_ranges == dict.fromkeys(names, key)


def test_ranges_keep_their_place_among_plain_hosts() -> None:
    text = ("hosts:\n  SCADA01: {address: 10.0.0.1}\n  HMI[1-2]: {address: '10.0.0.[11-12]'}\n"
            "  ENG01: {address: 10.0.0.99}\n")
    loaded = load_text(text, "s.yaml", Diagnostics())
    assert loaded is not None
    assert list(loaded.data["hosts"]) == ["SCADA01", "HMI1", "HMI2", "ENG01"]
    assert loaded.host_ranges == {"HMI1": "HMI[1-2]", "HMI2": "HMI[1-2]"}


def test_a_spec_without_ranges_is_left_as_it_is() -> None:
    text = "hosts:\n  SCADA01: {address: 10.0.0.1}\n"
    loaded = load_text(text, "s.yaml", Diagnostics())
    assert loaded is not None and loaded.host_ranges == {}
    assert loaded.data == {"hosts": {"SCADA01": {"address": "10.0.0.1"}}}


def test_each_generated_host_is_its_own_copy() -> None:
    text = "hosts:\n  H[1-2]:\n    address: '10.0.0.[1-2]'\n    clients: [hmi]\n"
    loaded = load_text(text, "s.yaml", Diagnostics())
    assert loaded is not None
    loaded.data["hosts"]["H1"]["clients"].append("x")
    assert loaded.data["hosts"]["H2"]["clients"] == ["hmi"]


# --- spans: later stages point at the range -------------------------------------------------


def test_generated_hosts_carry_the_spans_of_the_range(tmp_path: Path) -> None:
    compiled = compile_hosts(tmp_path, "  SCADA01:\n    address: 10.7.3.10\n"
                                       "    clients: [hmi]\n"
                                       "  HMI[01-03]:\n    address: 10.7.3.[21-23]\n"
                                       "    clients: [hmi]\n")
    loaded = compiled.loaded
    for name in ("HMI01", "HMI02", "HMI03"):
        assert (loaded.key_span(("hosts", name)).line, loaded.key_span(("hosts", name)).col) \
            == (16, 3)
        assert loaded.span(("hosts", name, "address")).line == 17
        assert loaded.span(("hosts", name, "clients", 0)).line == 18
    lines = {r.prov.span.line for r in compiled.plan.host("HMI02").resources
             if r.prov.span is not None}
    assert lines and lines <= set(range(1, 19)) - {13, 14, 15}  # never SCADA01's lines


def test_check_errors_on_generated_hosts_point_at_the_range(tmp_path: Path) -> None:
    got = errors(tmp_path, "  HMI[254-256]:\n    address: 10.7.3.[254-256]\n"
                           "    clients: [hmi, hmx]\n")
    assert (14, 14, "E220", "invalid address '10.7.3.256' of host 'HMI256': expected an "
            "IPv4 or IPv6 address") in got
    assert [(line, col, code) for line, col, code, _ in got if code == "E101"] == \
        [(15, 20, "E101")]  # one line: the three hosts' messages are the same


def test_a_shape_error_in_a_range_is_reported_once_under_the_range_key(tmp_path: Path) -> None:
    got = errors(tmp_path, "  HMI[01-24]:\n    address: 10.7.3.[21-44]\n    clients: hmi\n"
                           "    adress: x\n")
    assert got == [
        (15, 14, "E004", "'hosts.HMI[01-24].clients': input should be a valid list"),
        (16, 5, "E003", "unknown key 'adress'; did you mean 'address'? (allowed here: "
                        "address, description, servers, clients, machine)"),
    ]


def test_a_range_without_address_is_left_to_the_models(tmp_path: Path) -> None:
    got = errors(tmp_path, "  HMI[01-24]:\n    clients: [hmi]\n")
    assert got == [(13, 3, "E004", "missing required key 'hosts.HMI[01-24].address'")]


# --- errors of the range itself -------------------------------------------------------------


@pytest.mark.parametrize(("key", "why"), [
    ("HMI[01-]", "expected one range [first-last] of decimal numbers, e.g. HMI[01-24]"),
    ("HMI[a-c]", "expected one range [first-last] of decimal numbers"),
    ("HMI[1-2][1-2]", "expected one range [first-last] of decimal numbers"),
    ("HMI]1-2[", "expected one range [first-last] of decimal numbers"),
    ("HMI[1-2]]", "expected one range [first-last] of decimal numbers"),
    ("HMI[24-01]", "the range counts down (24 > 01); write it as [01-24]"),
    ("H[0-10000]", "the range holds more than 10,000 numbers"),
])  # fmt: skip
def test_a_malformed_range_is_an_error_at_its_key(tmp_path: Path, key: str, why: str) -> None:
    [(line, col, code, message)] = errors(tmp_path, f"  {key}:\n    address: '10.0.[0-9].1'\n"
                                                    "    clients: [hmi]\n")
    assert (line, col, code) == (13, 3, "E213")
    assert message.startswith(f"invalid host range '{key}': {why}")


def test_names_longer_than_15_characters_are_one_error(tmp_path: Path) -> None:
    got = errors(tmp_path, "  PACKAGING-HMI[098-100]:\n    address: 10.0.0.[98-100]\n"
                           "    clients: [hmi]\n")
    assert got == [(13, 3, "E213", "host range 'PACKAGING-HMI[098-100]' gives names of up to "
                    "16 characters ('PACKAGING-HMI100'); a computer name has at most 15")]


@pytest.mark.parametrize(("address", "why"), [
    ("10.7.3.21", "invalid address range '10.7.3.21' of host range 'HMI[01-24]': expected one "
     "range [first-last] of decimal numbers, e.g. 10.7.3.[21-44] (each host needs its own "
     "address)"),
    ("10.7.[3-4].[21-44]", "invalid address range '10.7.[3-4].[21-44]'"),
    ("10.7.3.[21-40]", "address range '10.7.3.[21-40]' gives 20 addresses for the 24 hosts of "
     "'HMI[01-24]'"),
])  # fmt: skip
def test_a_wrong_address_range_is_an_error_at_the_address(tmp_path: Path, address: str,
                                                          why: str) -> None:
    [(line, col, code, message)] = errors(tmp_path, f"  HMI[01-24]:\n    address: {address}\n"
                                                    "    clients: [hmi]\n")
    assert (line, col, code) == (14, 14, "E220")
    assert message.startswith(why)


def test_a_generated_name_that_is_already_a_host_is_an_error(tmp_path: Path) -> None:
    got = errors(tmp_path, "  HMI05:\n    address: 10.0.1.5\n    clients: [hmi]\n"
                           "  HMI[01-08]:\n    address: 10.0.0.[1-8]\n    clients: [hmi]\n"
                           "  HMI[08-09]:\n    address: 10.0.2.[8-9]\n    clients: [hmi]\n"
                           "  HMI09:\n    address: 10.0.3.9\n    clients: [hmi]\n")
    fix = ": write such a host out on its own and split the range around it"
    assert got == [
        (16, 3, "E204", "host range 'HMI[01-08]' gives 'HMI05', which is already a host "
                        "(line 13)" + fix),
        (19, 3, "E204", "host range 'HMI[08-09]' gives 'HMI08', which the range 'HMI[01-08]' "
                        "(line 16) gives too" + fix),
        (22, 3, "E204", "host 'HMI09' is also given by the range 'HMI[08-09]' (line 19)" + fix),
    ]


def test_a_name_differing_only_in_case_is_the_checks_collision(tmp_path: Path) -> None:
    got = errors(tmp_path, "  hmi02:\n    address: 10.0.1.2\n    clients: [hmi]\n"
                           "  HMI[01-03]:\n    address: 10.0.0.[1-3]\n    clients: [hmi]\n")
    assert got == [(16, 3, "E204", "host 'HMI02' collides with 'hmi02' (line 13): Windows "
                                   "compares names case-insensitively")]


def test_every_range_error_is_reported_at_once(tmp_path: Path) -> None:
    got = errors(tmp_path, "  A[2-1]:\n    address: 10.0.0.[1-2]\n"
                           "  B[1-2]:\n    address: 10.0.0.[1-3]\n"
                           "  LONG-NAME-HOST[8-10]:\n    address: 10.0.0.[8-10]\n")
    assert [(line, code) for line, _, code, _ in got] == [(13, "E213"), (16, "E220"),
                                                          (17, "E213")]


def test_ranges_give_at_most_100_000_hosts() -> None:
    text = "hosts:\n" + "".join(f"  R{i}-[0-9999]: {{address: 'fd00::{i}:[0-9999]'}}\n"
                                 for i in range(11))
    diags = Diagnostics()
    loaded = load_text(text, "s.yaml", diags)
    assert loaded is not None and len(loaded.data["hosts"]) == 10 * 10_000 + 1
    [error] = diags.items
    assert (error.span, error.code) == (Span("s.yaml", 12, 3), "E213")
    assert error.message == ("host range 'R10-[0-9999]': the spec's ranges give more than "
                             "100,000 hosts")


def test_only_ascii_digits_make_a_range() -> None:
    diags = Diagnostics()
    load_text("hosts:\n  H[\u0661-\u0663]: {address: '10.0.0.[1-3]'}\n", "s.yaml", diags)
    assert [d.code for d in diags.items] == ["E213"]


def test_parse_range() -> None:
    found = expand.parse_range("HMI[007-010]x")
    assert isinstance(found, expand.Range)
    assert (found.count, found.numbers(), found.fill("HMI[007-010]x", "008")) == \
        (4, ["007", "008", "009", "010"], "HMI008x")


def test_check_prints_range_errors_with_file_line_col(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "  HMI[01-24]:\n    address: 10.7.3.[21-40]\n    clients: [hmi]\n",
                    encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "dcomc", "check", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == (
        f"{path}:14:14: error: address range '10.7.3.[21-40]' gives 20 addresses for the 24 "
        "hosts of 'HMI[01-24]' [E220]")
