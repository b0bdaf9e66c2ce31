"""Writing a cgroup control file and removing a cgroup directory, with the fewest
syscalls and no Python file object (they sit on the launch path of every container)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["try_rmdir", "write_control_file"]


def write_control_file(path: Path, value: str) -> None:
    """One write(2) of the whole value: the kernel parses each write on its own."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def try_rmdir(directory: Path) -> bool:
    """rmdir once: True when it is gone (or never was), False while it is busy."""
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        return True
    except OSError as error:
        if error.errno == errno.EBUSY:
            return False
        raise
    return True
