"""`Status`: a read-only picture of a node, for operators, tests and membership decisions."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.raft.messages import ConfState, HardState, SoftState
from mesoslite.raft.progress import ProgressState

__all__ = ["FollowerStatus", "Status"]


@dataclass(slots=True, frozen=True)
class FollowerStatus:
    match: int
    next: int
    state: ProgressState
    is_learner: bool
    recent_active: bool


@dataclass(slots=True, frozen=True)
class Status:
    id: int
    hard_state: HardState
    soft_state: SoftState
    applied_index: int
    last_index: int
    conf_state: ConfState
    # Filled on the leader only: what it knows about every member, itself included.
    progress: dict[int, FollowerStatus] = field(default_factory=dict)
    lead_transferee: int = 0
