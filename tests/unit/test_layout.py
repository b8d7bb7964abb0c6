"""The compiler's package layout: one subpackage per pipeline stage, and no import cycles.

A cycle between two modules (even one hidden behind `if TYPE_CHECKING:` or a function-level
import) means neither can be read, tested or moved without the other; the stage order
load → spec → check → lower → lint → emit is only real if imports follow it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "compiler" / "dcomc"
STAGES = {"front", "checks", "plan", "emit", "windows", "readback", "explain"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every dcomc module `path` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dcomc"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    return found & modules


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    return {name: _imports(path, modules) - {name} for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.endswith("__main__"):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycles() -> None:
    # Package __init__ modules are docstrings only, so importing a package never pulls a stage.
    graph = _graph()
    cycle = _cycle({k: {m for m in v if m not in {f"dcomc.{s}" for s in STAGES}}
                    for k, v in graph.items()})
    assert cycle is None, " → ".join(cycle or [])


def test_detects_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_stage_packages_hold_the_modules() -> None:
    top = sorted(p.stem for p in PKG.glob("*.py"))
    assert top == ["__init__", "__main__", "cli", "diagnostics", "epoch", "pipeline"]
    assert {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()} == STAGES
    for stage in STAGES:
        init = (PKG / stage / "__init__.py").read_text(encoding="utf-8")
        body = ast.parse(init).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{stage}: docstring only"
