"""The documentation cannot drift: docs/spec.md is generated, docs/errors.md covers every code.

Also checks that the JSON Schema (`dcomc schema`) accepts the shipped examples and refuses an
unknown key, as editors using it will.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel

from dcomc.front import spec, specdoc
from dcomc.plan.lower import ROLE_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
SPEC_MD = ROOT / "docs" / "spec.md"
ERRORS_MD = ROOT / "docs" / "errors.md"
# Diagnostics come from the compiler and from the artifact targets (E4xx).
SOURCES = (ROOT / "compiler" / "dcomc", ROOT / "targets" / "dcomc_targets")
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CODE_IN_SOURCE = re.compile(r"""["'](E\d{3})["']""")
# A row starts with its anchor (SARIF's helpUri and messages link docs/errors.md#E102).
CODE_ROW = re.compile(r'^\|\s*<a id="(E\d{3})"></a>\1\s*\|', re.MULTILINE)


def spec_models() -> list[type[BaseModel]]:
    """Every public model class defined in dcomc.spec (found independently of specdoc)."""
    return [
        obj
        for obj in vars(spec).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel)
        and obj.__module__ == spec.__name__ and not obj.__name__.startswith("_")
    ]  # fmt: skip


def sections(text: str) -> dict[str, str]:
    """The `## Name` sections of a markdown text, by heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def row(text: str, key: str) -> list[str]:
    """The cells of the table row whose key is `key`."""
    for line in text.splitlines():
        if line.startswith(f"| `{key}` |"):
            return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    raise AssertionError(f"no row for `{key}`")


# --- (a) docs/spec.md is generated --------------------------------------------------------


def test_spec_md_is_current() -> None:
    on_disk = SPEC_MD.read_text(encoding="utf-8") if SPEC_MD.exists() else ""
    assert on_disk == specdoc.markdown(), (
        f"docs/spec.md is out of date with compiler/dcomc/spec.py; regenerate it from the "
        f"repository root with:\n    {specdoc.REGENERATE}"
    )


def test_markdown_is_deterministic() -> None:
    assert specdoc.markdown() == specdoc.markdown()


# --- (b) every field of every model is documented -----------------------------------------


def test_every_model_has_a_section() -> None:
    found = sections(specdoc.markdown())
    missing = [m.__name__ for m in spec_models() if m.__name__ not in found]
    assert not missing


@pytest.mark.parametrize("model", spec_models(), ids=lambda m: m.__name__)
def test_every_field_is_documented(model: type[BaseModel]) -> None:
    text = sections(specdoc.markdown())[model.__name__]
    keys = re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)
    for name, field in model.model_fields.items():
        matching = [k for k in keys if k == name or k.endswith(f".{name}")]
        assert len(matching) == 1, f"{model.__name__}.{name} has {len(matching)} rows"
        cells = row(text, matching[0])
        assert cells[4] == (field.description or "").replace("|", "\\|")
        assert cells[3] == ("yes" if field.is_required() else "no")


def test_walk_reaches_every_model() -> None:
    reached = {model for model, _ in specdoc.visits()}
    assert reached == set(spec_models())


def test_keys_are_dotted_paths() -> None:
    text = specdoc.markdown()
    assert row(text, "servers.<server>.launch")[1] == (
        "map principal → list of one of: local_launch, remote_launch, local_activation, "
        "remote_activation"
    )
    assert row(text, "hosts")[1] == "map `<host>` → [Host](#host)"
    assert row(text, "accounts.users.<user>.member_of")[1] == "list of string"
    assert row(text, "site.identity")[1:3] == ["one of: workgroup, domain, mixed", "workgroup"]
    assert row(text, "site.name")[2:4] == ["—", "yes"]


def test_role_machine_places() -> None:
    text = sections(specdoc.markdown())["RoleMachine"]
    assert "At `machine.<role>`." in text
    assert "`hosts.<host>.machine`" in text


def test_role_defaults_come_from_lower() -> None:
    text = specdoc.markdown()
    assert row(text, "machine.<role>.dcom.authentication_level")[2] == (
        "server: packet_integrity; client: packet_integrity"
    )
    assert row(text, "machine.<role>.firewall.client_executables")[2] == (
        "server: false; client: true"
    )
    assert row(text, "machine.<role>.security_policy.sharing_model")[2] == (
        "server: classic; client: not set (left as it is)"
    )
    for role in ROLE_DEFAULTS:
        assert f"{role}: " in row(text, "machine.<role>.opcenum")[2]


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (str, "string"),
        (bool | None, "bool"),
        (Literal["a", "b"], "one of: a, b"),
        (list[Literal["a", "b"]] | None, "list of one of: a, b"),
        (Literal["site", "any"] | list[str] | None, "one of: site, any; or list of string"),
        (dict[str, list[spec.AccessRight]],
         "map principal → list of one of: local_access, remote_access"),
        (dict[str, int], "map name → integer"),
    ],
)  # fmt: skip
def test_type_text(annotation: Any, text: str) -> None:
    assert specdoc.type_text(annotation) == text


# --- (c) the JSON Schema accepts the examples, refuses unknown keys -----------------------


def load_example(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = spec.json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_two_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_schema_accepts_example(validator: Any, path: Path) -> None:
    errors = [e.message for e in validator.iter_errors(load_example(path))]
    assert errors == []


@pytest.mark.parametrize(
    ("where", "key"),
    [((), "hsots"), (("site",), "nmae"), (("servers", "kepware"), "acess"),
     (("machine", "server", "dcom"), "enabled")],
)  # fmt: skip
def test_schema_refuses_unknown_key(validator: Any, where: tuple[str, ...], key: str) -> None:
    data = copy.deepcopy(load_example(ROOT / "examples" / "plant7-workgroup.yaml"))
    node = data
    for part in where:
        node = node[part]
    node[key] = {}
    errors = list(validator.iter_errors(data))
    assert errors, f"the schema accepted unknown key {key!r} at {where}"
    assert "additionalProperties" in kinds(errors)


def kinds(errors: list[Any]) -> set[str]:
    """The validators that failed, including those inside anyOf (Optional fields)."""
    found: set[str] = set()
    for error in errors:
        found.add(str(error.validator))
        found |= kinds(list(error.context or []))
    return found


def test_schema_refuses_bad_enum(validator: Any) -> None:
    data = copy.deepcopy(load_example(ROOT / "examples" / "plant7-workgroup.yaml"))
    data["site"]["identity"] = "wrkgroup"
    assert not validator.is_valid(data)


# --- (d) docs/errors.md documents exactly the codes the compiler uses ---------------------


def source_codes() -> set[str]:
    codes: set[str] = set()
    for path in (p for source in SOURCES for p in source.rglob("*.py")):
        codes.update(CODE_IN_SOURCE.findall(path.read_text(encoding="utf-8")))
    return codes


def documented_codes() -> list[str]:
    return CODE_ROW.findall(ERRORS_MD.read_text(encoding="utf-8"))


def test_source_uses_codes() -> None:
    assert len(source_codes()) >= 30  # the regex still finds them


def test_every_code_is_documented() -> None:
    missing = sorted(source_codes() - set(documented_codes()))
    assert not missing, f"codes used in the source but not in docs/errors.md: {missing}"


def test_every_documented_code_is_used() -> None:
    stale = sorted(set(documented_codes()) - source_codes())
    assert not stale, f"codes in docs/errors.md that the source no longer uses: {stale}"


def test_errors_md_rows_are_unique_and_sorted() -> None:
    codes = documented_codes()
    assert codes == sorted(set(codes))
    for line in ERRORS_MD.read_text(encoding="utf-8").splitlines():
        if CODE_ROW.match(line):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == 5 and all(c.strip() for c in cells), line


def test_every_code_row_has_its_anchor() -> None:
    text = ERRORS_MD.read_text("utf-8")
    rows = re.findall(r"(?m)^\|\s*(?:<a[^>]*></a>)?`?([EW]\d{3})", text)
    anchored = re.findall(r'(?m)^\|\s*<a id="([EW]\d{3})"></a>\1\s*\|', text)
    assert rows and rows == anchored
