"""The readers of files dcomc did not write (issue 15): a corpus of real-world-shaped files
(tests/targets/corpus/, written for the project: a REGEDIT4 vendor fix in ANSI, a v5 export
in UTF-8 and in UTF-16LE without BOM, a hardening security template, a vendor netsh script,
WiX v3 and v4 installer sources, `reg query` output) with their expected readings
(corpus/expected.json, reviewed by hand), one test per defect of the issue, and agreement
with real tools: Wine's `reg import`/`reg export` on generated .reg files, Samba on generated
security descriptors and on the templates' sections and keys."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wine_reg import wine  # the Wine prefix fixture: one definition for both suites

from dcomc.cli import main
from dcomc.windows import sd, sdbinary
from dcomc_targets import infread, netsh, netshread, regread, secedit, wixread
from dcomc_targets.readerror import ReadError
from dcomc_targets.regfile import parse as parse_reg
from tools import require

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "targets" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
SYSTEM_PYTHON = "/usr/bin/python3"
__all__ = ["wine"]  # a fixture, used by name


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


# --- the corpus and its expected readings -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED["inspect"]))
def test_corpus_file_reads_as_expected(name: str) -> None:
    result = run("inspect", "--json", CORPUS / name)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["diagnostics"] == []
    assert data["files"][str(CORPUS / name)] == EXPECTED["inspect"][name]


def test_sd_decode_of_reg_query_output() -> None:
    """`reg query` output of a key (several values) is the usual way to copy a value off a PC;
    the descriptor carries Windows' low-integrity label (S:(ML;;NX;;;LW))."""
    result = run("sd", "decode", f"@{CORPUS / 'reg-query.txt'}")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == EXPECTED["sd decode @reg-query.txt"]


# --- .reg -------------------------------------------------------------------------------------


def test_regedit4_and_utf8_files_are_generic_reg_not_unknown() -> None:
    kinds = {name: EXPECTED["inspect"][name]["kind"] for name in EXPECTED["inspect"]
             if name.endswith(".reg")}
    assert set(kinds.values()) == {"generic .reg"}
    formats = {EXPECTED["inspect"][n]["format"] for n in kinds}
    encodings = {EXPECTED["inspect"][n]["encoding"] for n in kinds}
    assert formats == {"REGEDIT4", "Windows Registry Editor Version 5.00"}
    assert encodings == {"ANSI (cp1252)", "UTF-8 with BOM", "UTF-16LE without BOM"}


def test_a_dcomc_reg_is_still_read_as_dcomc_reg(tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert run("build", ROOT / "examples" / "plant7-workgroup.yaml", "-o", out,
               "--no-msi").exit_code == 0
    reg = next(out.glob("*/reg/*.reg"))
    data = json.loads(run("inspect", "--json", reg).stdout)
    assert data["files"][str(reg)]["kind"] == "reg"


def test_deleted_key_and_trailing_blanks_after_bracket_and_backslash() -> None:
    text = ("Windows Registry Editor Version 5.00\r\n\r\n[-HKEY_CURRENT_USER\\Software\\Old]\r\n"
            "[HKEY_CURRENT_USER\\Software\\New]  \r\n"
            '"Blob"=hex:01,02,\\   \r\n  03,04\r\n"Gone"=-\r\n')
    content = parse_reg(text)
    assert content.deleted_keys == ("HKEY_CURRENT_USER\\Software\\Old",)
    assert [(op.name, op.type, op.data) for op in content.ops] == [
        ("Blob", "REG_BINARY", "01020304"), ("Gone", "DELETE", None)]


@pytest.mark.parametrize(("text", "line", "col", "message"), [
    ("REGEDIT4\r\n[HKEY_CURRENT_USER\\x]\r\n\"a\"=hex:01,zz\r\n", 3, 12, "bad byte 'zz'"),
    ("REGEDIT4\r\n[HKEY_CURRENT_USER\\x]\r\n\"a\"=hex:01,\\\r\n\"b\"=hex:\r\n", 3, 12,
     "bad byte '\"b\"=hex:'"),
    ("REGEDIT4\r\n[HKEY_CURRENT_USER\\x]\r\n\"a\"=dword:123456789\r\n", 3, 11, "bad dword"),
    ("REGEDIT4\r\n[HKEY_NOWHERE\\x]\r\n", 2, 2, "root key"),
    ("REGEDIT4\r\n[HKEY_CURRENT_USER\\x]\r\n\"a\"=\"b\" c\r\n", 3, 9, "after the closing"),
    ("REGEDIT4\r\n[HKEY_CURRENT_USER\\x]\r\n\"a\"\r\n", 3, 4, "expected '='"),
    ("REGEDIT5\r\n", 1, 1, "not a .reg file"),
])  # fmt: skip
def test_unreadable_reg_is_an_error_with_line_and_column(text: str, line: int, col: int,
                                                          message: str) -> None:
    with pytest.raises(ReadError) as info:
        regread.parse_text(text)
    assert (info.value.line, info.value.col) == (line, col)
    assert message in info.value.message


def test_unreadable_reg_is_exit_2_with_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.reg"
    bad.write_bytes(b"REGEDIT4\r\n[HKEY_CURRENT_USER\\x]\r\n\"a\"=hex:01,zz\r\n")
    result = run("inspect", bad)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{bad}:3:12: error: bad byte 'zz' in hex data: "
                                          "expected two hex digits"]


