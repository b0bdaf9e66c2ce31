"""The launch-mark journal: marks survive the writer, ended containers drop out, a
torn line is skipped, and the journal stays as small as the live marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.runtime import launch_marks
from mesoslite.runtime.launch_marks import JOURNAL_NAME, LaunchMark, LaunchMarks


def test_a_successor_reads_the_marks_of_running_containers(tmp_path: Path) -> None:
    marks = LaunchMarks(tmp_path)
    marks.write(LaunchMark("c1", 101, 7))
    marks.write(LaunchMark("c2", 102, 8))
    marks.remove("c1")
    marks.remove("never-marked")  # a launch that failed before its mark: nothing to do
    # The writer dies without closing: its successor finds what was left running.
    successor = LaunchMarks(tmp_path)
    assert successor.read() == [LaunchMark("c2", 102, 8)]
    successor.remove("c2")
    successor.close()
    assert LaunchMarks(tmp_path).read() == []


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    marks = LaunchMarks(tmp_path)
    marks.write(LaunchMark("c1", 101, 7))
    marks.close()
    with open(tmp_path / JOURNAL_NAME, "ab") as journal:
        journal.write(b'["+", "c2", 10')
    assert LaunchMarks(tmp_path).read() == [LaunchMark("c1", 101, 7)]


def test_the_journal_is_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch_marks, "_COMPACT_AFTER_RECORDS", 10)
    marks = LaunchMarks(tmp_path)
    marks.write(LaunchMark("kept", 1, 1))
    for index in range(50):
        marks.write(LaunchMark(f"c{index}", 100 + index, index))
        marks.remove(f"c{index}")
    lines = (tmp_path / JOURNAL_NAME).read_bytes().splitlines()
    assert len(lines) < 12
    assert LaunchMarks(tmp_path).read() == [LaunchMark("kept", 1, 1)]
    # Opening rewrote it with the live mark alone.
    assert len((tmp_path / JOURNAL_NAME).read_bytes().splitlines()) == 1
