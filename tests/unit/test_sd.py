"""Tests for dcomc.sd: the COM security-descriptor codec (dcom-facts §3, §4, §9)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from impacket.ldap import ldaptypes

from dcomc.windows.sd import (
    ACCESS_RIGHTS,
    LAUNCH_RIGHTS,
    Ace,
    SDError,
    SecurityDescriptor,
    mask_to_rights,
    merge_aces,
    parse_sddl,
    rights_table,
    rights_to_mask,
    to_sddl,
    validate_com,
)
from dcomc.windows.sdbinary import (
    binary_to_sddl,
    from_binary,
    read_hex_input,
    sddl_to_binary,
    to_binary,
)
from dcomc.windows.sids import SDDL_ALIAS_TO_SID

# dcom-facts §3.2 worked example, Windows order (DACL@0x14, Owner@0x34, Group@0x44).
DCOM_USERS_SDDL = "O:BAG:BAD:(A;;CCDCLCSWRP;;;S-1-5-32-562)"
DCOM_USERS_HEX = (
    "01,00,04,80,34,00,00,00,44,00,00,00,00,00,00,00,14,00,00,00,"
    "02,00,20,00,01,00,00,00,"
    "00,00,18,00,1f,00,00,00,01,02,00,00,00,00,00,05,20,00,00,00,32,02,00,00,"
    "01,02,00,00,00,00,00,05,20,00,00,00,20,02,00,00,"
    "01,02,00,00,00,00,00,05,20,00,00,00,20,02,00,00"
)
DCOM_USERS_BYTES = bytes.fromhex(DCOM_USERS_HEX.replace(",", ""))

FOUR_ACE_LAUNCH = (
    "O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCSW;;;WD)"
    "(A;;CCDCLCSWRP;;;S-1-5-32-562)(A;;CCDCLCSWRP;;;LU)"
)

# dcom-facts §2.1, observed Windows 10/11 defaults.
_LPAC = "S-1-15-3-1024-2405443489-874036122-4286035555-1823921565-1746547431-2453885448-3625952902-991631256"  # noqa: E501
WIN10_LAUNCH_RESTRICTION = (
    "O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCSW;;;WD)(A;;CCDCLCSWRP;;;S-1-5-32-562)"
    f"(A;;CCDCLCSWRP;;;LU)(A;;CCDCSW;;;AC)(A;;CCDCSW;;;{_LPAC})"
)
WIN10_ACCESS_RESTRICTION = (
    "O:BAG:BAD:(A;;CCDCLC;;;WD)(A;;CCDC;;;AN)(A;;CCDCLC;;;S-1-5-32-562)"
    f"(A;;CCDCLC;;;LU)(A;;CCDC;;;AC)(A;;CCDC;;;{_LPAC})"
)
WIN10_DEFAULT_LAUNCH = "O:BAG:BAD:(A;;CCDCLCSWRP;;;BA)(A;;CCDCLCSWRP;;;SY)(A;;CCDCLCSWRP;;;IU)"
WIN10_DEFAULT_ACCESS = "O:BAG:BAD:(A;;CCDCLC;;;PS)(A;;CCDC;;;SY)(A;;CCDCLC;;;BA)"

# dcom-facts §9: the worked example as `reg export` writes it, with CRLF line ends.
REG_EXPORT_SNIPPET = (
    '"LaunchPermission"=hex:01,00,04,80,34,00,00,00,44,00,00,00,00,00,00,00,14,00,\\\r\n'
    "  00,00,02,00,20,00,01,00,00,00,00,00,18,00,1f,00,00,00,01,02,00,00,00,00,00,\\\r\n"
    "  05,20,00,00,00,32,02,00,00,01,02,00,00,00,00,00,05,20,00,00,00,20,02,00,00,\\\r\n"
    "  01,02,00,00,00,00,00,05,20,00,00,00,20,02,00,00\r\n"
)


def _header(blob: bytes) -> tuple[int, int, int, int, int, int, int]:
    fields: tuple[int, int, int, int, int, int, int] = struct.unpack_from("<BBHIIII", blob)
    return fields


def _with_offset(blob: bytes, field: int, value: int) -> bytes:
    """`blob` with header offset field (0 owner, 1 group, 2 sacl, 3 dacl) set to `value`."""
    out = bytearray(blob)
    struct.pack_into("<I", out, 4 + 4 * field, value)
    return bytes(out)


# ------------------------------------------------------------------------------------------
# Worked examples


def test_worked_example_is_byte_exact() -> None:
    blob = sddl_to_binary(DCOM_USERS_SDDL)
    assert len(blob) == 84
    assert blob == DCOM_USERS_BYTES


def test_worked_example_decodes_back() -> None:
    assert binary_to_sddl(DCOM_USERS_BYTES) == DCOM_USERS_SDDL
    sd = from_binary(DCOM_USERS_BYTES)
    assert sd.owner == sd.group == "S-1-5-32-544"
    assert sd.dacl == (Ace("S-1-5-32-562", 0x1F),)
    assert sd.control == 0x8004


def test_four_ace_launch_restriction_is_152_bytes() -> None:
    blob = sddl_to_binary(FOUR_ACE_LAUNCH)
    assert len(blob) == 152
    assert binary_to_sddl(blob) == FOUR_ACE_LAUNCH


WIN10_DEFAULTS = (
    WIN10_LAUNCH_RESTRICTION,
    WIN10_ACCESS_RESTRICTION,
    WIN10_DEFAULT_LAUNCH,
    WIN10_DEFAULT_ACCESS,
)


@pytest.mark.parametrize("sddl", WIN10_DEFAULTS)
def test_windows_defaults_round_trip(sddl: str) -> None:
    assert to_sddl(parse_sddl(sddl)) == sddl
    assert binary_to_sddl(sddl_to_binary(sddl)) == sddl


def test_distributed_com_users_has_no_alias_and_stays_literal() -> None:
    sd = parse_sddl("D:(A;;CCDCLC;;;S-1-5-32-562)(A;;CCDCLC;;;S-1-5-32-574)")
    assert to_sddl(sd) == "D:(A;;CCDCLC;;;S-1-5-32-562)(A;;CCDCLC;;;CD)"


def test_net_component_order_decodes_to_same_sddl() -> None:
    """.NET writes Owner, Group, SACL, DACL (dcom-facts §3.2); build that layout by hand."""
    owner = group = bytes.fromhex("01020000000000052000000020020000")
    ace = bytes.fromhex("000018001f00000001020000000000052000000032020000")
    dacl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
    owner_at = 20
    group_at = owner_at + len(owner)
    dacl_at = group_at + len(group)
    header = struct.pack("<BBHIIII", 1, 0, 0x8004, owner_at, group_at, 0, dacl_at)
    blob = header + owner + group + dacl
    assert len(blob) == 84 and blob != DCOM_USERS_BYTES
    assert binary_to_sddl(blob) == DCOM_USERS_SDDL
    assert to_binary(from_binary(blob)) == DCOM_USERS_BYTES


def test_sddl_whitespace_flags_and_hex_rights() -> None:
    sd = parse_sddl(" O: BA  G:SY D:PAI ( A ; OICI ; 0x1F ;;; S-1-5-21-1-2-3-500 ) (D;;CC;;;WD) ")
    assert sd.owner == "S-1-5-32-544" and sd.group == "S-1-5-18"
    assert sd.control == 0x8000 | 0x0004 | 0x1000 | 0x0400
    assert sd.dacl == (
        Ace("S-1-5-21-1-2-3-500", 0x1F, True, 0x03),
        Ace("S-1-1-0", 0x1, False, 0),
    )
    assert to_sddl(sd) == "O:BAG:SYD:PAI(A;OICI;CCDCLCSWRP;;;S-1-5-21-1-2-3-500)(D;;CC;;;WD)"


def test_non_com_rights_are_written_as_hex() -> None:
    sd = parse_sddl("D:(A;;GAWP;;;BA)(A;;0x0;;;SY)")
    assert [ace.mask for ace in sd.dacl or ()] == [0x10000020, 0]
    assert to_sddl(sd) == "D:(A;;0x10000020;;;BA)(A;;0x0;;;SY)"


def test_sid_is_canonicalised() -> None:
    assert Ace("S-1-05-032-0544", 1).sid == "S-1-5-32-544"
    assert parse_sddl("O:S-1-5-032-544").owner == "S-1-5-32-544"


def test_empty_sddl_is_the_empty_descriptor_which_com_refuses() -> None:
    assert parse_sddl("  ") == SecurityDescriptor(None, None, None, 0x8000)
    assert to_sddl(parse_sddl("")) == ""
    with pytest.raises(SDError, match=r"no DACL"):
        sddl_to_binary("")


def test_owner_and_dacl_are_optional() -> None:
    sd = parse_sddl("O:BA")
    assert sd == SecurityDescriptor("S-1-5-32-544", None, None, 0x8000)
    blob = to_binary(sd)
    assert _header(blob) == (1, 0, 0x8000, 20, 0, 0, 0)
    assert from_binary(blob) == sd
    assert to_sddl(parse_sddl("D:")) == "D:"


# ------------------------------------------------------------------------------------------
# Cross-check against impacket, an independent implementation of MS-DTYP §2.4.6


def _impacket_view(blob: bytes) -> tuple[str, str, list[tuple[int, int, str]]]:
    parsed = ldaptypes.SR_SECURITY_DESCRIPTOR(data=blob)
    aces = [
        (ace["AceType"], ace["Ace"]["Mask"]["Mask"], ace["Ace"]["Sid"].formatCanonical())
        for ace in parsed["Dacl"].aces
    ]
    return parsed["OwnerSid"].formatCanonical(), parsed["GroupSid"].formatCanonical(), aces


def _our_view(sd: SecurityDescriptor) -> tuple[str, str, list[tuple[int, int, str]]]:
    assert sd.owner is not None and sd.group is not None and sd.dacl is not None
    aces = [(0 if ace.allow else 1, ace.mask, ace.sid) for ace in sd.dacl]
    return sd.owner, sd.group, aces


@pytest.mark.parametrize(
    "sddl", [DCOM_USERS_SDDL, FOUR_ACE_LAUNCH, WIN10_LAUNCH_RESTRICTION, WIN10_ACCESS_RESTRICTION]
)
def test_impacket_reads_our_binary(sddl: str) -> None:
    sd = parse_sddl(sddl)
    assert _impacket_view(to_binary(sd)) == _our_view(sd)


def _impacket_sid(sid: str) -> ldaptypes.LDAP_SID:
    out = ldaptypes.LDAP_SID()
    out.fromCanonical(sid)
    return out


def _impacket_descriptor(owner: str, group: str, aces: list[tuple[int, int, str]]) -> bytes:
    acl = ldaptypes.ACL()
    acl["AclRevision"], acl["Sbz1"], acl["Sbz2"] = 2, 0, 0
    acl.aces = []
    for ace_type, mask, sid in aces:
        body = (ldaptypes.ACCESS_ALLOWED_ACE if ace_type == 0 else ldaptypes.ACCESS_DENIED_ACE)()
        body["Mask"] = ldaptypes.ACCESS_MASK()
        body["Mask"]["Mask"] = mask
        body["Sid"] = _impacket_sid(sid)
        ace = ldaptypes.ACE()
        ace["AceType"], ace["AceFlags"], ace["Ace"] = ace_type, 0, body
        acl.aces.append(ace)
    sd = ldaptypes.SR_SECURITY_DESCRIPTOR()
    sd["Revision"], sd["Sbz1"], sd["Control"] = b"\x01", b"\x00", 0x8004
    sd["OwnerSid"], sd["GroupSid"] = _impacket_sid(owner), _impacket_sid(group)
    sd["Sacl"], sd["Dacl"] = b"", acl
    data: bytes = sd.getData()
    return data


def test_impacket_built_descriptor_decodes() -> None:
    aces = [(1, 0x7, "S-1-5-7"), (0, 0x1F, "S-1-5-32-562"), (0, 0xB, "S-1-1-0")]
    blob = _impacket_descriptor("S-1-5-18", "S-1-5-32-544", aces)
    sd = from_binary(blob)
    assert _our_view(sd) == ("S-1-5-18", "S-1-5-32-544", aces)
    assert to_sddl(sd) == "O:SYG:BAD:(D;;CCDCLC;;;AN)(A;;CCDCLCSWRP;;;S-1-5-32-562)(A;;CCDCSW;;;WD)"
    # impacket writes the same Windows component order, so the bytes must agree too.
    assert to_binary(sd) == blob


# ------------------------------------------------------------------------------------------
# Property tests

_small_authority_sids = st.builds(
    lambda auth, subs: "-".join(["S", "1", str(auth), *map(str, subs)]),
    st.integers(0, 255),
    st.lists(st.integers(0, 2**32 - 1), max_size=15),
)
_any_authority_sids = st.builds(
    lambda auth, subs: "-".join(["S", "1", str(auth), *map(str, subs)]),
    st.integers(0, 2**48 - 1),
    st.lists(st.integers(0, 2**32 - 1), max_size=15),
)
_domain_sids = st.builds(
    lambda subs, rid: "-".join(["S-1-5-21", *map(str, subs), str(rid)]),
    st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=3),
    st.integers(500, 2**32 - 1),
)
_well_known_sids = st.sampled_from(sorted({*SDDL_ALIAS_TO_SID.values(), "S-1-5-32-562"}))
_sids = st.one_of(_well_known_sids, _domain_sids, _any_authority_sids)
_impacket_sids = st.one_of(_well_known_sids, _domain_sids, _small_authority_sids)
_com_masks = st.integers(0, 0x1F).map(lambda m: m | 0x1)
_flags = st.sampled_from([0, 0x01, 0x02, 0x03, 0x08, 0x10, 0x40, 0x80, 0xDF])
_controls = st.sampled_from([0x8004, 0x9004, 0x8404, 0x8104, 0x9504, 0x8005, 0x800C])
# SDDL carries only the DACL flags P, AR, AI, and only when there is a DACL.
_sddl_controls = st.sampled_from([0x8004, 0x9004, 0x8404, 0x8104, 0x9504])


def _aces(sids: st.SearchStrategy[str]) -> st.SearchStrategy[Ace]:
    return st.builds(Ace, sid=sids, mask=_com_masks, allow=st.booleans(), flags=_flags)


def _descriptors(
    sids: st.SearchStrategy[str], controls: st.SearchStrategy[int] = _controls
) -> st.SearchStrategy[SecurityDescriptor]:
    return st.builds(
        SecurityDescriptor,
        owner=st.none() | sids,
        group=st.none() | sids,
        dacl=st.none() | st.lists(_aces(sids), max_size=8).map(tuple),
        control=controls,
    )


def _check_layout(blob: bytes) -> None:
    assert len(blob) % 4 == 0
    revision, _sbz1, control, *offsets = _header(blob)
    assert revision == 1 and control & 0x8000
    assert offsets[2] == 0  # never a SACL
    for offset in offsets:
        assert offset == 0 or (20 <= offset < len(blob) and offset % 4 == 0)


@settings(max_examples=300)
@given(_descriptors(_sids))
def test_binary_round_trip(sd: SecurityDescriptor) -> None:
    blob = to_binary(sd)
    _check_layout(blob)
    decoded = from_binary(blob)
    assert decoded == sd
    assert to_binary(decoded) == blob


@settings(max_examples=300)
@given(_descriptors(_sids, _sddl_controls))
def test_sddl_round_trip(sd: SecurityDescriptor) -> None:
    if sd.dacl is None:  # no "D:" section, so no place for the DACL flags
        sd = SecurityDescriptor(sd.owner, sd.group, None, 0x8000)
    text = to_sddl(sd)
    parsed = parse_sddl(text)
    assert parsed == sd
    assert to_sddl(parsed) == text


@settings(max_examples=100)
@given(_impacket_sids, _impacket_sids, st.lists(_aces(_impacket_sids), min_size=1, max_size=6))
def test_impacket_agrees_on_random_descriptors(owner: str, group: str, aces: list[Ace]) -> None:
    sd = SecurityDescriptor(owner, group, tuple(aces))
    assert _impacket_view(to_binary(sd)) == _our_view(sd)


@given(st.binary(max_size=200))
def test_from_binary_never_crashes_on_garbage(data: bytes) -> None:
    _decoded_or_refused(data)


def _decoded_or_refused(data: bytes) -> None:
    """Bytes decode to a descriptor that re-encodes to the same descriptor, or are refused
    with SDError; never another exception."""
    try:
        sd = from_binary(data)
    except SDError:
        return
    assert from_binary(to_binary(sd)) == sd


@given(st.binary(max_size=60))
def test_bit_flips_in_a_valid_blob_give_sd_or_sderror(noise: bytes) -> None:
    blob = bytearray(DCOM_USERS_BYTES)
    for i, byte in enumerate(noise):
        blob[(i * 7) % len(blob)] ^= byte
    _decoded_or_refused(bytes(blob))


# ------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    ("sddl", "message"),
    [
        ("O:BAG:BAD:(A;;DCLC;;;BA)", r"Administrators \(S-1-5-32-544\).*lacks COM_RIGHTS_EXECUTE"),
        ("D:(A;;CC;;;BA)(A;;CCDC;;;WD)", r"mixes old-format.*Administrators"),
        ("D:(A;;0x3f;;;BA)", r"0x3f sets bits above 0x1F"),
        ("D:(A;;CCWP;;;S-1-5-21-1-2-3-1001)", r"S-1-5-21-1-2-3-1001: mask 0x21 sets bits above"),
        ("O:BA", r"no DACL"),
    ],
)
def test_com_rule_refusals(sddl: str, message: str) -> None:
    with pytest.raises(SDError, match=message):
        sddl_to_binary(sddl)


def test_old_format_only_acl_is_accepted() -> None:
    sd = parse_sddl("D:(A;;CC;;;WD)(A;;CC;;;BA)")  # CC = COM_RIGHTS_EXECUTE alone (old format)
    validate_com(sd)  # raises SDError if refused
    assert sd.dacl is not None
    assert [(ace.sid, ace.mask) for ace in sd.dacl] == [("S-1-1-0", 1), ("S-1-5-32-544", 1)]


def test_binary_to_sddl_applies_com_rules() -> None:
    blob = to_binary(parse_sddl("D:(A;;DC;;;WD)"))
    with pytest.raises(SDError, match=r"Everyone \(S-1-1-0\).*lacks COM_RIGHTS_EXECUTE"):
        binary_to_sddl(blob)


@pytest.mark.parametrize(
    ("sddl", "message"),
    [
        ("O:S-1-5-G:BA", r"malformed SID 'S-1-5-'"),
        ("D:(A;;CC;;;S-1-x)", r"malformed SID 'S-1-x'"),
        ("O:S-1-5-21-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15", r"malformed SID"),
        ("O:XX", r"unknown SDDL alias 'XX'"),
        ("D:(A;;CC;;;ba)", r"unknown SDDL alias 'ba'"),
        ("O:LA", r"alias 'LA' \(local Administrator account\) is machine- or domain-relative"),
        ("D:(A;;CC;;;LG)", r"'LG'.*machine- or domain-relative"),
        ("O:BAG:BAD:(A;;CC;;;BA)junk", r"unexpected text 'junk' at position 22"),
        ("O:BAG:BAD:(A;;CC;;;BA))", r"unexpected text '\)'"),
        ("D:(A;;CC;;;BA", r"unbalanced parentheses: '\(' at position 2 is never closed"),
        ("D:(A;;CC;;;(BA)", r"unbalanced parentheses"),
        ("D:(OA;;CC;bf967aba-0de6-11d0-a285-00aa003049e2;;BA)", r"object ACE .* not supported"),
        ("D:(A;;CC;bf967aba-0de6-11d0-a285-00aa003049e2;;BA)", r"object GUIDs"),
        ("D:(AU;SA;CC;;;BA)", r"ACE type 'AU'.*not supported"),
        ("D:(A;;CC;;BA)", r"has 5 fields, expected 6"),
        ("D:(A;;XY;;;BA)", r"unknown SDDL right 'XY'"),
        ("D:(A;;0x;;;BA)", r"bad hexadecimal rights"),
        ("D:(A;QQ;CC;;;BA)", r"unknown ACE flag 'QQ'"),
        ("D:(A;;;;;BA)", r"empty rights"),
        ("S:(AU;SA;CC;;;WD)", r"SACL not supported"),
        ("D:NO_ACCESS_CONTROL", r"NULL DACL"),
        ("O:BAO:SY", r"duplicate O: section"),
        ("X:BA", r"unexpected text 'X:BA' at position 0"),
    ],
)
def test_sddl_refusals(sddl: str, message: str) -> None:
    with pytest.raises(SDError, match=message):
        parse_sddl(sddl)


def test_binary_refusals_truncation_and_offsets() -> None:
    with pytest.raises(SDError, match=r"truncated: 10 bytes"):
        from_binary(DCOM_USERS_BYTES[:10])
    with pytest.raises(SDError, match=r"owner offset 52 is past the end of the 50-byte"):
        from_binary(DCOM_USERS_BYTES[:50])
    with pytest.raises(SDError, match=r"group SID at offset 68 needs 16 bytes but only 8"):
        from_binary(DCOM_USERS_BYTES[:76])
    with pytest.raises(SDError, match=r"owner offset 4096 is past the end of the 84-byte"):
        from_binary(_with_offset(DCOM_USERS_BYTES, 0, 0x1000))
    with pytest.raises(SDError, match=r"DACL offset 8 points into the 20-byte header"):
        from_binary(_with_offset(DCOM_USERS_BYTES, 3, 8))
    with pytest.raises(SDError, match=r"group offset 70 is not 4-byte aligned"):
        from_binary(_with_offset(DCOM_USERS_BYTES, 1, 70))


def _patched(offset: int, fmt: str, value: int, blob: bytes = DCOM_USERS_BYTES) -> bytes:
    out = bytearray(blob)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (_patched(0, "<B", 2), r"descriptor revision 2, expected 1"),
        (_patched(2, "<H", 0x0004), r"lacks SE_SELF_RELATIVE"),
        (_patched(2, "<H", 0x8014), r"SACL not supported"),
        (_with_offset(DCOM_USERS_BYTES, 2, 20), r"SACL not supported"),
        (_patched(2, "<H", 0x8000), r"DACL offset 20 is set but control 0x8000 lacks"),
        (_with_offset(DCOM_USERS_BYTES, 3, 0), r"NULL DACL"),
        (_patched(20, "<B", 3), r"DACL has revision 3"),
        (_patched(22, "<H", 0x22), r"invalid AclSize 34"),
        (_patched(22, "<H", 0x44), r"DACL \(AclSize 68\) at offset 20 needs 68 bytes"),
        (_patched(24, "<H", 2), r"AceCount 2 and AclSize 32 are inconsistent: only 1 ACEs fit"),
        (_patched(28, "<B", 5), r"unsupported ACE type 0x05 \(ACCESS_ALLOWED_OBJECT\)"),
        (_patched(28, "<B", 2), r"unsupported ACE type 0x02 \(SYSTEM_AUDIT\)"),
        (_patched(30, "<H", 0x1A), r"invalid AceSize 26"),
        (_patched(30, "<H", 0x1C), r"ACE #0 at offset 28 needs 28 bytes"),
        (_patched(36, "<B", 2), r"SID of ACE #0 at offset 36 has SID revision 2"),
        (_patched(37, "<B", 16), r"has 16 sub-authorities, at most 15"),
        (_patched(37, "<B", 3), r"SID of ACE #0 at offset 36 needs 20 bytes but only 16"),
        (_patched(52, "<B", 0), r"owner SID at offset 52 has SID revision 0"),
    ],
)
def test_binary_refusals(blob: bytes, message: str) -> None:
    with pytest.raises(SDError, match=message):
        from_binary(blob)


def test_acl_revision_4_is_read() -> None:
    assert from_binary(_patched(20, "<B", 4)) == from_binary(DCOM_USERS_BYTES)


def test_ace_padding_is_tolerated() -> None:
    """OpcEnum's legacy blob pads an ACE (AceSize 24 for a 12-byte SID, dcom-facts §3.2)."""
    sd = parse_sddl("O:BAG:BAD:(A;;CC;;;WD)")
    blob = bytearray(to_binary(sd))
    ace_at = 28
    padded = bytearray(blob[ace_at : ace_at + 20]) + b"\0\0\0\0"
    struct.pack_into("<H", padded, 2, 24)
    blob[ace_at : ace_at + 20] = padded
    struct.pack_into("<H", blob, 22, 8 + 24)
    struct.pack_into("<II", blob, 4, 0x14 + 32, 0x14 + 32 + 16)
    assert binary_to_sddl(bytes(blob)) == "O:BAG:BAD:(A;;CC;;;WD)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sid": "BA", "mask": 1}, r"malformed SID 'BA'"),
        ({"sid": "S-1-5-18\n", "mask": 1}, r"malformed SID"),
        ({"sid": "S-1-5-18", "mask": -1}, r"not a 32-bit unsigned integer"),
        ({"sid": "S-1-5-18", "mask": 1 << 32}, r"not a 32-bit unsigned integer"),
        ({"sid": "S-1-5-18", "mask": 1, "flags": 256}, r"do not fit in one byte"),
    ],
)
def test_ace_validates_its_fields(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SDError, match=message):
        Ace(**kwargs)  # type: ignore[arg-type]


