# ruff: noqa: RUF001 - look-alike letters (long s, Cyrillic Ka...) are what the fuzzer feeds
"""Mutated site specs, and the oracle that holds `check` and `build` to one contract.

The contract (issue 17, "`check` accepts exactly what `build` can build"):

- a spec that `dcomc check` accepts builds (with MSIs where wixl is installed) and exits 0;
- a spec that `check` refuses is refused with exit 2 and every error at its place: a
  `file:line:col` that is not the `1:1` fallback, unless the error is about the whole file;
- no command ends in a traceback, or with an exit code other than 0, 1 or 2.

`mutant(rng)` makes one spec from a shipped example by a few mutations of its values (names,
descriptions, addresses, executables, ProgIDs, profiles, lists...), hostile or random strings
among them, and now and then of its YAML text or its file name; the same `random.Random` seed
gives the same spec. `judge(mutant, folder, msi=...)` runs it through the compiler and the CLI
in-process and returns what broke the contract. Used by `test_check_builds.py` (hypothesis,
in the test suite) and `fuzz_specs.py` (thousands of specs, from the command line).
"""

from __future__ import annotations

import copy
import functools
import os
import random
import shutil
import string
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from dcomc.cli import main as cli_main
from dcomc.diagnostics import CompileError, Diagnostic, Severity
from dcomc.front.spec import _model_at as spec_model_at
from dcomc.pipeline import compile_file

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

# --- hostile and random strings -------------------------------------------------------------

# One or a few of each kind of character or sequence some artifact language, Windows, the MSI
# or YAML treats specially.
HOSTILE: tuple[str, ...] = (
    # outside Windows-1252 (the MSI's code page), and inside it but not ASCII
    "Łukasz", "Ω", "用户", "😀", "ā", "ǅ", "ﬁ", "ſ", "К", "e\u0301", "€", "‚", "“x”", "Grüße",
    "µ", "ÿ", "Ÿ", "ß", "İ", "ı",
    # control, invisible, noncharacters, surrogates
    "a\nb", "a\tb", "a\rb", "a\x00b", "\x7f", "\x85", "\u2028", "\u202e", "\u200b", "\ufeff",
    "\ufffe", "\uffff", "\ud800", "\udfff", "\U0010ffff", "\xa0", "\u3000",
    # PowerShell, cmd, shells
    "$(calc)", "$x", "`", "'", "''", '"', "a'b", 'a"b', "%PATH%", "%", "^", "!x!", "&", "|",
    ";", "a;b", "${x}", "@(", "#", "<#", "#>",
    # XML, WiX preprocessor, MSI formatted strings and conditions
    "<", ">", "&amp;", "&#0;", "]]>", "--", "<!--", "-->", "$(env.HOME)", "$(var.X)", "$$",
    "$", "x$", "!(loc.x)", "!(wix.x)", "!(bind.x)", "$(sys.CURRENTDIR)", "[ProgramFilesFolder]",
    "[%PATH]", "[#file]", "[!file]", "[\\[]", "{}", "{x}", "[", "]", "<?define x=1?>",
    # netsh, INF, .reg
    "remoteip=any", "x remoteip=any protocol=any", ",any", "=", "a=b", "[Section]", "\\",
    "\\\\", "@", "\\\\server\\share", "%1",
    # YAML and Markdown
    "---", "...", "a---b", "~~~", "```", "~", "null", "yes", "no", "on", "0x10", "1e3", "1_0",
    ":", "a: b", "- x", "? x", "*x", "&x", "!x", "|", ">-", "&rlm;", "<script>", "[x](y)",
    "| a |", "**", "\\|",
    # names Windows treats specially
    "CON", "nul", "COM1", "LPT9", "con.txt", "AUX.yaml", ".", "..", "x.", "x ", " x", "",
    " ", "Administrator", "Everyone", "SYSTEM", "ANONYMOUS LOGON", "Administrators",
    "Guest", "NT AUTHORITY\\SYSTEM", "BUILTIN\\Users", "S-1-5-32-544", "S-1-1-0",
    "S-1-5-21-1-2-3-1105",
    # addresses and numbers
    "0.0.0.0", "255.255.255.255", "::", "::1", "fe80::1%12", "fe80::1%x y", "fe80::1%",
    "10.0.0.0/8", "10.0.0.1/33", "::ffff:10.0.0.1", "1.2.3", "01.2.3.4", "10.7.3.10 ",
    "0", "-1", "65536", "1.5", "4294967296",
    # long
    "a" * 21, "a" * 49, "a" * 65, "a" * 257, "a" * 300, "x" * 5000,
)

