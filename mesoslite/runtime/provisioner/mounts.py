"""mount(2)/umount2(2) through libc, and the mount table (/proc/self/mountinfo).

Blocking calls: run them in a worker thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

__all__ = [
    "MountError",
    "is_mount_point",
    "mount",
    "mount_points_under",
    "unmount",
    "unmount_all_under",
]

_MNT_DETACH = 2


class MountError(OSError):
    pass


_libc: ctypes.CDLL | None = None


def _c_library() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        library.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        library.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc = library
    return _libc


def mount(source: str, target: Path, filesystem_type: str, flags: int = 0, data: str = "") -> None:
    result = _c_library().mount(
        source.encode(), os.fsencode(target), filesystem_type.encode(), flags, data.encode()
    )
    if result != 0:
        error_number = ctypes.get_errno()
        raise MountError(
            error_number,
            f"mount -t {filesystem_type} on {target}: {os.strerror(error_number)}",
        )


def unmount(target: Path, *, detach: bool = False) -> None:
    result = _c_library().umount2(os.fsencode(target), _MNT_DETACH if detach else 0)
    if result != 0:
        error_number = ctypes.get_errno()
        if error_number == errno.EINVAL and not is_mount_point(target):
            return
        raise MountError(error_number, f"umount {target}: {os.strerror(error_number)}")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out = []
    index = 0
    while index < len(field):
        if (
            field[index] == "\\"
            and index + 3 < len(field) + 1
            and field[index + 1 : index + 4].isdigit()
        ):
            out.append(chr(int(field[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        return [_unescape(line.split()[4]) for line in table if line.strip()]


def mount_points_under(directory: Path) -> list[Path]:
    """Mount points at or below `directory`, deepest first (the order to unmount them)."""
    prefix = os.path.realpath(directory)
    found = [
        point
        for point in _mount_points()
        if point == prefix or point.startswith(prefix.rstrip("/") + "/")
    ]
    return [Path(point) for point in sorted(set(found), key=len, reverse=True)]


def is_mount_point(path: Path) -> bool:
    return os.path.realpath(path) in set(_mount_points())


def unmount_all_under(directory: Path) -> None:
    """Detach every mount at or below `directory`: nothing may be deleted through one."""
    for point in mount_points_under(directory):
        # Detach: a busy mount (a process still inside) goes away from our namespace at once.
        unmount(point, detach=True)
    # A mount stacked several times on one point needs one unmount per layer.
    remaining = mount_points_under(directory)
    if remaining:
        for point in remaining:
            unmount(point, detach=True)
        if mount_points_under(directory):
            raise MountError(errno.EBUSY, f"mounts remain under {directory}")
