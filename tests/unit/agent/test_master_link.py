"""The agent's side of the master connection: pings, reconnects, re-registration with
its tasks, framework shutdown and updates, kills of unknown tasks, checkpoints."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from mesoslite.agent.update_log import read_update_log
from mesoslite.proto import internal_pb2, mesos_pb2

from .harness import (
    AGENT_ID,
    FRAMEWORK_ID,
    command_task,
    framework_info,
    running_agent,
)

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState


async def test_ping_is_answered_with_the_same_sequence(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        await running.link.send(internal_pb2.MasterToAgent(ping=internal_pb2.Ping(sequence=42)))
        with anyio.fail_after(30):
            pong = await running.link.expect("pong")
        assert pong.sequence == 42


async def test_reconnects_and_reregisters_with_its_tasks(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        link = running.link
        await link.run_task(command_task("t1", "sleep 1000"), framework_info())
        with anyio.fail_after(30):
            starting = await link.next_update()
            await link.acknowledge(starting)
            in_flight = await link.next_update()  # TASK_RUNNING, not acknowledged
            assert in_flight.status.state == _TS.TASK_RUNNING
            # The connection drops: the agent reconnects and re-registers.
            await link.channel.aclose()
            link = await running.master.accept()
            again = await link.expect("reregister_agent")
            assert again.agent_info.id.value == AGENT_ID
            assert [framework.id.value for framework in again.frameworks] == [FRAMEWORK_ID]
            (task,) = again.tasks
            assert task.task_id.value == "t1"
            assert task.state == _TS.TASK_RUNNING
            # Command executors are not reported as executors.
            assert list(again.executor_infos) == []
            await link.answer_registration(AGENT_ID, reregistered=True)
            # The unacknowledged update is sent again right away.
            resent = await link.next_update()
        assert resent.status.uuid == in_flight.status.uuid


async def test_keeps_trying_while_the_master_is_away(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        running.master.refuse = True
        await running.link.channel.aclose()
        with anyio.fail_after(30):
            while running.agent.registered:
                await anyio.sleep(0.01)
            running.master.refuse = False
            link = await running.master.accept()
            await link.expect("reregister_agent")
            await link.answer_registration(AGENT_ID, reregistered=True)
            while not running.agent.registered:
                await anyio.sleep(0.01)


async def test_shutdown_framework_kills_its_tasks_and_forgets_it(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        link = running.link
        await link.run_task(command_task("t1", "sleep 1000"), framework_info())
        with anyio.fail_after(30):
            for _ in range(2):
                await link.acknowledge(await link.next_update())
            message = internal_pb2.MasterToAgent()
            message.shutdown_framework.framework_id.value = FRAMEWORK_ID
            await link.send(message)
            updates = await link.updates_until_terminal()
            assert updates[-1].status.state == _TS.TASK_KILLED
            agent = running.agent
            while FRAMEWORK_ID in agent.frameworks:
                await anyio.sleep(0.01)
        assert list(agent.completed_frameworks) == [FRAMEWORK_ID]


async def test_update_framework_replaces_the_framework_info(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        link = running.link
        await link.run_task(command_task("t1", "sleep 1000"), framework_info())
        with anyio.fail_after(30):
            await link.acknowledge(await link.next_update())
            updated = framework_info(
                capabilities=(mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE,)
            )
            updated.name = "renamed"
            message = internal_pb2.MasterToAgent()
            message.update_framework.framework_info.CopyFrom(updated)
            await link.send(message)
            while running.agent.frameworks[FRAMEWORK_ID].info.name != "renamed":
                await anyio.sleep(0.01)
            running_update = await link.next_update()
            await link.acknowledge(running_update)
            # The new capability applies to the running task's kill.
            await link.kill_task("t1")
            rest = await link.updates_until_terminal()
        # The framework update makes the agent resend its pending update at once (as
        # Mesos does): RUNNING may come again before its acknowledgement arrived.
        states = [u.status.state for u in rest if u.status.uuid != running_update.status.uuid]
        assert states == [_TS.TASK_KILLING, _TS.TASK_KILLED]


async def test_kill_of_an_unknown_task_reports_it_lost(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        link = running.link
        # While t1 runs, its framework is known to the agent (a framework whose last
        # executor is gone is forgotten, and kills for it are ignored, as in Mesos).
        await link.run_task(command_task("t1", "sleep 30"), framework_info())
        with anyio.fail_after(30):
            while (started := await link.next_update()).status.state != _TS.TASK_RUNNING:
                await link.acknowledge(started)
            await link.kill_task("no-such-task")
            update = await link.next_update()
        assert update.status.task_id.value == "no-such-task"
        assert update.status.state == _TS.TASK_LOST
        assert update.status.source == mesos_pb2.TaskStatus.SOURCE_AGENT
        assert len(update.status.uuid) == 16


async def test_checkpointing_framework_gets_its_task_checkpointed(tmp_path: Path) -> None:
    async with running_agent(tmp_path) as running:
        link = running.link
        await link.run_task(command_task("t1", "true"), framework_info(checkpoint=True))
        with anyio.fail_after(30):
            updates = [await link.next_update()]
            await link.acknowledge(updates[-1])
            updates.append(await link.next_update())
            await link.acknowledge(updates[-1])
            updates.append(await link.next_update())
        assert updates[-1].status.state == _TS.TASK_FINISHED
        agent = running.agent
        assert agent.agent_id is not None
        layout = agent.layout
        # A command task runs in its executor's container.
        container_id = updates[1].status.container_status.container_id.value
        updates_file = layout.task_updates_file(
            agent.agent_id, FRAMEWORK_ID, "t1", container_id, "t1"
        )
        entries = read_update_log(updates_file.read_bytes())
        logged = [entry.update.status.uuid for entry in entries if entry.update is not None]
        acked = [entry.acknowledged_uuid for entry in entries if entry.acknowledged_uuid]
        assert logged == [update.status.uuid for update in updates]
        assert acked == logged[:2]
        info_file = layout.task_info_file(agent.agent_id, FRAMEWORK_ID, "t1", container_id, "t1")
        assert mesos_pb2.TaskInfo.FromString(info_file.read_bytes()).task_id.value == "t1"
        assert layout.agent_info_file(agent.agent_id).exists()
        sandbox = layout.executor_run_dir(agent.agent_id, FRAMEWORK_ID, "t1", container_id)
        assert (sandbox.parent / "latest").resolve() == sandbox.resolve()
        # Once the last update is acknowledged a restart has nothing to find there: the
        # checkpoint goes, the sandbox stays.
        await link.acknowledge(updates[-1])
        with anyio.fail_after(30):
            while layout.executor_meta_dir(agent.agent_id, FRAMEWORK_ID, "t1").exists():
                await anyio.sleep(0.01)
        assert (sandbox / "stdout").exists()
