"""One quoting function per artifact language — the only way a value may reach an artifact.

Every writer formats spec-derived text through these functions, and every reader undoes them
with the inverse kept beside. Functions that cannot represent a value safely REFUSE it (raise
`QuoteError`) rather than emit something that the target would read differently: a rule name
cut at a quote in netsh, or `[ProgramFilesFolder]` expanded by Windows Installer inside a path.
"""

from __future__ import annotations

import functools
import hashlib
import re


class QuoteError(ValueError):
    """A value cannot be written safely into the artifact's language."""


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _refuse_controls(value: str, language: str) -> None:
    found = _CONTROL.search(value)
    if found is not None:
        bad = found.group(0)
        raise QuoteError(f"{language}: control character U+{ord(bad):04X} in {value!r}")


# --- .reg (regedit v5) -------------------------------------------------------------------------


def reg_string(value: str) -> str:
    """A REG_SZ data or value name in double quotes; regedit escapes only `\\` and `"`."""
    _refuse_controls(value, ".reg")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def reg_key(path: str) -> str:
    """A key line `[path]`; a key name cannot escape `]`, so it may not contain one."""
    _refuse_controls(path, ".reg")
    if "]" in path or "[" in path:
        raise QuoteError(f".reg: key path {path!r} contains a bracket")
    return f"[{path}]"


# --- PowerShell ------------------------------------------------------------------------------

# PowerShell treats all five as single quotes: inside a single-quoted string each must be
# doubled, or a typographic quote in a name would end the string (and start code).
PS_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


_PS_DOUBLED = {ord(c): c + c for c in PS_SINGLE_QUOTES}
_PS_SPECIAL = re.compile(f"[\x00-\x1f\x7f-\x9f{PS_SINGLE_QUOTES}]")


def ps_quote(value: str) -> str:
    """A PowerShell single-quoted string literal: nothing inside is ever expanded."""
    if _PS_SPECIAL.search(value) is None:  # the common case, one scan: nothing to refuse or double
        return "'" + value + "'"
    _refuse_controls(value, "PowerShell")
    return "'" + value.translate(_PS_DOUBLED) + "'"


def ps_unquote(literal: str) -> str:
    """Inverse of ps_quote for a verbatim string token (as the parser returns it)."""
    quotes = PS_SINGLE_QUOTES
    if len(literal) < 2 or literal[0] not in quotes or literal[-1] not in quotes:
        raise QuoteError(f"PowerShell: not a single-quoted string: {literal[:30]!r}")
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char in PS_SINGLE_QUOTES:
            if i + 1 >= len(body) or body[i + 1] not in PS_SINGLE_QUOTES:
                raise QuoteError(f"PowerShell: lone quote inside {literal[:30]!r}")
            char = body[i + 1]  # PowerShell's tokenizer keeps the second quote of a pair
            i += 2
        else:
            i += 1
        out.append(char)
    return "".join(out)


# --- netsh (netsh -f scripts) ------------------------------------------------------------------


# netsh splits a script line into arguments at spaces outside double quotes, drops the quotes,
# and splits `tag=value` at the first `=`; it has no escape for a quote inside a value. So every
# value is written as one quoted literal (`name="..."`): a space or `=` inside it cannot start
# another argument (`remoteip="fe80::1%x remoteip=any"` stays one, invalid, address). A list
# value (profile=, remoteip=, localport=) is one quoted literal whose items netsh splits at
# commas, so an item may not hold a comma (`fe80::1%x,any` would add `any`). What cannot be
# written so is refused.


def netsh_value(value: str) -> str:
    """A netsh argument value in double quotes. netsh has no escape for `"`: refuse it."""
    _refuse_controls(value, "netsh")
    if '"' in value:
        raise QuoteError(f'netsh: a value cannot contain a double quote: {value!r}')
    return f'"{value}"'


def netsh_list(items: tuple[str, ...] | list[str]) -> str:
    """A comma-separated netsh list as one quoted value; an item can be neither empty nor hold a
    comma or a space (netsh would read two items, or none)."""
    return _netsh_list(tuple(items))


@functools.lru_cache(maxsize=1024)
def _netsh_list(items: tuple[str, ...]) -> str:
    # Cached: the `site` scope (80 networks in a 1,000-host site) is in every rule of a site.
    if not items:
        raise QuoteError("netsh: an empty list (netsh would read the argument as missing)")
    for item in items:
        if not item or any(c in item for c in ", "):
            raise QuoteError(f"netsh: a list item cannot be empty or hold a comma or space: "
                             f"{item!r}")
    return netsh_value(",".join(items))


_PORT_RE = re.compile(r"([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?")


def netsh_ports(ports: str) -> str:
    """A `localport=` value: ports and ranges `lo-hi` (1 <= lo <= hi <= 65535), comma-separated."""
    items = ports.split(",")
    for item in items:
        found = _PORT_RE.fullmatch(item)
        low = int(found.group(1)) if found else 0
        high = int(found.group(2) or low) if found else 0
        if not 1 <= low <= high <= 65535:
            raise QuoteError(f"netsh: not a port or port range lo-hi in 1..65535: {item!r}")
    return netsh_list(items)


