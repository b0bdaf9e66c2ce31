"""Turn command-line values into role configurations and a Node."""

from __future__ import annotations

from pathlib import Path

from mesoslite.agent.config import AgentConfig, RecoverMode
from mesoslite.config import default_hostname, log_file
from mesoslite.master.config import MasterConfig
from mesoslite.node import Node, ReplicaConfig
from mesoslite.replicated_log.identity import NodeIdentity

__all__ = [
    "agent_config",
    "build_node",
    "master_config",
    "node_for_identity",
    "replica_config",
]


def master_config(ip: str, port: int, hostname: str | None, data_dir: Path) -> MasterConfig:
    return MasterConfig(
        ip=ip,
        port=port,
        hostname=hostname or default_hostname(),
        log_file=log_file(data_dir),
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
    recover: RecoverMode = "reconnect",
    executor_reregistration_timeout_s: float = 2.0,
) -> AgentConfig:
    return AgentConfig(
        ip=ip,
        port=port,
        hostname=hostname or default_hostname(),
        work_dir=data_dir / "agent",
        resources=resources,
        attributes=attributes,
        isolation=isolation,
        recover=recover,
        executor_reregistration_timeout_s=executor_reregistration_timeout_s,
        log_file=log_file(data_dir),
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


def _port_of(address: str | None) -> int:
    return int(address.rpartition(":")[2]) if address else 0


def node_for_identity(
    identity: NodeIdentity,
    data_dir: Path,
    *,
    hostname: str | None,
    resources: str | None,
    attributes: str | None,
    isolation: str | None,
    recover: RecoverMode = "reconnect",
    executor_reregistration_timeout_s: float = 2.0,
) -> Node:
    """The node a data directory holds (restart with nothing but --data-dir): its roles,
    addresses and ports as it was founded or joined."""
    ip = identity.listen_ip
    agent = None
    if identity.agent:
        agent = agent_config(
            ip,
            identity.agent_port,
            hostname,
            data_dir,
            resources=resources,
            attributes=attributes,
            isolation=isolation,
            recover=recover,
            executor_reregistration_timeout_s=executor_reregistration_timeout_s,
        )
    if not identity.is_master:
        return build_node(agent=agent, master_addresses=list(identity.masters))
    master_address = identity.master_address or ""
    master = master_config(ip, _port_of(master_address), hostname, data_dir)
    replica = replica_config(
        ip,
        _port_of(identity.peer_address),
        hostname,
        data_dir,
        advertise_ip=master_address.rpartition(":")[0],
    )
    return build_node(master=master, agent=agent, replica=replica)
