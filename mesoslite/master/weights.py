"""Role weights (`UPDATE_WEIGHTS`, `PUT /weights`): validated, written to the registry
(the caller answers once `master.leadership.recorded()`), then handed to the allocator,
which uses them from its next pass on (none is triggered, as in Mesos)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mesoslite.proto import mesos_pb2, registry_pb2
from mesoslite.resources import validate_role
from mesoslite.wire.http import HttpError

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["update_weights"]


def update_weights(master: Master, weight_infos: Iterable[mesos_pb2.WeightInfo]) -> None:
    """All or nothing; raises HttpError 400 naming the first invalid entry."""
    weights: dict[str, float] = {}
    for info in weight_infos:
        error = validate_role(info.role)
        if error is not None:
            raise HttpError(400, f"Failed to validate weights: Invalid role '{info.role}': {error}")
        if not math.isfinite(info.weight) or info.weight <= 0:
            raise HttpError(
                400,
                f"Failed to validate weights: Invalid weight '{info.weight:g}' for role"
                f" '{info.role}': weights must be positive",
            )
        weights[info.role] = info.weight
    operation = registry_pb2.RegistryOperation()
    for role, weight in weights.items():
        operation.update_weights.weights.add(role=role, weight=weight)
    master.leadership.record(operation)
    master.allocator.update_weights(weights)
    master.weights.update(weights)
    # No allocation pass for it, as in Mesos' allocator: a weight change does not
    # rebalance what is offered, it shows in the next allocations.
