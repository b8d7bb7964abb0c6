"""Reference data for tests/engine/SecurityDescriptor.Tests.ps1, computed by the Python compiler.

The PowerShell engine has its own descriptor codec (templates/powershell/engine/
20-SecurityDescriptor.ps1); these are the bytes it must reproduce exactly:

* `descriptors`: every REG_BINARY value of the .reg files built from examples/*.yaml (with
  --replace-machine-limits, so the machine limits are in them too), read back from the file's
  `hex:` lines, with the SDDL and ACEs the compiler meant; plus, for each AppID ACL the .reg
  leaves to the engine (SID or AppID known only on the PC), the bytes `sdbinary` gives for it
  with a stand-in SID, since the engine builds those with the same codec on the PC.
* `merges`: for each host and limit, the Windows 10/11 default limit (dcom-facts §2.1), the
  plan's additions (stand-in SID where the plan has none), and `sd.merge_aces`' result.
* `edge_merges`: the same for the cases of `merge_aces` the examples do not reach (deny and
  INHERIT_ONLY ACEs, old-format masks), with the `SDError` message where it refuses.

`--check-malformed` instead reads a JSON list of hex strings on stdin and prints, per string,
the `SDError` message of `sdbinary.from_binary` (or "ok"), so the tests can show both readers
refuse the same input; `--check-sids` reads a JSON list of strings and prints, per string,
whether `sids.is_sid` accepts it and, if so, the bytes `sdbinary` writes for it and the SID it
reads back from them. Output is JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "compiler"), str(ROOT / "targets")]

from dcomc.pipeline import compile_file  # noqa: E402
from dcomc.plan.model import AppIdPermission, HostPlan, MachineLimitAddition  # noqa: E402
from dcomc.windows import (  # noqa: E402
    sd,
    sdbinary,
    sids,
)
from dcomc_targets import regfile  # noqa: E402
from dcomc_targets.base import EmitContext, Options, decode_utf16  # noqa: E402

# A local account's SID for principals the plan resolves only on the PC.
STAND_IN_SID = "S-1-5-21-1-2-3-1001"
BINARY_VALUES = ("LaunchPermission", "AccessPermission", *regfile.LIMIT_VALUE.values())


def _aces(desc: sd.SecurityDescriptor) -> list[dict[str, Any]]:
    return [{"sid": a.sid, "mask": a.mask, "allow": a.allow, "flags": a.flags}
            for a in desc.dacl or ()]


def _entry(source: str, where: str, data: bytes) -> dict[str, Any]:
    desc = sdbinary.from_binary(data)
    return {"source": source, "where": where, "hex": data.hex(),
            "sddl": sdbinary.binary_to_sddl(data), "owner": desc.owner, "group": desc.group,
            "aces": _aces(desc)}


def _reg_values(text: str) -> list[tuple[str, bytes]]:
    """(key\\name, bytes) of each `"Name"=hex:` value of a .reg file, continuations joined."""
    lines = text.replace("\r\n", "\n").split("\n")
    found: list[tuple[str, bytes]] = []
    key = ""
    for index, line in enumerate(lines):
        if line.startswith("["):
            key = line.strip("[]").rsplit("\\", 1)[-1]
        name = next((n for n in BINARY_VALUES if line.startswith(f'"{n}"=hex:')), None)
        if name is None:
            continue
        chunk = [line]
        while chunk[-1].endswith("\\"):
            index += 1
            chunk.append(lines[index])
        found.append((f"{key}\\{name}", sdbinary.read_hex_input("\n".join(chunk))))
    return found


def _reg_descriptors(spec: str, host: HostPlan, ctx: EmitContext) -> list[dict[str, Any]]:
    (artifact,) = regfile.RegTarget().emit(host, ctx)
    text = decode_utf16(artifact.data, ".reg")
    return [_entry("reg", f"{spec} {host.name} {name}", data) for name, data in _reg_values(text)]


def _engine_acls(spec: str, host: HostPlan) -> list[dict[str, Any]]:
    out = []
    for r in host.of_kind(AppIdPermission):
        if r.app.appid and all(a.principal.static for a in r.aces):
            continue  # in the .reg already
        aces = tuple(sd.Ace(a.principal.sid or STAND_IN_SID, a.mask) for a in r.aces)
        desc = sd.SecurityDescriptor("S-1-5-32-544", "S-1-5-32-544", aces)
        data = sdbinary.sddl_to_binary(sd.to_sddl(desc))
        out.append(_entry("engine", f"{spec} {host.name} {r.id}", data))
    return out


def _merges(spec: str, host: HostPlan) -> list[dict[str, Any]]:
    out = []
    for which, value in regfile.LIMIT_VALUE.items():
        items = [r for r in host.of_kind(MachineLimitAddition) if r.which == which]
        if not items:
            continue
        base = sd.parse_sddl(regfile.DEFAULT_LIMITS[which])
        added = [sd.Ace(r.principal.sid or STAND_IN_SID, r.mask) for r in items]
        acl = sd.merge_aces(base.dacl or (), added)
        merged = sd.SecurityDescriptor(base.owner, base.group, acl)
        out.append({"where": f"{spec} {host.name} {value}",
                    "base_hex": sdbinary.to_binary(base).hex(),
                    "additions": [{"sid": a.sid, "mask": a.mask} for a in added],
                    "merged_hex": sdbinary.to_binary(merged).hex(),
                    "merged_sddl": sd.to_sddl(merged)})
    return out


# Edge cases of merge_aces that the examples do not reach: (name, base SDDL, additions).
EDGE_MERGES: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = (
    ("deny and INHERIT_ONLY ACEs of the SID are not merged into",
     "O:BAG:BAD:(D;;CCDC;;;AN)(A;IO;CCDCLC;;;AN)(A;;CCDC;;;WD)", (("S-1-5-7", 7),)),
    ("only the first plain allow ACE of the SID gets the rights",
     "O:BAG:BAD:(A;;CCDC;;;WD)(A;;CCDCLC;;;AN)(A;;CCDC;;;AN)", (("S-1-5-7", 0x13),)),
    ("a non-canonical SID matches its canonical form",
     "O:BAG:BAD:(A;;CCDC;;;WD)(A;;CCDC;;;AN)", (("S-1-05-007", 4),)),
    ("several additions in turn", "O:BAG:BAD:(A;;CCDC;;;WD)",
     (("S-1-5-32-562", 7), ("S-1-1-0", 5), ("S-1-5-32-562", 3))),
    ("an empty DACL gets its first ACE", "O:BAG:BAD:", (("S-1-5-7", 3),)),
    ("old format added to an old-format ACL", "O:BAG:BAD:(A;;CC;;;WD)", (("S-1-5-7", 1),)),
    ("new format refused on an old-format ACL", "O:BAG:BAD:(A;;CC;;;WD)", (("S-1-5-7", 3),)),
    ("old format refused on a new-format ACL", "O:BAG:BAD:(D;;CCDC;;;WD)", (("S-1-5-7", 1),)),
)


def _edge_merges() -> list[dict[str, Any]]:
    out = []
    for name, sddl, additions in EDGE_MERGES:
        base = sd.parse_sddl(sddl)
        added = [sd.Ace(sid, mask) for sid, mask in additions]
        entry = {"where": name, "base_hex": sdbinary.to_binary(base).hex(),
                 "additions": [{"sid": sid, "mask": mask} for sid, mask in additions]}
        try:
            merged = sd.SecurityDescriptor(base.owner, base.group,
                                           sd.merge_aces(base.dacl or (), added))
            entry.update(merged_hex=sdbinary.to_binary(merged).hex(),
                         merged_sddl=sd.to_sddl(merged), error=None)
        except sd.SDError as error:
            entry.update(merged_hex=None, merged_sddl=None, error=str(error))
        out.append(entry)
    return out


def reference() -> dict[str, Any]:
    descriptors: list[dict[str, Any]] = []
    merges: list[dict[str, Any]] = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        compiled = compile_file(path)
        ctx = EmitContext(compiled.plan, Options(replace_machine_limits=True), path.name,
                          compiled.sha256)
        for host in compiled.plan.hosts:
            descriptors += _reg_descriptors(path.name, host, ctx)
            descriptors += _engine_acls(path.name, host)
            merges += _merges(path.name, host)
    return {"descriptors": descriptors, "merges": merges, "edge_merges": _edge_merges()}


def check_malformed(hexes: list[str]) -> list[str]:
    results = []
    for text in hexes:
        try:
            sdbinary.from_binary(bytes.fromhex(text))
            results.append("ok")
        except sd.SDError as error:
            results.append(str(error))
    return results


def check_sids(texts: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for text in texts:
        if not sids.is_sid(text):
            results.append({"sid": text, "valid": False, "hex": None, "back": None})
            continue
        data = sdbinary._sid_bytes(text)
        back = sdbinary._read_sid(data, 0, len(data), "SID")
        results.append({"sid": text, "valid": True, "hex": data.hex(), "back": back})
    return results


if __name__ == "__main__":
    if sys.argv[1:] == ["--check-malformed"]:
        result: Any = check_malformed(json.load(sys.stdin))
    elif sys.argv[1:] == ["--check-sids"]:
        result = check_sids(json.load(sys.stdin))
    else:
        result = reference()
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
