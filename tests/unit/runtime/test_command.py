from __future__ import annotations

import os
from pathlib import Path

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.command import resolve_command


def test_shell_is_the_default_and_runs_sh_c() -> None:
    resolved = resolve_command(mesos_pb2.CommandInfo(value="echo $HOME | wc"), {})
    assert resolved.executable == "/bin/sh"
    assert resolved.argv == ["sh", "-c", "echo $HOME | wc"]


def test_arguments_are_the_whole_argv() -> None:
    command = mesos_pb2.CommandInfo(shell=False, value="/bin/echo", arguments=["me", "x"])
    resolved = resolve_command(command, {})
    assert (resolved.executable, resolved.argv) == ("/bin/echo", ["me", "x"])


def test_without_arguments_argv_is_the_value() -> None:
    resolved = resolve_command(mesos_pb2.CommandInfo(shell=False, value="/bin/true"), {})
    assert resolved.argv == ["/bin/true"]


def test_a_bare_name_is_found_through_the_tasks_path(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    command = mesos_pb2.CommandInfo(shell=False, value="tool", arguments=["tool"])
    resolved = resolve_command(command, {"PATH": f"/nonexistent:{tmp_path}"})
    assert resolved.executable == str(tool)


def test_a_bare_name_is_found_inside_the_root_filesystem(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "tool"
    tool.write_text("")
    os.chmod(tool, 0o755)
    command = mesos_pb2.CommandInfo(shell=False, value="tool")
    assert resolve_command(command, {"PATH": "/bin"}, root=tmp_path).executable == "/bin/tool"


def test_an_unknown_name_is_left_for_exec_to_refuse() -> None:
    command = mesos_pb2.CommandInfo(shell=False, value="no-such-tool-anywhere")
    assert resolve_command(command, {"PATH": "/bin"}).executable == "no-such-tool-anywhere"
