from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig, Containerizer, ContainerState
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.errors import (
    ContainerExistsError,
    ContainerLaunchError,
    UnknownContainerError,
)
from mesoslite.runtime.isolator import IsolatorBase, LaunchInfo, Limitation

from .helpers import argv, scalar, shell, wait_until_gone

pytestmark = pytest.mark.anyio

MakeConfig = Callable[..., ContainerConfig]


def _exit_code(status: int | None) -> int:
    assert status is not None
    return os.waitstatus_to_exitcode(status)


async def test_implements_the_protocol(containerizer: MesosContainerizer) -> None:
    as_protocol: Containerizer = containerizer
    assert as_protocol.containers() == []


async def test_exit_status_is_recorded(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    await containerizer.launch("ok", make_config(shell("exit 0")))
    await containerizer.launch("fails", make_config(shell("exit 3")))
    assert _exit_code((await containerizer.wait("ok")).wait_status) == 0
    failed = await containerizer.wait("fails")
    assert _exit_code(failed.wait_status) == 3
    assert failed.state is None and failed.reason is None
    assert failed.message == "Command exited with status 3"


async def test_wait_after_the_end_returns_at_once_and_destroy_forgets(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    await containerizer.launch("c", make_config(shell("true")))
    first = await containerizer.wait("c")
    assert containerizer.containers() == []
    assert await containerizer.wait("c") == first
    assert await containerizer.destroy("c") == first
    with pytest.raises(UnknownContainerError):
        await containerizer.wait("c")


async def test_launch_returns_the_pid_and_runs_in_the_sandbox(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config(
        shell('echo "$$ $(pwd) $GREETING"'), environment={"GREETING": "hi", "PATH": "/usr/bin:/bin"}
    )
    pid = await containerizer.launch("c", config)
    await containerizer.wait("c")
    assert (config.sandbox / "stdout").read_text() == f"{pid} {config.sandbox} hi\n"


async def test_argv_form_is_not_run_through_a_shell(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config(argv("echo", "$HOME", "a;b"))
    await containerizer.launch("c", config)
    assert _exit_code((await containerizer.wait("c")).wait_status) == 0
    assert (config.sandbox / "stdout").read_text() == "$HOME a;b\n"


async def test_state_is_running_while_it_runs(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    await containerizer.launch("c", make_config(shell("sleep 30")))
    assert containerizer.state("c") == ContainerState.RUNNING
    assert containerizer.containers() == ["c"]


async def test_kill_signals_the_whole_process_group(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config(shell("sleep 30 & echo $! > child; wait"))
    await containerizer.launch("c", config)
    child_file = config.sandbox / "child"
    while not child_file.exists() or not child_file.read_text().strip():
        await anyio.sleep(0.01)
    child_pid = int(child_file.read_text())
    await containerizer.kill("c", signal.SIGTERM)
    termination = await containerizer.wait("c")
    assert termination.wait_status is not None
    assert os.WIFSIGNALED(termination.wait_status)
    assert os.WTERMSIG(termination.wait_status) == signal.SIGTERM
    assert "Terminated" in termination.message
    assert await wait_until_gone(child_pid)


async def test_destroy_kills_leftover_processes_of_the_session(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    # The grandchild leaves the process group (setpgid) but stays in the session.
    config = make_config(shell("setsid -f true; (exec sleep 30) & echo $! > child; wait"))
    await containerizer.launch("c", config)
    child_file = config.sandbox / "child"
    while not child_file.exists() or not child_file.read_text().strip():
        await anyio.sleep(0.01)
    child_pid = int(child_file.read_text())
    termination = await containerizer.destroy("c")
    assert termination.wait_status is not None and os.WIFSIGNALED(termination.wait_status)
    assert containerizer.containers() == []
    assert await wait_until_gone(child_pid)


async def test_bad_executable_fails_the_launch_with_a_reason(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    with pytest.raises(ContainerLaunchError):
        await containerizer.launch("c", make_config(argv("/nonexistent/binary")))
    termination = await containerizer.wait("c")
    assert termination.state == mesos_pb2.TASK_FAILED
    assert termination.reason == mesos_pb2.TaskStatus.REASON_CONTAINER_LAUNCH_FAILED
    assert "No such file" in termination.message
    assert containerizer.containers() == []


async def test_launching_an_id_twice_is_refused(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    await containerizer.launch("c", make_config(shell("sleep 30")))
    with pytest.raises(ContainerExistsError):
        await containerizer.launch("c", make_config(shell("true")))


async def test_unknown_containers_raise(containerizer: MesosContainerizer) -> None:
    for call in (
        containerizer.wait,
        containerizer.destroy,
        containerizer.usage,
        containerizer.status,
    ):
        with pytest.raises(UnknownContainerError):
            await call("nope")
    with pytest.raises(UnknownContainerError):
        await containerizer.kill("nope", signal.SIGTERM)


async def test_usage_reports_process_figures_and_limits(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    config = make_config(
        shell("sleep 30 & sleep 30 & wait"), resources=[scalar("cpus", 0.5), scalar("mem", 64)]
    )
    await containerizer.launch("c", config)
    statistics = await containerizer.usage("c")
    while statistics.processes < 3:
        await anyio.sleep(0.01)
        statistics = await containerizer.usage("c")
    assert statistics.processes == 3
    assert statistics.threads == 3
    assert statistics.mem_rss_bytes > 0
    assert statistics.cpus_limit == 0.5
    assert statistics.mem_limit_bytes == 64 * 1024 * 1024
    assert statistics.timestamp > 0
    assert statistics.HasField("cpus_user_time_secs")

    await containerizer.update("c", [scalar("cpus", 2), scalar("mem", 128)])
    updated = await containerizer.usage("c")
    assert updated.cpus_limit == 2
    assert updated.mem_limit_bytes == 128 * 1024 * 1024


async def test_status_names_the_container_and_its_pid(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    await containerizer.launch("top", make_config(shell("sleep 30")))
    pid = await containerizer.launch("child", make_config(shell("sleep 30"), parent_id="top"))
    status = await containerizer.status("child")
    assert status.container_id.value == "child"
    assert status.container_id.parent.value == "top"
    assert status.executor_pid == pid


async def test_nested_containers_need_a_running_parent_and_end_before_it(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    with pytest.raises(ContainerLaunchError, match="Parent container nobody does not exist"):
        await containerizer.launch("orphan", make_config(shell("true"), parent_id="nobody"))
    await containerizer.launch("top", make_config(shell("sleep 30")))
    await containerizer.launch("child", make_config(shell("sleep 30"), parent_id="top"))
    await containerizer.destroy("top")
    assert containerizer.containers() == []
    child = await containerizer.wait("child")
    assert child.wait_status is not None and os.WTERMSIG(child.wait_status) == signal.SIGKILL


async def test_many_concurrent_short_containers(
    containerizer: MesosContainerizer, make_config: MakeConfig
) -> None:
    configs = [make_config(argv("/bin/true")) for _ in range(50)]
    async with anyio.create_task_group() as group:
        for index, config in enumerate(configs):
            group.start_soon(containerizer.launch, f"c{index}", config)
    for index in range(50):
        assert _exit_code((await containerizer.wait(f"c{index}")).wait_status) == 0
    assert containerizer.containers() == []


class _RecordingIsolator(IsolatorBase):
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        self.journal.append(f"prepare {self.name}")
        return LaunchInfo(environment={"FROM_" + self.name.replace("/", "_"): "1"})

    async def isolate(self, container_id: str, pid: int) -> None:
        self.journal.append(f"isolate {self.name}")

    async def cleanup(self, container_id: str) -> None:
        self.journal.append(f"cleanup {self.name}")


async def test_isolators_run_in_order_and_clean_up_in_reverse(make_config: MakeConfig) -> None:
    journal: list[str] = []
    isolators = [_RecordingIsolator("test/a", journal), _RecordingIsolator("test/b", journal)]
    config = make_config(shell("env"))
    async with MesosContainerizer(isolators=isolators) as containerizer:
        await containerizer.launch("c", config)
        await containerizer.wait("c")
    assert journal == [
        "prepare test/a",
        "prepare test/b",
        "isolate test/a",
        "isolate test/b",
        "cleanup test/b",
        "cleanup test/a",
    ]
    output = (config.sandbox / "stdout").read_text().split()
    assert "FROM_test_a=1" in output and "FROM_test_b=1" in output


class _BlockingIsolator(IsolatorBase):
    name = "test/blocking"

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.cleaned = False

    async def prepare(self, container_id: str, config: ContainerConfig) -> LaunchInfo | None:
        self.entered.set()
        await anyio.sleep_forever()
        return None

    async def cleanup(self, container_id: str) -> None:
        self.cleaned = True


async def test_destroy_during_launch_aborts_it(make_config: MakeConfig) -> None:
    blocking = _BlockingIsolator()
    async with MesosContainerizer(isolators=[blocking]) as containerizer:
        outcome: list[BaseException] = []

        async def launch() -> None:
            try:
                await containerizer.launch("c", make_config(shell("true")))
            except ContainerLaunchError as error:
                outcome.append(error)

        async with anyio.create_task_group() as group:
            group.start_soon(launch)
            await blocking.entered.wait()
            assert containerizer.state("c") == ContainerState.PREPARING
            termination = await containerizer.destroy("c")
        assert termination.wait_status is None
        assert "destroyed during launch (PREPARING)" in termination.message
        assert len(outcome) == 1
        assert blocking.cleaned
        assert containerizer.containers() == []


class _OomIsolator(IsolatorBase):
    name = "test/limit"

    async def limitation(self, container_id: str) -> Limitation | None:
        return Limitation(mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY, "too big")


async def test_a_limitation_names_the_reason(make_config: MakeConfig) -> None:
    async with MesosContainerizer(isolators=[_OomIsolator()]) as containerizer:
        await containerizer.launch("c", make_config(shell("kill -9 $$")))
        termination = await containerizer.wait("c")
    assert termination.state == mesos_pb2.TASK_FAILED
    assert termination.reason == mesos_pb2.TaskStatus.REASON_CONTAINER_LIMITATION_MEMORY
    assert termination.message == "too big"


async def test_launch_outside_the_context_is_refused(make_config: MakeConfig) -> None:
    with pytest.raises(RuntimeError):
        await MesosContainerizer().launch("c", make_config(shell("true")))


async def test_an_image_without_a_provisioner_fails_the_launch(
    containerizer: MesosContainerizer, make_config: MakeConfig, tmp_path: Path
) -> None:
    info = mesos_pb2.ContainerInfo(type=mesos_pb2.ContainerInfo.MESOS)
    info.mesos.image.type = mesos_pb2.Image.DOCKER
    info.mesos.image.docker.name = "library/busybox"
    with pytest.raises(ContainerLaunchError):
        await containerizer.launch("c", make_config(shell("true"), container_info=info))
    assert (await containerizer.wait("c")).reason == (
        mesos_pb2.TaskStatus.REASON_CONTAINER_LAUNCH_FAILED
    )


async def test_a_cancelled_launch_cleans_up_what_it_prepared(make_config: MakeConfig) -> None:
    blocking = _BlockingIsolator()
    async with MesosContainerizer(isolators=[blocking]) as containerizer:
        async with anyio.create_task_group() as group:
            group.start_soon(containerizer.launch, "c", make_config(shell("true")))
            await blocking.entered.wait()
            group.cancel_scope.cancel()
        assert blocking.cleaned
        assert containerizer.containers() == []
        assert "interrupted during launch" in (await containerizer.wait("c")).message


class _BrokenCleanupIsolator(IsolatorBase):
    name = "test/broken"

    async def cleanup(self, container_id: str) -> None:
        raise OSError("cannot remove")


async def test_a_failing_cleanup_does_not_stop_the_others(make_config: MakeConfig) -> None:
    journal: list[str] = []
    isolators = [_RecordingIsolator("test/a", journal), _BrokenCleanupIsolator()]
    async with MesosContainerizer(isolators=isolators) as containerizer:
        await containerizer.launch("c", make_config(shell("exit 0")))
        termination = await containerizer.wait("c")
        await containerizer.launch("d", make_config(shell("exit 1")))
        await containerizer.wait("d")
    assert termination.wait_status == 0
    assert journal.count("cleanup test/a") == 2