def test_value_under_a_deleted_key_is_listed_as_ignored() -> None:
    reg = regread.parse_text("REGEDIT4\n[-HKEY_CURRENT_USER\\x]\n\"a\"=\"b\"\n")
    assert reg.values == ()
    assert reg.ignored == ("line 3: value 'a' under deleted key HKEY_CURRENT_USER\\x "
                           "(reg import skips it)",)


# --- descriptors ----------------------------------------------------------------------------


LABELLED = "O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;SY)S:(ML;;NX;;;LW)"


def test_descriptor_with_a_sacl_is_read_not_refused() -> None:
    blob = sdbinary.to_binary(sd.read_sddl(LABELLED))
    assert sdbinary.decode_sddl(blob) == LABELLED
    assert sd.dacl_is_com(sdbinary.read_binary(blob))
    with pytest.raises(sd.SDError, match="SACL not supported"):  # the writer's rules stay
        sdbinary.sddl_to_binary(LABELLED)


def test_reg_export_of_a_labelled_value_reads() -> None:
    value = EXPECTED["inspect"]["appid-export-utf8.reg"]["keys"][0]["values"][1]
    assert value["sddl"] == "O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;SY)" \
        "(A;;CCDCLCSWRP;;;IU)S:(ML;;NX;;;LW)"
    assert value["aces"][-1]["type"] == "mandatory label"


def test_domain_relative_aliases_with_a_domain_sid() -> None:
    desc = sd.read_sddl("O:DAG:DUD:(A;;CCDC;;;LA)(A;;CC;;;RS)", "S-1-5-21-1-2-3")
    assert (desc.owner, desc.group) == ("S-1-5-21-1-2-3-512", "S-1-5-21-1-2-3-513")
    assert [a.sid for a in desc.dacl or ()] == ["S-1-5-21-1-2-3-500", "S-1-5-21-1-2-3-553"]
    assert sd.to_sddl(desc, "S-1-5-21-1-2-3") == "O:DAG:DUD:(A;;CCDC;;;LA)(A;;CC;;;RS)"
    with pytest.raises(sd.SDError, match="give the domain SID"):
        sd.read_sddl("O:DA")


@pytest.mark.parametrize("form", [
    "{hex}", "    LaunchPermission    REG_BINARY    {hex}\r\n",
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\x\r\n    A    REG_SZ    b\r\n"
    "    LaunchPermission    REG_BINARY    {HEX}\r\n",
    "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\x]\r\n\"A\"=\"b\"\r\n"
    "{wrapped}\r\n\"C\"=dword:1\r\n",
])  # fmt: skip
def test_sd_decode_input_forms(form: str) -> None:
    blob = sdbinary.to_binary(sd.read_sddl(LABELLED))
    lines, current = [], '"LaunchPermission"=hex:'
    for i, byte in enumerate(blob):
        current += f"{byte:02x}," if i < len(blob) - 1 else f"{byte:02x}"
        if len(current) >= 77:
            lines.append(current + "\\  ")
            current = "  "
    wrapped = "\r\n".join([*lines, current])
    text = form.format(hex=blob.hex(), HEX=blob.hex().upper(), wrapped=wrapped)
    result = CliRunner().invoke(main, ["sd", "decode", "-"], input=text.encode())
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == LABELLED
    assert "  SACL mandatory label  Low Mandatory Level" in result.stdout


