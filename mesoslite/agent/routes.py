"""The agent listener's routes (Mesos' agent process is `slave(1)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesoslite.agent.executor_api import ExecutorApi
from mesoslite.agent.legacy_endpoints import LegacyEndpoints
from mesoslite.agent.operator_api import OperatorApi
from mesoslite.wire.routing import Router

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["build_router"]


def build_router(agent: Agent) -> Router:
    router = Router(aliases=["/slave(1)"])
    router.add("/api/v1/executor", ExecutorApi(agent), prefix=True)
    # Longest prefix: `/api/v1/operator` (pymesos' operator driver) lands here too.
    router.add("/api/v1", OperatorApi(agent), prefix=True)
    LegacyEndpoints(agent).mount(router)
    return router
