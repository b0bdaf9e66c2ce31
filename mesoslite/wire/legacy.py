"""The legacy (pre-v1) JSON shapes of spec section 4.4, shared by master and agent.

The `/state`, `/slaves`, `/frameworks` and `/tasks` endpoints do not use the v1
protobuf JSON: Mesos writes them by hand with flat string ids, `slave_id`, resources
as one `{name: value}` object and attributes as `{name: value}`. Tools (the Mesos CLI,
web UIs) parse exactly these shapes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from mesoslite.proto import mesos_pb2
from mesoslite.wire.json_codec import to_json_dict

__all__ = [
    "attributes_to_legacy",
    "labels_to_legacy",
    "ranges_to_string",
    "resources_to_legacy",
    "set_to_string",
    "task_status_to_legacy",
    "task_to_legacy",
]

_SCALAR = mesos_pb2.Value.SCALAR
_RANGES = mesos_pb2.Value.RANGES
_SET = mesos_pb2.Value.SET
_TEXT = mesos_pb2.Value.TEXT

# Always present in a legacy resource object, 0 when the resources have none.
_ALWAYS = ("cpus", "gpus", "mem", "disk")


def _milli(value: float) -> int:
    # Mesos does scalar arithmetic in fixed point with three decimals, rounding half
    # away from zero; summing the same way reproduces its totals exactly.
    return int(math.copysign(math.floor(abs(value) * 1000 + 0.5), value))


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # Sorted, with overlapping and adjacent ranges merged: what Mesos' Ranges sum gives.
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(ranges):
        if merged and begin <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return merged


def _format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    return "[" + ", ".join(f"{begin}-{end}" for begin, end in ranges) + "]"


def ranges_to_string(ranges: mesos_pb2.Value.Ranges) -> str:
    """`[a-b, c-d]`, in the given order (as Mesos prints a Value.Ranges)."""
    return _format_ranges((r.begin, r.end) for r in ranges.range)


def set_to_string(items: mesos_pb2.Value.Set) -> str:
    """`{a, b}` (as Mesos prints a Value.Set)."""
    return "{" + ", ".join(items.item) + "}"


def resources_to_legacy(resources: Iterable[mesos_pb2.Resource]) -> dict[str, Any]:
    """One object for a whole resource list: scalars summed, ranges merged, sets united.

    Revocable resources are reported under `<name>_revocable`.
    """
    scalars: dict[str, int] = dict.fromkeys(_ALWAYS, 0)
    ranges: dict[str, list[tuple[int, int]]] = {}
    sets: dict[str, list[str]] = {}
    for resource in resources:
        name = resource.name + ("_revocable" if resource.HasField("revocable") else "")
        if resource.type == _SCALAR:
            scalars[name] = scalars.get(name, 0) + _milli(resource.scalar.value)
        elif resource.type == _RANGES:
            ranges.setdefault(name, []).extend((r.begin, r.end) for r in resource.ranges.range)
        elif resource.type == _SET:
            items = sets.setdefault(name, [])
            items.extend(item for item in resource.set.item if item not in items)
    out: dict[str, Any] = {name: total / 1000 for name, total in scalars.items()}
    out.update((name, _format_ranges(_coalesce(spans))) for name, spans in ranges.items())
    out.update((name, "{" + ", ".join(items) + "}") for name, items in sets.items())
    return out


def attributes_to_legacy(attributes: Iterable[mesos_pb2.Attribute]) -> dict[str, Any]:
    """`{name: value}`: scalars as numbers, text as is, ranges and sets as strings."""
    out: dict[str, Any] = {}
    for attribute in attributes:
        if attribute.type == _SCALAR:
            out[attribute.name] = attribute.scalar.value
        elif attribute.type == _RANGES:
            out[attribute.name] = ranges_to_string(attribute.ranges)
        elif attribute.type == _SET:
            out[attribute.name] = set_to_string(attribute.set)
        elif attribute.type == _TEXT:
            out[attribute.name] = attribute.text.value
    return out


def labels_to_legacy(labels: mesos_pb2.Labels) -> list[dict[str, Any]]:
    """`[{key, value?}]`: the label list itself, without the `labels` wrapper."""
    return [to_json_dict(label) for label in labels.labels]


def task_status_to_legacy(status: mesos_pb2.TaskStatus) -> dict[str, Any]:
    """One entry of a legacy task's `statuses`."""
    out: dict[str, Any] = {
        "state": mesos_pb2.TaskState.Name(status.state),
        "timestamp": status.timestamp,
    }
    if status.HasField("labels"):
        out["labels"] = labels_to_legacy(status.labels)
    if status.HasField("container_status"):
        out["container_status"] = to_json_dict(status.container_status)
    if status.HasField("healthy"):
        out["healthy"] = status.healthy
    return out


def task_to_legacy(task: mesos_pb2.Task) -> dict[str, Any]:
    """A task as `/master/tasks`, `/master/state` and the agent's `/state` show it."""
    out: dict[str, Any] = {
        "id": task.task_id.value,
        "name": task.name,
        "framework_id": task.framework_id.value,
        # Always present: "" for command tasks, which have no executor of their own.
        "executor_id": task.executor_id.value,
        "slave_id": task.agent_id.value,
        "state": mesos_pb2.TaskState.Name(task.state),
        "resources": resources_to_legacy(task.resources),
    }
    if task.limits:
        out["limits"] = {name: task.limits[name].value for name in sorted(task.limits)}
    if task.resources:
        # A task's resources are all allocated to one role; Mesos reports the first's.
        out["role"] = task.resources[0].allocation_info.role
    out["statuses"] = [task_status_to_legacy(status) for status in task.statuses]
    if task.HasField("user"):
        out["user"] = task.user
    if task.HasField("labels"):
        out["labels"] = labels_to_legacy(task.labels)
    if task.HasField("discovery"):
        out["discovery"] = to_json_dict(task.discovery)
    if task.HasField("container"):
        out["container"] = to_json_dict(task.container)
    if task.HasField("health_check"):
        out["health_check"] = to_json_dict(task.health_check)
    return out