def test_sd_decode_refuses_ambiguous_reg_query_output() -> None:
    text = "    A    REG_BINARY    0100\r\n    B    REG_BINARY    0100\r\n"
    result = CliRunner().invoke(main, ["sd", "decode", "-"], input=text.encode())
    assert result.exit_code == 2
    assert "2 REG_BINARY values (A, B)" in result.stderr


# --- security templates -------------------------------------------------------------------------


def test_every_section_and_empty_privilege_lists() -> None:
    sections = EXPECTED["inspect"]["hardening.inf"]["sections"]
    assert set(sections) == {*infread.KNOWN_SECTIONS, "Profile Description"} - {
        "Security Log", "Application Log"}
    assert sections["Privilege Rights"]["SeTcbPrivilege"] == []
    assert sections["System Access"]["NewAdministratorName"] == "LocalAdmin"  # unquoted
    multi = sections["Registry Values"][
        "MACHINE\\System\\CurrentControlSet\\Control\\SecurePipeServers\\Winreg"
        "\\AllowedExactPaths\\Machine"]
    assert multi["data"] == ["System\\CurrentControlSet\\Control\\ProductOptions",
                             "Software\\Microsoft\\Windows NT\\CurrentVersion"]
    assert EXPECTED["inspect"]["hardening.inf"]["unsupported"] == [
        "[Profile Description]: not a section secedit writes; its lines are shown as key = value"]


def test_dcomc_template_reader_takes_an_empty_privilege_list() -> None:
    content = secedit.parse("[Unicode]\r\nUnicode=yes\r\n[Version]\r\nsignature=\"$CHICAGO$\"\r\n"
                            "[Privilege Rights]\r\nSeTcbPrivilege =\r\n")
    assert content.privilege_rights == (("SeTcbPrivilege", ()),)


SAMBA_INF = """
import json, sys
from samba.gp_parse.gp_inf import GptTmplInfParser
for path in sys.argv[1:]:
    parser = GptTmplInfParser()
    parser.parse(open(path, 'rb').read())
    out = {}
    for name, section in parser.sections.items():
        keys = []
        for param in section.param_list:
            if isinstance(param, str):
                keys.append(param.split('=')[0].strip().strip('"'))
            elif isinstance(param, list):
                keys.append(param[0])
            elif isinstance(param[0], list):
                keys.append('__'.join(param[0]))
            else:
                keys.append(param[0])
        if keys:
            out[name] = sorted(keys)
    print(json.dumps(out))
"""


def test_samba_agrees_on_sections_and_keys(tmp_path: Path) -> None:
    """Samba's gp_inf has no place for sections it does not know (their lines would go to the
    section before), so the template is compared without [Profile Description]; the keys
    of [Unicode] and [Version] Samba does not keep."""
    require(Path(SYSTEM_PYTHON).exists() and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import samba.gp_parse.gp_inf"], capture_output=True,
        check=False).returncode == 0, "python3-samba")
    text, _ = infread.decode((CORPUS / "hardening.inf").read_bytes())
    text = text.split("[Profile Description]")[0]
    path = tmp_path / "t.inf"
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    proc = subprocess.run([SYSTEM_PYTHON, "-c", SAMBA_INF, str(path)], capture_output=True,
                          text=True, check=True, timeout=60)
    theirs = json.loads(proc.stdout)
    ours = {name: sorted(e.key for e in entries)
            for name, entries in infread.parse_text(text).sections
            if entries and name not in ("Unicode", "Version")}
    assert ours == theirs


# --- netsh ------------------------------------------------------------------------------------


def test_netsh_rule_without_profile_or_remoteip_gets_netshs_defaults() -> None:
    script = netshread.parse_text('advfirewall firewall add rule name=x dir=in action=allow\n')
    rule = script.commands[0]["rule"]
    assert rule["profile"] == ["domain", "private", "public"] and rule["remoteip"] == ["any"]


def test_netsh_options_are_kept_and_case_does_not_matter() -> None:
    rules = [c["rule"] for c in EXPECTED["inspect"]["vendor.netsh"]["commands"]
             if c["command"] == "add rule"]
    lan, disabled = rules[1], rules[2]
    assert (lan["interfacetype"], lan["dir"], lan["action"]) == ("lan", "in", "allow")
    assert lan["remoteip"] == ["10.7.3.0/24", "localsubnet"]
    assert (disabled["enable"], disabled["action"], disabled["edge"]) == ("no", "block", "yes")
    assert EXPECTED["inspect"]["vendor.netsh"]["unsupported"] == [
        "line 10: advfirewall set allprofiles state on: not an advfirewall firewall add, delete "
        "or set rule command"]


