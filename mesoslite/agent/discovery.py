"""What this machine offers: cpus, mem, disk, ports (and gpus with `gpu/nvidia`).

Mesos' rules (`src/slave/containerizer/containerizer.cpp`): cpus = usable cores,
mem = total - 1 GB (half when under 2 GB), disk = work_dir filesystem - 5 GB (half
when under 10 GB), ports [31000-32000]. A resource named in `--resources` replaces the
discovered one of that name. Blocking (reads /proc, statvfs): call it off the loop.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from mesoslite.agent.config import AgentConfig
from mesoslite.proto import mesos_pb2
from mesoslite.resources import default_agent_resources, parse_attributes, parse_resources

__all__ = ["discover_attributes", "discover_resources", "usable_cpu_count"]

log = logging.getLogger(__name__)

_MB = 1024 * 1024


def usable_cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _mem_total_mb() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    pages = os.sysconf("SC_PHYS_PAGES")
    page_size = os.sysconf("SC_PAGE_SIZE")
    return float(pages * page_size) / _MB


def _disk_total_mb(work_dir: Path) -> float:
    probe = work_dir
    # The work dir may not exist yet: measure the filesystem it will live on.
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).total / _MB


def _gpu_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # no driver, no library: no gpus
        log.info("no GPUs discovered: %s", exc)
        return 0


def discover_resources(config: AgentConfig) -> list[mesos_pb2.Resource]:
    """The agent's total resources, `--resources` merged over the discovered ones."""
    overrides = list(parse_resources(config.resources)) if config.resources else []
    named = {resource.name for resource in overrides}
    discovered = list(
        default_agent_resources(
            usable_cpu_count(), _mem_total_mb(), _disk_total_mb(config.work_dir)
        )
    )
    if "gpu/nvidia" in config.isolation_or_default.split(",") and "gpus" not in named:
        count = _gpu_count()
        if count:
            gpus = mesos_pb2.Resource(name="gpus", type=mesos_pb2.Value.SCALAR, role="*")
            gpus.scalar.value = float(count)
            discovered.append(gpus)
    merged = [resource for resource in discovered if resource.name not in named]
    merged.extend(overrides)
    return merged


def discover_attributes(config: AgentConfig) -> list[mesos_pb2.Attribute]:
    return list(parse_attributes(config.attributes)) if config.attributes else []
