"""End-to-end fixtures: a real `mesoslite up` process, as a user starts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.up_node import UpNode, start_up, stop_up

__all__ = ["UpNode", "free_port", "start_up", "stop_up"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[UpNode]:
    running = start_up(tmp_path)
    try:
        yield running
    finally:
        stop_up(running)


@pytest.fixture
def master_http(cluster: UpNode) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{cluster.master}", timeout=10) as client:
        yield client