def test_dcomc_netsh_reader_takes_an_add_without_a_delete_in_any_case() -> None:
    text = ('ADVFIREWALL FIREWALL ADD RULE NAME="r" DIR=IN ACTION=ALLOW PROTOCOL="TCP" '
            'PROFILE="domain" REMOTEIP="any"\r\n')
    assert [r.name for r in netsh.parse(text).rules] == ["r"]


@pytest.mark.parametrize(("line", "col", "message"), [
    ('advfirewall firewall add rule name="x dir=in', 36, "never closed"),
    ("advfirewall firewall add rule name=x dir=in action=allow colour=red", 58, "no option"),
    ("advfirewall firewall add rule name=x dir=sideways action=allow", 42, "expected one of"),
    ("advfirewall firewall add rule name=x dir=in dir=in action=allow", 45, "given twice"),
    ("advfirewall firewall add rule name=x dir=in", 1, "without action="),
])  # fmt: skip
def test_netsh_errors_have_line_and_column(line: str, col: int, message: str) -> None:
    with pytest.raises(ReadError) as info:
        netshread.parse_text("# x\n" + line + "\n")
    assert (info.value.line, info.value.col) == (2, col)
    assert message in info.value.message


# --- WiX ----------------------------------------------------------------------------------------


def test_wix_v4_with_twenty_exceptions() -> None:
    body = "".join(f'<fw:FirewallException Name="r{i}" Port="{1000 + i}" Profile="domain"/>'
                   for i in range(20))
    data = ('<Wix xmlns="http://wixtoolset.org/schemas/v4/wxs" xmlns:fw="http://wixtoolset.org'
            f'/schemas/v4/wxs/firewall"><Fragment><Component Id="c">{body}</Component>'
            "</Fragment></Wix>").encode()
    read = wixread.parse(data)
    assert read["wix"] == "v4" and [r["name"] for r in read["rules"]] == [
        f"r{i}" for i in range(20)]


def test_wix_v3_and_v4_read_into_the_netsh_rule_model() -> None:
    v3 = EXPECTED["inspect"]["installer-v3.wxs"]["rules"][1]
    v4 = EXPECTED["inspect"]["installer-v4.wxs"]["rules"][1]
    script = netshread.parse_text(
        'advfirewall firewall add rule name="Vendor RPC" dir=in action=allow protocol=tcp '
        'localport=135 profile=domain remoteip=10.7.3.0/24,LocalSubnet '
        'description="DCOM endpoint mapper"\n')
    from_netsh = script.commands[0]["rule"]
    assert {k: v for k, v in v3.items() if k not in ("line", "component")} == from_netsh
    assert set(v4) - {"line", "component", "group"} == set(from_netsh) - {"description"}
    assert EXPECTED["inspect"]["installer-v4.wxs"]["unsupported"] == [
        "line 14: <Interface> in a FirewallException",
        "line 17: FirewallException IcmpTypesAndCodes='*'"]


# --- inspect of many files ----------------------------------------------------------------------


def test_inspect_of_many_files_reports_every_file_then_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.inf"
    bad.write_text("[Version]\nsignature=\"$CHICAGO$\"\n[Registry Values]\nx=zz,1\n")
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello")
    good = [CORPUS / "vendor.netsh", CORPUS / "installer-v4.wxs"]
    result = run("inspect", good[0], bad, unknown, good[1])
    assert result.exit_code == 2
    for path in good:
        assert f"== {path} (" in result.stdout
    assert result.stderr.splitlines() == [
        f"{bad}:4:3: error: bad registry value type 'zz': expected 1 to 11",
        f"error: {unknown}: not an artifact dcomc reads (a .reg, secedit .inf, netsh script, "
        "WiX .wxs, PowerShell .psd1/.psm1/.ps1, .msi or manifest.json)",
        "error: 2 files of 4 not read"]


# --- Samba agreement on generated descriptors ------------------------------------------------

