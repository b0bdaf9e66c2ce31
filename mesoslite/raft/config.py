"""`Config`: everything a Raft node is started with."""

from __future__ import annotations

import random
from dataclasses import dataclass

from mesoslite.raft.messages import NO_NODE
from mesoslite.raft.storage import Storage

__all__ = ["Config"]


@dataclass(slots=True)
class Config:
    id: int
    storage: Storage
    # The only source of randomness (election timeouts); seeded in simulation.
    rng: random.Random
    # A follower campaigns after a random timeout in [election_ticks, 2 * election_ticks).
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    # The index the state machine has already applied (e.g. restored from a snapshot);
    # committed entries after it are handed out again on restart.
    applied_index: int = 0
    # Appends carry at most this many bytes of entries (but always at least one entry).
    max_msg_size_bytes: int = 1 << 20
    # At most this many unacknowledged appends per follower in REPLICATE state.
    max_inflight_msgs: int = 256
    max_inflight_bytes: int = 0  # 0: unlimited
    # Committed entries handed out per Ready (at least one entry); None: unlimited.
    max_apply_batch_bytes: int | None = 64 << 20
    # A leader refuses proposals while its own uncommitted entries hold this many bytes
    # (counted by `entry_size_bytes`; one proposal always gets through), so that it cannot
    # run arbitrarily far ahead of what its followers can take. None: unlimited.
    max_uncommitted_bytes: int | None = None
    # Campaign with a pre-vote first: a node cut off from the majority does not raise its
    # term, so it cannot depose a healthy leader when it comes back.
    pre_vote: bool = True
    # A leader steps down after an election timeout without hearing from a majority, and
    # followers that heard from a leader within one ignore vote requests (leader lease).
    check_quorum: bool = True
    # Send every follower an append as soon as the commit index moves (etcd's way), so
    # that followers apply at once. Off: followers learn it from the next append or
    # heartbeat, at most `heartbeat_ticks` later; a lone writer then costs half the
    # messages (no extra round of appends and answers per commit).
    broadcast_commit: bool = True
    # Skip the periodic heartbeat to a follower that was sent an append since the last
    # one (an append carries everything a heartbeat does), unless reads wait on it. Off:
    # every follower gets one every `heartbeat_ticks`, as in etcd.
    quiet_heartbeats: bool = False

    def validate(self) -> None:
        if self.id == NO_NODE or self.id < 0:
            raise ValueError(f"invalid node id {self.id}")
        if self.heartbeat_ticks <= 0:
            raise ValueError("heartbeat_ticks must be positive")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max_inflight_msgs must be positive")
        if self.max_msg_size_bytes <= 0:
            raise ValueError("max_msg_size_bytes must be positive")
        if self.max_inflight_bytes < 0:
            raise ValueError("max_inflight_bytes must not be negative")
        if self.max_uncommitted_bytes is not None and self.max_uncommitted_bytes <= 0:
            raise ValueError("max_uncommitted_bytes must be positive (or None)")
        if self.applied_index < 0:
            raise ValueError("applied_index must not be negative")
