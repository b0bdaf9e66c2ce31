"""One call from agent flags to a ready MesosContainerizer."""

from __future__ import annotations

from pathlib import Path

from mesoslite.runtime.cgroups.layout import DEFAULT_CGROUP_ROOT
from mesoslite.runtime.cgroups.naming import DEFAULT_CGROUPS_ROOT_NAME
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.fetching import Fetcher
from mesoslite.runtime.isolation import (
    DEFAULT_MAX_PROCESSES,
    IsolationContext,
    default_isolation_flag,
    isolation_from_flag,
    launcher_for,
)
from mesoslite.runtime.provisioning import ImageProvisioner

__all__ = ["build_containerizer"]


def build_containerizer(
    runtime_dir: Path,
    *,
    isolation: str | None = None,
    provisioner: ImageProvisioner | None = None,
    fetcher: Fetcher | None = None,
    cgroup_root: Path = DEFAULT_CGROUP_ROOT,
    cgroups_root_name: str = DEFAULT_CGROUPS_ROOT_NAME,
    max_processes: int = DEFAULT_MAX_PROCESSES,
) -> MesosContainerizer:
    """`isolation` is Mesos' --isolation ("cgroups/cpu,cgroups/mem,..."); None picks the
    default for this host (linux set as root with cgroups, posix otherwise).
    `runtime_dir` (e.g. <data dir>/agent/runtime) holds checkpoints and the reaper."""
    context = IsolationContext(
        runtime_dir=runtime_dir / "files",
        cgroup_root=cgroup_root,
        cgroups_root_name=cgroups_root_name,
        max_processes=max_processes,
    )
    flag = isolation if isolation is not None else default_isolation_flag(cgroup_root)
    cgroups = context.cgroup_manager()
    isolators = isolation_from_flag(flag, context, cgroups)
    return MesosContainerizer(
        launcher=launcher_for(isolators, context, cgroups),
        isolators=isolators,
        provisioner=provisioner,
        fetcher=fetcher,
        runtime_dir=runtime_dir,
    )
