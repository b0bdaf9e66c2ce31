"""What `join-token`, `status` and `leave` share: the local node's identity, the
cluster's status, and admin calls on the replica port (mutual TLS with this node's own
certificate, following the redirect to the leader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mesoslite.cli.common import CliError
from mesoslite.replicated_log.identity import NodeIdentity

__all__ = ["admin_post", "fetch_status", "require_identity"]

_TIMEOUT_S = 15.0
_MAX_REDIRECTS = 5


def require_identity(data_dir: Path, *, master: bool = False) -> NodeIdentity:
    identity = NodeIdentity.load(data_dir)
    if identity is None:
        raise CliError(
            f"{data_dir} holds no cluster member: start one with `mesoslite up`, "
            "or add this node with `mesoslite join`"
        )
    if master and not identity.is_master:
        raise CliError("this node is an agent only; run this on a master (or pass its --data-dir)")
    return identity


def admin_post(data_dir: Path, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to the leader's replica port as this member."""
    from mesoslite.replicated_log.identity import tls_paths
    from mesoslite.replicated_log.tls import client_ssl_context

    identity = require_identity(data_dir, master=True)
    context = client_ssl_context(tls_paths(data_dir))
    target = identity.peer_address
    with httpx.Client(verify=context, timeout=_TIMEOUT_S) as client:
        for _ in range(_MAX_REDIRECTS):
            try:
                response = client.post(f"https://{target}{path}", json=body)
            except httpx.HTTPError as error:
                raise CliError(f"cannot reach the replica at {target}: {error}") from None
            if response.status_code == 307:
                target = urlsplit(response.headers.get("location", "")).netloc
                continue
            if response.status_code != 200:
                raise CliError(response.text.strip() or f"refused ({response.status_code})")
            answer: dict[str, Any] = response.json()
            return answer
    raise CliError("too many redirects looking for the leader")


def fetch_status(addresses: list[str]) -> dict[str, Any]:
    """The cluster's status from the first master that answers."""
    errors = []
    for address in addresses:
        try:
            response = httpx.get(
                f"http://{address}/master/internal/cluster/status", timeout=_TIMEOUT_S
            )
        except httpx.HTTPError as error:
            errors.append(f"{address}: {error}")
            continue
        if response.status_code == 200:
            status: dict[str, Any] = response.json()
            return status
        errors.append(f"{address}: {response.status_code} {response.text.strip()[:100]}")
    raise CliError("no master answered: " + "; ".join(errors))
