"""Any netsh script's firewall commands, as `netsh -f` reads them (docs/windows.md#firewall).

`advfirewall firewall add|delete|set rule` with every documented option (learn: netsh
advfirewall firewall commands), keywords and enumerated values in any case, values quoted or
bare (netsh's tokenizer: blanks outside double quotes end a token, the quotes go), lines
prefixed with `netsh`, and the `pushd`/`popd` contexts of `netsh dump` output. netsh's own
defaults are filled in (enable=yes, profile=any, ...), so a LAN-only or disabled rule never
reads as a plain allow rule. Other netsh commands are listed as unsupported with their line,
never dropped; what netsh itself would refuse (an unknown option, one given twice, a value
outside its set, an unterminated quote, add without name/dir/action) is a ReadError with
line and column.

The rule model (`rule_json`) is shared with the WiX firewall reader (wixread.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dcomc_targets.readerror import ReadError, decode_windows_text

# Options of each command (learn: netsh advfirewall firewall add/delete/set rule).
_MATCH = ("name", "dir", "profile", "program", "service", "localip", "remoteip", "localport",
          "remoteport", "protocol")
_RULE = ("name", "dir", "action", "program", "service", "description", "enable", "profile",
         "localip", "remoteip", "localport", "remoteport", "protocol", "interfacetype",
         "rmtcomputergrp", "rmtusrgrp", "edge", "security")
OPTIONS: dict[str, tuple[str, ...]] = {
    "add rule": _RULE,
    "delete rule": _MATCH,
    "set rule": ("group", *_MATCH),
    "set rule new": _RULE,
}
# Values netsh takes from a fixed set (any case); `protocol` also takes a number or icmp:type,code.
CHOICES: dict[str, tuple[str, ...]] = {
    "dir": ("in", "out"),
    "action": ("allow", "block", "bypass"),
    "enable": ("yes", "no"),
    "edge": ("yes", "no", "deferapp", "deferuser"),
    "interfacetype": ("any", "wireless", "lan", "ras"),
    "security": ("authenticate", "authenc", "authdynenc", "authnoencap", "notrequired"),
}
PROFILES = ("public", "private", "domain", "any")
# netsh's defaults for what an `add rule` leaves out.
DEFAULTS = {"enable": "yes", "profile": "any", "localip": "any", "remoteip": "any",
            "protocol": "any", "interfacetype": "any", "edge": "no", "security": "notrequired"}
LISTS = ("profile", "localip", "remoteip", "localport", "remoteport")
# Address keywords netsh takes in any case (learn: add rule, remoteip=); written lowercase.
ADDRESS_KEYWORDS = ("any", "localsubnet", "dns", "dhcp", "wins", "defaultgateway")


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    col: int  # 1-based column of its first character


@dataclass(slots=True)
class Script:
    commands: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def decode(data: bytes) -> str:
    """A netsh script's text: the readers' one decoder (UTF-16LE, UTF-8, else ANSI)."""
    return decode_windows_text(data)[0]


def tokenize(line: str, number: int) -> list[Token]:
    """netsh's tokens: blanks outside double quotes separate, the quotes are removed."""
    tokens: list[Token] = []
    current: list[str] = []
    start, quoted, quote_at = 0, False, 0
    for index, char in enumerate(line):
        if char == '"':
            quoted, quote_at = not quoted, index
            if not current:
                start = index
            current.append("")
        elif char in " \t" and not quoted:
            if current:
                tokens.append(Token("".join(current), start + 1))
                current = []
        else:
            if not current:
                start = index
            current.append(char)
    if quoted:
        raise ReadError("a double quote is never closed", number, quote_at + 1)
    if current:
        tokens.append(Token("".join(current), start + 1))
    return tokens


def parse_text(text: str) -> Script:
    script = Script()
    context: list[str] = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        tokens = tokenize(raw, number)
        words = [t.text.casefold() for t in tokens]
        if words[0] == "netsh":
            tokens, words = tokens[1:], words[1:]
        if not words:
            continue
        if words[0] == "pushd":
            context = words[1:]
            continue
        if words[0] == "popd":
            context = []
            continue
        _command(script, [*context, *words], tokens, len(context), number)
    return script