def test_unexpressible_ace_flag_is_refused_in_sddl() -> None:
    sd = SecurityDescriptor(None, None, (Ace("S-1-5-18", 1, True, 0x20),))
    with pytest.raises(SDError, match=r"bits 0x20 that SDDL cannot express"):
        to_sddl(sd)
    assert from_binary(to_binary(sd)) == sd


# ------------------------------------------------------------------------------------------
# Hex input


def test_read_hex_input_reg_export_with_crlf_continuations() -> None:
    assert read_hex_input(REG_EXPORT_SNIPPET) == DCOM_USERS_BYTES
    assert read_hex_input(REG_EXPORT_SNIPPET.replace("\r\n", "\n")) == DCOM_USERS_BYTES


def test_read_hex_input_without_name_prefix() -> None:
    body = REG_EXPORT_SNIPPET.split("=", 1)[1]
    assert body.startswith("hex:")
    assert read_hex_input(body) == DCOM_USERS_BYTES
    assert read_hex_input(body.removeprefix("hex:")) == DCOM_USERS_BYTES


def test_read_hex_input_plain_hex() -> None:
    plain = DCOM_USERS_BYTES.hex()
    assert read_hex_input(plain) == DCOM_USERS_BYTES
    assert read_hex_input(plain.upper()) == DCOM_USERS_BYTES
    spaced = "\n".join(" ".join(plain[i : i + 2] for i in range(j, j + 32, 2)) for j in (0, 32))
    assert read_hex_input(spaced + plain[64:] + "\n") == DCOM_USERS_BYTES
    assert binary_to_sddl(read_hex_input(plain)) == DCOM_USERS_SDDL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0100048", r"odd number of hex digits \(7\)"),
        ("01 00 0g", r"non-hex character 'g'"),
        ("hex:01,00,4,80", r"bad byte '4'"),
        ('"X"=hex:01,zz', r"bad byte 'zz'"),
        ('"X"=dword:00000005', r"non-hex character '\"'"),
        ("", r"no hex data"),
        ('"LaunchPermission"=hex:', r"no hex data"),
    ],
)
def test_read_hex_input_refusals(text: str, message: str) -> None:
    with pytest.raises(SDError, match=message):
        read_hex_input(text)