GUIDS = ("bf967aba-0de6-11d0-a285-00aa003049e2", "00299570-246d-11d0-a768-00aa006e0529")
SIDS = st.one_of(st.sampled_from(["S-1-1-0", "S-1-5-18", "S-1-5-32-544", "S-1-5-32-562",
                                  "S-1-5-11", "S-1-3-0", "S-1-5-21-1-2-3-500"]),
                 st.builds(lambda a, b, r: f"S-1-5-21-{a}-{b}-7-{r}", st.integers(0, 2**32 - 1),
                           st.integers(0, 2**32 - 1), st.integers(500, 2**32 - 1)))
# The ACE types Samba 4.17's SDDL reads (it has no ML, callback or scoped policy ACEs).
SAMBA_TYPES = st.sampled_from([None, 1, 2, 3, 5, 6, 7, 8])
FLAGS = st.sampled_from([0, 0x01, 0x02, 0x03, 0x08, 0x0B, 0x10, 0x40, 0x80, 0xC0])


@st.composite
def aces(draw: st.DrawFn, sacl: bool) -> sd.Ace:
    kind = draw(st.sampled_from([2, 3, 7, 8]) if sacl else st.sampled_from([None, 1, 5, 6]))
    objects = kind in sd.OBJECT_TYPES
    return sd.Ace(draw(SIDS), draw(st.integers(1, 0x1F) | st.integers(1, 2**32 - 1)),
                  flags=draw(FLAGS), kind=kind,
                  object_type=draw(st.sampled_from([None, *GUIDS])) if objects else None,
                  inherited_object_type=draw(st.sampled_from([None, *GUIDS]))
                  if objects else None)


descriptors = st.builds(
    sd.SecurityDescriptor,
    owner=st.none() | SIDS, group=st.none() | SIDS,
    dacl=st.none() | st.lists(aces(False), max_size=5).map(tuple),
    control=st.sampled_from([0x8004, 0x9404, 0xA804, 0x8104]),
    sacl=st.none() | st.lists(aces(True), max_size=4).map(tuple))

SAMBA_SD = """
import json, sys
from samba.dcerpc import security
from samba.ndr import ndr_pack, ndr_unpack
dom = security.dom_sid('S-1-5-21-1-2-3')
out = []
for sddl, blob in json.load(sys.stdin):
    try:
        parsed = security.descriptor.from_sddl(sddl, dom)
        unpacked = ndr_unpack(security.descriptor, bytes.fromhex(blob))
        out.append([parsed.as_sddl(), unpacked.as_sddl(), ndr_pack(parsed).hex()])
    except Exception as exc:
        out.append(["refused", str(exc), sddl])
print(json.dumps(out))
"""


def test_samba_agrees_on_generated_descriptors() -> None:
    """Per generated descriptor (ACE types, flags, masks, SIDs, object GUIDs, DACL and SACL
    control bits), in one Samba process: Samba reads our SDDL and our bytes to the same
    descriptor, and we read Samba's bytes and Samba's SDDL back to ours."""
    require(Path(SYSTEM_PYTHON).exists() and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import samba.dcerpc.security"], capture_output=True,
        check=False).returncode == 0, "python3-samba")
    cases: list[sd.SecurityDescriptor] = []

    @settings(max_examples=300, database=None, suppress_health_check=list(HealthCheck))
    @given(descriptors)
    def collect(desc: sd.SecurityDescriptor) -> None:
        if desc.sacl is None and desc.control & 0x2A00:  # SACL flags need a SACL
            desc = sd.SecurityDescriptor(desc.owner, desc.group, desc.dacl, 0x8004)
        if desc.dacl is None and desc.control & 0x1500:
            desc = sd.SecurityDescriptor(desc.owner, desc.group, None, 0x8000, desc.sacl)
        if desc.dacl == () and desc.sacl is not None:  # Samba 4.17 misreads "D:ARS:(...)"
            desc = sd.SecurityDescriptor(desc.owner, desc.group, (), 0x8004, desc.sacl)
        cases.append(desc)

    collect()
    batch = [[sd.to_sddl(d), sdbinary.to_binary(d).hex()] for d in cases]
    proc = subprocess.run([SYSTEM_PYTHON, "-c", SAMBA_SD], input=json.dumps(batch),
                          capture_output=True, text=True, check=True, timeout=120)
    for desc, (from_text, from_bytes, packed) in zip(cases, json.loads(proc.stdout),
                                                     strict=True):
        assert from_text != "refused", (from_bytes, packed)
        assert from_text == from_bytes, sd.to_sddl(desc)
        assert sdbinary.read_binary(bytes.fromhex(packed)) == desc, from_text
        assert sd.read_sddl(from_text) == desc, from_text


