"""One framework as the allocator sees it: roles, capabilities, suppression, activity."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final, NamedTuple

from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources

from .min_allocatable import MinAllocatable

__all__ = ["FrameworkState", "ResourceCapabilities"]

_Capability = mesos_pb2.FrameworkInfo.Capability
_REVOCABLE: Final = _Capability.REVOCABLE_RESOURCES
_GPU: Final = _Capability.GPU_RESOURCES
_SHARED: Final = _Capability.SHARED_RESOURCES
_REFINEMENT: Final = _Capability.RESERVATION_REFINEMENT


class ResourceCapabilities(NamedTuple):
    revocable: bool
    shared: bool
    refined_reservations: bool

    def receivable(self, resources: Resources) -> Resources:
        """What of `resources` a framework with these capabilities may be offered."""
        if not self.revocable:
            resources = resources.non_revocable()
        if not self.shared:
            resources = resources.non_shared()
        if not self.refined_reservations:
            # Without RESERVATION_REFINEMENT a framework cannot read refined reservations.
            resources = resources - resources.refined_reservations()
        return resources


class FrameworkState:
    """Mutable record kept by the allocator; the derived capability views are cached."""

    __slots__ = (
        "accepts_gpu_agents",
        "active",
        "capabilities",
        "framework_id",
        "min_allocatable_by_role",
        "resource_capabilities",
        "roles",
        "suppressed_roles",
    )

    def __init__(
        self,
        framework_id: str,
        roles: Collection[str],
        capabilities: Collection[int],
        *,
        suppressed_roles: Collection[str] = (),
        active: bool = True,
        min_allocatable_by_role: Mapping[str, MinAllocatable] | None = None,
    ) -> None:
        self.framework_id = framework_id
        self.roles = frozenset(roles)
        self.suppressed_roles = set(suppressed_roles) & self.roles
        self.active = active
        self.min_allocatable_by_role = dict(min_allocatable_by_role or {})
        self.capabilities = frozenset[int]()
        self.accepts_gpu_agents = False
        self.resource_capabilities = ResourceCapabilities(False, False, False)
        self.set_capabilities(capabilities)

    def set_capabilities(self, capabilities: Collection[int]) -> None:
        self.capabilities = frozenset(capabilities)
        self.accepts_gpu_agents = _GPU in self.capabilities
        self.resource_capabilities = ResourceCapabilities(
            revocable=_REVOCABLE in self.capabilities,
            shared=_SHARED in self.capabilities,
            refined_reservations=_REFINEMENT in self.capabilities,
        )

    def wants_offers_for(self, role: str) -> bool:
        return self.active and role in self.roles and role not in self.suppressed_roles