# ------------------------------------------------------------------------------------------
# Rights names


def test_rights_to_mask() -> None:
    assert rights_to_mask("launch", LAUNCH_RIGHTS) == 0x1F
    assert rights_to_mask("launch", ["local_launch", "local_activation"]) == 0x0B
    assert rights_to_mask("launch", ["remote_launch", "remote_activation"]) == 0x15
    assert rights_to_mask("access", ["local_access", "remote_access"]) == 0x07
    assert rights_to_mask("access", ["remote_access"]) == 0x05
    assert rights_to_mask("access", "local_access") == 0x03


@pytest.mark.parametrize(
    ("kind", "rights", "message"),
    [
        ("launch", ["local_access"], r"unknown launch right 'local_access'.*local_launch"),
        ("access", ["remote_launch"], r"unknown access right 'remote_launch'"),
        ("launch", [], r"no launch rights given"),
        ("other", ["local_access"], r"unknown rights kind 'other'"),
    ],
)
def test_rights_to_mask_refusals(kind: str, rights: list[str], message: str) -> None:
    with pytest.raises(SDError, match=message):
        rights_to_mask(kind, rights)  # type: ignore[arg-type]


def test_mask_to_rights() -> None:
    assert mask_to_rights("launch", 0x1F) == tuple(LAUNCH_RIGHTS)
    assert mask_to_rights("launch", 0x0B) == ("local_launch", "local_activation")
    assert mask_to_rights("access", 0x07) == ("local_access", "remote_access")
    assert mask_to_rights("access", 0x03) == ("local_access",)
    assert mask_to_rights("launch", 0x01) == tuple(LAUNCH_RIGHTS)  # old format = everything
    assert mask_to_rights("access", 0x01) == tuple(ACCESS_RIGHTS)
    with pytest.raises(SDError, match=r"0x6 lacks COM_RIGHTS_EXECUTE"):
        mask_to_rights("access", 0x06)
    with pytest.raises(SDError, match=r"0x21 sets bits above 0x1F"):
        mask_to_rights("launch", 0x21)