# --- secedit INF -------------------------------------------------------------------------------


def inf_value(value: str) -> str:
    """An INF string value in double quotes (MS-GPSB §2.2); `"` cannot be represented."""
    _refuse_controls(value, "INF")
    if '"' in value:
        raise QuoteError(f"INF: a value cannot contain a double quote: {value!r}")
    return f'"{value}"'


def inf_principal(sid: str) -> str:
    """A principal in [Privilege Rights]: always `*SID`, never a localized account name."""
    if not sid.startswith("S-1-") or any(c in sid for c in ',"; ='):
        raise QuoteError(f"INF: not a SID: {sid!r}")
    return f"*{sid}"


# --- Windows Installer formatted strings (WiX attributes typed Formatted) ------------------------


_FORMATTED_SPECIAL = "[]{}"
_FORMATTED_RE = re.compile(r"[\[\]{}]")


def msi_formatted(value: str) -> str:
    """Escape a literal for a Formatted field: `[x]` is a property reference, so each of
    `[ ] { }` becomes `[\\c]` (the documented escape), and the value stays literal."""
    _refuse_controls(value, "MSI formatted")
    if _FORMATTED_RE.search(value) is None:  # most values (names, addresses): nothing to escape
        return value
    return "".join(f"[\\{c}]" if c in _FORMATTED_SPECIAL else c for c in value)


def msi_unformatted(value: str) -> str:
    """Inverse of msi_formatted."""
    if _FORMATTED_RE.search(value) is None:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        if value.startswith("[\\", i) and i + 3 < len(value) + 1 and value[i + 3 : i + 4] == "]":
            out.append(value[i + 2])
            i += 4
            continue
        if value[i] in _FORMATTED_SPECIAL:
            raise QuoteError(f"MSI formatted: unescaped {value[i]!r} in {value!r}")
        out.append(value[i])
        i += 1
    return "".join(out)


# --- XML comments ------------------------------------------------------------------------------

# A comment may hold neither `--` nor end with `-` (lxml refuses to write one: `---` in a site name
# was a traceback). A `-` that is followed by `-` or `~`, or that ends the text, is written `-~`;
# the reader drops the `~` after every `-`, so the text reads back exactly and stays legible.


def xml_comment(text: str) -> str:
    """The body of an XML comment that reads back, through xml_uncomment, as `text`."""
    _refuse_controls(text, "XML comment")
    return re.sub(r"-(?=[-~]|$)", "-~", text)


def xml_uncomment(body: str) -> str:
    """Inverse of xml_comment."""
    return body.replace("-~", "-")


# --- WiX source text (candle's preprocessor, light's binder) -------------------------------------

# WiX v3 expands `$(var.X)`, `$(env.X)`, `$(sys.X)` and `$(fun(...))` in every attribute and text
# while preprocessing, where `$$` always stands for one `$` and a lone `$` stays
# (PreprocessorCore.PreprocessString); light then resolves `!(loc.X)`, `!(wix.X)`, `!(bind.X)`
# and the deprecated `$(loc.X)`, whose `!!` escape it undoes once per pass
# (WixVariableResolver), so no escape of them is exact.
#
# Two escapes, one per preprocessor, because candle and wixl read `$` differently and no
# spelling suits both: wix_text (here) for candle, which the firewall fragment is written for
# (wixl does not know the Firewall extension), and wix_preprocessor (below) for wixl, which builds
# the product .wxs and the payload fragment into dcomc's MSIs. m `$` written in a row are
# ceil(m/2) `$` to candle (pairs) and m - 1 to wixl (measured on wixl 0.101: `a$$$$b` is
# `a$$$b`), so a run of three or more `$` has no spelling both read alike; and `$(` is `$$(` to
# candle, which wixl expands, while a `<?define?>`, verbatim to wixl, is preprocessed by candle.
# (The payload fragment holds only site and host names, GUIDs and file names: never a `$`, so
# candle reads it as wixl does.)
_WIX_BINDER = re.compile(r"[!$]\((?:loc|wix|bind|bindpath)\.")


def wix_text(value: str) -> str:
    """Literal text for an attribute or element of a WiX v3 source read by candle: every `$`
    doubled, so that candle's preprocessor gives back exactly `value` (`$(` too, as `$$(`); a
    binder variable reference (`!(wix.X)`, `$(loc.X)`...) cannot be kept literal and is
    refused. Not for wixl, which reads `$$$$` as `$$$` (see wix_preprocessor)."""
    _refuse_controls(value, "WiX")
    if "$" not in value and "!" not in value:  # most values: nothing to double or refuse
        return value
    found = _WIX_BINDER.search(value)
    if found is not None:
        raise QuoteError(f"WiX: {found.group()!r} would be read as a WiX variable in {value!r}")
    return value.replace("$", "$$")


