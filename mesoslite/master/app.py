"""The master listener's routes (libprocess-style: `/master/...` and bare paths alike)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from mesoslite.master.leadership import redirect_endpoint
from mesoslite.master.legacy_endpoints import LegacyEndpoints
from mesoslite.master.operator_api import OperatorApi
from mesoslite.master.scheduler_api import SchedulerApi
from mesoslite.wire.routing import Router

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["build_router"]


def build_router(master: Master) -> Router:
    router = Router(aliases=["/master"])
    router.add("/api/v1/scheduler", SchedulerApi(master), prefix=True)
    # Also `/api/v1/operator` (pymesos' operator driver) and anything else below /api/v1.
    router.add("/api/v1", OperatorApi(master), prefix=True)
    router.add("/redirect", partial(redirect_endpoint, master), methods=("GET",))
    for path, (endpoint, methods) in LegacyEndpoints(master).routes().items():
        router.add(path, endpoint, methods=methods)
    return router
