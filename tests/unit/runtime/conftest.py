"""Fixtures for the runtime unit tests: real processes, cleaned up even on failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.containerizer import MesosContainerizer

from .helpers import BASIC_PATH


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def containerizer() -> AsyncIterator[MesosContainerizer]:
    async with MesosContainerizer() as built:
        try:
            yield built
        finally:
            for container_id in built.containers():
                await built.destroy(container_id)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., ContainerConfig]:
    counter = iter(range(1_000_000))

    def build(command: mesos_pb2.CommandInfo, **overrides: object) -> ContainerConfig:
        sandbox = tmp_path / f"sandbox-{next(counter)}"
        sandbox.mkdir()
        fields: dict[str, object] = {
            "command": command,
            "sandbox": sandbox,
            "environment": {"PATH": BASIC_PATH},
        }
        fields.update(overrides)
        return ContainerConfig(**fields)  # type: ignore[arg-type]

    return build
