"""The agent listener's routes (Mesos' agent process is `slave(1)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesoslite.agent.executor_api import ExecutorApi
from mesoslite.wire.routing import Router

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["build_router"]


def build_router(agent: Agent) -> Router:
    router = Router(aliases=["/slave(1)"])
    router.add("/api/v1/executor", ExecutorApi(agent), prefix=True)
    return router
