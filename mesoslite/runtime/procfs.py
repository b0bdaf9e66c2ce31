"""Per-process figures read from /proc: what the posix isolators report as usage.

Everything here is a blocking file read; callers run it in a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcessSample",
    "clock_ticks_per_second",
    "page_size_bytes",
    "read_process",
    "session_members",
]

_PROC = Path("/proc")


def clock_ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def page_size_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcessSample:
    """One process as /proc/<pid>/stat shows it (times in clock ticks, rss in pages)."""

    pid: int
    state: str
    parent_pid: int
    process_group: int
    session: int
    user_ticks: int
    system_ticks: int
    threads: int
    start_ticks: int
    rss_pages: int


def _parse_stat(pid: int, text: str) -> ProcessSample:
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    rest = text[text.rindex(")") + 2 :].split()
    # `rest` starts at field 3 (state); field N is rest[N - 3].
    return ProcessSample(
        pid=pid,
        state=rest[0],
        parent_pid=int(rest[1]),
        process_group=int(rest[2]),
        session=int(rest[3]),
        user_ticks=int(rest[11]),
        system_ticks=int(rest[12]),
        threads=int(rest[17]),
        start_ticks=int(rest[19]),
        rss_pages=int(rest[21]),
    )


def read_process(pid: int, proc_root: Path = _PROC) -> ProcessSample | None:
    """The process' figures, or None when it no longer exists."""
    # Three syscalls (a pathlib read_text takes twice as many): this runs per launch.
    try:
        fd = os.open(f"{proc_root}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        data = os.read(fd, 4096)  # at most ~600 bytes: the name is 16 at most
    except ProcessLookupError:
        return None
    finally:
        os.close(fd)
    return _parse_stat(pid, data.decode(errors="replace"))


def session_members(session: int, proc_root: Path = _PROC) -> list[ProcessSample]:
    """Every live process of the session (zombies excluded: they hold no resources)."""
    members: list[ProcessSample] = []
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        sample = read_process(int(entry.name), proc_root)
        if sample is not None and sample.session == session and sample.state != "Z":
            members.append(sample)
    return members
