"""Small blocking file-system steps that make writes durable (call from a worker thread)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ensure_directory", "fsync_directory", "write_all", "write_file_atomically"]


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (created, renamed, removed files) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_directory(directory: Path, *, mode: int = 0o700) -> None:
    """Create `directory` (and missing parents) durably: a crash right after must not
    lose the entry of a directory whose files were already synced."""
    if directory.is_dir():
        return
    missing = [directory, *(p for p in directory.parents if not p.exists())]
    directory.mkdir(mode=mode, parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_directory(created.parent)


def write_all(fd: int, data: bytes) -> None:
    """`os.write` until every byte is written (it may write less, e.g. on signals)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_file_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write, fsync, rename over `path`, fsync the directory: after a crash `path` holds
    either its old content or all of `data`, never a mix. Owner-only unless `mode` says."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, mode)  # also when a crash left the temporary file behind
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(path.parent)
