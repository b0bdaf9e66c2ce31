"""What the agent and the container reaper say to each other, and where it lives.

One SOCK_SEQPACKET connection; each message is one pickled tuple (both ends are our
own code, same version, same host, a root-owned socket):

    agent -> reaper   ("posix", container_id, SpawnSpec, record_exit)
                      ("linux", container_id, ChildPlan, record_exit)
    reaper -> agent   ("launched", container_id, pid)      + the pidfd (SCM_RIGHTS)
                      ("failed", container_id, message)
                      ("exited", container_id, pid, wait_status)

Exit records survive both: `<runtime dir>/exits/<container id>` holds "pid status",
written atomically by the reaper before it tells the agent, for the containers launched
with `record_exit` (checkpointed ones; the others it only forks and reaps).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_MESSAGE_BYTES",
    "decode",
    "encode",
    "exit_record_path",
    "read_exit_record",
    "socket_path",
    "write_atomically",
    "write_exit_record",
]

MAX_MESSAGE_BYTES = 1 << 20


def socket_path(runtime_dir: Path) -> Path:
    return runtime_dir / "reaper.sock"


def exit_record_path(runtime_dir: Path, container_id: str) -> Path:
    return runtime_dir / "exits" / container_id


def encode(message: tuple[Any, ...]) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> tuple[Any, ...]:
    message = pickle.loads(data)
    if not isinstance(message, tuple) or not message:
        raise ValueError("malformed reaper message")
    return message


def write_atomically(path: Path, data: bytes) -> None:
    """write, fsync, rename, fsync the directory: the file is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_exit_record(runtime_dir: Path, container_id: str, pid: int, wait_status: int) -> None:
    write_atomically(exit_record_path(runtime_dir, container_id), f"{pid} {wait_status}\n".encode())


def read_exit_record(runtime_dir: Path, container_id: str) -> tuple[int, int] | None:
    """(pid, wait status) recorded for the container, or None."""
    try:
        pid, status = exit_record_path(runtime_dir, container_id).read_text().split()
    except (FileNotFoundError, ValueError):
        return None
    return int(pid), int(status)
