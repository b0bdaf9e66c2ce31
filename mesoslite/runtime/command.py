"""CommandInfo -> the executable and argv to start (shell vs exec, as Mesos does)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mesoslite.proto import mesos_pb2

__all__ = ["DEFAULT_PATH", "ResolvedCommand", "resolve_command"]

# What execvp() falls back to when the environment has no PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ResolvedCommand:
    executable: str
    argv: list[str]


def _search_path(name: str, search_path: str, root: Path | None) -> str:
    # Looked up in the container's root filesystem when it has one; the result is the
    # path as the process will see it.
    for directory in search_path.split(":"):
        candidate = os.path.join(directory or ".", name)
        host_path = Path(candidate) if root is None else root / candidate.lstrip("/")
        if host_path.is_file() and os.access(host_path, os.X_OK):
            return candidate
    return name


def resolve_command(
    command: mesos_pb2.CommandInfo, environment: dict[str, str], root: Path | None = None
) -> ResolvedCommand:
    """`shell` (the default) runs `sh -c value`; otherwise `value` is executed with
    `arguments` as the whole argv (argv[0] included), found through the task's PATH."""
    if command.shell:
        return ResolvedCommand("/bin/sh", ["sh", "-c", command.value])
    argv = list(command.arguments) or [command.value]
    if "/" in command.value:
        return ResolvedCommand(command.value, argv)
    search_path = environment.get("PATH", DEFAULT_PATH)
    return ResolvedCommand(_search_path(command.value, search_path, root), argv)