_ALPHABETS = (
    string.ascii_letters + string.digits + "-_. ",
    string.printable,
    "".join(chr(c) for c in range(0xA0, 0x180)),
    "ŁΩ用😀КāǅﬁſÆØÅ€‚“”‘’„…–—",
    "$()`'\"%^&!;,=[]{}<>|\\/*?@#~:+ ",
)


def random_text(rng: random.Random, *, max_size: int = 24) -> str:
    """A short random string: from one alphabet, or from the whole of Unicode."""
    size = rng.randint(0, max_size)
    if rng.random() < 0.2:
        return "".join(chr(rng.randrange(0x20, 0x30000)) for _ in range(size))
    alphabet = rng.choice(_ALPHABETS)
    return "".join(rng.choice(alphabet) for _ in range(size))


def hostile(rng: random.Random, original: Any = None) -> str:
    """A hostile string: a curated one, a random one, or `original` with one spliced in."""
    pick = rng.random()
    if pick < 0.45:
        return rng.choice(HOSTILE)
    if pick < 0.65:
        return random_text(rng)
    base = original if isinstance(original, str) else rng.choice(("opcuser", "x", "Vendor"))
    insert = rng.choice(HOSTILE) if rng.random() < 0.7 else random_text(rng, max_size=4)
    at = rng.randint(0, len(base))
    return base[:at] + insert + base[at:]


# --- values that fit the field (so that mutants get past check and into build) --------------


_NAME_CHARS = string.ascii_letters + string.digits + "-" * 4 + "._ '$()&!{}#~" + "ÄéßŁΩ€"


def plausible_name(rng: random.Random) -> str:
    """A name much like the ones a plant gives: mostly letters, digits and '-'."""
    first = rng.choice(string.ascii_letters + string.digits)
    return first + "".join(rng.choice(_NAME_CHARS) for _ in range(rng.randint(0, 16)))


