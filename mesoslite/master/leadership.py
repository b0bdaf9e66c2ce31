"""Leader redirection (wire contract 1.6).

A single master always leads; the HA master will answer `Master.is_leader()` from its
Raft state. Non-leaders send API callers to the leader (307, `Location:
//host:port/<delegated path>`), or answer 503 while no leader is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from mesoslite.wire.http import HttpError
from mesoslite.wire.routing import route_path

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["leader_base", "redirect_endpoint", "require_leader"]


def leader_base(master: Master) -> str | None:
    """`//host:port` of the leading master, None when no leader is known."""
    leader = master.leader_info()
    if leader is None:
        return None
    host = leader.hostname or leader.address.ip or leader.address.hostname
    return f"//{host}:{leader.port}"


def require_leader(master: Master, request: Request) -> None:
    """Raise the redirect (or 503) unless this master leads."""
    if master.is_leader():
        return
    base = leader_base(master)
    if base is None:
        raise HttpError(503, "No leader elected")
    # Mesos redirects to the path as delegated to the master process.
    location = f"{base}/master{route_path(request)}"
    raise HttpError(307, "", headers={"Location": location})


async def redirect_endpoint(master: Master, request: Request) -> Response:
    """`/redirect`, `/master/redirect`: always 307 to the leader, even on the leader."""
    base = leader_base(master)
    if base is None:
        raise HttpError(503, "No leader elected")
    return Response(b"", status_code=307, headers={"Location": base})
