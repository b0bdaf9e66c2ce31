"""An image's `User` ("name", "uid", "name:group", "uid:gid"), resolved in the image.

Names mean what the image's own /etc/passwd and /etc/group say, not the host's; a
numeric uid the image does not list runs with gid 0 and home "/", as Docker does.
Supplementary groups are the image's groups that list the user.
"""

from __future__ import annotations

import os
from pathlib import Path

from mesoslite.runtime.launcher import LaunchError, UserIdentity

__all__ = ["image_user"]


def _read_table(rootfs: Path, relative: str) -> list[list[str]]:
    """The colon-separated entries of a file of the image (none if it is missing or
    would lead outside the image)."""
    path = rootfs / relative
    root = os.path.realpath(rootfs)
    if not os.path.realpath(path).startswith(root + os.sep):
        return []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


# What nearly every image says: root, whose identity needs no look-up in the image.
_ROOT_SPECS = frozenset({"0", "0:0", "root", "root:root", "root:0", "0:root"})


def image_user(spec: str, rootfs: Path) -> UserIdentity:
    if spec in _ROOT_SPECS:
        return UserIdentity("root", 0, 0, (0,), "/root")
    user_part, _, group_part = spec.partition(":")
    passwd = [entry for entry in _read_table(rootfs, "etc/passwd") if len(entry) >= 6]
    groups = [entry for entry in _read_table(rootfs, "etc/group") if len(entry) >= 3]
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((e for e in passwd if e[2] == user_part), None)
    else:
        entry = next((e for e in passwd if e[0] == user_part), None)
        if entry is None or not entry[2].isdigit():
            raise LaunchError(f"user {user_part!r} of the image is not in its /etc/passwd")
        uid = int(entry[2])
    name = entry[0] if entry is not None else user_part
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None else "/"
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            group = next((g for g in groups if g[0] == group_part), None)
            if group is None or not group[2].isdigit():
                raise LaunchError(f"group {group_part!r} of the image is not in its /etc/group")
            gid = int(group[2])
    supplementary = {
        int(g[2]) for g in groups if g[2].isdigit() and len(g) > 3 and name in g[3].split(",")
    }
    return UserIdentity(name, uid, gid, tuple(sorted(supplementary | {gid})), home)
