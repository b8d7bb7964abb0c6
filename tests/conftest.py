"""Shared fixtures: the example specs and their compiled plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcomc.pipeline import Compiled, compile_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_SPECS = sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture(scope="session")
def plant7() -> Compiled:
    return compile_file(EXAMPLES / "plant7-workgroup.yaml")


@pytest.fixture(scope="session")
def plant9() -> Compiled:
    return compile_file(EXAMPLES / "plant9-domain.yaml")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite the golden files under tests/cases/ (review the diff).")


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