def test_impacket_reads_a_mandatory_label_and_a_callback_ace() -> None:
    """What Samba 4.17 cannot (ML and callback ACEs): impacket's ldaptypes reads our bytes."""
    from impacket.ldap import ldaptypes

    desc = sd.SecurityDescriptor("S-1-5-32-544", "S-1-5-18", (
        sd.Ace("S-1-1-0", 0x3, kind=9, data=b"artx"),), sacl=(
        sd.Ace("S-1-16-4096", 0x4, kind=17),))
    blob = sdbinary.to_binary(desc)
    theirs = ldaptypes.SR_SECURITY_DESCRIPTOR(data=blob)
    sacl_ace = theirs["Sacl"].aces[0]
    assert sacl_ace["AceType"] == 17 and sacl_ace["Ace"]["Mask"]["Mask"] == 4
    assert sacl_ace["Ace"]["Sid"].formatCanonical() == "S-1-16-4096"
    dacl_ace = theirs["Dacl"].aces[0]
    assert dacl_ace["AceType"] == 9 and dacl_ace["Ace"]["Sid"].formatCanonical() == "S-1-1-0"
    assert sdbinary.read_binary(blob) == desc
    assert struct.unpack_from("<I", blob, 12)[0] == 20  # the SACL first, as Windows writes


# --- Wine: reg import / reg export on generated files --------------------------------------------

NAMES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="\\"),
                min_size=1, max_size=12)
# Characters every encoding of the test holds (cp1252 has no 0x81, 0x8D, ...; no controls).
ANSI = [c for c in map(chr, range(0x20, 0x100)) if c.isprintable() and c.encode("cp1252", "ignore")]
VALUES = st.one_of(
    st.tuples(st.just("string"), st.text(st.sampled_from(ANSI), max_size=20)),
    st.tuples(st.just("dword"), st.integers(0, 2**32 - 1)),
    st.tuples(st.sampled_from([0, 3]), st.binary(max_size=40)),
    st.tuples(st.just(11), st.binary(min_size=8, max_size=8)),
    # string types as real files carry them (Wine adds a missing terminator; ANSI in REGEDIT4)
    st.tuples(st.just(2), st.text(st.sampled_from(ANSI), max_size=10).map(
        lambda t: (t + "\0").encode("utf-16-le"))),
    st.tuples(st.just(7), st.lists(st.text(st.sampled_from(ANSI), min_size=1, max_size=6),
                                   max_size=3).map(
        lambda items: "".join(i + "\0" for i in items).encode("utf-16-le") + b"\0\0")))


