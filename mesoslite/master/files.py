"""The master's `/files` namespace: virtual paths (e.g. `/master/log`) mapped to real
files, browsed and read the way Mesos' `src/files/files.cpp` answers.

Blocking: call these from a worker thread (the endpoints do).
"""

from __future__ import annotations

import stat
from pathlib import Path

from mesoslite.proto import mesos_pb2

__all__ = ["MAX_READ_BYTES", "FileNotFound", "VirtualFiles", "file_mode_string"]

# Mesos reads at most 16 pages per request.
MAX_READ_BYTES = 16 * 4096


class FileNotFound(Exception):
    """The virtual path names nothing."""


class VirtualFiles:
    def __init__(self) -> None:
        self._roots: dict[str, Path] = {}

    def attach(self, virtual_path: str, real_path: Path) -> None:
        self._roots["/" + virtual_path.strip("/")] = real_path

    def debug(self) -> dict[str, str]:
        return {virtual: str(real) for virtual, real in sorted(self._roots.items())}

    def resolve(self, virtual_path: str) -> Path:
        path = "/" + virtual_path.strip("/")
        if "/.." in path or "\\" in path:
            raise FileNotFound(virtual_path)
        # The longest attached prefix wins; the rest of the path is below it.
        for root in sorted(self._roots, key=len, reverse=True):
            if path == root or path.startswith(root + "/"):
                real = self._roots[root] / path[len(root) :].lstrip("/")
                if real.exists():
                    return real
                break
        raise FileNotFound(virtual_path)

    def browse(self, virtual_path: str) -> list[mesos_pb2.FileInfo]:
        real = self.resolve(virtual_path)
        base = "/" + virtual_path.strip("/")
        if real.is_dir():
            return [
                _file_info(entry, f"{base}/{entry.name}")
                for entry in sorted(real.iterdir(), key=lambda p: p.name)
            ]
        return [_file_info(real, base)]

    def read(self, virtual_path: str, offset: int, length: int | None) -> tuple[int, bytes]:
        """(file size, data): offset < 0 reads nothing and reports the size."""
        real = self.resolve(virtual_path)
        if real.is_dir():
            raise IsADirectoryError(virtual_path)
        size = real.stat().st_size
        if offset < 0 or offset >= size:
            return size, b""
        wanted = MAX_READ_BYTES if length is None else min(length, MAX_READ_BYTES)
        with real.open("rb") as handle:
            handle.seek(offset)
            return size, handle.read(wanted)


def _file_info(path: Path, virtual_path: str) -> mesos_pb2.FileInfo:
    st = path.stat()
    info = mesos_pb2.FileInfo(
        path=virtual_path, nlink=st.st_nlink, size=st.st_size, mode=st.st_mode
    )
    info.mtime.nanoseconds = int(st.st_mtime * 1e9)
    info.uid = _user_name(st.st_uid)
    info.gid = _group_name(st.st_gid)
    return info


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (KeyError, ImportError):
        return str(gid)


def file_mode_string(mode: int) -> str:
    """`ls -l` style, as the legacy `/files/browse` shows it: "-rw-r--r--"."""
    return stat.filemode(mode) if mode else "----------"
