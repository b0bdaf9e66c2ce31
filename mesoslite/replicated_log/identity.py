"""A node's place in its cluster, kept in `<data-dir>/cluster.json`, and founding a
cluster (what `mesoslite up` does on an empty data directory).

The file is written last when a node founds or joins a cluster, so a data directory
either has a complete identity (restart: `--data-dir` is all a node needs) or none.
Founding writes the TLS material, the bootstrap snapshot of the Raft log (the registry
naming the cluster, its one member and the join token's hash), and then the identity.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio

from mesoslite.proto import registry_pb2
from mesoslite.raft import bootstrap_snapshot
from mesoslite.replicated_log.durable_files import ensure_directory, write_file_atomically
from mesoslite.replicated_log.durable_storage import open_durable_storage
from mesoslite.replicated_log.join_token import JoinToken, hash_secret, new_join_token
from mesoslite.replicated_log.registry import Registry
from mesoslite.replicated_log.tls import ClusterCa, TlsPaths, ensure_cluster_tls

__all__ = [
    "NodeIdentity",
    "found_cluster",
    "identity_file",
    "raft_directory",
    "read_local_token",
    "save_local_token",
    "tls_paths",
]


def identity_file(data_dir: Path) -> Path:
    return data_dir / "cluster.json"


def raft_directory(data_dir: Path) -> Path:
    return data_dir / "raft"


def tls_paths(data_dir: Path) -> TlsPaths:
    return TlsPaths(data_dir / "tls")


def _token_file(data_dir: Path) -> Path:
    return data_dir / "tls" / "join-token"


@dataclass
class NodeIdentity:
    cluster_id: str
    name: str
    # The Raft member id; 0 on an agent-only node.
    node_id: int = 0
    master_address: str | None = None  # "host:port" of its master
    peer_address: str | None = None  # "host:port" of its replica (mutual TLS)
    agent: bool = False
    # Where its listeners bind (the addresses above may advertise another), and the
    # agent's port: a restart with only --data-dir needs them.
    listen_ip: str = "127.0.0.1"
    agent_port: int = 0
    # Every master's address, as last learned: where an agent-only node looks for the
    # leader (a master node asks its own replica instead).
    masters: list[str] = field(default_factory=list)
    # Replica addresses by member id when it joined (JSON keys are strings): whom a new
    # replica answers until the leader's snapshot brings the member list.
    seed_peers: dict[str, str] = field(default_factory=dict)

    @property
    def is_master(self) -> bool:
        return self.node_id != 0

    def save(self, data_dir: Path) -> None:
        ensure_directory(data_dir)
        text = json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"
        write_file_atomically(identity_file(data_dir), text.encode())

    @classmethod
    def load(cls, data_dir: Path) -> NodeIdentity | None:
        try:
            raw = json.loads(identity_file(data_dir).read_text())
        except FileNotFoundError:
            return None
        return cls(**raw)


def save_local_token(data_dir: Path, token: JoinToken) -> None:
    """Keep the token where `mesoslite join-token` finds it (owner-only): the cluster
    itself stores only its hash."""
    write_file_atomically(_token_file(data_dir), f"{token}\n".encode())


def read_local_token(data_dir: Path) -> JoinToken | None:
    try:
        return JoinToken.parse(_token_file(data_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None


async def found_cluster(
    data_dir: Path,
    *,
    node_id: int,
    name: str,
    master_address: str,
    peer_address: str,
    sans: list[str],
    agent: bool,
    listen_ip: str,
    agent_port: int,
) -> tuple[NodeIdentity, JoinToken]:
    """Create a one-member cluster in an empty `data_dir`: CA and node certificate, a
    join token, the bootstrap snapshot, and the identity file (last)."""

    def make_tls() -> JoinToken:
        ca = ClusterCa.load(ensure_cluster_tls(data_dir / "tls", name, sans))
        token = new_join_token(ca.fingerprint_sha256)
        save_local_token(data_dir, token)
        return token

    token = await anyio.to_thread.run_sync(make_tls)
    cluster_id = str(uuid.uuid4())
    registry = Registry()
    founder = registry_pb2.Member(
        id=node_id,
        address=peer_address,
        role=registry_pb2.Member.VOTER,
        name=name,
        master_address=master_address,
    )
    registry.apply(
        registry_pb2.RegistryOperation(
            initialize_cluster=registry_pb2.InitializeCluster(
                cluster_id=cluster_id, members=[founder]
            )
        )
    )
    registry.apply(
        registry_pb2.RegistryOperation(
            set_join_token=registry_pb2.SetJoinToken(sha256=hash_secret(token.secret))
        )
    )
    async with open_durable_storage(raft_directory(data_dir)) as storage:
        await storage.persist(snapshot=bootstrap_snapshot([node_id], data=registry.snapshot()))
    identity = NodeIdentity(
        cluster_id=cluster_id,
        name=name,
        node_id=node_id,
        master_address=master_address,
        peer_address=peer_address,
        agent=agent,
        listen_ip=listen_ip,
        agent_port=agent_port,
        masters=[master_address],
    )
    await anyio.to_thread.run_sync(identity.save, data_dir)
    return identity, token
