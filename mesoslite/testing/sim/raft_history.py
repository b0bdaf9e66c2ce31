"""The clients' view of a simulated cluster: which writes and reads were invoked, which
were acknowledged, and checks that the answers are linearizable.

The replicated log is an append-only sequence, so linearizability reduces to real-time
order on log indexes:

- a write acknowledged before another write was invoked sits at a lower index;
- a read returns an index (ReadIndex) covering every write acknowledged before the read
  was invoked, and is served only from a state machine that applied that index;
- every acknowledged write is in the committed log at the index it was given (durability),
  and at the end every live member has applied it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.raft import Entry
from mesoslite.testing.sim.raft_checker import RaftSafetyChecker, SafetyViolation

__all__ = ["ClientHistory", "ReadRecord", "WriteRecord"]


@dataclass(slots=True)
class WriteRecord:
    op: bytes
    replica_id: int
    index: int  # the index the proposal was appended at
    invoked_steps: int
    acked_index_at_invoke: int  # the newest acknowledged write when it was invoked
    acked_steps: int | None = None


@dataclass(slots=True)
class ReadRecord:
    context: bytes
    replica_id: int
    invoked_steps: int
    acked_index_at_invoke: int
    read_index: int | None = None
    served_steps: int | None = None


class ClientHistory:
    __slots__ = ("_pending_writes", "_reads_by_replica", "max_acked_index", "reads", "writes")

    def __init__(self) -> None:
        self.writes: dict[bytes, WriteRecord] = {}
        self.reads: dict[bytes, ReadRecord] = {}
        self.max_acked_index = 0
        self._pending_writes: dict[int, dict[bytes, WriteRecord]] = {}
        self._reads_by_replica: dict[int, dict[bytes, ReadRecord]] = {}

    # -- writes ----------------------------------------------------------------------------

    def write_invoked(self, replica_id: int, op: bytes, index: int, now_steps: int) -> None:
        record = WriteRecord(op, replica_id, index, now_steps, self.max_acked_index)
        self.writes[op] = record
        self._pending_writes.setdefault(replica_id, {})[op] = record

    def on_applied(self, replica_id: int, entry: Entry, now_steps: int) -> None:
        """The replica applied `entry`; if it carries a write proposed there, answer it."""
        pending = self._pending_writes.get(replica_id)
        if not pending:
            return
        record = pending.pop(entry.data, None)
        if record is None:
            return
        if entry.index != record.index:
            raise SafetyViolation(
                f"write {record.op!r} was appended at {record.index} but applied at {entry.index}"
            )
        if record.index <= record.acked_index_at_invoke:
            raise SafetyViolation(
                f"linearizability: write {record.op!r} got index {record.index}, not after "
                f"index {record.acked_index_at_invoke} acknowledged before it was invoked"
            )
        record.acked_steps = now_steps
        self.max_acked_index = max(self.max_acked_index, record.index)

    def acked_writes(self) -> list[WriteRecord]:
        return [record for record in self.writes.values() if record.acked_steps is not None]

    # -- reads -----------------------------------------------------------------------------

    def read_invoked(self, replica_id: int, context: bytes, now_steps: int) -> None:
        record = ReadRecord(context, replica_id, now_steps, self.max_acked_index)
        self.reads[context] = record
        self._reads_by_replica.setdefault(replica_id, {})[context] = record

    def read_served(
        self, replica_id: int, context: bytes, read_index: int, applied_index: int, now_steps: int
    ) -> None:
        record = self._reads_by_replica.get(replica_id, {}).pop(context, None)
        if record is None:
            return  # not ours (or answered twice): nobody waits for it
        if applied_index < read_index:
            raise SafetyViolation(f"read {context!r} served before applying {read_index}")
        if read_index < record.acked_index_at_invoke:
            raise SafetyViolation(
                f"linearizability: read {context!r} at index {read_index} misses the write at "
                f"{record.acked_index_at_invoke} acknowledged before the read was invoked"
            )
        record.read_index = read_index
        record.served_steps = now_steps

    def served_reads(self) -> list[ReadRecord]:
        return [record for record in self.reads.values() if record.served_steps is not None]

    # -- crashes and the end ---------------------------------------------------------------

    def replica_crashed(self, replica_id: int) -> None:
        """Its clients see the connection drop: their requests stay unanswered (a write
        may still commit; it is simply not acknowledged)."""
        self._pending_writes.pop(replica_id, None)
        self._reads_by_replica.pop(replica_id, None)

    def check_durability(self, checker: RaftSafetyChecker) -> None:
        """Every acknowledged write is in the committed log at its index."""
        for record in self.acked_writes():
            if record.index > checker.applied_index:
                raise SafetyViolation(f"acknowledged write {record.op!r} is not committed")
            _, data = checker.applied_entry(record.index)
            if data != record.op:
                raise SafetyViolation(
                    f"durability: acknowledged write {record.op!r} at {record.index} was "
                    f"replaced by {data!r}"
                )
