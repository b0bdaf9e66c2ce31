"""Deliberate bugs, switched on only by tests that check the checkers (test-of-the-test).

Nothing outside tests touches this module: it is private, not re-exported, and every
flag defaults to the correct behaviour. `injected(...)` is the one way to flip a flag.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

__all__ = ["ACTIVE", "InjectedFaults", "injected"]


@dataclass(slots=True, frozen=True)
class InjectedFaults:
    # Count replicas for entries of any term when advancing the commit index, which is
    # exactly the mistake Raft §5.4.2 (Figure 8) warns against.
    commit_any_term: bool = False
    # Grant votes without checking that the candidate's log is at least as up to date as
    # ours (Raft §5.4.1), which lets a leader without committed entries be elected.
    vote_ignores_log: bool = False


ACTIVE = InjectedFaults()


@contextmanager
def injected(**flags: bool) -> Iterator[None]:
    """Run a block with some faults switched on, then restore the correct behaviour."""
    global ACTIVE
    previous = ACTIVE
    ACTIVE = replace(previous, **flags)
    try:
        yield
    finally:
        ACTIVE = previous
