"""Agent recovery: what a restarted agent takes over from its previous run (wire
contract 7.1; the design's "Agent restart" flow).

1. Read `meta/boot_id` and what `meta/slaves/latest` leads to (`checkpoint_reader`).
   If the host rebooted since (the boot id changed), or with `--recover=cleanup`,
   start as a new agent: every container the previous run left is destroyed.
2. Refuse to start if this agent may not take over the old one's id and tasks
   (`reconfiguration`: same address, resources and attributes only grown).
3. Rebuild frameworks, executors and tasks from their checkpointed messages, and each
   task's status update stream from `task.updates` (its unacknowledged updates, in
   order: they are resent once the agent is registered).
4. `containerizer.recover(known ids)`: re-attach the containers that still run, learn
   the exits recorded while the agent was down, destroy everything else as an orphan
   (containers of frameworks that do not checkpoint, of executors that are over).
5. Resume every executor. Command tasks and task groups are supervised again: a
   container that ended while the agent was down gives its terminal update now
   (TASK_FINISHED, or TASK_FAILED with its exit status). Custom executors get
   `executor_reregistration_timeout` to SUBSCRIBE again, or are destroyed
   (REASON_EXECUTOR_REREGISTRATION_TIMEOUT).

Unlike Mesos, the agent re-registers at once rather than after the executors'
re-registration window (MESOS-7539 makes a Mesos agent restart cost at least 2 s): a
custom executor that never comes back is reported through the usual terminal updates.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from mesoslite.agent import checkpoints
from mesoslite.agent.checkpoint_reader import (
    AgentCheckpoint,
    ExecutorCheckpoint,
    RunCheckpoint,
    TaskCheckpoint,
    read_agent_checkpoint,
    read_boot_id,
)
from mesoslite.agent.config import AgentConfig
from mesoslite.agent.executors import CustomExecutorRunner, is_command_executor
from mesoslite.agent.reconfiguration import reconfiguration_error
from mesoslite.agent.recovered_task_group import RecoveredTask, RecoveredTaskGroup
from mesoslite.agent.sandbox import SandboxLayout
from mesoslite.agent.state import Executor, ExecutorKind, ExecutorPhase, Framework
from mesoslite.agent.status_updates import is_terminal
from mesoslite.executor.command import CommandExecutor
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import Termination

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["RecoveryError", "RecoveryReport", "recover_agent"]

log = logging.getLogger(__name__)

_TS = mesos_pb2.TaskState
_Status = mesos_pb2.TaskStatus
_PARTITION_AWARE = mesos_pb2.FrameworkInfo.Capability.PARTITION_AWARE

Supervise = Callable[[], Awaitable[Termination | None]]


class RecoveryError(Exception):
    """The agent may not take over what its previous run left (it does not start)."""


@dataclass(frozen=True)
class RecoveryReport:
    """What a start found of the previous run, and how long taking it over took."""

    # The id taken over; None when the agent registers as a new one.
    agent_id: str | None
    # Why a previous agent's checkpoint was not recovered (reboot, cleanup), if so.
    fresh_start_reason: str | None
    executors: int
    # Tasks taken over that are not terminal.
    running_tasks: int
    # Containers re-attached (still running, or ended while the agent was down).
    containers: int
    duration_s: float


@dataclass(eq=False)
class _Restored:
    framework: Framework
    executor: Executor
    run: RunCheckpoint


async def recover_agent(agent: Agent) -> RecoveryReport:
    """Take over the previous run of this agent (see the module docstring). Raises
    RecoveryError when its checkpoint may not be taken over."""
    started = time.monotonic()
    layout = agent.layout
    previous_boot_id, checkpoint = await anyio.to_thread.run_sync(_read_previous_run, layout)
    await anyio.to_thread.run_sync(checkpoints.prepare_work_dir, layout)
    fresh_start_reason = _why_start_fresh(agent.config, previous_boot_id)
    if checkpoint is None or fresh_start_reason is not None:
        if checkpoint is not None:
            log.warning(
                "not recovering agent %s (%s): it registers as a new agent",
                checkpoint.agent_id,
                fresh_start_reason,
            )
            await anyio.to_thread.run_sync(checkpoints.forget_latest_agent, layout)
        # Whatever a previous run left is an orphan now.
        await agent.containerizer.recover(set())
        return RecoveryReport(
            agent_id=None,
            fresh_start_reason=fresh_start_reason if checkpoint is not None else None,
            executors=0,
            running_tasks=0,
            containers=0,
            duration_s=time.monotonic() - started,
        )
    error = reconfiguration_error(checkpoint.info, agent.agent_info)
    if error is not None:
        raise RecoveryError(
            f"cannot recover agent {checkpoint.agent_id} from {layout.work_dir}: {error}. "
            "Start it with its previous settings, or with --recover=cleanup to destroy what "
            "it left running and start as a new agent"
        )
    agent.agent_info.id.value = checkpoint.agent_id
    restored, finished_runs = _restore_state(agent, checkpoint)
    known: set[str] = set()
    for item in restored:
        known.update(_containers_to_recover(item))
    recovered_ids = await agent.containerizer.recover(known)
    running_tasks = 0
    for item in restored:
        if _resume(agent, item, recovered_ids):
            running_tasks += len(item.executor.launched_tasks)
        else:
            finished_runs.append((item.framework.id, item.executor.id, item.run.container_id))
    for framework in {item.framework for item in restored}:
        if not framework.executors:
            agent.frameworks.pop(framework.id, None)
    # Before any new launch can write there (usually little: runs are forgotten as
    # they end).
    await anyio.to_thread.run_sync(_remove_runs, layout, checkpoint.agent_id, finished_runs)
    report = RecoveryReport(
        agent_id=checkpoint.agent_id,
        fresh_start_reason=None,
        executors=sum(len(f.executors) for f in agent.frameworks.values()),
        running_tasks=running_tasks,
        containers=len(recovered_ids),
        duration_s=time.monotonic() - started,
    )
    log.info(
        "recovered agent %s: %d executors, %d running tasks, %d containers in %.1f ms",
        report.agent_id,
        report.executors,
        report.running_tasks,
        report.containers,
        report.duration_s * 1e3,
    )
    return report


def _read_previous_run(layout: SandboxLayout) -> tuple[str | None, AgentCheckpoint | None]:
    return read_boot_id(layout), read_agent_checkpoint(layout)


def _why_start_fresh(config: AgentConfig, previous_boot_id: str | None) -> str | None:
    if config.recover == "cleanup":
        return "--recover=cleanup"
    current = checkpoints.current_boot_id()
    if previous_boot_id is not None and current and previous_boot_id != current:
        return "the host rebooted"
    return None


# ---------------------------------------------------------------------------- state


# (framework id, executor id, container id or None for the executor's whole directory)
_RunKey = tuple[str, str, str | None]


def _restore_state(
    agent: Agent, checkpoint: AgentCheckpoint
) -> tuple[list[_Restored], list[_RunKey]]:
    """Frameworks, executors, tasks and update streams as the checkpoint has them.
    Returns the executors to resume, and what is over (to forget)."""
    restored: list[_Restored] = []
    finished: list[_RunKey] = []
    for framework_checkpoint in checkpoint.frameworks:
        framework_id = framework_checkpoint.framework_id
        executors = [e for e in framework_checkpoint.executors if e.latest_run is not None]
        if not executors:
            finished.append((framework_id, "", None))
            continue
        framework = agent.ensure_framework(framework_checkpoint.info)
        for executor_checkpoint in framework_checkpoint.executors:
            latest = executor_checkpoint.latest_run
            if latest is None:
                finished.append((framework_id, executor_checkpoint.executor_id, None))
                continue
            executor = _restore_executor(agent, framework, executor_checkpoint, latest)
            restored.append(_Restored(framework, executor, latest))
            for run in executor_checkpoint.earlier_runs:
                if not _restore_earlier_run(agent, framework, executor_checkpoint, run):
                    finished.append((framework_id, executor.id, run.container_id))
    return restored, finished


def _executor_kind(info: mesos_pb2.ExecutorInfo) -> ExecutorKind:
    if info.type == mesos_pb2.ExecutorInfo.DEFAULT:
        return ExecutorKind.DEFAULT
    if is_command_executor(info):
        return ExecutorKind.COMMAND
    return ExecutorKind.CUSTOM


def _restore_executor(
    agent: Agent, framework: Framework, checkpoint: ExecutorCheckpoint, run: RunCheckpoint
) -> Executor:
    assert agent.agent_id is not None
    executor = Executor(
        info=checkpoint.info,
        kind=_executor_kind(checkpoint.info),
        container_id=run.container_id,
        directory=agent.layout.executor_run_dir(
            agent.agent_id, framework.id, checkpoint.executor_id, run.container_id
        ),
        checkpoint=True,
        completed_tasks=deque(maxlen=agent.config.max_completed_tasks_per_executor),
    )
    for task in run.tasks:
        _restore_task(agent, framework, executor, task)
    framework.executors[executor.id] = executor
    return executor


def _restore_task(
    agent: Agent, framework: Framework, executor: Executor, checkpoint: TaskCheckpoint
) -> None:
    task_id = checkpoint.task_id
    record = agent.task_record(framework, executor, checkpoint.info)
    for update in checkpoint.updates:
        record.state = update.status.state
        status = record.statuses.add()
        status.CopyFrom(update.status)
        status.ClearField("data")
    if is_terminal(checkpoint.last_state) and not checkpoint.pending:
        executor.completed_tasks.append(record)
        return
    executor.task_infos[task_id] = checkpoint.info
    if is_terminal(checkpoint.last_state):
        executor.terminated_tasks[task_id] = record
    else:
        executor.launched_tasks[task_id] = record
    _restore_stream(agent, framework, executor.id, executor.container_id, checkpoint)


def _restore_stream(
    agent: Agent,
    framework: Framework,
    executor_id: str,
    container_id: str,
    checkpoint: TaskCheckpoint,
) -> None:
    assert agent.agent_id is not None
    agent.status_updates.restore(
        framework.id,
        checkpoint.task_id,
        received=checkpoint.updates,
        pending=checkpoint.pending,
        log_path=agent.layout.task_updates_file(
            agent.agent_id, framework.id, executor_id, container_id, checkpoint.task_id
        ),
    )


def _restore_earlier_run(
    agent: Agent, framework: Framework, executor: ExecutorCheckpoint, run: RunCheckpoint
) -> bool:
    """An executor's previous run is over; its updates still unacknowledged go out.
    Returns whether any did (else the run is forgotten)."""
    pending = False
    for task in run.tasks:
        if task.pending:
            pending = True
            _restore_stream(agent, framework, executor.executor_id, run.container_id, task)
    return pending


def _containers_to_recover(item: _Restored) -> list[str]:
    executor = item.executor
    if executor.kind is ExecutorKind.CUSTOM:
        # Even without a task it may run on (it can be given new ones).
        return [executor.container_id]
    if executor.kind is ExecutorKind.COMMAND:
        return [executor.container_id] if executor.launched_tasks else []
    # The default executor's own container (the pause program its tasks nest in) and
    # its tasks' containers.
    return [executor.container_id] + [
        item.run.task_containers[task_id]
        for task_id in executor.launched_tasks
        if task_id in item.run.task_containers
    ]


# ---------------------------------------------------------------------------- executors


def _resume(agent: Agent, item: _Restored, recovered_ids: set[str]) -> bool:
    """Hand the executor to the agent again; False when nothing of it is left."""
    framework, executor = item.framework, item.executor
    alive = executor.container_id in recovered_ids
    supervise: Supervise | None
    if executor.kind is ExecutorKind.COMMAND:
        supervise = _resume_command(agent, framework, executor, alive=alive)
    elif executor.kind is ExecutorKind.CUSTOM:
        supervise = _resume_custom(agent, framework, executor, alive=alive)
    else:
        supervise = _resume_task_group(agent, framework, executor, item.run, recovered_ids)
    if supervise is None:
        executor.phase = ExecutorPhase.TERMINATED
        if alive:
            # An executor container with nothing left to do (a task group's pause).
            agent.task_group().start_soon(agent.destroy_container_quietly, executor.container_id)
        if not executor.terminated_tasks:
            # Over, and every update of it acknowledged.
            del framework.executors[executor.id]
            return False
        return True  # removed once its last terminal update is acknowledged
    agent.supervise_recovered(framework, executor, supervise)
    return True


def _resume_command(
    agent: Agent, framework: Framework, executor: Executor, *, alive: bool
) -> Supervise | None:
    if not executor.launched_tasks:
        return None
    [(task_id, task)] = executor.launched_tasks.items()
    last_state = task.state
    if not alive:
        return _ended_while_down(framework, last_state)
    context = agent.executor_context(framework, executor)
    runner = CommandExecutor(context, executor.task_infos[task_id])
    executor.runner = runner
    executor.phase = ExecutorPhase.RUNNING
    started_at_s = task.statuses[0].timestamp if task.statuses else None

    async def supervise() -> Termination:
        return await runner.resume(last_state, started_at_s)

    return supervise


def _resume_custom(
    agent: Agent, framework: Framework, executor: Executor, *, alive: bool
) -> Supervise | None:
    if not alive:
        if not executor.launched_tasks:
            return None
        return _ended_while_down(framework, _TS.TASK_RUNNING)
    runner = CustomExecutorRunner(agent, framework, executor)
    executor.runner = runner
    executor.phase = ExecutorPhase.REGISTERING
    executor.resubscription_pending = True
    return runner.resume


def _resume_task_group(
    agent: Agent,
    framework: Framework,
    executor: Executor,
    run: RunCheckpoint,
    recovered_ids: set[str],
) -> Supervise | None:
    if not executor.launched_tasks:
        return None
    tasks = []
    for task_id, task in executor.launched_tasks.items():
        container_id = run.task_containers.get(task_id)
        tasks.append(
            RecoveredTask(
                info=executor.task_infos[task_id],
                container_id=container_id if container_id in recovered_ids else None,
                state=task.state,
            )
        )
    runner = RecoveredTaskGroup(
        agent.executor_context(framework, executor),
        tasks,
        partition_aware=framework.has_capability(_PARTITION_AWARE),
    )
    executor.runner = runner
    executor.phase = ExecutorPhase.RUNNING

    async def supervise() -> Termination:
        await runner.run()
        return Termination(wait_status=0)

    return supervise


def _ended_while_down(framework: Framework, last_state: mesos_pb2.TaskState.ValueType) -> Supervise:
    """The executor's container is gone and no exit of it was recorded: its tasks end
    with it (how is unknown)."""
    if last_state == _TS.TASK_STAGING:
        partition_aware = framework.has_capability(_PARTITION_AWARE)
        termination = Termination(
            wait_status=None,
            state=_TS.TASK_DROPPED if partition_aware else _TS.TASK_LOST,
            reason=_Status.REASON_AGENT_RESTARTED,
            message="The agent restarted before the task was launched",
        )
    else:
        termination = Termination(
            wait_status=None,
            message="its container ended while the agent was down; the exit status is unknown",
        )

    async def supervise() -> Termination:
        return termination

    return supervise


def _remove_runs(layout: SandboxLayout, agent_id: str, runs: list[_RunKey]) -> None:
    """Forget what is over: runs, executors without a run, frameworks without an
    executor (their sandboxes stay for the user)."""
    for framework_id, executor_id, container_id in runs:
        if not executor_id:
            shutil.rmtree(layout.framework_meta_dir(agent_id, framework_id), ignore_errors=True)
        elif container_id is None:
            checkpoints.forget_executor(layout, agent_id, framework_id, executor_id)
        else:
            checkpoints.forget_run(layout, agent_id, framework_id, executor_id, container_id)
