"""`mesoslite leave`: take this node (or, with --member, a dead one) out of the cluster."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import click

from mesoslite.cli.cluster_client import admin_post, fetch_status, require_identity
from mesoslite.cli.common import CliError, read_running_pid
from mesoslite.cli.options import data_dir_option
from mesoslite.config import default_data_dir

__all__ = ["leave"]


@click.command()
@click.option(
    "--member",
    default=None,
    help="Remove this member (id or name) instead of this node, e.g. one that died.",
)
@data_dir_option
def leave(member: str | None, data_dir: Path | None) -> None:
    """Leave the cluster: a master stops being a Raft member; the node stops."""
    data_dir = data_dir or default_data_dir()
    identity = require_identity(data_dir)
    if member is None and not identity.is_master:
        _stop(data_dir)
        click.echo("agent stopped; the masters mark it unreachable, then it can be marked gone")
        return
    if member is None:
        member_id = identity.node_id
    else:
        member_id = _resolve(identity.master_address, identity.masters, member)
    answer = admin_post(data_dir, "/internal/cluster/remove", {"id": member_id})
    removed = answer["removed"]
    click.echo(f"member {removed['name']} ({removed['id']}) removed from the cluster")
    if member is None:
        _stop(data_dir)


def _resolve(own: str | None, masters: list[str], wanted: str) -> int:
    status = fetch_status([a for a in dict.fromkeys([own, *masters]) if a])
    for candidate in status.get("members", []):
        if str(candidate["id"]) == wanted or candidate["name"] == wanted:
            return int(candidate["id"])
    raise CliError(f"no member {wanted!r}; `mesoslite status` lists them")


def _stop(data_dir: Path) -> None:
    pid = read_running_pid(data_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
