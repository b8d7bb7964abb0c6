"""Fixtures of the engine tests: the bundles the Pester suites run the real engine on."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcomc.emit import bundle
from dcomc.pipeline import compile_file
from dcomc_targets import Options

ROOT = Path(__file__).resolve().parents[2]
# Every golden case (they are the shipped examples) and a spec of hostile names.
SPECS = (*sorted((ROOT / "examples").glob("*.yaml")), Path(__file__).parent / "hostile-names.yaml")


@pytest.fixture(scope="session")
def engine_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<root>/<spec stem>/<HOST>/powershell/...: built once per test process, without MSIs."""
    root = tmp_path_factory.mktemp("engine-bundles")
    for spec in SPECS:
        bundle.build(compile_file(spec), Options(), spec.name, root / spec.stem)
    return root