@given(st.sampled_from(["launch", "access"]), st.data())
def test_rights_names_round_trip(kind: str, data: st.DataObject) -> None:
    table = LAUNCH_RIGHTS if kind == "launch" else ACCESS_RIGHTS
    names = data.draw(st.lists(st.sampled_from(sorted(table)), min_size=1, unique=True))
    mask = rights_to_mask(kind, names)  # type: ignore[arg-type]
    assert mask_to_rights(kind, mask) == tuple(n for n in table if n in names)  # type: ignore[arg-type]


def test_rights_table() -> None:
    sd = parse_sddl("O:BAG:BAD:(D;;CCLC;;;AN)(A;;CCDCLCSWRP;;;S-1-5-32-562)(A;;CCDCSW;;;WD)")
    assert rights_table(sd, "launch") == [
        ("ANONYMOUS LOGON", "deny", ("remote_launch",)),
        ("Distributed COM Users", "allow", tuple(LAUNCH_RIGHTS)),
        ("Everyone", "allow", ("local_launch", "local_activation")),
    ]
    other = parse_sddl("D:(A;;CCDC;;;S-1-5-21-1-2-3-1001)")
    assert rights_table(other, "access") == [("S-1-5-21-1-2-3-1001", "allow", ("local_access",))]
    with pytest.raises(SDError, match=r"no DACL"):
        rights_table(parse_sddl("O:BA"), "access")


