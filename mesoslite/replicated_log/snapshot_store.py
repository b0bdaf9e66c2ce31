"""Snapshot files (blocking; run in a worker thread).

Each snapshot is one framed record in `<index:016x>-<term:016x>.snap`, written atomically
(write a temporary file, fsync, rename, fsync the directory), so a file with a snapshot's
name is always whole. The newest few are kept; older ones and temporary files left by a
crash are removed.
"""

from __future__ import annotations

import re
from pathlib import Path

from mesoslite.raft.messages import Snapshot
from mesoslite.replicated_log.durable_files import (
    ensure_directory,
    fsync_directory,
    write_file_atomically,
)
from mesoslite.replicated_log.errors import CorruptionError
from mesoslite.replicated_log.framing import ScanEnd, ScanStop, encode_record, scan_records
from mesoslite.replicated_log.records import (
    RecordType,
    decode_snapshot,
    encode_snapshot_payload,
)

__all__ = ["DEFAULT_SNAPSHOTS_KEPT", "SnapshotStore"]

DEFAULT_SNAPSHOTS_KEPT = 2
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")


class SnapshotStore:
    """The snapshot directory. Blocking and not thread-safe: one thread at a time."""

    def __init__(self, directory: Path, *, kept: int = DEFAULT_SNAPSHOTS_KEPT) -> None:
        if kept < 1:
            raise ValueError("at least one snapshot must be kept")
        self._directory = directory
        self._kept = kept

    @property
    def directory(self) -> Path:
        return self._directory

    def load_newest(self) -> Snapshot | None:
        """The newest snapshot, or None. Removes temporary files a crash left behind.
        A damaged newest snapshot raises `CorruptionError`: older ones may not be
        covered by the WAL any more, so falling back could lose committed entries."""
        ensure_directory(self._directory)
        for leftover in self._directory.glob("*.tmp"):
            leftover.unlink()
        paths = self._snapshot_paths()
        if not paths:
            return None
        return _read_snapshot(paths[-1])

    def save(self, snapshot: Snapshot) -> Path:
        """Write `snapshot` durably, then drop the ones beyond the newest `kept`."""
        metadata = snapshot.metadata
        path = self._directory / f"{metadata.index:016x}-{metadata.term:016x}.snap"
        record = encode_record(RecordType.SNAPSHOT, encode_snapshot_payload(snapshot))
        write_file_atomically(path, record)
        self._purge()
        return path

    def _snapshot_paths(self) -> list[Path]:
        """Snapshot files, oldest (lowest index) first."""
        found = []
        for path in self._directory.iterdir():
            match = _NAME.match(path.name)
            if match is not None:
                found.append((int(match[1], 16), int(match[2], 16), path))
        found.sort()
        return [path for _, _, path in found]

    def _purge(self) -> None:
        stale = self._snapshot_paths()[: -self._kept]
        for path in stale:
            path.unlink()
        if stale:
            fsync_directory(self._directory)


def _read_snapshot(path: Path) -> Snapshot:
    buffer = path.read_bytes()
    end: list[ScanEnd] = []
    records = list(scan_records(buffer, 0, end))
    if end[0].stop is not ScanStop.END or len(records) != 1:
        reason = end[0].reason or f"{len(records)} records"
        raise CorruptionError(path, end[0].offset_bytes, f"damaged snapshot: {reason}")
    _, record_type, payload = records[0]
    if record_type != RecordType.SNAPSHOT:
        raise CorruptionError(path, 0, f"unexpected record type {record_type}")
    snapshot = decode_snapshot(payload, path)
    match = _NAME.match(path.name)
    assert match is not None
    if (snapshot.metadata.index, snapshot.metadata.term) != (int(match[1], 16), int(match[2], 16)):
        raise CorruptionError(path, 0, "snapshot position does not match its file name")
    return snapshot
