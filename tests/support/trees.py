"""Describe a directory tree as a dict, to compare root filesystems in tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["describe_tree"]

_SMALL_FILE_BYTES = 4096


def describe_tree(root: Path) -> dict[str, str]:
    """relative path -> "dir 0755", "link -> target", "file 0644 <content>" (small files),
    "file 0755 <N bytes>" (larger ones) or "char 0:0" / "other"."""
    found: dict[str, str] = {}
    for directory, subdirectories, files in os.walk(root):
        for name in sorted([*subdirectories, *files]):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            info = os.lstat(path)
            mode = f"{stat.S_IMODE(info.st_mode):04o}"
            if stat.S_ISLNK(info.st_mode):
                found[relative] = f"link -> {os.readlink(path)}"
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = f"dir {mode}"
            elif stat.S_ISREG(info.st_mode):
                if info.st_size <= _SMALL_FILE_BYTES:
                    content = Path(path).read_bytes().decode(errors="replace")
                    found[relative] = f"file {mode} {content!r}"
                else:
                    found[relative] = f"file {mode} <{info.st_size} bytes>"
            elif stat.S_ISCHR(info.st_mode):
                found[relative] = f"char {os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
            else:
                found[relative] = "other"
    return found
