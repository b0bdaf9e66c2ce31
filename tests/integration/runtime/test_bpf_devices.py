"""The cgroup v2 device controller for real: an eBPF device program attached to a v2
cgroup, and a child process in that cgroup opening and making device nodes.

A cgroup2 mount carries device programs even with no controllers enabled in it, so
this runs on v2 hosts and on hybrid ones (their v2 tree at /sys/fs/cgroup/unified; the
child's v1 devices cgroup is the root's, which allows everything, so whatever is
refused is refused by the program). Every cgroup and node made here is removed, even
when a test fails.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.cgroups.bpf_devices import (
    attach_device_program,
    device_programs_supported,
    load_device_program,
    parse_device_rule,
)
from mesoslite.runtime.cgroups.layout import CgroupLayout, CgroupMode, detect_cgroup_layout
from mesoslite.runtime.cgroups.v2 import CgroupsV2Manager
from mesoslite.runtime.isolator import RecoveredContainer
from mesoslite.runtime.isolators.cgroups import DEFAULT_DEVICE_RULES, CgroupsDevicesIsolator
from tests.conftest import require, require_root

# The child joins the cgroup first (its own pid into cgroup.procs), then tries each
# step and prints the errno each gave, in order (0: it worked). The file descriptors it opens
# go when it exits.
_CHILD = r"""
import json, os, sys
with open(sys.argv[1], "w") as procs:
    procs.write(str(os.getpid()))
results = []
for step in json.loads(sys.argv[2]):
    kind, path = step[0], step[1]
    try:
        if kind == "open":
            os.open(path, step[2])
        else:
            mode = (0o020000 if kind == "mknod-c" else 0o060000) | 0o600
            os.mknod(path, mode, os.makedev(step[2], step[3]))
        results.append(0)
    except OSError as error:
        results.append(error.errno)
print(json.dumps(results))
"""


def _v2_root() -> Path:
    require_root()
    layout = detect_cgroup_layout()
    require(
        layout is not None and layout.mode is not CgroupMode.V1 and layout.unified is not None,
        "needs a cgroup2 mount (a v2 or hybrid host)",
    )
    assert layout is not None and layout.unified is not None
    require(device_programs_supported(), "needs a kernel that loads eBPF device programs")
    return layout.unified


def _remove_tree(directory: Path) -> None:
    """Kill whatever is left in the cgroup tree, then rmdir it bottom up."""
    if not directory.exists():
        return
    for current, _, _ in os.walk(directory):
        with contextlib.suppress(FileNotFoundError):
            for pid in Path(current, "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    for current, _, _ in sorted(os.walk(directory), key=lambda entry: -len(entry[0])):
        while True:
            try:
                os.rmdir(current)
                break
            except FileNotFoundError:
                break
            except OSError as error:
                if error.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


@pytest.fixture
def v2_cgroup() -> Iterator[Path]:
    """A fresh cgroup in the host's v2 tree, removed afterwards."""
    directory = _v2_root() / f"mesoslite-test-bpf-{uuid.uuid4().hex[:12]}"
    directory.mkdir()
    try:
        yield directory
    finally:
        _remove_tree(directory)


def _run_in(procs_file: Path, steps: list[list[object]]) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(procs_file), json.dumps(steps)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results: list[int] = json.loads(done.stdout)
    return results


def _attach(rules: tuple[str, ...], cgroup: Path) -> None:
    program = load_device_program([parse_device_rule(rule) for rule in rules])
    try:
        attach_device_program(program, cgroup)
    finally:
        os.close(program)


