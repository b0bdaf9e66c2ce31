from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime import linux_syscalls as sys_
from mesoslite.runtime.command import ResolvedCommand
from mesoslite.runtime.isolation import (
    LINUX_ISOLATION,
    POSIX_ISOLATION,
    IsolationContext,
    IsolationError,
    default_isolation_flag,
    isolation_from_flag,
    launcher_for,
)
from mesoslite.runtime.isolator import LaunchInfo, Mount
from mesoslite.runtime.launcher import LaunchRequest, PosixLauncher
from mesoslite.runtime.linux_launcher import build_child_plan


def _context(tmp_path: Path) -> IsolationContext:
    return IsolationContext(runtime_dir=tmp_path, cgroup_root=tmp_path / "no-cgroups")


def test_posix_flag_gives_posix_isolators_and_launcher(tmp_path: Path) -> None:
    isolators = isolation_from_flag(POSIX_ISOLATION, _context(tmp_path))
    assert [i.name for i in isolators] == ["posix/cpu", "posix/mem"]
    assert isinstance(launcher_for(isolators, _context(tmp_path)), PosixLauncher)


def test_filesystem_runs_first_and_volumes_after_namespaces(tmp_path: Path) -> None:
    flag = "volume/host_path, namespaces/pid,filesystem/linux,namespaces/pid"
    isolators = isolation_from_flag(flag, _context(tmp_path))
    assert [i.name for i in isolators] == ["filesystem/linux", "namespaces/pid", "volume/host_path"]


def test_unknown_isolators_are_named(tmp_path: Path) -> None:
    with pytest.raises(IsolationError, match="gpu/amd"):
        isolation_from_flag("posix/cpu,gpu/amd", _context(tmp_path))


def test_cgroup_isolators_need_a_hierarchy(tmp_path: Path) -> None:
    with pytest.raises(IsolationError, match="no cgroup hierarchy"):
        isolation_from_flag("cgroups/mem", _context(tmp_path))


def test_default_is_posix_without_cgroups(tmp_path: Path) -> None:
    assert default_isolation_flag(tmp_path / "none") == POSIX_ISOLATION


def test_default_is_linux_as_root_with_cgroups(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    expected = LINUX_ISOLATION if os.geteuid() == 0 else POSIX_ISOLATION
    assert default_isolation_flag(tmp_path) == expected


def _request(info: LaunchInfo) -> LaunchRequest:
    return LaunchRequest(
        "c", ResolvedCommand("/bin/sh", ["sh"]), {"A": "1"}, Path("/sb"), launch_info=info
    )


def test_child_plan_with_an_image_gets_the_kernel_filesystems_first() -> None:
    info = LaunchInfo(
        rootfs=Path("/images/r"),
        namespaces=sys_.CLONE_NEWPID,
        mounts=[Mount("/data", source=Path("/host"))],
    )
    plan = build_child_plan(_request(info))
    assert plan.new_pid_namespace
    assert plan.namespaces & sys_.CLONE_NEWNS and not plan.namespaces & sys_.CLONE_NEWPID
    assert [m.target for m in plan.mounts] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/sys",
        "/data",
    ]
    assert plan.working_directory == "/sb"
    assert plan.stdout_path == Path("/sb/stdout")
    assert plan.no_new_privileges


def test_child_plan_joins_the_cpu_quota_cgroups_last() -> None:
    # v2: the one cgroup.procs is named by every cgroups isolator; the cpu one wants it
    # joined last, so it is joined once, last.
    procs, tasks = Path("/cg/c/cgroup.procs"), Path("/cg/pids/c/tasks")
    info = LaunchInfo(cgroup_join_files=[procs, tasks, procs], late_cgroup_join_files=[procs])
    plan = build_child_plan(_request(info))
    assert plan.cgroup_join_files == [tasks]
    assert plan.late_cgroup_join_files == [procs]


def test_child_plan_without_namespaces_stays_in_the_host_ones() -> None:
    plan = build_child_plan(_request(LaunchInfo()), no_new_privileges=False)
    assert plan.namespaces == 0 and not plan.new_pid_namespace
    assert plan.mounts == [] and plan.rootfs is None
    assert not plan.no_new_privileges


def test_volume_isolators_map_relative_paths_into_the_sandbox(tmp_path: Path) -> None:
    import anyio

    from mesoslite.runtime.api import ContainerConfig
    from mesoslite.runtime.isolators.volumes import SandboxPathVolumeIsolator

    info = mesos_pb2.ContainerInfo(type=mesos_pb2.ContainerInfo.MESOS)
    volume = info.volumes.add(container_path="cache", mode=mesos_pb2.Volume.RO)
    volume.source.type = mesos_pb2.Volume.Source.SANDBOX_PATH
    volume.source.sandbox_path.type = mesos_pb2.Volume.Source.SandboxPath.SELF
    volume.source.sandbox_path.path = "data/cache"
    config = ContainerConfig(
        command=mesos_pb2.CommandInfo(value="true"),
        sandbox=tmp_path,
        environment={},
        container_info=info,
    )
    launch_info = anyio.run(SandboxPathVolumeIsolator().prepare, "c", config)
    assert launch_info is not None
    assert launch_info.mounts == [
        Mount(f"{tmp_path}/cache", source=tmp_path / "data" / "cache", read_only=True)
    ]
    assert (tmp_path / "data" / "cache").is_dir()


async def _run_true(tmp_path: Path) -> int | None:
    from mesoslite.runtime.api import ContainerConfig
    from mesoslite.runtime.assembly import build_containerizer

    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    containerizer = build_containerizer(tmp_path / "runtime", isolation=POSIX_ISOLATION)
    async with containerizer:
        await containerizer.launch(
            "c",
            ContainerConfig(
                command=mesos_pb2.CommandInfo(value="exit 4"), sandbox=sandbox, environment={}
            ),
        )
        return (await containerizer.wait("c")).wait_status


def test_build_containerizer_from_a_flag(tmp_path: Path) -> None:
    import anyio

    status = anyio.run(_run_true, tmp_path)
    assert status is not None and os.waitstatus_to_exitcode(status) == 4