def _address(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return ".".join(str(rng.randint(0, 255)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    text = ":".join(groups)
    if rng.random() < 0.3:
        text = f"fe80::{groups[0]}"
    if rng.random() < 0.2:
        text += "%" + rng.choice(("12", "eth0", "Ethernet_2", "x y", "a,b", "", "1=2"))
    return text


def _network(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return _address(rng)
    prefix = rng.randint(0, 33)
    address = _address(rng).partition("%")[0]
    return f"{address}/{prefix}"


def _guid(rng: random.Random) -> str:
    hexes = f"{rng.getrandbits(128):032X}"
    text = f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"
    if rng.random() < 0.2:
        text = text.lower()
    return text if rng.random() < 0.1 else "{" + text + "}"


def _progid(rng: random.Random) -> str:
    parts = ["".join(rng.choice(string.ascii_letters + string.digits) for _ in range(
        rng.randint(1, 12))) for _ in range(rng.randint(1, 4))]
    return ".".join(parts)


def _segment(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(("Program Files", "Program Files (x86)", "Vendor", "OPC", "a b",
                           "Grüße", "Łódź", "x$", "$(x)", "a;b", "a'b", "%x%", "[x]", "{x}",
                           "a,b", "a=b", "a#b", "a&b", "--", "!(wix.x)", "$(env.X)"))
    return random_text(rng, max_size=12) or "x"


def _executable(rng: random.Random) -> str:
    root = rng.choice(("C:", "D:", "%ProgramFiles%", "%SystemRoot%", "c:", "Z:"))
    segments = [_segment(rng) for _ in range(rng.randint(0, 4))]
    name = rng.choice(("server.exe", "hmi.EXE", "x.exe", "a b.exe", "Ł.exe", "x.bat", ".exe"))
    return "\\".join([root, *segments, name])


def _service(rng: random.Random) -> str:
    return rng.choice(("KEPServerEXV6", "OpcEnum", "Vendor Svc", "svc$", "a'b", "Ł",
                       "$(x)", "a;b", "x" * 300)) if rng.random() < 0.6 else hostile(rng)


def _sid(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "S-1-5-21-" + "-".join(str(rng.randint(0, 2**32 - 1)) for _ in range(4))
    return rng.choice(("S-1-5-32-544", "S-1-1-0", "S-1-5-18", "S-1-0", "S-1-x", "S-1-5-21"))


def _rights(rng: random.Random, key: str) -> list[str]:
    pool = (["local_access", "remote_access"] if "access" in key else
            ["local_launch", "remote_launch", "local_activation", "remote_activation"])
    return rng.sample(pool, rng.randint(0 if rng.random() < 0.1 else 1, len(pool)))


_PRINCIPAL_MAPS = ("launch", "access", "access_limits", "launch_limits")
ENUMS: dict[str, tuple[Any, ...]] = {
    "identity": ("workgroup", "domain", "mixed"),
    "process_mode": ("service", "interactive"),
    "authentication_level": ("default", "none", "connect", "call", "packet",
                             "packet_integrity", "packet_privacy"),
    "impersonation_level": ("default", "anonymous", "identify", "impersonate", "delegate"),
    "bitness": (32, 64),
    "sharing_model": ("classic", "guest_only"),
}


def fitting(rng: random.Random, key: Any, original: Any) -> Any:
    """A value that fits the field named `key` (most of the time), for mutants that check
    accepts."""
    if key in ENUMS:
        return rng.choice(ENUMS[key])
    if isinstance(original, bool):
        return not original
    if key == "address":
        return _address(rng)
    if key in ("clsid", "appid"):
        return _guid(rng)
    if key == "progid":
        return _progid(rng)
    if key == "executable":
        return _executable(rng)
    if key == "service":
        return _service(rng)
    if key == "sid":
        return _sid(rng)
    if key == "profiles":
        if isinstance(original, str):  # an item of the list
            return rng.choice(("domain", "private", "public"))
        return rng.sample(["domain", "private", "public"], rng.randint(0, 3))
    if key in _PRINCIPAL_MAPS:
        rights = _rights(rng, key)
        return rng.choice(rights) if isinstance(original, str) and rights else rights
    if key == "remote":
        return rng.choice(("site", "any", [_network(rng) for _ in range(rng.randint(0, 3))]))
    if key == "domain":
        return rng.choice(("PLANT9", "X", "A" * 15, "A" * 16, "Ł", "PLANT 9", "P.9"))
    if key in ("description", "name"):
        return hostile(rng, original)
    if key == "product":
        return rng.choice(("opcenum", "kepserverex-v6", "kepserverex-v5", "matrikon-simulation",
                           "simatic-net", "rslinx-classic", "rslinx-enterprise",
                           "iconics-simulator", "nope"))
    if key == "password":
        return "prompt" if rng.random() < 0.8 else hostile(rng)
    return hostile(rng, original)


def _other_type(rng: random.Random) -> Any:
    return rng.choice((None, 0, -1, 1.5, True, False, [], {}, ["x"], {"x": 1}, "", 2**70))


# --- the document -------------------------------------------------------------------------

DataPath = tuple[Any, ...]


def _nodes(data: Any, path: DataPath = ()) -> Iterator[tuple[DataPath, Any]]:
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _nodes(item, (*path, i))


def _get(data: Any, path: DataPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: DataPath, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _replace_everywhere(data: Any, old: str, new: Any, *, prefix: bool = False) -> Any:
    """Every key and string equal to `old` (or, with `prefix`, starting with `old\\`) as `new`."""

    def swap(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value == old:
            return new
        if prefix and isinstance(new, str) and value.startswith(old + "\\"):
            return new + value[len(old):]
        return value

    if isinstance(data, dict):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            new_key = swap(key)
            if isinstance(new_key, (list, dict)):
                new_key = str(new_key)
            out[new_key] = _replace_everywhere(value, old, new, prefix=prefix)
        return out
    if isinstance(data, list):
        return [_replace_everywhere(item, old, new, prefix=prefix) for item in data]
    return swap(data)


_NAMED_SECTIONS = (("accounts", "users"), ("accounts", "groups"), ("servers",), ("clients",),
                   ("hosts",))


def _names(doc: Any) -> list[str]:
    """The names a spec defines and refers to elsewhere: accounts, servers, clients, hosts,
    the site, the domain."""
    names: list[str] = []
    for section in _NAMED_SECTIONS:
        try:
            mapping = _get(doc, section)
        except (KeyError, TypeError, IndexError):
            continue
        if isinstance(mapping, dict):
            names += [k for k in mapping if isinstance(k, str)]
    return names


@dataclass
class Mutant:
    """One mutated spec: its YAML text, its file name, and what was done (for a report)."""

    text: str
    filename: str
    ops: list[str] = field(default_factory=list)


def _op_rename(rng: random.Random, doc: Any, ops: list[str]) -> Any:
    """Rename a defined name everywhere it is used (so that the spec still resolves)."""
    names = _names(doc)
    site = doc.get("site") if isinstance(doc, dict) else None
    domain = site.get("domain") if isinstance(site, dict) else None
    if isinstance(domain, str) and rng.random() < 0.15:
        new = fitting(rng, "domain", domain) if rng.random() < 0.5 else hostile(rng, domain)
        ops.append(f"rename domain {domain!r} -> {new!r}")
        return _replace_everywhere(doc, domain, new, prefix=True)
    if isinstance(site, dict) and isinstance(site.get("name"), str) and rng.random() < 0.1:
        new = hostile(rng, site["name"])
        ops.append(f"site.name -> {new!r}")
        site["name"] = new
        return doc
    if not names:
        return doc
    old = rng.choice(names)
    pick = rng.random()
    new: Any = plausible_name(rng) if pick < 0.4 else hostile(rng, old) if pick < 0.95 \
        else _other_type(rng)
    if isinstance(new, (list, dict, float)) or new is None:
        new = str(new)
    ops.append(f"rename {old!r} -> {new!r}")
    return _replace_everywhere(doc, old, new)


def _op_value(rng: random.Random, doc: Any, ops: list[str]) -> Any:
    """Replace one leaf value (or list element) with a fitting, hostile or mistyped one."""
    leaves = [(p, v) for p, v in _nodes(doc) if p and not isinstance(v, (dict, list))]
    if not leaves:
        return doc
    path, value = rng.choice(leaves)
    key = next((part for part in reversed(path) if isinstance(part, str)), None)
    if len(path) >= 3 and path[-3] in _PRINCIPAL_MAPS:  # a right of a principal
        key = str(path[-3])
    elif len(path) >= 2 and isinstance(path[-1], int):  # a list's item: the list's field
        key = str(path[-2])
    pick = rng.random()
    if key in ENUMS or key in _PRINCIPAL_MAPS or key in ("profiles", "remote") or \
            isinstance(value, bool):
        pick = pick * 0.5 if rng.random() < 0.9 else pick  # mostly a value of the field
    if pick < 0.5:
        new = fitting(rng, key, value)
    elif pick < 0.95:
        new = hostile(rng, value)
    else:
        new = _other_type(rng)
    ops.append(f"{'.'.join(map(str, path))} = {new!r}"[:300])
    _set(doc, path, new)
    return doc


def _op_list(rng: random.Random, doc: Any, ops: list[str]) -> Any:
    """Empty, shorten, duplicate into, or extend one list."""
    lists = [(p, v) for p, v in _nodes(doc) if p and isinstance(v, list)]
    if not lists:
        return doc
    path, items = rng.choice(lists)
    where = ".".join(map(str, path))
    pick = rng.random()
    if pick < 0.25:
        items.clear()
        ops.append(f"{where} = []")
    elif pick < 0.5 and items:
        items.append(copy.deepcopy(rng.choice(items)))
        ops.append(f"{where} += duplicate")
    elif pick < 0.7 and items:
        del items[rng.randrange(len(items))]
        ops.append(f"{where} -= one")
    else:
        names = _names(doc)
        new = rng.choice(names) if names and rng.random() < 0.5 else fitting(
            rng, str(path[-1]), None)
        if isinstance(new, list):
            new = new[0] if new else "x"
        items.append(new)
        ops.append(f"{where} += {new!r}"[:300])
    return doc


def _op_mapping(rng: random.Random, doc: Any, ops: list[str]) -> Any:
    """Delete a key, add an unknown key, toggle or add an optional field, or copy an entry
    (a second host, user, server...) under a new name."""
    maps = [(p, v) for p, v in _nodes(doc) if isinstance(v, dict)]
    path, mapping = rng.choice(maps)
    where = ".".join(map(str, path)) or "(top)"
    pick = rng.random()
    if pick < 0.25 and mapping:
        key = rng.choice(list(mapping))
        del mapping[key]
        ops.append(f"del {where}.{key}")
    elif pick < 0.3:
        key = hostile(rng) if rng.random() < 0.5 else rng.choice(("acess", "x", "Name"))
        mapping[key] = hostile(rng)
        ops.append(f"{where}.{key!r} = ...")
    elif pick < 0.6 and path in _NAMED_SECTIONS and mapping:
        old = rng.choice(list(mapping))
        new = hostile(rng, old) if rng.random() < 0.5 else f"{old}2"
        mapping[new] = copy.deepcopy(mapping[old])
        if path == ("hosts",) and isinstance(mapping[new], dict):
            mapping[new]["address"] = _address(rng)
        ops.append(f"copy {where}.{old} as {new!r}")
    else:
        model = spec_model_at(path)
        if model is None or path in _NAMED_SECTIONS or (path and path[-1] in _PRINCIPAL_MAPS):
            return doc  # keys of these are names, not fields
        key = rng.choice(list(model.model_fields))
        if key in ("member_of", "members"):
            names = [*_names(doc), "Administrators", "Users", "Distributed COM Users"]
            value: Any = rng.sample(names, min(len(names), rng.randint(0, 2)))
        elif key in ("service_account", "run_as"):
            names = _names(doc)
            value = rng.choice(names) if names else hostile(rng)
        elif model.model_fields[key].annotation in (bool, bool | None):
            value = rng.random() < 0.5
        elif key in _PRINCIPAL_MAPS:
            value = {rng.choice(_names(doc) or ["Everyone"]): _rights(rng, key)}
        elif isinstance(mapping.get(key), dict) or key in ("dcom", "firewall", "machine",
                                                              "security_policy", "server",
                                                              "client", "site", "accounts"):
            return doc  # a whole section: not made up here
        else:
            value = fitting(rng, key, mapping.get(key))
        mapping[key] = value
        ops.append(f"{where}.{key} = {value!r}"[:300])
    return doc


def _op_permissions(rng: random.Random, doc: Any, ops: list[str]) -> Any:
    """Give a server's launch or access map, or a machine limit, a principal and rights."""
    maps = [(p, v) for p, v in _nodes(doc)
            if isinstance(v, dict) and p and p[-1] in _PRINCIPAL_MAPS]
    if not maps:
        return doc
    path, mapping = rng.choice(maps)
    names = [*_names(doc), "Everyone", "ANONYMOUS LOGON", "SYSTEM", "S-1-5-32-544",
             "Administrators", "INTERACTIVE", "NETWORK", "Users"]
    principal = rng.choice(names) if rng.random() < 0.8 else hostile(rng)
    mapping[principal] = _rights(rng, str(path[-1]))
    ops.append(f"{'.'.join(map(str, path))}[{principal!r}] = {mapping[principal]}"[:300])
    return doc


_OPS: tuple[tuple[float, Callable[[random.Random, Any, list[str]], Any]], ...] = (
    (0.30, _op_value), (0.25, _op_rename), (0.15, _op_list), (0.20, _op_mapping),
    (0.10, _op_permissions),
)

# Raw YAML put in the place of a value (what a data-level mutation cannot write).
RAW_VALUES: tuple[str, ...] = (
    "!!int xyz", "!!bool maybe", "!!timestamp nope", "!foo x", "!", "!!str 5", "&a x", "*a",
    "*nope", "[", "{", "'unterminated", '"\\ud800"', '"\\uFFFE"', '"\\x00"', "---", "...",
    "? x", "|\n  two\n  lines", ">\n  folded", "<<: {}", "{a: 1, a: 2}", "[*a]", "@x", "`x",
    "%YAML", "\t", "!!binary AAAA", "!!python/object:os.system x", "!!set {a}", "!!omap []",
)


def _raw(rng: random.Random, text: str, ops: list[str]) -> str:
    """Replace one line's value by raw YAML, or insert a raw line."""
    lines = text.split("\n")
    candidates = [i for i, line in enumerate(lines) if ": " in line]
    if not candidates:
        return text
    i = rng.choice(candidates)
    raw = rng.choice(RAW_VALUES)
    if rng.random() < 0.8:
        head = lines[i].split(": ", 1)[0]
        lines[i] = f"{head}: {raw}"
    else:
        lines.insert(i, raw)
    ops.append(f"raw line {i + 1}: {raw!r}")
    return "\n".join(lines)


# File names: the spec's name is written into every artifact's header.
FILE_NAMES: tuple[str, ...] = (
    "a---b.yaml", "--.yaml", "-.yaml", "x\n.yaml", "x\t.yaml", "x\x1b[31m.yaml", "Łukasz.yaml",
    "用户.yaml", "😀.yaml", "con.yaml", "NUL.yaml", " x .yaml", "$(env.HOME).yaml", "a'b.yaml",
    'a"b.yaml', "a;b.yaml", "%PATH%.yaml", "[x].yaml", "{x}.yaml", "a&b.yaml", "<x>.yaml",
    "x\u202e.yaml", "x\u200b.yaml", "x\ufffe.yaml", "x" * 240 + ".yaml", "~~~.yaml",
    "```.yaml", "a]]>b.yaml", "a$$b.yaml", "!(wix.x).yaml", ".yaml", "spec", "spec.txt",
)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(doc: Any) -> str:
    try:  # libyaml's dumper refuses a lone surrogate, which PyYAML's writes as an escape
        return yaml.dump(doc, Dumper=_DUMPER, allow_unicode=True, sort_keys=False,
                         width=1 << 20)
    except (yaml.YAMLError, UnicodeError):
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1 << 20)


@functools.cache
def _example_data(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)


def mutant(rng: random.Random, *, max_ops: int = 4) -> Mutant:
    """One mutated spec: an example, 1..max_ops mutations of its data, and now and then of
    its YAML text (one in ten) or of its file name (one in twenty)."""
    example = rng.choice(EXAMPLES)
    doc: Any = copy.deepcopy(_example_data(example))
    ops: list[str] = [example.name]
    weights = [w for w, _ in _OPS]
    for _ in range(rng.randint(1, max_ops)):
        op = rng.choices([f for _, f in _OPS], weights)[0]
        doc = op(rng, doc, ops)
    # a first comment line: the document starts at 2:1, so an error at 1:1 is a fallback
    text = f"# a mutant of {example.name}\n" + _dump(doc)
    if rng.random() < 0.1:
        text = _raw(rng, text, ops)
    filename = "spec.yaml"
    if rng.random() < 0.05:
        filename = rng.choice(FILE_NAMES)
        ops.append(f"file name {filename!r}")
    return Mutant(text, filename, ops)


# --- the sweep: every hostile string in every field, one at a time ------------------------

# (example, what, how): `how` is "rename" (the name everywhere it is used), "set" (the value at
# that path), or "splice" (the value at that path with the string inserted in its middle).
SWEEP_FIELDS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("plant7-workgroup.yaml", "rename", ("opcuser",)),
    ("plant7-workgroup.yaml", "rename", ("opcsvc",)),
    ("plant7-workgroup.yaml", "rename", ("OPC Users",)),
    ("plant7-workgroup.yaml", "rename", ("kepware",)),
    ("plant7-workgroup.yaml", "rename", ("hmi",)),
    ("plant7-workgroup.yaml", "rename", ("HMI01",)),
    ("plant7-workgroup.yaml", "set", ("site", "name")),
    ("plant7-workgroup.yaml", "set", ("site", "description")),
    ("plant7-workgroup.yaml", "set", ("accounts", "users", "opcuser", "description")),
    ("plant7-workgroup.yaml", "set", ("accounts", "groups", "OPC Users", "description")),
    ("plant7-workgroup.yaml", "splice", ("clients", "hmi", "executable")),
    ("plant7-workgroup.yaml", "set", ("clients", "hmi", "description")),
    ("plant7-workgroup.yaml", "set", ("clients", "hmi", "service")),
    ("plant7-workgroup.yaml", "set", ("servers", "kepware", "service")),
    ("plant7-workgroup.yaml", "set", ("hosts", "HMI01", "description")),
    ("plant7-workgroup.yaml", "set", ("hosts", "HMI01", "address")),
    ("plant7-workgroup.yaml", "set", ("machine", "client", "firewall", "remote")),
    ("plant7-workgroup.yaml", "set", ("machine", "client", "firewall", "profiles", 0)),
    ("plant9-domain.yaml", "rename", ("PLANT9\\svc-opc",)),
    ("plant9-domain.yaml", "rename", ("PLANT9\\OPC Operators",)),
    ("plant9-domain.yaml", "rename", ("PLANT9",)),
    ("plant9-domain.yaml", "splice", ("servers", "boilers", "progid")),
    ("plant9-domain.yaml", "splice", ("servers", "boilers", "clsid")),
    ("plant9-domain.yaml", "splice", ("accounts", "users", "PLANT9\\svc-opc", "sid")),
    ("plant9-domain.yaml", "set", ("hosts", "ENG-WS1", "machine", "firewall", "remote", 0)),
    ("plant9-domain.yaml", "set", ("clients", "historian-collector", "service")),
)


def sweep() -> Iterator[Mutant]:
    """Every HOSTILE string, as it is and spliced into the original, in every SWEEP_FIELDS
    place: a deterministic complement of the random mutants."""
    for name, how, where in SWEEP_FIELDS:
        example = next(p for p in EXAMPLES if p.name == name)
        for text in HOSTILE:
            for spliced in (False, True):
                doc: Any = copy.deepcopy(_example_data(example))
                if how == "rename":
                    old = where[0]
                    new = old[: len(old) // 2] + text + old[len(old) // 2:] if spliced else text
                    doc = _replace_everywhere(doc, old, new, prefix=old == "PLANT9")
                else:
                    parent = _get(doc, where[:-1])
                    old = parent.get(where[-1]) if isinstance(parent, dict) else parent[where[-1]]
                    old = old if isinstance(old, str) else ""
                    if how == "splice" or spliced:
                        new = old[: len(old) // 2] + text + old[len(old) // 2:]
                    else:
                        new = text
                    parent[where[-1]] = new
                op = f"{how} {'.'.join(map(str, where))} = {new!r}"[:300]
                yield Mutant(f"# sweep of {name}\n" + _dump(doc), "spec.yaml", [name, op])


# --- the oracle ---------------------------------------------------------------------------


@dataclass
class Verdict:
    """What one spec did: accepted by check or not, and every breach of the contract."""

    accepted: bool = False
    built: bool = False
    msi: bool = False
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)


# Kinds of breach, as the fuzz run counts them.
TRACEBACK = "traceback"
BAD_EXIT = "exit other than 0/1/2"
NO_POSITION = "error without a position"
CHECK_BUILD = "passes check, fails build"
KINDS = (TRACEBACK, BAD_EXIT, NO_POSITION, CHECK_BUILD)


# Defects found by this fuzzer outside the files its owner may change, each with a strict
# xfail reproducer in tests/unit/test_check_build_regressions.py; a problem whose detail
# matches is counted apart (`known`), and remove the entry when that test starts to pass.
KNOWN: dict[str, tuple[str, ...]] = {}


def known(detail: str) -> str | None:
    """The KNOWN defect a problem's detail shows, or None."""
    for label, marks in KNOWN.items():
        if all(mark in detail for mark in marks):
            return label
    return None


def whole_file(diag: Diagnostic) -> bool:
    """An error that is about the file as a whole (its name, its bytes, an empty document),
    which `1:1` is the right place for."""
    return (diag.code == "E001" and ("cannot read" in diag.message or "empty" in diag.message)) \
        or "file name" in diag.message


def _positions(diags: list[Diagnostic]) -> list[str]:
    return [str(d) for d in diags if d.severity is Severity.ERROR and (
        d.span is None or ((d.span.line, d.span.col) == (1, 1) and not whole_file(d)))]


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-3000:]


def _cli(args: list[str]) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(cli_main, args, catch_exceptions=True)
    exc = None if isinstance(result.exception, SystemExit) else result.exception
    return result.exit_code, result.output, exc


def judge(spec: Mutant, folder: Path, *, msi: bool = False) -> Verdict:
    """Run `spec` through compile_file and the CLI's check and build (in `folder`, emptied
    first); every breach of the contract is in the verdict's problems."""
    verdict = Verdict(msi=msi)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / spec.filename
    try:
        path.write_bytes(spec.text.encode("utf-8", "surrogatepass"))
    except (OSError, UnicodeEncodeError) as exc:  # a file name this file system refuses
        verdict.problems.append(("skipped", f"cannot write the spec: {exc}"))
        return verdict
    try:
        compile_file(path)
    except CompileError as exc:
        missing = _positions(exc.diagnostics.items)
        if missing:
            verdict.problems.append((NO_POSITION, "\n".join(missing[:5])))
    except Exception as exc:
        verdict.problems.append((TRACEBACK, "compile_file: " + _traceback(exc)))
        return verdict
    else:
        verdict.accepted = True
    code, output, exc = _cli(["check", str(path)])
    if exc is not None:
        verdict.problems.append((TRACEBACK, "check: " + _traceback(exc)))
    elif code not in (0, 1, 2):
        verdict.problems.append((BAD_EXIT, f"check exited {code}: {output[-2000:]}"))
    elif code != (0 if verdict.accepted else 2):
        verdict.problems.append((BAD_EXIT, f"check exited {code} (compile_file "
                                 f"{'accepted' if verdict.accepted else 'refused'}): "
                                 f"{output[-2000:]}"))
    if not verdict.accepted:
        return verdict
    args = ["build", str(path), "-o", str(folder / "out")] + ([] if msi else ["--no-msi"])
    code, output, exc = _cli(args)
    if exc is not None:
        verdict.problems.append((TRACEBACK, "build: " + _traceback(exc)))
    elif code not in (0, 1, 2):
        verdict.problems.append((BAD_EXIT, f"build exited {code}: {output[-2000:]}"))
    elif code != 0:
        verdict.problems.append((CHECK_BUILD, f"build exited {code}: {output[-2000:]}"))
    else:
        verdict.built = True
    return verdict


def wixl_installed() -> bool:
    return shutil.which("wixl") is not None and os.environ.get("DCOMC_FUZZ_NO_MSI") is None
