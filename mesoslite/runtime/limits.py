"""The resource figures isolators enforce, read from a container's Resource list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mesoslite.proto import mesos_pb2

__all__ = ["ResourceLimits"]

_MEGABYTE_BYTES = 1024 * 1024


def _scalar_sum(resources: Iterable[mesos_pb2.Resource], name: str) -> float | None:
    values = [r.scalar.value for r in resources if r.name == name and r.HasField("scalar")]
    return sum(values) if values else None


@dataclass(frozen=True)
class ResourceLimits:
    """cpus (fractional cores), mem in bytes; None where the resources name none."""

    cpus: float | None
    mem_bytes: int | None

    @classmethod
    def from_resources(cls, resources: Iterable[mesos_pb2.Resource]) -> ResourceLimits:
        resources = list(resources)
        cpus = _scalar_sum(resources, "cpus")
        mem_megabytes = _scalar_sum(resources, "mem")
        mem_bytes = None if mem_megabytes is None else int(mem_megabytes * _MEGABYTE_BYTES)
        return cls(cpus=cpus, mem_bytes=mem_bytes)
