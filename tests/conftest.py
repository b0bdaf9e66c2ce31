"""Shared test configuration.

Tests that need root or a kernel feature call `require(...)`: without the feature
they skip with a reason, except under `MESOSLITE_REQUIRE_ALL=1` (set by CI), where a
missing feature fails the test instead of hiding it.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("MESOSLITE_REQUIRE_ALL") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip (or, in CI, fail) the calling test unless `condition` holds."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required capability missing (MESOSLITE_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"needs `{name}` on PATH")
    assert path is not None
    return path
