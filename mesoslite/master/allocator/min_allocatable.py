"""The smallest chunk worth offering: `--min_allocatable_resources` and per-role overrides.

A requirement is a list of alternatives; a chunk qualifies when it holds at least every
quantity of any one alternative. An empty list means "no minimum" (anything non-empty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources

__all__ = [
    "DEFAULT_MIN_ALLOCATABLE",
    "MinAllocatable",
    "OfferFilterInput",
    "is_allocatable",
    "min_allocatable_by_role",
]

MinAllocatable: TypeAlias = tuple[Mapping[str, float], ...]

#: Mesos' default `--min_allocatable_resources=cpus:0.01|mem:32`.
DEFAULT_MIN_ALLOCATABLE: Final[MinAllocatable] = ({"cpus": 0.01}, {"mem": 32.0})

#: What callers may pass as a framework's offer filters, keyed by role: the protobuf
#: `OfferFilters` straight from FrameworkInfo, or the alternatives as plain mappings.
OfferFilterInput: TypeAlias = (
    Mapping[str, mesos_pb2.OfferFilters] | Mapping[str, Sequence[Mapping[str, float]]]
)


def is_allocatable(chunk: Resources, requirement: MinAllocatable) -> bool:
    if chunk.is_empty():
        return False
    if not requirement:
        return True
    return any(chunk.contains_quantities(alternative) for alternative in requirement)


def min_allocatable_by_role(offer_filters: OfferFilterInput | None) -> dict[str, MinAllocatable]:
    """Per-role overrides of the cluster minimum; roles absent keep the cluster minimum.

    An `OfferFilters` without `min_allocatable_resources` overrides nothing, as in Mesos.
    """
    overrides: dict[str, MinAllocatable] = {}
    for role, value in (offer_filters or {}).items():
        if isinstance(value, mesos_pb2.OfferFilters):
            if not value.HasField("min_allocatable_resources"):
                continue
            overrides[role] = tuple(
                {name: scalar.value for name, scalar in alternative.quantities.items()}
                for alternative in value.min_allocatable_resources.quantities
            )
        else:
            overrides[role] = tuple(dict(alternative) for alternative in value)
    return overrides
