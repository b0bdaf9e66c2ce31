"""Turn command-line values into role configurations and a Node."""

from __future__ import annotations

from pathlib import Path

from mesoslite.agent.config import AgentConfig
from mesoslite.config import default_hostname
from mesoslite.master.config import MasterConfig
from mesoslite.node import Node, ReplicaConfig

__all__ = ["agent_config", "build_node", "master_config", "replica_config"]


def master_config(ip: str, port: int, hostname: str | None, data_dir: Path) -> MasterConfig:
    return MasterConfig(
        ip=ip,
        port=port,
        hostname=hostname or default_hostname(),
    )


def agent_config(
    ip: str,
    port: int,
    hostname: str | None,
    data_dir: Path,
    *,
    resources: str | None,
    attributes: str | None,
    isolation: str | None,
) -> AgentConfig:
    return AgentConfig(
        ip=ip,
        port=port,
        hostname=hostname or default_hostname(),
        work_dir=data_dir / "agent",
        resources=resources,
        attributes=attributes,
        isolation=isolation,
    )


def replica_config(
    ip: str, peer_port: int, hostname: str | None, data_dir: Path, *, advertise_ip: str
) -> ReplicaConfig:
    return ReplicaConfig(
        data_dir=data_dir,
        peer_ip=ip,
        peer_port=peer_port,
        advertise_ip=advertise_ip,
        name=hostname or default_hostname(),
    )


def build_node(
    *,
    master: MasterConfig | None = None,
    agent: AgentConfig | None = None,
    master_address: str | None = None,
    master_addresses: list[str] | None = None,
    replica: ReplicaConfig | None = None,
) -> Node:
    return Node(
        master_config=master,
        agent_config=agent,
        master_address=master_address,
        master_addresses=master_addresses,
        replica=replica,
    )