def wix_untext(text: str) -> str:
    """Inverse of wix_text: `$$` is one `$`; a `$(` the writer never leaves is refused."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("$(", i):
            raise QuoteError(f"WiX: a preprocessor variable in {text!r}")
        out.append(text[i])
        i += 1
    value = "".join(out)
    if _WIX_BINDER.search(value) is not None:
        raise QuoteError(f"WiX: a WiX variable reference in {text!r}")
    return value


# --- WiX identifiers ---------------------------------------------------------------------------


def wix_id(prefix: str, *parts: str) -> str:
    """A WiX identifier (`[A-Za-z_][A-Za-z0-9_.]*`, at most 72 characters) that stays unique:
    a readable part from `parts` plus 8 hex digits of their hash, so two names that sanitize
    alike still get different identifiers."""
    readable = re.sub(r"[^A-Za-z0-9_.]", "_", "_".join(parts))[: 72 - len(prefix) - 10]
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:8]
    return f"{prefix}_{readable}_{digest}"


# --- WiX preprocessor (every attribute value and text of a .wxs) --------------------------------
# wixl 0.101 (preprocessor.vala, `eval`) and the WiX toolset expand `$(var.X)`, `$(env.X)` and
# `$(sys.X)` in every attribute value and text node, after XML has decoded entities (so `&#36;`
# is no escape). wixl emits `$` for `$$` and then reads the second `$` again, and drops a `$`
# that is followed by anything but `$` or `(`: `opcuser$` would become `opcuser`, `$(env.HOME)`
# the build machine's home folder. `!(loc.X)` (the WiX toolset's binder) is left alone by wixl.
# A value wixl cannot receive literally (`$` before `(`) goes into a `<?define?>`, whose value
# wixl takes verbatim, and the attribute refers to it.


def wix_preprocessor(value: str) -> str:
    """A literal for an attribute value or text of a .wxs that wixl's preprocessor hands on
    unchanged: each run of n `$` is written as n + 1 (wixl: `$$` → `$`, then the second `$`
    is read again and, followed by neither `$` nor `(`, dropped). Refuses a `$` right before
    `(`, which wixl has no escape for (put the value in a define: `wix_define`), and control
    characters. For wixl only: candle reads a run of n + 1 `$` as ceil((n + 1) / 2), the same
    only for n <= 2 (a .wxs for candle goes through wix_text; why not one escape: above it)."""
    _refuse_controls(value, "WiX")
    if "$" not in value:
        return value
    if "$(" in value:
        raise QuoteError(f"WiX: wixl cannot escape '$(' in {value!r}: use a <?define?>")
    return re.sub(r"\$+", lambda run: run.group(0) + "$", value)


def wix_define(name: str, value: str) -> str:
    """The text of a `<?define name = "value"?>` processing instruction. wixl takes the value
    verbatim (no expansion, one pair of surrounding quotes removed), so it carries any literal,
    `$(` included, to an attribute that says `$(var.name)` (candle would expand a `$(` in it:
    a define is for wixl). Refuses what a processing instruction cannot hold (`?>`, control
    characters) and a name that is not an identifier."""
    _refuse_controls(value, "WiX define")
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is None:
        raise QuoteError(f"WiX define: {name!r} is not an identifier")
    if "?>" in value:
        raise QuoteError(f"WiX define: '?>' would end the instruction in {value!r}")
    return f'{name} = "{value}"'


def wix_undefine(text: str) -> tuple[str, str]:
    """Inverse of wix_define: (name, value) as wixl reads the instruction (its regular
    expression, then one pair of surrounding quotes removed)."""
    found = re.fullmatch(r"\s*(.+?)\s*=\s*(.+?)\s*", text)
    if found is None:
        raise QuoteError(f"WiX define: not 'name = value': {text!r}")
    name, value = found.group(1), found.group(2)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return name.removeprefix("var."), value


def wix_unpreprocessed(text: str, variables: dict[str, str]) -> str:
    """What wixl's preprocessor makes of an attribute value or text: the inverse of
    wix_preprocessor, and `$(var.X)` replaced by the define X (not read again). Any other
    variable (`env.`, `sys.`, an undefined one) is refused: a .wxs dcomc writes has none."""
    out: list[str] = []
    end = 0
    while (at := text.find("$", end)) >= 0:
        out.append(text[end:at])
        end = at + 1
        if text.startswith("$", end):
            out.append("$")
        elif text.startswith("(", end):
            close = text.find(")", end)
            name = text[end + 1:close] if close >= 0 else ""
            if not name.startswith("var.") or name[4:] not in variables:
                raise QuoteError(f"WiX: preprocessor variable in {text!r} that is no define of "
                                 "the file")
            out.append(variables[name[4:]])
            end = close + 1
    return "".join(out) + text[end:]
