"""The quoting functions: every value either round-trips exactly or is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcomc_targets import quoting, regread
from dcomc_targets.netsh import tokens

# The typographic single quotes PowerShell also treats as quotes.
PS_QUOTES = "\u2018\u2019\u201a\u201b"

# Printable text incl. the characters that break naive quoting, and non-ASCII.
NASTY = "'\"\\%^&|$`()[]{};,= Ü" + PS_QUOTES
text = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from(NASTY),
               max_size=40)


@given(text)
def test_reg_string_round_trips(value: str) -> None:
    """Through the .reg reader's own unquoting (Wine's escapes), not a copy of it."""
    quoted = quoting.reg_string(value)
    assert regread.unquote(quoted + "=rest", 1, 1) == (value, "=rest")


@given(text)
def test_msi_formatted_round_trips_and_has_no_bare_brackets(value: str) -> None:
    escaped = quoting.msi_formatted(value)
    assert quoting.msi_unformatted(escaped) == value
    assert "[ProgramFilesFolder]" not in escaped


@given(text.filter(lambda v: '"' not in v))
def test_netsh_value_survives_tokenizing(value: str) -> None:
    line = f"add rule name={quoting.netsh_value(value)} dir=in"
    assert tokens(line)[2] == f"name={value}"


@pytest.mark.parametrize("func", [quoting.netsh_value, quoting.inf_value])
def test_double_quote_is_refused_where_unrepresentable(func: object) -> None:
    with pytest.raises(quoting.QuoteError, match="double quote"):
        func('O\'Brien "$(x)"')  # type: ignore[operator]


@pytest.mark.parametrize("func", [quoting.reg_string, quoting.netsh_value, quoting.msi_formatted])
def test_control_characters_are_refused(func: object) -> None:
    with pytest.raises(quoting.QuoteError, match="control character"):
        func("a\r\nb")  # type: ignore[operator]


def test_reg_key_refuses_brackets() -> None:
    with pytest.raises(quoting.QuoteError):
        quoting.reg_key("HKEY_LOCAL_MACHINE\\x]\r\n[HKEY_LOCAL_MACHINE\\evil")


def test_inf_principal_only_takes_sids() -> None:
    assert quoting.inf_principal("S-1-5-32-544") == "*S-1-5-32-544"
    with pytest.raises(quoting.QuoteError):
        quoting.inf_principal("Administrators")


def test_wix_id_is_valid_and_distinguishes_lookalikes() -> None:
    a, b = quoting.wix_id("X", "a-b"), quoting.wix_id("X", "a.b")
    assert a != b
    assert all(c.isalnum() or c in "_." for c in a) and len(a) <= 72


@pytest.mark.parametrize("run", range(1, 6))
def test_each_wix_escape_reads_back_through_its_own_preprocessor(run: int) -> None:
    """wix_text is candle's escape, wix_preprocessor wixl's: each reads back exactly through
    its own preprocessor; read by the other one they agree only for runs of one or two `$`
    (quoting.py: why the two cannot be one function)."""
    value = f"a{'$' * run}b"
    for_candle, for_wixl = quoting.wix_text(value), quoting.wix_preprocessor(value)
    assert quoting.wix_untext(for_candle) == value
    assert quoting.wix_unpreprocessed(for_wixl, {}) == value
    assert (quoting.wix_untext(for_wixl) == value) == (run <= 2)
    assert (quoting.wix_unpreprocessed(for_candle, {}) == value) == (run == 1)
