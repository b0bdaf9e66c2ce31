"""`mesoslite status`: members, roles, leader, term, commit index and agents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mesoslite.cli.cluster_client import fetch_status
from mesoslite.cli.common import normalize_master
from mesoslite.cli.options import data_dir_option
from mesoslite.config import default_data_dir

__all__ = ["status"]


@click.command()
@click.option("--master", "master_address", default=None, help="Ask this master (HOST:PORT).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
@data_dir_option
def status(master_address: str | None, as_json: bool, data_dir: Path | None) -> None:
    """Show the cluster: members, roles, the leader, term, commit index, agents."""
    from mesoslite.replicated_log.identity import NodeIdentity

    data_dir = data_dir or default_data_dir()
    if master_address is not None:
        addresses = [normalize_master(master_address)]
    else:
        identity = NodeIdentity.load(data_dir)
        addresses = []
        if identity is not None:
            addresses = [a for a in [identity.master_address, *identity.masters] if a]
        addresses = list(dict.fromkeys(addresses)) or [normalize_master("127.0.0.1:5050")]
    answer = fetch_status(addresses)
    if as_json:
        click.echo(json.dumps(answer, indent=2, sort_keys=True))
        return
    click.echo(_render(answer))


def _render(status: dict[str, Any]) -> str:
    members: list[dict[str, Any]] = status.get("members", [])
    leader = next((m for m in members if m.get("leader")), None)
    lines = [f"cluster  {status.get('cluster_id')}"]
    if leader is not None:
        lines.append(
            f"leader   {leader['name']} ({leader['id']}) at {leader['master_address']}"
            f"   term {status['term']}   commit index {status['commit_index']}"
        )
    else:
        lines.append(f"leader   none elected   term {status['term']}")
    lines.append("members")
    lines.append(f"  {'ID':<18} {'NAME':<16} {'ROLE':<8} {'MASTER':<22} REPLICA")
    for member in members:
        role = member["role"] + ("*" if member.get("leader") else "")
        lines.append(
            f"  {member['id']:<18} {member['name']:<16} {role:<8} "
            f"{member['master_address']:<22} {member['peer_address']}"
        )
    agents = status.get("agents", {})
    lines.append(
        f"agents   {agents.get('admitted', 0)} admitted, {agents.get('unreachable', 0)} "
        f"unreachable, {agents.get('gone', 0)} gone"
    )
    return "\n".join(lines)
