"""What ships cites only what ships or is public (issue 13, item 3).

Messages, docs, the catalog, `dcomc explain` and the artifacts' comments once cited the team's
reference notes (dcom-facts, peers.md), which users never get. Every shipped file and every
artifact of a build of the examples is scanned: no reference note is named, every `*.md` or
`*.txt` path named exists in the repository (or is a file the bundle itself writes), and every
`docs/windows.md#anchor` exists in docs/windows.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcomc.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "README.md", *(p for top in ("compiler", "targets", "templates", "docs",
                                               "examples")
                                 for p in sorted((ROOT / top).rglob("*")) if p.is_file())]
UNSHIPPED = re.compile(r"dcom-facts|peers\.md|peers \(b\)|engine-audit|style-anchors|"
                       r"\.\./shared|shared/reference|shared/seed", re.IGNORECASE)
DOC_PATH = re.compile(r"[\w./-]*\w\.(?:md|txt)(?![\w.])")  # not review.md.j2
# Files a bundle writes (named in docs and in its own artifacts), not repository files.
WRITTEN = {"REVIEW.md"}
# Names that are examples, not citations: CON.txt is a device name Windows reserves.
EXAMPLES = {"CON.txt"}


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    if b"\0" in data[:4096]:
        return None  # binary (an MSI, an image): no citations to read
    return data.decode("utf-8", errors="replace")


def _anchors() -> set[str]:
    text = (ROOT / "docs" / "windows.md").read_text(encoding="utf-8")
    return set(re.findall(r'<a id="([\w-]+)"></a>', text))


def _problems(name: str, text: str) -> list[str]:
    found = [f"{name}: names {m.group()!r}" for m in UNSHIPPED.finditer(text)]
    for m in DOC_PATH.finditer(text):
        path = m.group()
        token = text[text.rfind(" ", 0, m.start()) + 1:m.end()]
        if Path(path).name in WRITTEN | EXAMPLES or "://" in token:  # or part of a URL
            continue
        if not any((base / path).exists() for base in (ROOT, ROOT / "docs")):
            found.append(f"{name}: names {path!r}, which is not in the repository")
    anchors = _anchors()
    for m in re.finditer(r"(?:docs/)?windows\.md#([\w-]+)", text):
        if m.group(1) not in anchors:
            found.append(f"{name}: cites {m.group()!r}, which docs/windows.md has no anchor for")
    return found


def test_shipped_files_cite_only_what_ships() -> None:
    problems = []
    for path in SHIPPED:
        text = _text(path)
        if text is not None and "__pycache__" not in path.parts:
            problems += _problems(str(path.relative_to(ROOT)), text)
    assert problems == []


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_artifacts_cite_only_what_ships(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--no-msi", "--replace-machine-limits",
                                       "-o", str(out), str(example)])
    assert result.exit_code == 0, result.output
    problems = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        text = _text(path)
        if text is not None:
            problems += _problems(str(path.relative_to(out)), text)
    assert problems == []


@pytest.mark.parametrize("code", ["0x80070005", "0x800706BA", "0x80040202", "10036", "10037",
                                  "10038", "0x80080005", "0x80040154", "0x8001011C", "10016"])
def test_explain_cites_only_what_ships(code: str) -> None:
    result = CliRunner().invoke(main, ["explain", code, "--spec",
                                       str(ROOT / "examples" / "plant7-workgroup.yaml")])
    assert result.exit_code == 0, result.output
    assert _problems(f"explain {code}", result.output) == []


def test_the_scan_finds_what_it_looks_for() -> None:
    assert _problems("x", "see dcom-facts §2.1") != []
    assert _problems("x", "peers.md pain point 4") != []
    assert _problems("x", "../shared/seed/dcom-guide.txt") != []
    assert _problems("x", "access-control-lists-for-com.md") != []
    assert _problems("x", "docs/windows.md#no-such-section") != []
    assert _problems("x", "docs/windows.md#machine-limits, docs/errors.md, README.md") == []
