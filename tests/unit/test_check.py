"""The check stage's character rule (E201), against Python's Unicode database."""

from __future__ import annotations

import sys
import unicodedata

from dcomc.checks import site as check


def test_every_control_and_invisible_format_character_is_refused() -> None:
    """C0, C1, the line and paragraph separators, and every format character (category Cf):
    the hand-written ranges must cover this Python's Unicode version, and nothing more."""
    refused = {chr(c) for c in range(sys.maxunicode + 1)
               if check._CONTROL.fullmatch(chr(c)) is not None}
    wanted = {chr(c) for c in range(sys.maxunicode + 1)
              if unicodedata.category(chr(c)) in ("Cc", "Cf") or c in (0x2028, 0x2029)}
    unassigned_later = {c for c in refused - wanted if unicodedata.category(c) == "Cn"}
    assert refused - unassigned_later == wanted  # Cn: format characters of newer Unicode
