"""Well-known SIDs: the one table every stage and target uses.

Account *names* of well-known principals are localized (German Windows says "Jeder" for
Everyone, "Administratoren" for Administrators), so nothing that reaches the target may name
them: every artifact refers to them by SID (docs/windows.md#well-known-sids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WellKnown:
    """A well-known principal: the English name a spec may use, its SID, its SDDL alias."""

    name: str
    sid: str
    sddl_alias: str | None


# The aliases a site spec accepts for well-known principals (issue 2 §3), by English name.
# Source: docs/windows.md#well-known-sids (Samba's security.idl and sddl.c).
SPEC_ALIASES: tuple[WellKnown, ...] = (
    WellKnown("Everyone", "S-1-1-0", "WD"),
    WellKnown("ANONYMOUS LOGON", "S-1-5-7", "AN"),
    WellKnown("Authenticated Users", "S-1-5-11", "AU"),
    WellKnown("INTERACTIVE", "S-1-5-4", "IU"),
    WellKnown("NETWORK", "S-1-5-2", "NU"),
    WellKnown("SYSTEM", "S-1-5-18", "SY"),
    WellKnown("LOCAL SERVICE", "S-1-5-19", "LS"),
    WellKnown("NETWORK SERVICE", "S-1-5-20", "NS"),
    WellKnown("Administrators", "S-1-5-32-544", "BA"),
    WellKnown("Users", "S-1-5-32-545", "BU"),
    # Distributed COM Users has NO SDDL alias: it must be written as the literal SID.
    WellKnown("Distributed COM Users", "S-1-5-32-562", None),
    WellKnown("Performance Log Users", "S-1-5-32-559", "LU"),
)

# Further SDDL aliases in descriptors read from a live PC (docs/windows.md#well-known-sids).
# Machine-relative aliases (LA, LG, ...) are deliberately absent: they cannot be turned into
# a SID without knowing the machine, so decoding them would have to guess.
_EXTRA_SDDL_ALIASES: dict[str, str] = {
    "SU": "S-1-5-6",
    "PS": "S-1-5-10",
    "CO": "S-1-3-0",
    "CG": "S-1-3-1",
    "BG": "S-1-5-32-546",
    "PU": "S-1-5-32-547",
    "MU": "S-1-5-32-558",
    "RD": "S-1-5-32-555",
    "CD": "S-1-5-32-574",
    "AC": "S-1-15-2-1",
    "RU": "S-1-5-32-554",
    "NO": "S-1-5-32-556",
    "SO": "S-1-5-32-549",
    "PO": "S-1-5-32-550",
    "BO": "S-1-5-32-551",
    "RE": "S-1-5-32-552",
    "ER": "S-1-5-32-573",
    "IS": "S-1-5-32-568",
    "ED": "S-1-5-9",
    "RC": "S-1-5-12",
    "WR": "S-1-5-33",
    "OW": "S-1-3-4",
}

SDDL_ALIAS_TO_SID: dict[str, str] = {
    **{w.sddl_alias: w.sid for w in SPEC_ALIASES if w.sddl_alias},
    **_EXTRA_SDDL_ALIASES,
}
SID_TO_SDDL_ALIAS: dict[str, str] = {sid: alias for alias, sid in SDDL_ALIAS_TO_SID.items()}

# English display names for SIDs, used only in human-readable output (plan, review tables).
SID_TO_NAME: dict[str, str] = {
    **{w.sid: w.name for w in SPEC_ALIASES},
    "S-1-5-6": "SERVICE",
    "S-1-5-10": "SELF",
    "S-1-5-32-546": "Guests",
    "S-1-5-32-555": "Remote Desktop Users",
    "S-1-5-32-558": "Performance Monitor Users",
    "S-1-5-32-574": "Certificate Service DCOM Access",
    "S-1-15-2-1": "ALL APPLICATION PACKAGES",
    "S-1-5-80-0": "ALL SERVICES",
}

_BY_FOLDED_NAME: dict[str, WellKnown] = {w.name.casefold(): w for w in SPEC_ALIASES}

SID_RE = re.compile(r"S-1-(\d{1,15})((?:-\d{1,10})*)")


def well_known(name: str) -> WellKnown | None:
    """The well-known principal a spec name denotes (Windows compares names case-insensitively).

    `NT AUTHORITY\\SYSTEM` and `BUILTIN\\Administrators` forms are accepted too.
    """
    folded = name.casefold()
    for prefix in ("nt authority\\", "builtin\\"):
        if folded.startswith(prefix):
            folded = folded[len(prefix) :]
    return _BY_FOLDED_NAME.get(folded)


def is_sid(text: str) -> bool:
    """True for a valid string SID: S-1-<authority>-<sub>..., at most 15 sub-authorities."""
    m = SID_RE.fullmatch(text)
    if not m:
        return False
    subs = [s for s in m.group(2).split("-") if s]
    if len(subs) > 15 or int(m.group(1)) >= 1 << 48:
        return False
    return all(int(s) < 1 << 32 for s in subs)


def display_name(sid: str) -> str:
    """English name for a well-known SID, or the SID itself."""
    return SID_TO_NAME.get(sid, sid)
