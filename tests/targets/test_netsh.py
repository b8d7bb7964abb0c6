"""The netsh script (issue 17): every value is one quoted literal that the reader reads back
exactly, and what netsh would read as more than one value is refused at both ends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dcomc.pipeline import compile_file
from dcomc_targets import TARGETS, EmitContext, Options
from dcomc_targets.netsh import PREFIX, NetshRule, add_rule_line, parse
from dcomc_targets.quoting import QuoteError, netsh_list, netsh_ports, netsh_value

ROOT = Path(__file__).resolve().parents[2]
NETSH = next(t for t in TARGETS if t.name == "netsh")

# What netsh, cmd and the reader could take for syntax: separators, `=`, quotes of other
# kinds, `%`, list commas, and non-ASCII.
HOSTILE = " =,%'`$()[]{}<>&|;#!^\\/:.-_Üß\u00a0\u2019"
value = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters='"')
                | st.sampled_from(HOSTILE), max_size=40)
item = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
                             blacklist_characters='",') | st.sampled_from("=%'$:/.-_"),
               min_size=1, max_size=20)
items = st.lists(item, min_size=1, max_size=4).map(tuple)


def script(rule: NetshRule) -> str:
    return "\r\n".join([f"# {rule.name}", f"{PREFIX} delete rule name={netsh_value(rule.name)}",
                        add_rule_line(rule)]) + "\r\n"


@settings(max_examples=300, deadline=None)
@given(value, value, value, value, items, items)
def test_every_value_reads_back_as_one_literal(name: str, program: str, service: str,
                                               description: str, profiles: tuple[str, ...],
                                               remote: tuple[str, ...]) -> None:
    rule = NetshRule(name, "TCP", "135", program or None, service or None, profiles, remote,
                     description)
    assert parse(script(rule)).rules == (rule,)


@pytest.mark.parametrize("remote", [
    "fe80::1%x remoteip=any protocol=any localport=any", "fe80::1%x,any", "10.0.0.1 localport=any",
    "", 'fe80::1%x" remoteip="any',
])  # fmt: skip
def test_a_remote_that_netsh_would_read_as_more_is_refused(remote: str) -> None:
    rule = NetshRule("r", "TCP", None, None, None, ("domain",), (remote,), "d")
    with pytest.raises(QuoteError):
        add_rule_line(rule)


def test_values_are_quoted() -> None:
    rule = NetshRule("r", "TCP", "135", None, None, ("domain", "private"),
                     ("10.0.0.0/8", "fe80::1%12"), "d")
    assert add_rule_line(rule).endswith(
        ' protocol="TCP" localport="135" profile="domain,private" '
        'remoteip="10.0.0.0/8,fe80::1%12" description="d"')


@pytest.mark.parametrize("ports", ["135", "1-65535", "135,49152-65535"])
def test_port_ranges(ports: str) -> None:
    assert netsh_ports(ports) == f'"{ports}"'


@pytest.mark.parametrize("ports", ["0", "65536", "200-100", "1-", "-5", "01", "1,,2", "any",
                                   "135 remoteip=any", "1-2-3"])
def test_bad_port_ranges_are_refused(ports: str) -> None:
    with pytest.raises(QuoteError):
        netsh_ports(ports)


def test_empty_list_is_refused() -> None:
    with pytest.raises(QuoteError, match="empty"):
        netsh_list(())


ADD = f'{PREFIX} delete rule name="r"\r\n{PREFIX} add rule name="r" dir=in action=allow '


@pytest.mark.parametrize("rest", [
    'protocol=TCP profile=domain remoteip=fe80::1%x remoteip=any',  # `%` is not bare
    'protocol=TCP profile=domain remoteip="10.0.0.1" remoteip="any"',  # given twice
    'protocol=TCP profile=domain remoteip="10.0.0.1"x',  # glued pieces
    'protocol=TCP profile=domain remoteip=10.0.0.1"x y"',
    'protocol=TCP profile=domain remoteip="10.0.0.1" localip="any"',  # not ours
    'protocol=TCP profile=domain remoteip="10.0.0.1" any',
    'protocol=TCP profile=domain',  # no remoteip
])  # fmt: skip
def test_reader_refuses_what_is_not_one_literal_per_value(rest: str) -> None:
    with pytest.raises(ValueError):
        parse(ADD + rest + "\r\n")


def test_reader_still_reads_unquoted_lists() -> None:
    """Bundles of earlier versions wrote protocol, ports, profiles and addresses bare."""
    got = parse(ADD + "protocol=TCP localport=135 profile=domain,private "
                "remoteip=10.7.3.0/24,fe80::1 description=\"d\"\r\n")
    assert got.rules == (NetshRule("r", "TCP", "135", None, None, ("domain", "private"),
                                   ("10.7.3.0/24", "fe80::1"), "d"),)


def test_zone_ids_pass_through_quoted(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "examples" / "plant7-workgroup.yaml").read_text())
    # the HMIs' network too, so that the flow verifier finds the callers admitted
    spec["machine"]["server"]["firewall"]["remote"] = ["fe80::1%12", "fe80::%eth0/64",
                                                       "10.7.3.0/24"]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    comp = compile_file(path)
    ctx = EmitContext(comp.plan, Options(), path.name, comp.sha256)
    host = next(h for h in comp.plan.hosts if "server" in h.roles)
    (artifact,) = NETSH.emit(host, ctx)
    quoted = re.findall(rb'remoteip="([^"]*)"', artifact.data)
    assert quoted and all(set(q.split(b",")) == {b"fe80::1%12", b"fe80::%eth0/64",
                                                 b"10.7.3.0/24"} for q in quoted)
    assert NETSH.read(artifact.data) == NETSH.expected(host, ctx)


LINE = 'netsh advfirewall firewall add rule name="Zül \x81" dir=in action=allow\r\n'


@pytest.mark.parametrize("data", [
    LINE.encode("latin-1"),  # ANSI: cp1252 leaves 0x81 undefined, Windows maps it 1:1
    b"\xef\xbb\xbf" + LINE.encode("utf-8"),
    b"\xff\xfe" + LINE.encode("utf-16-le"),
    LINE.encode("utf-16-le"),  # no BOM
], ids=["ansi", "utf-8-bom", "utf-16-bom", "utf-16"])
def test_a_netsh_script_decodes_as_the_other_readers_read_text(data: bytes) -> None:
    """The netsh reader shares decode_windows_text with the .reg and .inf readers."""
    from dcomc_targets import netshread, regread

    assert netshread.decode(data) == regread.decode(data)[0]
    [command] = netshread.inspect(netshread.parse_text(netshread.decode(data)))["commands"]
    assert command["rule"]["name"] == "Zül \x81"


def test_a_netsh_script_with_a_utf8_bom_and_bad_utf8_is_refused() -> None:
    from dcomc_targets import netshread
    from dcomc_targets.readerror import ReadError

    with pytest.raises(ReadError, match="not UTF-8 text: invalid start byte at byte 46"):
        netshread.decode(b"\xef\xbb\xbf" + LINE.encode("latin-1"))
