"""Resource usage of executors, for `/monitor/statistics`, `/containers` and
GET_CONTAINERS.

An executor with a container of its own reports that container's figures. The built-in
default executor has no process: its usage is the sum over its task containers, which
is what Mesos reports for a default executor (its cgroup holds its tasks').
"""

from __future__ import annotations

import logging
import time

from google.protobuf.descriptor import FieldDescriptor

from mesoslite.agent.state import Executor
from mesoslite.executor.default import DefaultExecutor
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import Containerizer

__all__ = ["executor_usage", "nested_container_ids", "sum_statistics"]

log = logging.getLogger(__name__)

_NUMERIC = frozenset(
    {
        FieldDescriptor.TYPE_DOUBLE,
        FieldDescriptor.TYPE_FLOAT,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
    }
)


def sum_statistics(samples: list[mesos_pb2.ResourceStatistics]) -> mesos_pb2.ResourceStatistics:
    """Every numeric top-level figure added up; the timestamp is now."""
    total = mesos_pb2.ResourceStatistics()
    for sample in samples:
        for field, value in sample.ListFields():
            if field.name == "timestamp" or field.type not in _NUMERIC:
                continue
            if isinstance(value, (list, tuple)) or not isinstance(value, (int, float)):
                continue
            setattr(total, field.name, getattr(total, field.name) + value)
    total.timestamp = time.time()
    return total


def nested_container_ids(executor: Executor) -> list[str]:
    """The task containers of an in-agent default executor (none for other kinds)."""
    runner = executor.runner
    if isinstance(runner, DefaultExecutor):
        return runner.task_container_ids()
    return []


async def executor_usage(
    containerizer: Containerizer, executor: Executor
) -> mesos_pb2.ResourceStatistics | None:
    """None when the executor has nothing running."""
    running = set(containerizer.containers())
    if executor.container_id in running:
        ids = [executor.container_id]
    else:
        ids = [cid for cid in nested_container_ids(executor) if cid in running]
        if not ids:
            return None
    samples = []
    for container_id in ids:
        try:
            samples.append(await containerizer.usage(container_id))
        except Exception as exc:  # ended meanwhile
            log.debug("no usage for container %s: %s", container_id, exc)
    if len(samples) == 1 and ids == [executor.container_id]:
        return samples[0]
    return sum_statistics(samples)
