"""The WAL: round trip, Raft's overwrite rule, torn tails, corruption, rotation, release."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mesoslite.raft.messages import Entry, EntryType, HardState, SnapshotMetadata
from mesoslite.replicated_log import segment
from mesoslite.replicated_log.errors import CorruptionError, WalFailedError
from mesoslite.replicated_log.framing import encode_record
from mesoslite.replicated_log.records import RecordType, encode_entry_payload
from mesoslite.replicated_log.segment import list_segments
from mesoslite.replicated_log.wal import Wal, WalWrite


def entries(first: int, last: int, term: int = 1, size: int = 16) -> list[Entry]:
    return [
        Entry(term, index, f"{index}:{term}".encode().ljust(size, b"."))
        for index in range(first, last + 1)
    ]


def reopen(
    directory: Path, base_index: int = 0, **kwargs: int
) -> tuple[Wal, list[Entry], HardState]:
    wal, recovered = Wal.open(directory, base_index=base_index, **kwargs)
    return wal, recovered.entries, recovered.hard_state


def test_round_trip(tmp_path: Path) -> None:
    wal, found, hard_state = reopen(tmp_path)
    assert found == [] and hard_state == HardState()
    conf = Entry(term=2, index=4, data=b"add node 2", type=EntryType.CONF_CHANGE)
    wal.save([WalWrite(entries(1, 3), HardState(1, 1, 0))])
    wal.save([WalWrite([conf], HardState(2, 1, 3)), WalWrite(hard_state=HardState(2, 1, 4))])
    wal.close()

    wal, found, hard_state = reopen(tmp_path)
    wal.close()
    assert found == [*entries(1, 3), conf]
    assert hard_state == HardState(2, 1, 4)


def test_an_entry_replaces_the_entries_from_its_index_on(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 10, term=1))])
    wal.save([WalWrite(entries(6, 8, term=2))])
    wal.close()

    wal, found, _ = reopen(tmp_path)
    wal.close()
    assert found == entries(1, 5, term=1) + entries(6, 8, term=2)


def test_reopened_log_keeps_appending(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 2))])
    wal.close()
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(3, 4))])
    wal.close()
    wal, found, _ = reopen(tmp_path)
    wal.close()
    assert found == entries(1, 4)


def _single_segment(directory: Path) -> Path:
    (segment,) = list_segments(directory)
    return segment.path


def test_every_cut_through_the_last_record_recovers_the_longest_valid_prefix(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    wal, _, _ = reopen(source)
    wal.save([WalWrite(entries(1, 3), HardState(1, 1, 2))])
    wal.close()
    path = _single_segment(source)
    prefix_bytes = path.stat().st_size
    wal, _, _ = reopen(source)
    last_write = entries(4, 4, size=40)
    wal.save([WalWrite(last_write, HardState(1, 1, 3))])
    wal.close()
    full = path.read_bytes()
    entry_record_bytes = len(encode_record(RecordType.ENTRY, encode_entry_payload(last_write[0])))

    copy = tmp_path / "copy"
    for cut in range(prefix_bytes, len(full)):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy)
        with open(copy / path.name, "r+b") as handle:
            handle.truncate(cut)
        wal, recovered = Wal.open(copy)
        # The last write was two records: entry 4, then hard state (1, 1, 3), which
        # every cut damages. Entry 4 survives exactly when the cut left it whole.
        entry_whole = cut >= prefix_bytes + entry_record_bytes
        survivors = entries(1, 3) + (last_write if entry_whole else [])
        assert recovered.entries == survivors, cut
        assert recovered.hard_state == HardState(1, 1, 2), cut
        at_boundary = cut in (prefix_bytes, prefix_bytes + entry_record_bytes)
        assert (recovered.torn_tail is None) == at_boundary, cut
        # The repaired log takes new writes and reads back whole.
        wal.save([WalWrite(entries(len(survivors) + 1, 6), HardState(1, 1, 5))])
        wal.close()
        wal, again = Wal.open(copy)
        wal.close()
        assert again.entries == survivors + entries(len(survivors) + 1, 6), cut
        assert again.hard_state == HardState(1, 1, 5), cut
        assert again.torn_tail is None


def test_a_damaged_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 3))])
    wal.close()
    path = _single_segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte of entry 3's data
    path.write_bytes(bytes(data))

    wal, recovered = Wal.open(tmp_path)
    wal.close()
    assert recovered.entries == entries(1, 2)
    assert recovered.torn_tail is not None and "checksum" in recovered.torn_tail


def test_a_zero_filled_tail_is_dropped(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 3))])
    wal.close()
    path = _single_segment(tmp_path)
    size = path.stat().st_size
    with open(path, "ab") as handle:
        handle.write(bytes(4096))

    wal, recovered = Wal.open(tmp_path)
    wal.close()
    assert recovered.entries == entries(1, 3)
    assert path.stat().st_size == size


def test_an_unsynced_batch_with_a_zeroed_sector_is_a_torn_tail(tmp_path: Path) -> None:
    # File systems may persist a later page of an unsynced write before an earlier one.
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 2))])
    wal.close()
    path = _single_segment(tmp_path)
    synced_bytes = path.stat().st_size
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(3, 40, size=100))])
    wal.close()
    data = bytearray(path.read_bytes())
    sector = (synced_bytes // 512 + 1) * 512
    data[sector : sector + 512] = bytes(512)
    path.write_bytes(bytes(data))

    wal, recovered = Wal.open(tmp_path)
    wal.close()
    written = entries(1, 2) + entries(3, 40, size=100)
    assert 2 <= len(recovered.entries) < 40
    assert recovered.entries == written[: len(recovered.entries)]


def test_corruption_in_the_middle_is_refused(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 10))])
    wal.close()
    path = _single_segment(tmp_path)
    data = bytearray(path.read_bytes())
    position = data.index(b"5:1")
    data[position] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(CorruptionError) as raised:
        Wal.open(tmp_path)
    assert raised.value.path == path
    assert "checksum" in str(raised.value)
    assert path.read_bytes() == bytes(data), "a refused log is left as it was"


def test_damage_in_a_sealed_segment_is_refused_even_at_its_end(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path, segment_size_bytes=256)
    for index in range(1, 20):
        wal.save([WalWrite(entries(index, index))])
    wal.close()
    first = list_segments(tmp_path)[0].path
    with open(first, "r+b") as handle:
        handle.truncate(first.stat().st_size - 1)

    with pytest.raises(CorruptionError):
        Wal.open(tmp_path)


def test_a_missing_segment_is_refused(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path, segment_size_bytes=256)
    for index in range(1, 30):
        wal.save([WalWrite(entries(index, index))])
    wal.close()
    segments = list_segments(tmp_path)
    assert len(segments) >= 3
    segments[1].path.unlink()

    with pytest.raises(CorruptionError, match="missing"):
        Wal.open(tmp_path)


def test_rotation_and_release(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path, segment_size_bytes=512)
    for index in range(1, 101):
        wal.save([WalWrite(entries(index, index), HardState(1, 1, index - 1))])
    segments_before = len(wal.segment_paths)
    assert segments_before > 5

    removed = wal.release_through(50)
    assert removed > 0
    assert len(wal.segment_paths) == segments_before - removed
    wal.close()
    remaining = list_segments(tmp_path)
    assert len(remaining) == segments_before - removed
    # Every removed segment held only entries at or below 50: the first kept one starts
    # at or below 51.
    assert remaining[0].first_index <= 51

    wal, recovered = Wal.open(tmp_path, base_index=50, segment_size_bytes=512)
    wal.close()
    assert recovered.entries == entries(51, 100)
    assert recovered.hard_state == HardState(1, 1, 99)


def test_release_keeps_the_hard_state_of_a_quiet_log(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path, segment_size_bytes=256)
    for index in range(1, 20):
        wal.save([WalWrite(entries(index, index), HardState(3, 2, index))])
    wal.release_through(19)
    wal.close()

    wal, recovered = Wal.open(tmp_path, base_index=19)
    wal.close()
    assert recovered.entries == []
    assert recovered.hard_state == HardState(3, 2, 19)


def test_a_segment_whose_creation_crashed_is_removed(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 3))])
    wal.close()
    (segment,) = list_segments(tmp_path)
    crashed = tmp_path / f"{segment.seq + 1:016x}-{4:016x}.wal"
    crashed.write_bytes(b"\x00\x00")

    wal, recovered = Wal.open(tmp_path)
    wal.save([WalWrite(entries(4, 4))])
    wal.close()
    assert recovered.entries == entries(1, 3)
    wal, recovered = Wal.open(tmp_path)
    wal.close()
    assert recovered.entries == entries(1, 4)


def test_a_snapshot_reset_drops_the_log(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 10, term=1))])
    reset = SnapshotMetadata(20, 3)
    wal.save([WalWrite(entries(21, 22, term=3), HardState(3, 0, 20), snapshot_reset=reset)])
    wal.close()

    wal, recovered = Wal.open(tmp_path, base_index=20)
    wal.close()
    assert recovered.entries == entries(21, 22, term=3)
    assert recovered.hard_state == HardState(3, 0, 20)


def test_a_reset_past_the_newest_snapshot_is_refused(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(snapshot_reset=SnapshotMetadata(20, 3))])
    wal.close()
    with pytest.raises(CorruptionError, match="newest snapshot"):
        Wal.open(tmp_path, base_index=0)


def test_a_failed_sync_fails_every_later_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 1))])

    def broken_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken_sync)
    with pytest.raises(WalFailedError):
        wal.save([WalWrite(entries(2, 2))])
    monkeypatch.undo()
    with pytest.raises(WalFailedError):
        wal.save([WalWrite(entries(2, 2))])
    wal.close()


def test_an_unsynced_tail_is_synced_before_its_segment_is_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the newest segment may end torn, so rotation must not leave unsynced data
    # behind in the segment it seals.
    synced: list[int] = []
    real_fdatasync = os.fdatasync

    def recording_fdatasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fdatasync(fd)

    wal, _, _ = reopen(tmp_path, segment_size_bytes=300)
    wal.save([WalWrite(entries(1, 1))])
    first_segment = list_segments(tmp_path)[0].path
    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    wal.save([WalWrite(hard_state=HardState(1, 1, 1))], sync=False)
    assert synced == []
    wal.save([WalWrite(hard_state=HardState(1, 1, 1))] * 20, sync=False)  # crosses 300 bytes
    wal.close()
    assert len(list_segments(tmp_path)) == 2
    assert first_segment.stat().st_ino in synced


def _copy_while_open(source: Path, target: Path) -> None:
    """What a crash leaves: the files as they are, preallocation and all."""
    shutil.copytree(source, target)


def test_segments_are_preallocated_and_trimmed_on_close(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path)
    wal.save([WalWrite(entries(1, 3), HardState(1, 1, 2))])
    path = _single_segment(tmp_path)
    assert path.stat().st_size >= 4096, "space ahead of the records is allocated"
    wal.close()
    closed_size = path.stat().st_size
    assert closed_size < 4096
    assert not path.read_bytes().endswith(bytes(8)), "a closed segment ends at its records"


def test_a_crashed_log_with_preallocated_zeros_recovers_cleanly(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path / "live")
    wal.save([WalWrite(entries(1, 3), HardState(1, 1, 2))])
    _copy_while_open(tmp_path / "live", tmp_path / "crashed")
    wal.close()

    wal, recovered = Wal.open(tmp_path / "crashed")
    assert recovered.entries == entries(1, 3)
    assert recovered.hard_state == HardState(1, 1, 2)
    assert recovered.torn_tail is None, "zeros after the records are not a torn tail"
    wal.save([WalWrite(entries(4, 5), HardState(1, 1, 4))])  # written after the records
    _copy_while_open(tmp_path / "crashed", tmp_path / "again")
    wal.close()
    for directory in ("crashed", "again"):
        wal, recovered = Wal.open(tmp_path / directory)
        wal.close()
        assert recovered.entries == entries(1, 5), directory
        assert recovered.hard_state == HardState(1, 1, 4), directory


def test_a_torn_record_before_preallocated_zeros_is_a_torn_tail(tmp_path: Path) -> None:
    wal, _, _ = reopen(tmp_path / "live")
    wal.save([WalWrite(entries(1, 3))])
    _copy_while_open(tmp_path / "live", tmp_path / "crashed")
    wal.close()
    logical_bytes = _single_segment(tmp_path / "live").stat().st_size
    path = _single_segment(tmp_path / "crashed")
    record = encode_record(RecordType.ENTRY, encode_entry_payload(entries(4, 4)[0]))
    with open(path, "r+b") as handle:
        handle.seek(logical_bytes)
        handle.write(record[: len(record) // 2])  # half a record, zeros after it

    wal, recovered = Wal.open(tmp_path / "crashed")
    assert recovered.entries == entries(1, 3)
    assert recovered.torn_tail is not None
    wal.save([WalWrite(entries(4, 4))])
    wal.close()
    wal, recovered = Wal.open(tmp_path / "crashed")
    wal.close()
    assert recovered.entries == entries(1, 4)
    assert recovered.torn_tail is None


def test_a_sealed_segment_that_kept_its_preallocation_reads_back(tmp_path: Path) -> None:
    # A crash may come before the trim of a sealed segment reaches the disk.
    wal, _, _ = reopen(tmp_path, segment_size_bytes=256)
    for index in range(1, 20):
        wal.save([WalWrite(entries(index, index))])
    wal.close()
    first = list_segments(tmp_path)[0].path
    with open(first, "ab") as handle:
        handle.write(bytes(4096))

    wal, recovered = Wal.open(tmp_path, segment_size_bytes=256)
    wal.close()
    assert recovered.entries == entries(1, 19)


def test_writes_past_a_preallocation_step_allocate_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment, "PREALLOCATE_STEP_BYTES", 1024)
    wal, _, _ = reopen(tmp_path / "live")
    for index in range(1, 41):
        wal.save([WalWrite(entries(index, index, size=100))])
    path = _single_segment(tmp_path / "live")
    assert path.stat().st_size % 1024 == 0
    _copy_while_open(tmp_path / "live", tmp_path / "crashed")
    wal.close()
    wal, recovered = Wal.open(tmp_path / "crashed")
    wal.close()
    assert recovered.entries == entries(1, 40, size=100)
    assert recovered.torn_tail is None
