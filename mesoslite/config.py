"""Node-level configuration: where a node keeps its data and how it is reached.

Role-specific settings live beside their role (`master.config.MasterConfig`,
`agent.config.AgentConfig`); this module holds what `up`, `master`, `agent` and `down`
share: the data directory and its files, and the environment variables
(`MESOSLITE_*`) that stand in for flags.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = [
    "DEFAULT_AGENT_PORT",
    "DEFAULT_MASTER_PORT",
    "default_data_dir",
    "default_hostname",
    "default_peer_port",
    "log_file",
    "pid_file",
]

DEFAULT_MASTER_PORT = 5050
DEFAULT_AGENT_PORT = 5051


# The replica (Raft, mutual TLS) listens beside the master: master port + this.
PEER_PORT_OFFSET = 1000


def default_peer_port(master_port: int) -> int:
    """The replica port of a master on `master_port` (0 stays 0: any free port)."""
    return master_port + PEER_PORT_OFFSET if master_port else 0


def default_data_dir() -> Path:
    """Per-user data directory for `mesoslite up` (XDG layout), or MESOSLITE_DATA_DIR."""
    explicit = os.environ.get("MESOSLITE_DATA_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mesoslite"


def default_hostname() -> str:
    return socket.gethostname() or "localhost"


def pid_file(data_dir: Path) -> Path:
    """Written by a running node; read by `mesoslite down`."""
    return data_dir / "mesoslite.pid"


def log_file(data_dir: Path) -> Path:
    """Where a detached node writes its log."""
    return data_dir / "mesoslite.log"
