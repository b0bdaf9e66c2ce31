"""Command tasks end to end through a scripted master: registration, launch, updates,
acknowledgements, kills and exit codes, with real processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest

from mesoslite.proto import mesos_pb2

from .harness import AGENT_ID, FRAMEWORK_ID, command_task, framework_info, running_agent

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState
_Status = mesos_pb2.TaskStatus


def _states(updates: list) -> list[int]:  # type: ignore[type-arg]
    return [update.status.state for update in updates]


async def test_registers_with_discovered_resources(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        registration = running.registration
        assert registration.endpoint == running.agent.endpoint
        assert registration.agent_info.hostname == "localhost"
        assert not registration.agent_info.HasField("id")
        names = {resource.name for resource in registration.agent_info.resources}
        assert {"cpus", "mem", "disk", "ports"} <= names
        assert running.agent.agent_id == AGENT_ID


async def test_echo_task_runs_to_finished(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        await running.link.run_task(command_task("t1", "echo hi"), framework_info())
        with anyio.fail_after(30):
            updates = await running.link.updates_until_terminal()
        assert _states(updates) == [_TS.TASK_STARTING, _TS.TASK_RUNNING, _TS.TASK_FINISHED]
        for update in updates:
            status = update.status
            assert update.framework_id.value == FRAMEWORK_ID
            assert len(status.uuid) == 16
            assert status.agent_id.value == AGENT_ID
            assert status.executor_id.value == "t1"
            assert status.source == _Status.SOURCE_EXECUTOR
            assert status.timestamp > 0
        assert len({update.status.uuid for update in updates}) == 3
        running_status = updates[1].status
        assert running_status.container_status.executor_pid > 0
        assert running_status.container_status.network_infos[0].ip_addresses[0].ip_address
        assert updates[2].status.message == "Command exited with status 0"
        stdout = running.sandbox_of(FRAMEWORK_ID, "t1") / "stdout"
        assert stdout.read_text() == "hi\n"


async def test_failed_command_reports_its_exit_status(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        await running.link.run_task(command_task("t1", "exit 3"), framework_info())
        with anyio.fail_after(30):
            updates = await running.link.updates_until_terminal()
        final = updates[-1].status
        assert final.state == _TS.TASK_FAILED
        assert final.message == "Command exited with status 3"


async def test_argv_command_without_shell(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        task = command_task("t1", "/bin/echo", shell=False, arguments=("echo", "a b"))
        await running.link.run_task(task, framework_info())
        with anyio.fail_after(30):
            updates = await running.link.updates_until_terminal()
        assert updates[-1].status.state == _TS.TASK_FINISHED
        assert (running.sandbox_of(FRAMEWORK_ID, "t1") / "stdout").read_text() == "a b\n"


async def test_task_sees_its_environment_and_sandbox(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        task = command_task(
            "t1",
            'echo "$GREETING $MESOS_EXECUTOR_ID $MESOS_SANDBOX" && pwd',
            environment={"GREETING": "hello"},
        )
        await running.link.run_task(task, framework_info())
        with anyio.fail_after(30):
            await running.link.updates_until_terminal()
        sandbox = running.sandbox_of(FRAMEWORK_ID, "t1").resolve()
        lines = (sandbox / "stdout").read_text().splitlines()
        assert lines[0] == f"hello t1 {sandbox}"
        assert Path(lines[1]).resolve() == sandbox


async def test_next_update_waits_for_the_acknowledgement(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        await running.link.run_task(command_task("t1", "echo hi"), framework_info())
        with anyio.fail_after(30):
            starting = await running.link.next_update()
            assert starting.status.state == _TS.TASK_STARTING
            # Let the task finish: the agent knows RUNNING and FINISHED by now, but only
            # STARTING may be in flight until it is acknowledged.
            agent = running.agent
            while not agent.frameworks[FRAMEWORK_ID].executors["t1"].terminated_tasks:
                await anyio.sleep(0.01)
            assert starting.latest_state in (_TS.TASK_STARTING, _TS.TASK_RUNNING)
            await running.link.acknowledge(starting)
            running_update = await running.link.next_update()
            assert running_update.status.state == _TS.TASK_RUNNING
            assert running_update.latest_state == _TS.TASK_FINISHED
            await running.link.acknowledge(running_update)
            finished = await running.link.next_update()
            assert finished.status.state == _TS.TASK_FINISHED
            await running.link.acknowledge(finished)
            # Once the terminal update is acknowledged the executor is completed.
            framework = agent.frameworks.get(FRAMEWORK_ID)
            while framework is not None and "t1" in framework.executors:
                await anyio.sleep(0.01)
                framework = agent.frameworks.get(FRAMEWORK_ID)


async def test_unacknowledged_update_is_retried(tmp_path: Path) -> None:
    async with running_agent(
        tmp_path, status_update_retry_initial_s=0.05, status_update_retry_max_s=0.1
    ) as running:
        await running.link.run_task(command_task("t1", "echo hi"), framework_info())
        with anyio.fail_after(30):
            first = await running.link.next_update()
            again = await running.link.next_update()
        assert again.status.uuid == first.status.uuid
        assert again.status.state == _TS.TASK_STARTING


async def test_kill_sends_killing_then_killed(tmp_path: Path) -> None:
    capability = mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE
    async with running_agent(tmp_path) as running:
        await running.link.run_task(
            command_task("t1", "sleep 1000"), framework_info(capabilities=(capability,))
        )
        with anyio.fail_after(30):
            for expected in (_TS.TASK_STARTING, _TS.TASK_RUNNING):
                update = await running.link.next_update()
                assert update.status.state == expected
                await running.link.acknowledge(update)
            await running.link.kill_task("t1")
            rest = await running.link.updates_until_terminal()
        assert _states(rest) == [_TS.TASK_KILLING, _TS.TASK_KILLED]
        assert rest[-1].status.message == "Command terminated with signal Terminated"


async def test_kill_without_killing_state_capability(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        await running.link.run_task(command_task("t1", "sleep 1000"), framework_info())
        with anyio.fail_after(30):
            for _ in range(2):
                await running.link.acknowledge(await running.link.next_update())
            await running.link.kill_task("t1")
            rest = await running.link.updates_until_terminal()
        assert _states(rest) == [_TS.TASK_KILLED]


async def test_kill_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        # Ignores SIGTERM: only SIGKILL ends it.
        task = command_task("t1", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
        await running.link.run_task(task, framework_info())
        with anyio.fail_after(30):
            for _ in range(2):
                await running.link.acknowledge(await running.link.next_update())
            stdout = running.sandbox_of(FRAMEWORK_ID, "t1") / "stdout"
            while "ready" not in stdout.read_text():
                await anyio.sleep(0.01)
            await running.link.kill_task("t1", grace_period_s=0.2)
            rest = await running.link.updates_until_terminal()
        assert rest[-1].status.state == _TS.TASK_KILLED
        assert rest[-1].status.message == "Command terminated with signal Killed"


async def test_second_kill_shortens_the_grace_period(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        task = command_task("t1", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
        await running.link.run_task(task, framework_info())
        with anyio.fail_after(30):
            for _ in range(2):
                await running.link.acknowledge(await running.link.next_update())
            stdout = running.sandbox_of(FRAMEWORK_ID, "t1") / "stdout"
            while "ready" not in stdout.read_text():
                await anyio.sleep(0.01)
            await running.link.kill_task("t1", grace_period_s=3600)
            await running.link.kill_task("t1", grace_period_s=0)
            rest = await running.link.updates_until_terminal()
        assert rest[-1].status.state == _TS.TASK_KILLED


async def test_task_killed_by_a_signal_fails(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        await running.link.run_task(command_task("t1", "kill -9 $$"), framework_info())
        with anyio.fail_after(30):
            updates = await running.link.updates_until_terminal()
        assert updates[-1].status.state == _TS.TASK_FAILED
        assert updates[-1].status.message == "Command terminated with signal Killed"


async def test_shutdown_kills_running_tasks(tmp_path: Path) -> None:
    pid = 0
    async with running_agent(tmp_path) as running:
        await running.link.run_task(command_task("t1", "sleep 1000"), framework_info())
        with anyio.fail_after(30):
            await running.link.acknowledge(await running.link.next_update())
            update = await running.link.next_update()
        pid = update.status.container_status.executor_pid
        assert pid > 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
