"""Marks of containers that are not checkpointed, so that a restarted agent can find
and destroy what its predecessor left running.

A checkpointed container has a full record (`checkpoint.py`) and a reaper that
outlives the agent. Any other container is a plain child of the agent: when the agent
dies it goes on running, and with the posix launcher nothing else (no cgroup) leads to
it. So each one leaves a mark while it runs, in one append-only journal per runtime
directory:

    <runtime dir>/unsupervised.marks:   ["+", "<container id>", <pid>, <start ticks>]
                                        ["-", "<container id>"]

one JSON array per line. A mark costs one write() to an open file when the container
starts and one when it ends: no inode is created or removed per container (on ext4
without a journal, which skips recently deleted inodes when it allocates one, a
symlink per container cost ~0.15 ms and slowed every later allocation). No fsync:
only an agent crash must be survived, not a host crash, which ends the containers
anyway; a line torn by a crash is ignored. The journal is rewritten with the live
marks alone when it is opened and whenever dead records outnumber them. The start
time tells the container's process from a later one that got its pid.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JOURNAL_NAME", "LaunchMark", "LaunchMarks"]

JOURNAL_NAME = "unsupervised.marks"
# Rewrite the journal once it holds this many records and four times the live marks.
_COMPACT_AFTER_RECORDS = 4096


@dataclass(frozen=True)
class LaunchMark:
    container_id: str
    pid: int
    start_ticks: int


def _parse(data: bytes) -> dict[str, LaunchMark]:
    live: dict[str, LaunchMark] = {}
    for line in data.splitlines():
        try:
            record = json.loads(line)
            if record[0] == "+":
                live[str(record[1])] = LaunchMark(str(record[1]), int(record[2]), int(record[3]))
            elif record[0] == "-":
                live.pop(str(record[1]), None)
        except (ValueError, TypeError, IndexError, KeyError):
            continue  # torn or foreign: leads nowhere
    return live


def _added(mark: LaunchMark) -> bytes:
    return (json.dumps(["+", mark.container_id, mark.pid, mark.start_ticks]) + "\n").encode()


def _removed(container_id: str) -> bytes:
    return (json.dumps(["-", container_id]) + "\n").encode()


class LaunchMarks:
    """The journal of one runtime directory; one containerizer writes it (from the
    event loop's thread)."""

    def __init__(self, runtime_dir: Path) -> None:
        self._path = runtime_dir / JOURNAL_NAME
        self._fd: int | None = None
        self._live: dict[str, LaunchMark] = {}
        self._records = 0

    def _open(self) -> int:
        if self._fd is None:
            try:
                data = self._path.read_bytes()
            except FileNotFoundError:
                data = b""
            self._live = _parse(data)
            if data:
                self._rewrite()
            else:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(
                    self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
        assert self._fd is not None
        return self._fd

    def _rewrite(self) -> None:
        """Only the live marks, replacing the journal atomically."""
        temporary = self._path.with_name(f".{JOURNAL_NAME}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(b"".join(_added(mark) for mark in self._live.values()))
        os.replace(temporary, self._path)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._records = len(self._live)

    def _append(self, record: bytes) -> None:
        os.write(self._open(), record)
        self._records += 1
        if self._records >= _COMPACT_AFTER_RECORDS and self._records > 4 * len(self._live):
            self._rewrite()

    def read(self) -> list[LaunchMark]:
        """Every container still marked (the predecessor's ones included)."""
        self._open()
        return list(self._live.values())

    def write(self, mark: LaunchMark) -> None:
        self._open()
        self._live[mark.container_id] = mark
        self._append(_added(mark))

    def remove(self, container_id: str) -> None:
        self._open()
        if self._live.pop(container_id, None) is not None:
            self._append(_removed(container_id))

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
