"""The agent's virtual file namespace, behind `/files/*`, LIST_FILES and READ_FILE.

Only what Mesos attaches is reachable (spec 3.6): each executor's sandbox under its
real path, under `/frameworks/<fw>/executors/<ex>/runs/latest`, and under the `latest`
link of the work dir; plus the agent log as `/slave/log`. A path with a `..` segment is
refused, and every path is resolved (symlinks included) and must stay inside the root
it was reached through, so no sandbox content can lead outside the sandboxes.

The functions that touch the disk are blocking: call them from a worker thread.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mesoslite.proto import mesos_pb2

__all__ = [
    "MAX_READ_BYTES",
    "FileRoots",
    "FileStat",
    "FilesError",
    "browse",
    "read",
    "resolve",
]

# Mesos reads at most 16 pages per request.
MAX_READ_BYTES = 16 * 4096


class FilesError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class FileStat:
    """One entry as listed: the virtual path and what stat() said."""

    path: str
    nlink: int
    size: int
    mtime_s: float
    mode: int
    uid: str
    gid: str

    def to_file_info(self) -> mesos_pb2.FileInfo:
        info = mesos_pb2.FileInfo(
            path=self.path,
            nlink=self.nlink,
            size=self.size,
            mode=self.mode,
            uid=self.uid,
            gid=self.gid,
        )
        info.mtime.nanoseconds = int(self.mtime_s * 1e9)
        return info

    def to_legacy(self) -> dict[str, object]:
        return {
            "path": self.path,
            "nlink": self.nlink,
            "size": self.size,
            "mtime": self.mtime_s,
            "mode": stat.filemode(self.mode),
            "uid": self.uid,
            "gid": self.gid,
        }


class FileRoots:
    """Virtual path -> real path of everything attached (a snapshot)."""

    def __init__(self, roots: Iterable[tuple[str, Path]]) -> None:
        self.roots: dict[str, Path] = {}
        for virtual, real in roots:
            self.roots[_normalise(virtual)] = real

    def debug(self) -> dict[str, str]:
        return {virtual: str(real) for virtual, real in sorted(self.roots.items())}


def _normalise(path: str) -> str:
    return "/" + "/".join(segment for segment in path.split("/") if segment)


def _contained(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve(roots: FileRoots, virtual: str) -> tuple[str, Path]:
    """The normalised virtual path and the real path it names; FilesError 404/403."""
    if not virtual:
        raise FilesError(400, "Expecting 'path=value' in query.")
    segments = [segment for segment in virtual.split("/") if segment]
    if ".." in segments:
        raise FilesError(404, "Path must not contain '..'")
    normalised = "/" + "/".join(segments)
    # The longest attached prefix, segment-wise.
    for count in range(len(segments), -1, -1):
        prefix = "/" + "/".join(segments[:count])
        root = roots.roots.get(prefix)
        if root is None:
            continue
        candidate = root.joinpath(*segments[count:])
        real_root = os.path.realpath(root)
        real = os.path.realpath(candidate)
        if not os.path.exists(real):
            raise FilesError(404, f"'{normalised}' does not exist")
        if root.is_dir() and not _contained(real, real_root):
            raise FilesError(403, f"'{normalised}' leads outside the sandbox")
        if not root.is_dir() and real != real_root:
            raise FilesError(403, f"'{normalised}' leads outside the sandbox")
        return normalised, Path(real)
    raise FilesError(404, f"'{normalised}' is not attached")


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _stat(virtual: str, real: Path) -> FileStat:
    info = os.stat(real)
    return FileStat(
        path=virtual,
        nlink=info.st_nlink,
        size=info.st_size,
        mtime_s=info.st_mtime,
        mode=info.st_mode,
        uid=_owner(info.st_uid),
        gid=_group(info.st_gid),
    )


def browse(roots: FileRoots, virtual: str) -> list[FileStat]:
    """A directory's entries (a file lists as itself), sorted by name."""
    normalised, real = resolve(roots, virtual)
    if not real.is_dir():
        return [_stat(normalised, real)]
    entries = []
    for name in sorted(os.listdir(real)):
        entry_virtual = f"{normalised.rstrip('/')}/{name}"
        try:
            # Entries that lead outside (or dangle) are not listed.
            _, entry_real = resolve(roots, entry_virtual)
        except FilesError:
            continue
        entries.append(_stat(entry_virtual, entry_real))
    return entries


def read(roots: FileRoots, virtual: str, offset: int, length: int | None) -> tuple[int, bytes]:
    """(file size, up to MAX_READ_BYTES from `offset`); offset -1 gives (size, b"")."""
    if offset < -1:
        raise FilesError(400, f"Negative offset provided: {offset}")
    if length is not None and length < 0:
        raise FilesError(400, f"Negative length provided: {length}")
    _, real = resolve(roots, virtual)
    if real.is_dir():
        raise FilesError(400, "Cannot read a directory")
    with open(real, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if offset == -1 or offset >= size:
            return size, b""
        wanted = MAX_READ_BYTES if length is None else min(length, MAX_READ_BYTES)
        handle.seek(offset)
        return size, handle.read(wanted)
