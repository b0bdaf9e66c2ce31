"""Sandbox directories: made in few syscalls, `latest` kept pointing at the newest run,
and the sandboxes' root marked so that ext4 gives their trees block groups of their
own."""

from __future__ import annotations

import os
from pathlib import Path

from mesoslite.agent import checkpoints
from mesoslite.agent.sandbox import SandboxLayout, create_sandbox, spread_subdirectories


def test_runs_are_made_with_their_parents_and_latest_follows(tmp_path: Path) -> None:
    runs = tmp_path / "executors" / "e1" / "runs"
    create_sandbox(runs / "c1")
    assert sorted(os.listdir(runs / "c1")) == ["stderr", "stdout"]
    assert os.readlink(runs / "latest") == "c1"
    create_sandbox(runs / "c2", stdio=False)
    assert os.listdir(runs / "c2") == []
    assert os.readlink(runs / "latest") == "c2"
    create_sandbox(runs / "c2")  # again: nothing breaks
    assert sorted(os.listdir(runs)) == ["c1", "c2", "latest"]
    create_sandbox(runs / "c2" / "containers" / "n1", latest_link=False)
    assert sorted(os.listdir(runs / "c2" / "containers")) == ["n1"]


def test_the_sandboxes_root_is_prepared_with_the_work_dir(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path / "work")
    checkpoints.prepare_work_dir(layout)
    assert layout.sandboxes_dir.is_dir()
    assert layout.agent_dir("a1") == layout.sandboxes_dir / "a1"
    # Whether the flag exists depends on the filesystem; asking again changes nothing.
    assert spread_subdirectories(layout.sandboxes_dir) in (True, False)
    assert spread_subdirectories(tmp_path / "missing") is False