def _command(script: Script, words: list[str], tokens: list[Token], skip: int,
             number: int) -> None:
    if words[:2] == ["advfirewall", "firewall"] and len(words) >= 4 and \
            f"{words[2]} {words[3]}" in OPTIONS:
        verb = f"{words[2]} {words[3]}"
        args = tokens[max(0, 4 - skip) :]
        script.commands.append({"line": number, "command": verb, **_options(verb, args, number)})
        return
    shown = " ".join(words[:6])
    script.unsupported.append(f"line {number}: {shown}: not an advfirewall firewall add, "
                              "delete or set rule command")


def _options(verb: str, args: list[Token], number: int) -> dict[str, Any]:
    first: dict[str, str] = {}
    new: dict[str, str] = {}
    target, allowed = first, OPTIONS[verb]
    for token in args:
        key, found, value = token.text.partition("=")
        key = key.casefold()
        if not found and key == "new" and verb == "set rule" and target is first:
            target, allowed = new, OPTIONS["set rule new"]
            continue
        if not found:
            raise ReadError(f"expected option=value, not {token.text[:30]!r}", number, token.col)
        if key not in allowed:
            raise ReadError(f"{verb}{' new' if target is new else ''} has no option {key!r} "
                            f"(netsh takes {', '.join(allowed)})", number, token.col)
        if key in target:
            raise ReadError(f"option {key!r} given twice", number, token.col)
        target[key] = _value(key, value, number, token.col + len(key) + 1)
    return _checked(verb, first, new, number)


def _value(key: str, value: str, number: int, col: int) -> str:
    if key in CHOICES:
        folded = value.casefold()
        if folded not in CHOICES[key]:
            raise ReadError(f"{key}={value[:30]!r}: expected one of {', '.join(CHOICES[key])}",
                            number, col)
        return folded
    if key == "profile":
        items = [item.strip().casefold() for item in value.split(",")]
        bad = [item for item in items if item not in PROFILES]
        if bad:
            raise ReadError(f"profile {bad[0][:20]!r}: expected {', '.join(PROFILES)}", number,
                            col)
        return ",".join(items)
    if key == "protocol":
        return value.casefold()
    if key in ("localip", "remoteip"):
        return addresses(value)
    return value


def addresses(value: str) -> str:
    """An address list with netsh's keywords (LocalSubnet, Any, ...) in lowercase."""
    items = [item.strip() for item in value.split(",")]
    return ",".join(i.casefold() if i.casefold() in ADDRESS_KEYWORDS else i for i in items)


def _checked(verb: str, first: dict[str, str], new: dict[str, str],
             number: int) -> dict[str, Any]:
    if verb == "add rule":
        missing = [k for k in ("name", "dir", "action") if k not in first]
        if missing:
            raise ReadError(f"add rule without {', '.join(k + '=' for k in missing)} (netsh "
                            "requires name, dir and action)", number, 1)
        return {"rule": rule_json({**DEFAULTS, **first})}
    if verb == "delete rule":
        if "name" not in first:
            raise ReadError("delete rule without name=", number, 1)
        return {"match": rule_json(first, defaults=False)}
    if ("name" in first) == ("group" in first):
        raise ReadError("set rule takes name= or group= (one of them)", number, 1)
    if not new:
        raise ReadError("set rule without `new` and the values to set", number, 1)
    return {"match": rule_json(first, defaults=False), "new": rule_json(new, defaults=False)}


def rule_json(options: dict[str, str], defaults: bool = True) -> dict[str, Any]:
    """The rule model netsh and WiX rules share: every option by its netsh name, the list
    options as lists; with `defaults`, each option netsh gives a default to is present."""
    out: dict[str, Any] = {}
    for key in ("name", "group", *(k for k in _RULE if k != "name")):
        if key not in options:
            continue
        value = options[key]
        out[key] = [item.strip() for item in value.split(",")] if key in LISTS else value
    if defaults and out.get("profile") == ["any"]:
        out["profile"] = ["domain", "private", "public"]
    return out


def inspect(script: Script) -> dict[str, Any]:
    return {"kind": "generic netsh", "commands": script.commands,
            "unsupported": script.unsupported}
