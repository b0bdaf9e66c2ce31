"""Which cgroup layout the host has: v1 (legacy), hybrid, or v2 (unified).

The root is a parameter so that tests can point detection at a fake tree.

    v2      <root>/cgroup.controllers exists: one hierarchy, every controller in it.
    hybrid  v1 controller hierarchies under <root>/<controller>, plus an (empty of
            controllers) v2 hierarchy at <root>/unified, as systemd sets it up.
    v1      v1 controller hierarchies only.

In hybrid mode the controllers are v1's, so mesoslite manages them as v1.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_CGROUP_ROOT", "CgroupLayout", "CgroupMode", "detect_cgroup_layout"]

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")


class CgroupMode(enum.Enum):
    V1 = "v1"
    HYBRID = "hybrid"
    V2 = "v2"


@dataclass(frozen=True)
class CgroupLayout:
    mode: CgroupMode
    root: Path
    # v1 (and hybrid): controller name -> the root of its hierarchy.
    v1_hierarchies: dict[str, Path] = field(default_factory=dict)
    # v2: the unified hierarchy's root (hybrid: where systemd's v2 tree is).
    unified: Path | None = None
    # v2: the controllers the root offers.
    v2_controllers: frozenset[str] = frozenset()

    @property
    def controllers(self) -> frozenset[str]:
        if self.mode is CgroupMode.V2:
            return self.v2_controllers
        return frozenset(self.v1_hierarchies)


def _read_controllers(path: Path) -> frozenset[str]:
    try:
        return frozenset(path.read_text().split())
    except OSError:
        return frozenset()


def _v1_hierarchies(root: Path) -> dict[str, Path]:
    hierarchies: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except FileNotFoundError:
        return hierarchies
    for entry in entries:
        if entry.name == "unified" or entry.name.startswith("name="):
            continue
        # "cpu" -> "cpu,cpuacct" symlinks: one canonical directory per hierarchy.
        directory = Path(os.path.realpath(entry.path))
        if not (directory / "cgroup.procs").exists() or (directory / "cgroup.controllers").exists():
            continue
        # "cpu,cpuacct" mounts are reached through their "cpu" and "cpuacct" symlinks too.
        for controller in entry.name.split(","):
            if controller and controller != "systemd":
                hierarchies.setdefault(controller, directory)
    return hierarchies


def detect_cgroup_layout(root: Path = DEFAULT_CGROUP_ROOT) -> CgroupLayout | None:
    """The layout under `root`, or None when no cgroup hierarchy is there."""
    if (root / "cgroup.controllers").exists():
        return CgroupLayout(
            mode=CgroupMode.V2,
            root=root,
            unified=root,
            v2_controllers=_read_controllers(root / "cgroup.controllers"),
        )
    hierarchies = _v1_hierarchies(root)
    unified = root / "unified"
    if (unified / "cgroup.controllers").exists():
        return CgroupLayout(
            mode=CgroupMode.HYBRID, root=root, v1_hierarchies=hierarchies, unified=unified
        )
    if hierarchies:
        return CgroupLayout(mode=CgroupMode.V1, root=root, v1_hierarchies=hierarchies)
    return None