@st.composite
def reg_files(draw: st.DrawFn, index: int) -> tuple[str, dict[str, Any], bytes]:
    """A .reg file in a drawn header, encoding and wrapping, the key it sets and the values."""
    key = f"HKEY_CURRENT_USER\\Software\\dcomc-test\\k{index}"
    # value names are compared without case (ASCII names here): "E" and then "e" in one key are
    # one value, the later data under the first spelling (Wine did so), which no file dcomc
    # writes relies on: names unique without case
    values = draw(st.dictionaries(NAMES, VALUES, max_size=6).filter(
        lambda drawn: len({name.upper() for name in drawn}) == len(drawn)))
    # REGEDIT4 is read in the ANSI code page, which is Wine's locale's (not cp1252 in a test
    # run): non-ASCII text goes into v5 files only
    v4 = draw(st.booleans()) and all(
        ord(c) < 0x80 for kind, data in values.values() if isinstance(data, str) for c in data)
    lines = ["REGEDIT4" if v4 else "Windows Registry Editor Version 5.00", "",
             "; generated", f"[{key}]" + draw(st.sampled_from(["", " ", "\t  "]))]
    for name, (kind, data) in values.items():
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if kind == "string":
            assert isinstance(data, str)
            lines.append(f'{quoted}="' + data.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif kind == "dword":
            lines.append(f"{quoted}=dword:{data:08x}")
        else:
            assert isinstance(data, bytes)
            prefix = "hex:" if kind == 3 else f"hex({kind:x}):"
            lines += _wrapped(f"{quoted}={prefix}", data, draw(st.sampled_from(["", "  "])))
    text = "\r\n".join([*lines, ""])
    # REGEDIT4 is ANSI; a v5 file in UTF-16LE, or (ASCII only: Wine would read other UTF-8
    # as ANSI) UTF-8 with or without BOM
    ascii_only = all(ord(c) < 0x80 for c in text)
    encoding = "ansi" if v4 else draw(st.sampled_from(
        ["utf-16-bom", "utf-16", "utf-8-bom", "ansi"] if ascii_only else ["utf-16-bom",
                                                                           "utf-16"]))
    data = {"utf-16-bom": b"\xff\xfe" + text.encode("utf-16-le"),
            "utf-16": text.encode("utf-16-le"), "utf-8-bom": b"\xef\xbb\xbf" + text.encode(),
            "ansi": text.encode("cp1252")}[encoding]
    return key, values, data


def _wrapped(prefix: str, data: bytes, trailing: str) -> list[str]:
    lines, current = [], prefix
    for i, byte in enumerate(data):
        current += f"{byte:02x}" + ("," if i < len(data) - 1 else "")
        if len(current) >= 60 and i < len(data) - 1:
            lines.append(current + "\\" + trailing)
            current = "  "
    lines.append(current)
    return lines


def _meaning(kind: str | int, data: str | int | bytes, v4: bool) -> tuple[str, str | int]:
    """A value as (RegOp type, data) the reader gives for it."""
    if kind == "string":
        return "REG_SZ", str(data)
    if kind == "dword":
        return "REG_DWORD", int(data)
    assert isinstance(data, bytes)
    return ("REG_BINARY" if kind == 3 else f"hex({kind:x})"), data.hex()


def test_wine_imports_what_we_read_and_we_read_what_wine_exports(wine: dict[str, str],
                                                                 tmp_path: Path) -> None:
    """Generated files (both headers, four encodings, every hex type, wrapped data with blanks
    after the backslash, blanks after `]`): our reading equals the values written; Wine's
    `reg import` of all of them in one batch file (a UTF-16LE file without BOM gets one, a
    UTF-8 file loses it: Wine 8 skips both without a word), then one `reg export`, read back
    by us, equals them too."""
    files: list[tuple[str, dict[str, Any], bytes]] = []

    @settings(max_examples=25, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        files.append(data.draw(reg_files(len(files))))

    collect()
    batch = tmp_path / "import.cmd"
    commands = []
    for index, (key, values, data) in enumerate(files):
        v4 = regread.sniff(data) and regread.parse_bytes(data).version == regread.HEADER_V4
        want = sorted((key, name, *_meaning(kind, value, v4))
                      for name, (kind, value) in values.items())
        ours = [(op.key, op.name, op.type, op.data)
                for op in parse_reg(regread.decode(data)[0]).ops]
        assert sorted(ours) == want
        # what ours reads and Wine 8's reg import skips without a word: UTF-16LE without its
        # BOM, UTF-8 with one; Wine gets them with the BOM added and removed
        if data[1:2] == b"\0":
            data = b"\xff\xfe" + data
        data = data.removeprefix(b"\xef\xbb\xbf")
        path = tmp_path / f"f{index}.reg"
        path.write_bytes(data)
        commands.append(f"reg import Z:{str(path).replace('/', chr(92))}")
    batch.write_text("\r\n".join(["@echo off", *commands]) + "\r\n")
    proc = subprocess.run(["wine", "cmd", "/c", f"Z:{str(batch).replace('/', chr(92))}"],
                          env=wine, capture_output=True, check=False, timeout=120)
    said = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert not said.strip(), said[-2000:]  # reg import is silent when it succeeds
    out = tmp_path / "export.reg"
    exporting = subprocess.run(
        ["wine", "reg", "export", "HKEY_CURRENT_USER\\Software\\dcomc-test",
         f"Z:{str(out).replace('/', chr(92))}", "/y"], env=wine, capture_output=True, text=True,
        check=False, timeout=120)
    assert exporting.returncode == 0, exporting.stderr
    exported = {(op.key, op.name): (op.type, op.data)
                for op in parse_reg(regread.decode(out.read_bytes())[0]).ops}
    for key, values, data in files:
        reg = regread.parse_bytes(data)
        v4 = reg.version == regread.HEADER_V4
        for name, (kind, value) in values.items():
            meant = _meaning(kind, value, v4)
            if kind in (2, 7) and "UTF-16" not in reg.encoding:
                continue  # an 8-bit file's string data is ANSI: reg import makes it UTF-16
            assert exported.get((key, name)) == meant, (key, name)
