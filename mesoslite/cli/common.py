"""What the CLI commands share: the error type, address parsing, the pid file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mesoslite.config import pid_file

__all__ = [
    "CliError",
    "default_master",
    "normalize_master",
    "read_running_pid",
]


class CliError(click.ClickException):
    """A failure to report as one line (`Error: ...`) with exit status 1."""


def default_master() -> str:
    return os.environ.get("MESOS_MASTER") or "127.0.0.1:5050"


def normalize_master(value: str) -> str:
    """Accept `host:port`, `http://host:port` or a bare host; refuse zk:// (mesoslite
    needs no ZooKeeper)."""
    value = value.strip()
    if value.startswith("zk://"):
        raise CliError(f"{value}: ZooKeeper URLs are not used by mesoslite; give HOST:PORT")
    for scheme in ("http://", "https://"):
        if value.startswith(scheme):
            value = value[len(scheme) :]
    value = value.rstrip("/")
    if not value:
        raise CliError("empty master address; give HOST:PORT")
    if ":" not in value:
        value = f"{value}:5050"
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"{value}: not a valid HOST:PORT")
    return value


def read_running_pid(data_dir: Path) -> int | None:
    """The pid of the node running from `data_dir`, or None (stale files are ignored)."""
    try:
        pid = int(pid_file(data_dir).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid
