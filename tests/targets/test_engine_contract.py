"""The contract between the IR and the PowerShell engine: every resource kind has its four
functions, and every `$Resource.<Field>` an engine function reads exists in that kind's data.
A new resource kind, or a renamed field, fails here instead of on a plant PC."""

from __future__ import annotations

import dataclasses
import re

from dcomc.plan.model import RESOURCE_KINDS, AppRef, Principal, Resource
from dcomc.windows import sd, sdbinary
from dcomc_targets import regfile
from dcomc_targets.powershell import engine_text, parse_tree, pascal

ENGINE = engine_text()
VERBS = ("Get", "Test", "Set", "Restore")
COMMON = {"Id", "Kind", "Phase", "Guide", "Source"}
NESTED = {"App": AppRef, "Principal": Principal, "Account": Principal, "Group": Principal,
          "Member": Principal}


def kinds_table() -> dict[str, str]:
    block = ENGINE[ENGINE.index("$script:Kinds = @{"):]
    block = block[: block.index("}")]
    return dict(re.findall(r"'(\w+)'\s*=\s*'(\w+)'", block))


def functions() -> dict[str, str]:
    root, source = parse_tree(ENGINE)
    found: dict[str, str] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name")
            found[source[name.start_byte:name.end_byte].decode()] = source[
                node.start_byte:node.end_byte].decode()
        stack.extend(node.children)
    return found


def fields(cls: type[Resource]) -> set[str]:
    return COMMON | {pascal(f.name) for f in dataclasses.fields(cls)
                     if f.name not in ("id", "prov")}


def test_every_kind_has_a_handler() -> None:
    table = kinds_table()
    assert set(table) == {cls.kind for cls in RESOURCE_KINDS}
    names = functions()
    for handler in table.values():
        for verb in VERBS:
            assert f"{verb}-Dcomc{handler}" in names, f"{verb}-Dcomc{handler} is missing"


def test_handlers_read_only_fields_the_data_has() -> None:
    table = kinds_table()
    names = functions()
    for cls in RESOURCE_KINDS:
        handler = table[cls.kind]
        have = fields(cls)
        for verb in VERBS:
            body = names[f"{verb}-Dcomc{handler}"]
            for used in re.findall(r"\$Resource\.(\w+)", body):
                assert used in have, f"{verb}-Dcomc{handler} reads $Resource.{used}"
            for outer, inner in re.findall(r"\$Resource\.(\w+)\.(\w+)", body):
                nested = NESTED.get(outer)
                if nested is not None:
                    names_inner = {pascal(f.name) for f in dataclasses.fields(nested)}
                    assert inner in names_inner, f"$Resource.{outer}.{inner} in {handler}"


def test_principal_and_app_fields_used_by_helpers_exist() -> None:
    principal = {pascal(f.name) for f in dataclasses.fields(Principal)}
    app = {pascal(f.name) for f in dataclasses.fields(AppRef)}
    for used in re.findall(r"\$Principal\.(\w+)", ENGINE):
        assert used in principal, used
    for used in re.findall(r"\$App\.(\w+)", ENGINE):
        assert used in app, used


def test_every_engine_function_called_is_defined() -> None:
    """PowerShell finds a misspelt command only when the line runs (on a plant PC)."""
    names = functions()
    called = set(re.findall(r"(?<![\w-])([A-Z][a-z]+-Dcomc\w+)", ENGINE))
    assert called, "no engine call found"
    assert called <= set(names), sorted(called - set(names))


def _engine_hex_table(name: str) -> dict[str, str]:
    block = ENGINE[ENGINE.index(f"$script:{name} = @{{"):]
    block = block[: block.index("}")]
    return dict(re.findall(r"'(\w+)'\s*=\s*'([0-9a-f]+)'", block))


def test_engine_defaults_are_the_compilers_descriptors() -> None:
    """The engine's Windows defaults (limits, AppID ACLs) are the bytes of the SDDL the .reg
    writer starts from: one fact, two encodings, compared here."""
    for name, sddl in (("DefaultLimits", regfile.DEFAULT_LIMITS),
                       ("DefaultAppAcl", regfile.DEFAULT_APP_ACL)):
        table = _engine_hex_table(name)
        assert set(table) == {"launch", "access"}
        for which, text in sddl.items():
            assert table[which] == sdbinary.to_binary(sd.parse_sddl(text)).hex(), (name, which)