# ------------------------------------------------------------------------------------------
# merge_aces


def test_merge_ors_existing_and_appends_new() -> None:
    base = parse_sddl(WIN10_ACCESS_RESTRICTION).dacl or ()
    additions = [
        Ace("S-1-5-7", 0x07),  # ANONYMOUS: had CCDC, gains LC
        Ace("S-1-5-21-1-2-3-1001", 0x05),  # new principal
        Ace("S-1-1-0", 0x03),  # already covered: unchanged
    ]
    merged = merge_aces(base, additions)
    assert len(merged) == len(base) + 1
    assert merged[1] == Ace("S-1-5-7", 0x07)
    assert merged[-1] == Ace("S-1-5-21-1-2-3-1001", 0x05)
    assert merged[0] == base[0]
    assert merge_aces(base, additions) == merged  # deterministic


def test_merge_keeps_denies_and_inserts_new_denies_first() -> None:
    base = (Ace("S-1-5-7", 0x07, allow=False), Ace("S-1-1-0", 0x07))
    merged = merge_aces(base, [Ace("S-1-5-2", 0x05, allow=False), Ace("S-1-5-7", 0x03)])
    assert merged == (
        Ace("S-1-5-7", 0x07, allow=False),
        Ace("S-1-5-2", 0x05, allow=False),
        Ace("S-1-1-0", 0x07),
        Ace("S-1-5-7", 0x03),
    )


