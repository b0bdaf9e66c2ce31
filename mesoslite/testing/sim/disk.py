"""`SimDisk`: files whose writes survive a crash only once fsynced.

The model, per file: everything written since the last `fsync` is pending. A crash keeps a
random prefix of the pending writes, possibly followed by a torn piece of the next one
(a prefix of its bytes, sometimes with garbage at the end), and loses the rest. Creating,
renaming and removing names are pending the same way until `fsync_dir`. Data that was
fsynced is never lost: that is the contract a real disk gives and Raft relies on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DiskOptions", "DiskStats", "SimDisk"]


@dataclass(slots=True)
class DiskOptions:
    # On a crash, the chance that the first lost write leaves a torn piece behind.
    torn_write_probability: float = 0.5
    # The chance that a torn piece ends in garbage instead of a clean cut.
    torn_garbage_probability: float = 0.5


@dataclass(slots=True)
class DiskStats:
    writes: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    crashes: int = 0
    writes_lost: int = 0
    writes_torn: int = 0


@dataclass(slots=True)
class _Write:
    offset: int
    data: bytes
    truncate_to: int | None = None  # a truncate instead of a write


class _Inode:
    __slots__ = ("content", "durable", "pending")

    def __init__(self) -> None:
        self.durable = bytearray()  # what a crash cannot take away
        self.content = bytearray()  # what reads see now
        self.pending: list[_Write] = []


def _apply(buffer: bytearray, write: _Write) -> None:
    if write.truncate_to is not None:
        del buffer[write.truncate_to :]
        return
    end = write.offset + len(write.data)
    if len(buffer) < write.offset:
        buffer.extend(bytes(write.offset - len(buffer)))
    buffer[write.offset : end] = write.data


class SimDisk:
    __slots__ = ("_durable_names", "_names", "_pending_dir_ops", "_rng", "options", "stats")

    def __init__(self, rng: random.Random, options: DiskOptions | None = None) -> None:
        self._rng = rng
        self.options = options or DiskOptions()
        self.stats = DiskStats()
        self._names: dict[str, _Inode] = {}
        self._durable_names: dict[str, _Inode] = {}
        self._pending_dir_ops: list[tuple[str, str, _Inode | None]] = []

    # -- names -----------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return name in self._names

    def list_names(self) -> list[str]:
        return sorted(self._names)

    def _inode(self, name: str) -> _Inode:
        inode = self._names.get(name)
        if inode is None:
            raise FileNotFoundError(name)
        return inode

    def create(self, name: str) -> None:
        """Create an empty file (replacing any file of that name)."""
        inode = _Inode()
        self._names[name] = inode
        self._pending_dir_ops.append(("link", name, inode))

    def rename(self, source: str, target: str) -> None:
        inode = self._inode(source)
        del self._names[source]
        self._names[target] = inode
        self._pending_dir_ops.append(("unlink", source, None))
        self._pending_dir_ops.append(("link", target, inode))

    def remove(self, name: str) -> None:
        self._inode(name)
        del self._names[name]
        self._pending_dir_ops.append(("unlink", name, None))

    def fsync_dir(self) -> None:
        self.stats.fsyncs += 1
        for operation in self._pending_dir_ops:
            self._apply_dir_op(self._durable_names, operation)
        self._pending_dir_ops.clear()

    @staticmethod
    def _apply_dir_op(names: dict[str, _Inode], operation: tuple[str, str, _Inode | None]) -> None:
        kind, name, inode = operation
        if kind == "link" and inode is not None:
            names[name] = inode
        else:
            names.pop(name, None)

    # -- contents --------------------------------------------------------------------------

    def read(self, name: str) -> bytes:
        return bytes(self._inode(name).content)

    def size(self, name: str) -> int:
        return len(self._inode(name).content)

    def append(self, name: str, data: bytes) -> None:
        inode = self._inode(name)
        self._write(inode, _Write(len(inode.content), data))

    def write_at(self, name: str, offset: int, data: bytes) -> None:
        self._write(self._inode(name), _Write(offset, data))

    def truncate(self, name: str, length: int) -> None:
        self._write(self._inode(name), _Write(0, b"", truncate_to=length))

    def _write(self, inode: _Inode, write: _Write) -> None:
        self.stats.writes += 1
        self.stats.bytes_written += len(write.data)
        inode.pending.append(write)
        _apply(inode.content, write)

    def fsync(self, name: str) -> None:
        self.stats.fsyncs += 1
        inode = self._inode(name)
        for write in inode.pending:
            _apply(inode.durable, write)
        inode.pending.clear()

    def is_synced(self, name: str) -> bool:
        return not self._inode(name).pending

    # -- faults ----------------------------------------------------------------------------

    def crash(self) -> None:
        """Power loss: keep what was synced, a random prefix of what was not, maybe torn."""
        self.stats.crashes += 1
        rng = self._rng
        names = dict(self._durable_names)
        kept_dir_ops = rng.randint(0, len(self._pending_dir_ops))
        for operation in self._pending_dir_ops[:kept_dir_ops]:
            self._apply_dir_op(names, operation)
        self._pending_dir_ops.clear()
        inodes = {id(inode): inode for inode in [*self._names.values(), *names.values()]}
        for inode in inodes.values():
            self._crash_inode(inode, rng)
        self._names = names
        self._durable_names = dict(names)

    def _crash_inode(self, inode: _Inode, rng: random.Random) -> None:
        pending = inode.pending
        kept = rng.randint(0, len(pending))
        for write in pending[:kept]:
            _apply(inode.durable, write)
        lost = pending[kept:]
        if lost and lost[0].data and rng.random() < self.options.torn_write_probability:
            torn = lost[0]
            piece = torn.data[: rng.randrange(len(torn.data))]
            if piece and rng.random() < self.options.torn_garbage_probability:
                garbage_bytes = rng.randint(1, min(8, len(piece)))
                piece = piece[:-garbage_bytes] + rng.randbytes(garbage_bytes)
            _apply(inode.durable, _Write(torn.offset, piece))
            self.stats.writes_torn += 1
        self.stats.writes_lost += len(lost)
        inode.pending = []
        inode.content = bytearray(inode.durable)
