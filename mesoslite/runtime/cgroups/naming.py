"""Where a container's cgroup lives in each hierarchy (one flat level per container)."""

from __future__ import annotations

__all__ = ["DEFAULT_CGROUPS_ROOT_NAME", "container_cgroup"]

# Like Mesos' --cgroups_root ("mesos"): the parent of every container's cgroup.
DEFAULT_CGROUPS_ROOT_NAME = "mesoslite"


def container_cgroup(container_id: str, root_name: str = DEFAULT_CGROUPS_ROOT_NAME) -> str:
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise ValueError(f"container id {container_id!r} cannot name a cgroup")
    return f"{root_name}/{container_id}"