def test_merge_refuses_old_and_new_format_mix() -> None:
    base = (Ace("S-1-1-0", 0x01),)
    with pytest.raises(SDError, match=r"cannot merge ACE for Everyone \(S-1-1-0\) \(mask 0x1f\)"):
        merge_aces(base, [Ace("S-1-1-0", 0x1F)])
    assert merge_aces(base, [Ace("S-1-5-18", 0x01)]) == (*base, Ace("S-1-5-18", 0x01))


_merge_sids = st.sampled_from(["S-1-1-0", "S-1-5-7", "S-1-5-18", "S-1-5-32-562", "S-1-5-32-544"])
_merge_aces = st.builds(
    Ace,
    sid=_merge_sids,
    mask=st.integers(1, 0x1F).map(lambda m: m | 0x1 | 0x2),
    allow=st.booleans(),
)


@given(st.lists(_merge_aces, max_size=6).map(tuple), st.lists(_merge_aces, max_size=6))
def test_merge_never_removes(base: tuple[Ace, ...], additions: list[Ace]) -> None:
    merged = merge_aces(base, additions)
    assert len(merged) >= len(base)
    remaining = list(merged)
    for ace in base:  # each base ACE survives, in order, with at least its rights
        match = next(
            m
            for m in remaining
            if (m.sid, m.allow, m.flags) == (ace.sid, ace.allow, ace.flags)
            and m.mask & ace.mask == ace.mask
        )
        remaining.remove(match)
    for added in additions:  # each added right is granted (or denied) by some ACE
        assert any(
            (m.sid, m.allow) == (added.sid, added.allow) and m.mask & added.mask == added.mask
            for m in merged
        )
    assert merge_aces(base, additions) == merged
