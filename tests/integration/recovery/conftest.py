"""Fixtures of the recovery tests: the isolation a node runs with (posix, and linux
where root and cgroups are at hand), and a temporary place for its data directory."""

from __future__ import annotations

import pytest

from mesoslite.runtime.cgroups.layout import DEFAULT_CGROUP_ROOT, detect_cgroup_layout
from mesoslite.runtime.isolation import LINUX_ISOLATION, POSIX_ISOLATION
from tests.conftest import require, require_root


@pytest.fixture(params=["posix", "linux"])
def isolation(request: pytest.FixtureRequest) -> list[str]:
    """The `--isolation` arguments of the node under test."""
    if request.param == "linux":
        require_root()
        require(detect_cgroup_layout(DEFAULT_CGROUP_ROOT) is not None, "needs cgroups")
        return ["--isolation", LINUX_ISOLATION]
    return ["--isolation", POSIX_ISOLATION]
