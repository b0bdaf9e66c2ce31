"""The agent's metrics (`/metrics/snapshot` keys `slave/*` and `system/*`, GET_METRICS).

Computed from the bookkeeping on demand: nothing to keep in step on the hot path.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from mesoslite.agent.discovery import usable_cpu_count
from mesoslite.agent.state import ExecutorPhase
from mesoslite.agent.views import used_resources
from mesoslite.proto import mesos_pb2

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["agent_metrics", "system_metrics"]

_TS = mesos_pb2.TaskState


def _scalar_totals(resources: list[mesos_pb2.Resource]) -> defaultdict[str, float]:
    totals: defaultdict[str, float] = defaultdict(float)
    for resource in resources:
        if resource.type == mesos_pb2.Value.SCALAR:
            totals[resource.name] += resource.scalar.value
    return totals


def agent_metrics(agent: Agent) -> dict[str, float]:
    metrics: dict[str, float] = {
        "slave/registered": 1.0 if agent.registered else 0.0,
        "slave/uptime_secs": time.time() - agent.start_time,
        "slave/recovery_errors": 0.0,
        "slave/frameworks_active": float(len(agent.frameworks)),
    }
    total = _scalar_totals(list(agent.agent_info.resources))
    used = _scalar_totals(used_resources(agent))
    for name in ("cpus", "mem", "disk", "gpus"):
        metrics[f"slave/{name}_total"] = total[name]
        metrics[f"slave/{name}_used"] = used[name]
        metrics[f"slave/{name}_percent"] = used[name] / total[name] if total[name] else 0.0

    phases: Counter[ExecutorPhase] = Counter()
    states: Counter[int] = Counter()
    completed_executors = 0
    for framework in agent.frameworks.values():
        completed_executors += len(framework.completed_executors)
        for executor in framework.executors.values():
            phases[executor.phase] += 1
            for task in executor.launched_tasks.values():
                states[task.state] += 1
            states[_TS.TASK_STAGING] += len(executor.queued_tasks)
    metrics["slave/executors_registering"] = float(phases[ExecutorPhase.REGISTERING])
    metrics["slave/executors_running"] = float(phases[ExecutorPhase.RUNNING])
    metrics["slave/executors_terminating"] = float(phases[ExecutorPhase.TERMINATING])
    metrics["slave/executors_terminated"] = float(completed_executors)
    metrics["slave/executors_preempted"] = 0.0
    for state, name in (
        (_TS.TASK_STAGING, "staging"),
        (_TS.TASK_STARTING, "starting"),
        (_TS.TASK_RUNNING, "running"),
        (_TS.TASK_KILLING, "killing"),
    ):
        metrics[f"slave/tasks_{name}"] = float(states[state])
    for state, name in (
        (_TS.TASK_FINISHED, "finished"),
        (_TS.TASK_FAILED, "failed"),
        (_TS.TASK_KILLED, "killed"),
        (_TS.TASK_LOST, "lost"),
        (_TS.TASK_GONE, "gone"),
    ):
        metrics[f"slave/tasks_{name}"] = float(agent.terminal_task_counts[state])
    return metrics


def system_metrics() -> dict[str, float]:
    """Machine figures (blocking: reads /proc)."""
    metrics = {"system/cpus_total": float(usable_cpu_count())}
    try:
        load_1, load_5, load_15 = os.getloadavg()
        metrics.update(
            {"system/load_1min": load_1, "system/load_5min": load_5, "system/load_15min": load_15}
        )
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            fields = {
                line.split(":")[0]: int(line.split()[1]) * 1024 for line in meminfo if ":" in line
            }
        metrics["system/mem_total_bytes"] = float(fields.get("MemTotal", 0))
        metrics["system/mem_free_bytes"] = float(
            fields.get("MemAvailable", fields.get("MemFree", 0))
        )
    except (OSError, ValueError, IndexError):
        pass
    return metrics
