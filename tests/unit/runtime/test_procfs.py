from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from mesoslite.runtime import procfs


def test_parses_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    fields = ["S", "1", "42", "42"] + ["0"] * 7 + ["7", "3"] + ["0"] * 4 + ["5", "0", "99", "0"]
    fields += ["11"]
    (tmp_path / "42" / "stat").write_text("42 (a (weird) name) " + " ".join(fields) + "\n")
    sample = procfs.read_process(42, proc_root=tmp_path)
    assert sample is not None
    assert (sample.state, sample.parent_pid, sample.process_group, sample.session) == (
        "S",
        1,
        42,
        42,
    )
    assert (sample.user_ticks, sample.system_ticks) == (7, 3)
    assert (sample.threads, sample.start_ticks, sample.rss_pages) == (5, 99, 11)


def test_a_missing_process_reads_as_none(tmp_path: Path) -> None:
    assert procfs.read_process(12345, proc_root=tmp_path) is None


def test_session_members_are_the_live_processes_of_the_session() -> None:
    leader = subprocess.Popen(
        ["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"], start_new_session=True
    )
    try:
        members = procfs.session_members(leader.pid)
        while len(members) < 3:
            members = procfs.session_members(leader.pid)
        assert leader.pid in {m.pid for m in members}
        assert all(m.session == leader.pid for m in members)
        assert os.getpid() not in {m.pid for m in members}
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
