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

# Role names already found valid (a few, written over and over): not checked again.
_VALID_ROLES: set[str] = set()
_VALID_ROLES_KEPT = 4096


def update_weights(master: Master, weight_infos: Iterable[mesos_pb2.WeightInfo]) -> None:
    """All or nothing; raises HttpError 400 naming the first invalid entry."""
    weights: dict[str, float] = {}
    for info in weight_infos:
        error = None if info.role in _VALID_ROLES else validate_role(info.role)
        if error is None and len(_VALID_ROLES) < _VALID_ROLES_KEPT:
            _VALID_ROLES.add(info.role)
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
