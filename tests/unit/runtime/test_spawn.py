from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from mesoslite.runtime.spawn import SpawnError, SpawnSpec, posix_spawn


def _spec(tmp_path: Path, *argv: str, environment: dict[str, str] | None = None) -> SpawnSpec:
    return SpawnSpec(
        executable=argv[0],
        argv=list(argv),
        environment=environment if environment is not None else {},
        cwd=tmp_path,
        stdout_path=tmp_path / "stdout",
        stderr_path=tmp_path / "stderr",
    )


def _run(spec: SpawnSpec) -> int:
    pid = posix_spawn(spec)
    _, status = os.waitpid(pid, 0)
    return status


def test_runs_in_the_working_directory_with_exactly_the_environment(tmp_path: Path) -> None:
    status = _run(
        _spec(tmp_path, "/bin/sh", "-c", "pwd; /usr/bin/env", environment={"ONLY": "this one"})
    )
    assert os.waitstatus_to_exitcode(status) == 0
    lines = (tmp_path / "stdout").read_text().splitlines()
    assert lines[0] == str(tmp_path)
    # sh adds PWD itself; nothing of ours leaks in.
    assert sorted(line for line in lines[1:] if not line.startswith("PWD=")) == ["ONLY=this one"]


def test_stderr_goes_to_its_file_and_output_is_appended(tmp_path: Path) -> None:
    _run(_spec(tmp_path, "/bin/sh", "-c", "echo one; echo oops >&2"))
    _run(_spec(tmp_path, "/bin/sh", "-c", "echo two"))
    assert (tmp_path / "stdout").read_text() == "one\ntwo\n"
    assert (tmp_path / "stderr").read_text() == "oops\n"


def test_own_session_and_process_group(tmp_path: Path) -> None:
    pid = posix_spawn(_spec(tmp_path, "/bin/sleep", "30"))
    try:
        assert os.getsid(pid) == pid
        assert os.getpgid(pid) == pid
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_no_inherited_descriptors_and_stdin_is_dev_null(tmp_path: Path) -> None:
    leaked_read, leaked_write = os.pipe()
    os.set_inheritable(leaked_write, True)
    try:
        _run(_spec(tmp_path, "/bin/sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/fd/0"))
    finally:
        os.close(leaked_read)
        os.close(leaked_write)
    lines = (tmp_path / "stdout").read_text().split()
    assert lines[-1] == "/dev/null"
    assert sorted(int(fd) for fd in lines[:-1] if fd.isdigit()) == [0, 1, 2]


def test_ignored_sigpipe_is_not_inherited(tmp_path: Path) -> None:
    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        _run(_spec(tmp_path, "/bin/sh", "-c", "grep SigIgn /proc/self/status"))
    finally:
        signal.signal(signal.SIGPIPE, previous)
    ignored_mask = int((tmp_path / "stdout").read_text().split()[1], 16)
    assert not ignored_mask & (1 << (signal.SIGPIPE - 1))


def test_exec_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SpawnError) as caught:
        posix_spawn(_spec(tmp_path, str(tmp_path / "missing")))
    assert caught.value.errno == 2
