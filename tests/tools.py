"""Real tools the tests drive: skip when missing locally, fail when CI requires them."""

from __future__ import annotations

import os

import pytest


def require(ok: bool, what: str) -> None:
    """Skip the test when `what` is missing; in CI (DCOMC_REQUIRE_TOOLS=1) fail instead."""
    if not ok:
        if os.environ.get("DCOMC_REQUIRE_TOOLS"):
            pytest.fail(f"{what} is required in CI but missing")
        pytest.skip(f"{what} not installed")
