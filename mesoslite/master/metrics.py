"""The master's metrics, under the names of Mesos' `docs/monitoring.md`.

Counters are bumped on the hot paths (a dict increment); gauges are computed from the
state only when someone asks (`/metrics/snapshot`, `GET_METRICS`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from mesoslite.master.task_state import state_metric_name
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["MasterMetrics", "metrics_snapshot"]

# Non-terminal task states: reported as current counts, not as running totals.
_LIVE_STATES = (
    mesos_pb2.TASK_STAGING,
    mesos_pb2.TASK_STARTING,
    mesos_pb2.TASK_RUNNING,
    mesos_pb2.TASK_KILLING,
    mesos_pb2.TASK_UNREACHABLE,
)
_TERMINAL_STATES = (
    mesos_pb2.TASK_FINISHED,
    mesos_pb2.TASK_FAILED,
    mesos_pb2.TASK_KILLED,
    mesos_pb2.TASK_LOST,
    mesos_pb2.TASK_ERROR,
    mesos_pb2.TASK_DROPPED,
    mesos_pb2.TASK_GONE,
    mesos_pb2.TASK_GONE_BY_OPERATOR,
)
_COUNTER_NAMES = (
    "valid_status_updates",
    "invalid_status_updates",
    "valid_status_update_acknowledgements",
    "invalid_status_update_acknowledgements",
    "valid_framework_to_executor_messages",
    "invalid_framework_to_executor_messages",
    "valid_executor_to_framework_messages",
    "invalid_executor_to_framework_messages",
    "dropped_messages",
    "slave_registrations",
    "slave_reregistrations",
    "slave_removals",
    "slave_unreachable_scheduled",
    "slave_unreachable_completed",
    "recovery_slave_removals",
    "frameworks_removed",
    "offers_sent",
    "offers_declined",
    "offers_accepted",
    "offers_rescinded",
    "tasks_launched",
)


class MasterMetrics:
    """Running totals; `bump(name)` with one of the names above or a task state."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.scheduler_calls: Counter[str] = Counter()

    def bump(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def task_terminated(self, state: mesos_pb2.TaskState.ValueType) -> None:
        self.counters[state_metric_name(state)] += 1


def metrics_snapshot(master: Master) -> dict[str, float]:
    state = master.state
    now = master.clock()
    values: dict[str, float] = {
        "master/elected": 1.0 if master.is_leader() else 0.0,
        "master/uptime_secs": max(0.0, now - master.start_time),
    }
    agents = list(state.agents.values())
    connected = sum(1 for agent in agents if agent.connected)
    active = sum(1 for agent in agents if agent.connected and not agent.deactivated)
    values.update(
        {
            "master/slaves_active": float(active),
            "master/slaves_inactive": float(len(agents) - active),
            "master/slaves_connected": float(connected),
            "master/slaves_disconnected": float(len(agents) - connected),
            "master/slaves_unreachable": float(len(state.unreachable_agents)),
        }
    )
    frameworks = list(state.frameworks.values())
    connected_frameworks = sum(1 for f in frameworks if f.connected)
    active_frameworks = sum(1 for f in frameworks if f.active)
    values.update(
        {
            "master/frameworks_active": float(active_frameworks),
            "master/frameworks_inactive": float(len(frameworks) - active_frameworks),
            "master/frameworks_connected": float(connected_frameworks),
            "master/frameworks_disconnected": float(len(frameworks) - connected_frameworks),
            "master/outstanding_offers": float(len(state.offers)),
            "master/subscribers": float(len(master.operator_subscribers)),
        }
    )
    live: Counter[int] = Counter()
    for framework in frameworks:
        for task in framework.tasks.values():
            live[task.state] += 1
        for task in framework.unreachable_tasks.values():
            if task.state == mesos_pb2.TASK_UNREACHABLE:
                live[task.state] += 1
    for live_state in _LIVE_STATES:
        values[f"master/{state_metric_name(live_state)}"] = float(live[live_state])
    for terminal_state in _TERMINAL_STATES:
        name = state_metric_name(terminal_state)
        values[f"master/{name}"] = float(master.metrics.counters[name])
    for name in _COUNTER_NAMES:
        values[f"master/{name}"] = float(master.metrics.counters[name])
    values.update(_resource_gauges(master))
    for call, count in master.metrics.scheduler_calls.items():
        values[f"master/messages_{call.lower()}"] = float(count)
    return values


def _resource_gauges(master: Master) -> dict[str, float]:
    total = Resources()
    used = Resources()
    for agent in master.state.agents.values():
        total = total + Resources(agent.info.resources)
        for task in agent.all_tasks():
            used = used + Resources(task.resources)
        for _, executor in agent.all_executors():
            used = used + Resources(executor.resources)
    offered = Resources()
    for record in master.state.offers.values():
        offered = offered + record.resources
    values: dict[str, float] = {}
    for name in ("cpus", "mem", "disk", "gpus"):
        total_amount = total.scalar(name)
        used_amount = used.scalar(name)
        values[f"master/{name}_total"] = total_amount
        values[f"master/{name}_used"] = used_amount
        values[f"master/{name}_offered"] = offered.scalar(name)
        values[f"master/{name}_percent"] = used_amount / total_amount if total_amount else 0.0
    return values