def test_default_whitelist_allows_the_usual_nodes_and_refuses_others(
    v2_cgroup: Path, tmp_path: Path
) -> None:
    _attach(DEFAULT_DEVICE_RULES, v2_cgroup)
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    results = _run_in(
        v2_cgroup / "cgroup.procs",
        [
            ["open", "/dev/null", os.O_RDWR],
            ["open", "/dev/zero", os.O_RDONLY],
            ["open", "/dev/urandom", os.O_RDONLY],
            # "c *:* m": any node may be made, only whitelisted ones opened.
            ["mknod-c", str(nodes / "kmsg"), 1, 11],
            ["open", str(nodes / "kmsg"), os.O_RDONLY],
            ["mknod-c", str(nodes / "null"), 1, 3],
            ["open", str(nodes / "null"), os.O_WRONLY],
            ["mknod-b", str(nodes / "loop0"), 7, 0],
            ["open", str(nodes / "loop0"), os.O_RDONLY],
            # "c 136:* rwm": any pty minor passes the program (the tty layer then
            # says there is no such pty).
            ["mknod-c", str(nodes / "pts"), 136, 4000],
            ["open", str(nodes / "pts"), os.O_RDWR | os.O_NOCTTY],
        ],
    )
    eperm = errno.EPERM
    assert results[:3] == [0, 0, 0]
    assert results[3:9] == [0, eperm, 0, 0, 0, eperm]
    assert results[9] == 0
    assert results[10] not in (0, eperm)
    # Outside the cgroup the same nodes open: the refusals were the program's.
    for refused in ("kmsg", "loop0"):
        os.close(os.open(nodes / refused, os.O_RDONLY))


def test_rules_without_mknod_refuse_making_nodes_and_check_each_access(
    v2_cgroup: Path, tmp_path: Path
) -> None:
    _attach(("c 1:3 rwm", "c 1:5 r"), v2_cgroup)
    results = _run_in(
        v2_cgroup / "cgroup.procs",
        [
            ["mknod-c", str(tmp_path / "mem"), 1, 1],
            ["mknod-c", str(tmp_path / "null"), 1, 3],
            ["mknod-c", str(tmp_path / "zero"), 1, 5],
            ["open", "/dev/zero", os.O_RDONLY],
            ["open", "/dev/zero", os.O_RDWR],
            ["open", "/dev/full", os.O_RDONLY],
        ],
    )
    eperm = errno.EPERM
    # mknod only where the rule says m; an open that asks for read and write needs
    # both allowed.
    assert results == [eperm, 0, eperm, 0, eperm, eperm]


def _config(tmp_path: Path, name: str) -> ContainerConfig:
    sandbox = tmp_path / name
    sandbox.mkdir()
    command = mesos_pb2.CommandInfo(value="true", shell=True)
    return ContainerConfig(command=command, sandbox=sandbox, environment={})


@pytest.mark.anyio
async def test_isolator_on_a_v2_layout_restricts_its_containers_across_a_restart(
    tmp_path: Path,
) -> None:
    unified = _v2_root()
    # The host's cgroup2 tree seen as a v2 host's (without controllers, which the
    # devices isolator does not need).
    layout = CgroupLayout(mode=CgroupMode.V2, root=unified, unified=unified)
    manager = CgroupsV2Manager(layout)
    root_name = f"mesoslite-test-bpf-{uuid.uuid4().hex[:12]}"
    kmsg = tmp_path / "kmsg"
    os.mknod(kmsg, 0o020600, os.makedev(1, 11))
    steps: list[list[object]] = [["open", "/dev/null", os.O_RDWR], ["open", str(kmsg), 0]]
    try:
        isolator = CgroupsDevicesIsolator(manager, root_name)
        first_config = _config(tmp_path, "first")
        info = await isolator.prepare("first", first_config)
        assert info is not None
        assert info.cgroup_join_files == [unified / root_name / "first" / "cgroup.procs"]
        first = _run_in(info.cgroup_join_files[0], steps)
        assert first == [0, errno.EPERM]

        # An agent restart: the recovered container keeps the program, and the new
        # agent's own attach (at its first launch) replaces it, restricting both.
        restarted = CgroupsDevicesIsolator(manager, root_name)
        await restarted.recover([RecoveredContainer("first", first_config, None)], set())
        assert _run_in(info.cgroup_join_files[0], steps) == first
        second = await restarted.prepare("second", _config(tmp_path, "second"))
        assert second is not None
        assert _run_in(second.cgroup_join_files[0], steps) == first
        assert _run_in(info.cgroup_join_files[0], steps) == first

        await restarted.cleanup("first")
        await restarted.cleanup("second")
        assert not (unified / root_name / "first").exists()
        assert not (unified / root_name / "second").exists()
    finally:
        _remove_tree(unified / root_name)
