"""The linux containerizer against the real kernel (root, cgroups, namespaces)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.cgroups.layout import detect_cgroup_layout
from mesoslite.runtime.containerizer import MesosContainerizer

from .conftest import MAX_PROCESSES, image_info

pytestmark = [pytest.mark.anyio, pytest.mark.root, pytest.mark.kernel]

MakeConfig = Callable[..., ContainerConfig]
# A bound on how long a misbehaving test may hang, not an assertion about speed.
_SAFETY_SECONDS = 60


def _scalar(name: str, value: float) -> mesos_pb2.Resource:
    return mesos_pb2.Resource(
        name=name, type=mesos_pb2.Value.SCALAR, scalar=mesos_pb2.Value.Scalar(value=value)
    )


async def _run(
    containerizer: MesosContainerizer, config: ContainerConfig, container_id: str = "c"
) -> tuple[str, str, int | None]:
    with anyio.fail_after(_SAFETY_SECONDS):
        await containerizer.launch(container_id, config)
        termination = await containerizer.wait(container_id)
    status = termination.wait_status
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    return (config.sandbox / "stdout").read_text(), (config.sandbox / "stderr").read_text(), code


async def test_the_task_is_pid_1_of_its_own_pid_namespace(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    stdout, _, code = await _run(linux_containerizer, make_config("echo $$; ps -o pid= | wc -l"))
    pid_line, process_count = stdout.split()
    assert code == 0
    assert pid_line == "1"
    # sh, ps and wc: nothing of the host.
    assert int(process_count) <= 3


async def test_the_host_filesystem_is_invisible(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig, tmp_path: Path
) -> None:
    marker = tmp_path / "host-only-marker"
    marker.write_text("secret")
    stdout, _, code = await _run(
        linux_containerizer,
        make_config(f"ls /; test -e {marker} && echo VISIBLE; pwd; cat /etc/hostname"),
    )
    assert code == 0
    assert "VISIBLE" not in stdout
    listing = stdout.split()
    assert {"bin", "dev", "etc", "proc", "sys", "tmp", "mnt"} <= set(listing)
    assert "/mnt/mesos/sandbox" in listing


async def test_the_sandbox_is_mounted_and_is_the_working_directory(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config("pwd; echo from-inside > made-here")
    stdout, _, code = await _run(linux_containerizer, config)
    assert code == 0
    assert stdout == "/mnt/mesos/sandbox\n"
    assert (config.sandbox / "made-here").read_text() == "from-inside\n"


async def test_a_memory_hog_is_killed_at_its_limit_with_the_memory_reason(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    # The shell keeps the command substitution's 200 MB in memory: far above 32 MB.
    config = make_config(
        'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived',
        resources=[_scalar("cpus", 1), _scalar("mem", 32)],
    )
    with anyio.fail_after(_SAFETY_SECONDS):
        await linux_containerizer.launch("hog", config)
        termination = await linux_containerizer.wait("hog")
    assert termination.state == mesos_pb2.TASK_FAILED
    assert termination.reason == mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY
    assert "Memory limit exceeded" in termination.message
    assert "survived" not in (config.sandbox / "stdout").read_text()


async def test_a_fork_bomb_stops_at_its_pids_limit(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config("bomb() { bomb | bomb & }; bomb; sleep 600")
    with anyio.fail_after(_SAFETY_SECONDS):
        await linux_containerizer.launch("bomb", config)
        while "can't fork" not in (config.sandbox / "stderr").read_text():
            await anyio.sleep(0.05)
        usage = await linux_containerizer.usage("bomb")
        termination = await linux_containerizer.destroy("bomb")
    assert usage.threads <= MAX_PROCESSES
    assert usage.processes <= MAX_PROCESSES
    assert termination.wait_status is not None and os.WIFSIGNALED(termination.wait_status)


async def test_usage_has_cgroup_figures(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config("sleep 600", resources=[_scalar("cpus", 0.5), _scalar("mem", 64)])
    with anyio.fail_after(_SAFETY_SECONDS):
        await linux_containerizer.launch("c", config)
        usage = await linux_containerizer.usage("c")
        status = await linux_containerizer.status("c")
    assert usage.cpus_limit == 0.5
    assert usage.mem_limit_bytes == 64 * 1024 * 1024
    assert usage.processes == 1 and usage.threads == 1
    assert usage.mem_total_bytes > 0
    assert usage.HasField("cpus_nr_periods") and usage.HasField("cpus_user_time_secs")
    assert status.executor_pid > 0


async def test_cgroups_are_removed_after_the_container_ends(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig, cgroups_root_name: str
) -> None:
    await _run(linux_containerizer, make_config("true"), container_id="gone")
    layout = detect_cgroup_layout()
    assert layout is not None
    roots = list(layout.v1_hierarchies.values()) or [layout.root]
    assert not any((root / cgroups_root_name / "gone").exists() for root in roots)


async def test_a_container_with_a_tiny_cpu_share_is_in_every_cgroup_of_its_own(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig, cgroups_root_name: str
) -> None:
    # The CPU quota's cgroups are joined last (after the set-up, through descriptors
    # opened before pivot_root): the task itself still runs in all of them.
    config = make_config(
        "cat /proc/self/cgroup", resources=[_scalar("cpus", 0.01), _scalar("mem", 32)]
    )
    stdout, _, code = await _run(linux_containerizer, config, container_id="tiny")
    assert code == 0
    layout = detect_cgroup_layout()
    assert layout is not None
    wanted = {"cpu", "memory", "pids"} & (set(layout.v1_hierarchies) or {"cpu", "memory", "pids"})
    joined: set[str] = set()
    for line in stdout.splitlines():
        _, controllers, path = line.split(":", 2)
        if path.endswith(f"{cgroups_root_name}/tiny"):
            joined.update(controllers.split(",") if controllers else wanted)
    assert wanted <= joined


async def test_volumes_are_visible_and_writable_as_declared(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig, tmp_path: Path
) -> None:
    writable = tmp_path / "rw-volume"
    writable.mkdir()
    readable = tmp_path / "ro-volume"
    readable.mkdir()
    (readable / "given").write_text("from the host\n")
    info = image_info()
    rw = info.volumes.add(container_path="/data", mode=mesos_pb2.Volume.RW)
    rw.source.type = mesos_pb2.Volume.Source.HOST_PATH
    rw.source.host_path.path = str(writable)
    ro = info.volumes.add(container_path="/config", mode=mesos_pb2.Volume.RO)
    ro.source.type = mesos_pb2.Volume.Source.HOST_PATH
    ro.source.host_path.path = str(readable)
    scratch = info.volumes.add(container_path="scratch", mode=mesos_pb2.Volume.RW)
    scratch.source.type = mesos_pb2.Volume.Source.SANDBOX_PATH
    scratch.source.sandbox_path.type = mesos_pb2.Volume.Source.SandboxPath.SELF
    scratch.source.sandbox_path.path = "shared/scratch"
    script = (
        "echo written > /data/out; cat /config/given;"
        " echo nope > /config/denied || echo READ-ONLY;"
        " echo kept > /mnt/mesos/sandbox/scratch/file"
    )
    config = make_config(script, container_info=info)
    stdout, stderr, code = await _run(linux_containerizer, config)
    assert code == 0, stderr
    assert (writable / "out").read_text() == "written\n"
    assert stdout == "from the host\nREAD-ONLY\n"
    assert not (readable / "denied").exists()
    assert (config.sandbox / "shared" / "scratch" / "file").read_text() == "kept\n"


async def test_the_task_runs_as_the_requested_user_without_new_privileges(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config("id -u; grep NoNewPrivs /proc/self/status", user="nobody")
    config.sandbox.chmod(0o777)
    stdout, stderr, code = await _run(linux_containerizer, config)
    assert code == 0, stderr
    uid, _, no_new_privs = stdout.split()
    assert uid == "65534"
    assert no_new_privs == "1"


async def test_devices_outside_the_allowed_set_cannot_be_opened(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    layout = detect_cgroup_layout()
    assert layout is not None
    if "devices" not in layout.v1_hierarchies:
        pytest.skip("cgroups/devices needs the v1 devices controller")
    # /dev/sda's numbers: creating the node is allowed ("b *:* m"), opening it is not.
    stdout, _, code = await _run(
        linux_containerizer,
        make_config(
            "mknod /tmp/disk b 8 0 && (head -c 1 /tmp/disk >/dev/null 2>&1"
            " && echo OPENED || echo DENIED); head -c 1 /dev/zero | wc -c"
        ),
    )
    assert code == 0
    assert stdout.split() == ["DENIED", "1"]


async def test_hostname_and_a_private_network(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config("hostname; ls /sys/class/net", container_info=image_info(hostname="box"))
    stdout, _, code = await _run(linux_containerizer, config)
    assert code == 0
    assert stdout.split() == ["box", "lo"]


async def test_kill_reaches_every_process_of_the_container(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config("setsid sleep 600 & sleep 600")
    with anyio.fail_after(_SAFETY_SECONDS):
        await linux_containerizer.launch("c", config)
        while (await linux_containerizer.usage("c")).processes < 2:
            await anyio.sleep(0.02)
        await linux_containerizer.kill("c", 9)
        termination = await linux_containerizer.wait("c")
    assert termination.wait_status is not None and os.WIFSIGNALED(termination.wait_status)


async def test_a_failing_exec_inside_the_image_fails_the_launch(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    command = mesos_pb2.CommandInfo(shell=False, value="/no/such/binary")
    with anyio.fail_after(_SAFETY_SECONDS):
        with pytest.raises(Exception, match="No such file"):
            await linux_containerizer.launch("c", make_config("", command=command))
        termination = await linux_containerizer.wait("c")
    assert termination.reason == mesos_pb2.TaskStatus.REASON_CONTAINER_LAUNCH_FAILED


async def test_without_an_image_the_task_still_gets_its_own_pid_namespace_and_proc(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config(
        "echo $$; ls /proc | grep -c '^[0-9]'; pwd",
        container_info=None,
        environment={"PATH": "/usr/bin:/bin"},
    )
    stdout, _, code = await _run(linux_containerizer, config)
    pid, visible_processes, cwd = stdout.split()
    assert code == 0
    assert pid == "1"
    assert int(visible_processes) <= 3
    assert cwd == str(config.sandbox)
    # The host's /proc is untouched.
    assert Path(f"/proc/{os.getpid()}").exists()


async def test_dev_has_the_usual_nodes_and_links_whatever_the_umask(
    linux_containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    # The launcher's umask must not narrow the nodes' modes.
    previous = os.umask(0o077)
    try:
        stdout, _, code = await _run(
            linux_containerizer,
            make_config(
                "for n in null zero full random urandom tty;"
                " do stat -c '%n %a %t:%T' /dev/$n; done;"
                " for n in fd stdin stdout stderr ptmx; do readlink /dev/$n; done"
            ),
        )
    finally:
        os.umask(previous)
    assert code == 0
    assert stdout.splitlines() == [
        "/dev/null 666 1:3",
        "/dev/zero 666 1:5",
        "/dev/full 666 1:7",
        "/dev/random 666 1:8",
        "/dev/urandom 666 1:9",
        "/dev/tty 666 5:0",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "pts/ptmx",
    ]
