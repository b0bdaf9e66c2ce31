"""A Wing-Gong style linearizability checker for registers (one per key).

Each operation has an invocation and a response time (None: the client never learned
its outcome, e.g. the connection broke: it may have taken effect at any point after
its invocation, or never). The checker searches for an order of the operations that
respects real time (an operation that returned before another was invoked comes first)
in which every read returns the value of the last write before it; it memoises on
(operations left, register value), as in Lowe's refinement of Wing & Gong. Keys are
independent, so each key's history is checked on its own (P-compositionality).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

__all__ = ["Operation", "check_registers", "linearizable"]

_UNKNOWN = float("inf")


@dataclass(frozen=True, slots=True)
class Operation:
    key: Hashable
    kind: str  # "write" or "read"
    value: object  # the value written, or read (None: absent)
    invoked_s: float
    returned_s: float | None  # None: outcome unknown (writes only)


def linearizable(operations: list[Operation], initial: object = None) -> bool:
    """Whether one register's history is linearizable."""
    observed = {op.value for op in operations if op.kind == "read" and op.returned_s is not None}
    # A write of unknown outcome whose value no read returned may be taken never to have
    # happened: had it happened, no read saw it before the next write, so leaving it out
    # changes no read's answer. Without this, every such write doubles the search space
    # (it may be placed anywhere after its invocation), and a partition makes dozens.
    ops = [
        op
        for op in operations
        if op.returned_s is not None or (op.kind == "write" and op.value in observed)
    ]
    count = len(ops)
    ends = [_UNKNOWN if op.returned_s is None else op.returned_s for op in ops]
    seen: set[tuple[int, object]] = set()
    # Depth-first over (operations left, register value), with an explicit stack: a
    # history may hold more operations than Python's recursion limit.
    stack: list[tuple[int, object]] = [((1 << count) - 1, initial)]
    while stack:
        remaining, value = stack.pop()
        # Only operations of unknown outcome left: they may all never have happened.
        if all(ends[i] == _UNKNOWN for i in range(count) if remaining >> i & 1):
            return True
        if (remaining, value) in seen:
            continue
        seen.add((remaining, value))
        horizon = min(ends[i] for i in range(count) if remaining >> i & 1)
        successors: list[tuple[int, object]] = []
        for i in range(count):
            if not remaining >> i & 1 or ops[i].invoked_s > horizon:
                continue  # someone else must come first
            op = ops[i]
            if op.kind == "read":
                if op.value == value:
                    successors.append((remaining & ~(1 << i), value))
            else:
                successors.append((remaining & ~(1 << i), op.value))
        stack.extend(reversed(successors))  # tried in the order of the operations
    return False


def check_registers(operations: Iterable[Operation], initial: object = None) -> list[Hashable]:
    """The keys whose histories are not linearizable (empty: all are)."""
    by_key: dict[Hashable, list[Operation]] = defaultdict(list)
    for op in operations:
        by_key[op.key].append(op)
    return [key for key, ops in by_key.items() if not linearizable(ops, initial)]
