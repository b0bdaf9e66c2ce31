"""What a container's launch plan is made of, in a module of its own with nothing
heavy behind it: the container reaper unpickles plans made of these, and every
container it forks copies (and its exec unmaps) the reaper's memory, so the reaper
imports no more than it needs (no asyncio, anyio or protobuf)."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ContainerStdio", "LaunchError", "Mount", "UserIdentity"]


class LaunchError(Exception):
    """The container's process could not be started."""


@dataclass(frozen=True)
class UserIdentity:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @classmethod
    def lookup(cls, name: str) -> UserIdentity:
        """Resolve in the agent (NSS may take locks: never between fork and exec)."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError as error:
            raise LaunchError(f"unknown user {name!r}") from error
        groups = tuple(os.getgrouplist(name, entry.pw_gid))
        return cls(name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)

    def is_current(self) -> bool:
        return self.uid == os.geteuid() and self.gid == os.getegid()


@dataclass(frozen=True)
class Mount:
    """A mount the launcher performs inside the container's mount namespace.

    `target` is the path inside the container (absolute). `source` None with `fstype`
    mounts a filesystem (proc, tmpfs...); otherwise `source` is bind-mounted."""

    target: str
    source: Path | None = None
    fstype: str | None = None
    # Filesystem data ("mode=755,size=64m"); ignored for binds.
    options: str = ""
    # MS_* flags for a filesystem mount (MS_NOSUID...); ignored for binds.
    flags: int = 0
    read_only: bool = False
    recursive: bool = True


@dataclass(frozen=True)
class ContainerStdio:
    """What the container's process gets as descriptors 0, 1 and 2."""

    stdin: int
    stdout: int
    stderr: int
    # The three are one pseudo terminal's slave side (to become the controlling tty).
    tty: bool
