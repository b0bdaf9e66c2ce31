"""Whether a restarted agent may take over its predecessor's id and tasks.

Mesos compares the new AgentInfo with the checkpointed one (`--reconfiguration_policy`).
We apply its `additive` policy: the address must stay (executors and the master reach
the agent there), resources and attributes may only grow (every running task must
still fit, and nothing a framework placed by may disappear).
"""

from __future__ import annotations

from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources

__all__ = ["reconfiguration_error"]


def reconfiguration_error(
    previous: mesos_pb2.AgentInfo, current: mesos_pb2.AgentInfo
) -> str | None:
    """Why `current` cannot recover an agent that ran as `previous`, or None."""
    if previous.hostname != current.hostname:
        return f"the hostname changed from {previous.hostname!r} to {current.hostname!r}"
    if previous.port != current.port:
        return f"the agent port changed from {previous.port} to {current.port}"
    if not Resources(current.resources).contains(Resources(previous.resources)):
        return "resources were removed (they may only grow)"
    current_attributes = {attribute.SerializeToString() for attribute in current.attributes}
    removed = [
        attribute.name
        for attribute in previous.attributes
        if attribute.SerializeToString() not in current_attributes
    ]
    if removed:
        return f"attributes changed or were removed: {', '.join(sorted(set(removed)))}"
    return None
