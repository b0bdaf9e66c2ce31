"""The agent: registers with the master, runs what it is sent, reports every state.

One `Agent` per node. `run()` discovers resources, recovers what a previous run of the
agent left (`recovery`: its id, checkpointed executors, tasks and pending updates),
connects through the `MasterConnector`, registers (re-registering with its tasks after
a reconnect or a restart) and serves master messages until cancelled. Tasks run
through executors: command tasks and task groups through the built-in executors
inside the agent, other executors as real processes speaking the executor API
(`executor_api`). Every status update goes
through the status update manager, which delivers it reliably and in order.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence

import anyio
from anyio.abc import TaskGroup, TaskStatus

from mesoslite.agent import checkpoints, views
from mesoslite.agent.config import AgentConfig
from mesoslite.agent.container_status import complete_container_status
from mesoslite.agent.discovery import discover_attributes, discover_resources
from mesoslite.agent.executors import CustomExecutorRunner, command_executor_info
from mesoslite.agent.launch_config import shutdown_grace_period_s, task_container_config
from mesoslite.agent.master_link import MasterLink
from mesoslite.agent.recovered_task_group import RecoveredTaskGroup
from mesoslite.agent.recovery import RecoveryReport, recover_agent
from mesoslite.agent.sandbox import SandboxLayout, create_sandbox
from mesoslite.agent.state import (
    Executor,
    ExecutorKind,
    ExecutorPhase,
    Framework,
    new_task,
)
from mesoslite.agent.status_updates import StatusUpdateManager, is_terminal
from mesoslite.executor.command import CommandExecutor
from mesoslite.executor.context import ExecutorContext, new_status
from mesoslite.executor.default import DefaultExecutor
from mesoslite.executor.ids import new_uuid
from mesoslite.proto import executor_pb2, internal_pb2, mesos_pb2
from mesoslite.runtime.api import ContainerConfig, Containerizer, Termination
from mesoslite.transport.channel import MasterConnector
from mesoslite.wire.routing import Router

__all__ = ["AGENT_CAPABILITIES", "Agent"]

log = logging.getLogger(__name__)

_TS = mesos_pb2.TaskState
_Status = mesos_pb2.TaskStatus
_FrameworkCapability = mesos_pb2.FrameworkInfo.Capability
_AgentCapability = mesos_pb2.AgentInfo.Capability

AGENT_CAPABILITIES = (
    _AgentCapability.MULTI_ROLE,
    _AgentCapability.HIERARCHICAL_ROLE,
    _AgentCapability.RESERVATION_REFINEMENT,
    _AgentCapability.AGENT_DRAINING,
    _AgentCapability.TASK_RESOURCE_LIMITS,
)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        connector: MasterConnector,
        containerizer: Containerizer,
        *,
        port: int | None = None,
    ) -> None:
        """`port`: the port the agent's listener really has (when `config.port` is 0)."""
        self.config = config
        self.containerizer = containerizer
        self.port = port if port is not None else config.port
        self.endpoint = f"{config.public_ip}:{self.port}"
        self.layout = SandboxLayout(config.work_dir)
        self.agent_info = mesos_pb2.AgentInfo(hostname=config.advertised_hostname, port=self.port)
        self.master_info: mesos_pb2.MasterInfo | None = None
        self.frameworks: dict[str, Framework] = {}
        # Oldest first; a framework that comes back takes its history along.
        self.completed_frameworks: OrderedDict[str, Framework] = OrderedDict()
        self.status_updates = StatusUpdateManager(
            self._forward_update,
            retry_initial_s=config.status_update_retry_initial_s,
            retry_max_s=config.status_update_retry_max_s,
        )
        self.start_time = time.time()
        self.master_link = MasterLink(
            connector,
            registration=self._registration,
            on_registered=self._registered,
            on_message=self._dispatch,
            on_disconnected=self.status_updates.pause,
            backoff_factor_s=config.registration_backoff_factor_s,
            backoff_max_s=config.registration_backoff_max_s,
        )
        # False until run() has recovered (the executor API answers 503 before that).
        self.recovered = False
        # What the last recovery found and how long it took (None before it ran).
        self.recovery_report: RecoveryReport | None = None
        self.terminal_task_counts: Counter[int] = Counter()
        self.failed_executor_count = 0
        self._group: TaskGroup | None = None
        self._stopping = False
        self._registered_event = anyio.Event()
        # Acknowledgements from the master, taken in order by one task.
        self._acks: deque[internal_pb2.StatusUpdateAcknowledgement] = deque()
        self._acks_queued = anyio.Event()
        self._recovery_started_s: float | None = None
        # Checkpoints of finished executors being removed, by (framework id, executor id).
        self._forgetting: dict[tuple[str, str], anyio.Event] = {}
        self.router = self._build_router()

    # ------------------------------------------------------------------ public

    @property
    def agent_id(self) -> str | None:
        return self.agent_info.id.value if self.agent_info.HasField("id") else None

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.endpoint}"

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Discover resources, then stay registered with the master until cancelled;
        `task_status` reports the first registration."""
        resources = await anyio.to_thread.run_sync(discover_resources, self.config)
        attributes = await anyio.to_thread.run_sync(discover_attributes, self.config)
        self.agent_info.resources.extend(resources)
        self.agent_info.attributes.extend(attributes)
        async with anyio.create_task_group() as group:
            self._group = group
            group.start_soon(self.status_updates.run)
            group.start_soon(self._acknowledge_queued)
            self._recovery_started_s = time.monotonic()
            self.recovery_report = await recover_agent(self)
            self.recovered = True
            await self.master_link.run(task_status=task_status)

    async def shutdown(self, *, keep_checkpointed: bool = False) -> None:
        """Stop every executor and task container this agent started: executors get
        SHUTDOWN, containers SIGTERM, and what is left after the kill grace period is
        destroyed. Safe to call while run() is being cancelled, and more than once.

        With `keep_checkpointed` only the process stops (SIGTERM, an upgrade): what the
        next start can recover — the executors of checkpointing frameworks — keeps
        running, and only the rest is stopped."""
        self._stopping = True
        kept: set[str] = set()
        for framework in self.frameworks.values():
            for executor in framework.executors.values():
                if keep_checkpointed and executor.checkpoint:
                    kept.update(_containers_of(executor))
                    if executor.events is not None:
                        # It reconnects to the next agent (and re-subscribes there).
                        executor.events.close()
                    continue
                if executor.events is not None:
                    executor.events.send(executor_pb2.Event(type=executor_pb2.Event.SHUTDOWN))
                    executor.events.close()
        container_ids = set(self.containerizer.containers()) - kept
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                for container_id in container_ids:
                    group.start_soon(self._stop_container, container_id)

    async def _stop_container(self, container_id: str) -> None:
        with contextlib.suppress(Exception):  # it may have ended meanwhile
            await self.containerizer.kill(container_id, signal.SIGTERM)
        with (
            anyio.move_on_after(self.config.default_kill_grace_period_s),
            contextlib.suppress(Exception),
        ):
            await self.containerizer.wait(container_id)
        await self._destroy_quietly(container_id)

    async def wait_registered(self) -> None:
        await self._registered_event.wait()

    # ------------------------------------------------------------------ master link

    @property
    def registered(self) -> bool:
        return self.master_link.registered

    def _registration(self) -> internal_pb2.AgentToMaster:
        message = internal_pb2.AgentToMaster()
        capabilities = [_AgentCapability(type=capability) for capability in AGENT_CAPABILITIES]
        if self.agent_id is None:
            register = message.register_agent
            register.agent_info.CopyFrom(self.agent_info)
            register.version = self.config.version
            register.capabilities.extend(capabilities)
            register.endpoint = self.endpoint
        else:
            reregister = message.reregister_agent
            reregister.agent_info.CopyFrom(self.agent_info)
            reregister.version = self.config.version
            reregister.capabilities.extend(capabilities)
            reregister.endpoint = self.endpoint
            self._fill_reregistration(reregister)
        return message

    def _fill_reregistration(self, message: internal_pb2.ReregisterAgent) -> None:
        for framework in self.frameworks.values():
            message.frameworks.append(framework.info)
            for executor in framework.executors.values():
                if executor.kind is not ExecutorKind.COMMAND and (
                    executor.phase is not ExecutorPhase.TERMINATED
                ):
                    message.executor_infos.append(executor.info)
                tasks = [*executor.launched_tasks.values(), *executor.terminated_tasks.values()]
                for task in tasks:
                    reported = message.tasks.add()
                    reported.CopyFrom(task)
                    # The update in flight, so that the master can take its ack at once.
                    head = self.status_updates.head(framework.id, task.task_id.value)
                    if head is not None:
                        reported.status_update_state = head.status.state
                        reported.status_update_uuid = head.status.uuid
                message.tasks.extend(views.queued_tasks(self, executor, framework))

    async def _registered(self, agent_id: str, master_info: mesos_pb2.MasterInfo) -> None:
        if self.agent_id is not None and self.agent_id != agent_id:
            log.warning("master gave a new agent id %s (was %s)", agent_id, self.agent_id)
        first = self.agent_id is None
        self.agent_info.id.value = agent_id
        self.master_info = master_info
        if first:
            await anyio.to_thread.run_sync(
                checkpoints.write_agent_info, self.layout, self.agent_info
            )
        log.info("registered with the master as agent %s", agent_id)
        report = self.recovery_report
        if report is not None and report.agent_id is not None and self._recovery_started_s:
            # What an agent restart costs its tasks: the time until the master has them.
            log.info(
                "re-registered with %d running tasks %.1f ms after recovery began",
                report.running_tasks,
                (time.monotonic() - self._recovery_started_s) * 1e3,
            )
            self._recovery_started_s = None
        self._registered_event.set()
        await self.status_updates.resume()

    def _dispatch(self, message: internal_pb2.MasterToAgent) -> None:
        kind = message.WhichOneof("message")
        if kind == "run_task":
            self._run_task(message.run_task)
        elif kind == "run_task_group":
            self._run_task_group(message.run_task_group)
        elif kind == "kill_task":
            self._kill_task(message.kill_task)
        elif kind == "status_update_acknowledgement":
            self._acks.append(message.status_update_acknowledgement)
            self._acks_queued.set()
        elif kind == "framework_to_executor":
            self._framework_message(message.framework_to_executor)
        elif kind == "shutdown_executor":
            shutdown = message.shutdown_executor
            self.shutdown_executor(shutdown.framework_id.value, shutdown.executor_id.value)
        elif kind == "shutdown_framework":
            self._shutdown_framework(message.shutdown_framework.framework_id.value)
        elif kind == "update_framework":
            self._update_framework(message.update_framework.framework_info)
        else:
            log.debug("ignoring %s", kind)

    async def send_to_master(self, message: internal_pb2.AgentToMaster) -> bool:
        return await self.master_link.send(message)

    async def _forward_update(self, update: internal_pb2.StatusUpdate) -> None:
        await self.send_to_master(internal_pb2.AgentToMaster(status_update=update))

    def task_group(self) -> TaskGroup:
        """The agent's own task group (for work that outlives a request)."""
        if self._group is None:
            raise RuntimeError("the agent is not running")
        return self._group

    # ------------------------------------------------------------------ frameworks

    def ensure_framework(self, info: mesos_pb2.FrameworkInfo) -> Framework:
        """The framework record for `info` (created, or updated with it)."""
        return self._ensure_framework(info)

    def _ensure_framework(self, info: mesos_pb2.FrameworkInfo) -> Framework:
        framework = self.frameworks.get(info.id.value)
        if framework is not None:
            framework.info.CopyFrom(info)
            return framework
        framework = Framework(
            info=info,
            completed_executors=deque(maxlen=self.config.max_completed_executors_per_framework),
        )
        previous = self.completed_frameworks.pop(framework.id, None)
        if previous is not None and not previous.terminating:
            framework.completed_executors.extend(previous.completed_executors)
        self.frameworks[framework.id] = framework
        return framework

    def _update_framework(self, info: mesos_pb2.FrameworkInfo) -> None:
        framework = self.frameworks.get(info.id.value)
        if framework is None:
            return
        framework.info.CopyFrom(info)
        # It has (re-)subscribed: its pending updates can reach it now, not at the next
        # retry (Mesos' agent does the same on UpdateFrameworkMessage).
        self.task_group().start_soon(self.status_updates.resend, framework.id)
        if self._checkpointing(framework) and self.agent_id is not None:
            self.task_group().start_soon(
                anyio.to_thread.run_sync,
                checkpoints.write_framework_info,
                self.layout,
                self.agent_id,
                framework.info,
            )

    def _shutdown_framework(self, framework_id: str) -> None:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        framework.terminating = True
        for executor in list(framework.executors.values()):
            self.shutdown_executor(framework_id, executor.id)
        self._maybe_remove_framework(framework)

    def _maybe_remove_framework(self, framework: Framework) -> None:
        """A framework without executors is done here (as in Mesos)."""
        if framework.executors:
            return
        if self.frameworks.get(framework.id) is framework:
            del self.frameworks[framework.id]
            self.completed_frameworks[framework.id] = framework
            self.completed_frameworks.move_to_end(framework.id)
            while len(self.completed_frameworks) > self.config.max_completed_frameworks:
                self.completed_frameworks.popitem(last=False)
            if framework.terminating:
                # Its updates can no longer reach anyone; an idle framework's may.
                self.status_updates.remove_framework(framework.id)

    def _checkpointing(self, framework: Framework) -> bool:
        return self.config.checkpoint and framework.checkpoint

    # ------------------------------------------------------------------ launching

    def _run_task(self, message: internal_pb2.RunTask) -> None:
        framework = self._ensure_framework(message.framework_info)
        task = message.task
        task_id = task.task_id.value
        if framework.terminating:
            log.warning(
                "dropping task %s of terminating framework %s", task.task_id.value, framework.id
            )
            return
        if task.HasField("executor"):
            info = mesos_pb2.ExecutorInfo()
            info.CopyFrom(task.executor)
            if not info.HasField("framework_id"):
                info.framework_id.CopyFrom(framework.info.id)
            kind = ExecutorKind.CUSTOM
        else:
            info = command_executor_info(framework.info, task)
            kind = ExecutorKind.COMMAND
        executor = framework.executors.get(info.executor_id.value)
        if executor is not None and (kind is ExecutorKind.COMMAND or executor.has_task(task_id)):
            # The master keeps task ids unique; a repeat is a duplicate delivery.
            log.warning("ignoring duplicate task %s", task_id)
            return
        if executor is not None and executor.phase in (
            ExecutorPhase.TERMINATING,
            ExecutorPhase.TERMINATED,
        ):
            self.task_group().start_soon(
                self._refuse_task, framework, task, "Executor is terminating"
            )
            return
        created = executor is None
        if executor is None:
            executor = self._create_executor(framework, info, kind, message.role, task)
        executor.task_infos[task.task_id.value] = task
        if executor.kind is ExecutorKind.COMMAND:
            executor.launched_tasks[task.task_id.value] = self._task_record(
                framework, executor, task
            )
        elif executor.kind is ExecutorKind.CUSTOM:
            if executor.phase is ExecutorPhase.RUNNING and executor.events is not None:
                self._deliver_task(framework, executor, task)
            else:
                executor.queued_tasks[task.task_id.value] = task
        else:
            self.task_group().start_soon(
                self._refuse_task, framework, task, "A task cannot join a default executor"
            )
            return
        if not created and self._checkpointing(framework):
            # New executors checkpoint their tasks as they start; this one already runs.
            self.task_group().start_soon(self._checkpoint_task, framework, executor, task)

    def _run_task_group(self, message: internal_pb2.RunTaskGroup) -> None:
        framework = self._ensure_framework(message.framework_info)
        info = mesos_pb2.ExecutorInfo()
        info.CopyFrom(message.executor_info)
        if not info.HasField("framework_id"):
            info.framework_id.CopyFrom(framework.info.id)
        group = message.task_group
        if framework.terminating:
            return
        kind = (
            ExecutorKind.CUSTOM
            if info.type == mesos_pb2.ExecutorInfo.CUSTOM
            else ExecutorKind.DEFAULT
        )
        executor = framework.executors.get(info.executor_id.value)
        if executor is not None and executor.phase in (
            ExecutorPhase.TERMINATING,
            ExecutorPhase.TERMINATED,
        ):
            for task in group.tasks:
                self.task_group().start_soon(
                    self._refuse_task, framework, task, "Executor is terminating"
                )
            return
        created = executor is None
        if executor is None:
            executor = self._create_executor(framework, info, kind, message.role)
        for task in group.tasks:
            executor.task_infos[task.task_id.value] = task
        if executor.kind is ExecutorKind.DEFAULT and isinstance(
            executor.runner, RecoveredTaskGroup
        ):
            for task in group.tasks:
                executor.task_infos.pop(task.task_id.value, None)
                self.task_group().start_soon(
                    self._refuse_task,
                    framework,
                    task,
                    "The executor was recovered after an agent restart and takes no new task "
                    "groups; launch them with a new executor id",
                )
            return
        if executor.kind is ExecutorKind.DEFAULT:
            for task in group.tasks:
                executor.launched_tasks[task.task_id.value] = self._task_record(
                    framework, executor, task
                )
            runner = executor.runner
            assert isinstance(runner, DefaultExecutor)
            runner.launch_group(group)
        elif executor.phase is ExecutorPhase.RUNNING and executor.events is not None:
            self._deliver_group(framework, executor, group)
        else:
            executor.queued_groups.append(group)
        if not created and self._checkpointing(framework):
            for task in group.tasks:
                self.task_group().start_soon(self._checkpoint_task, framework, executor, task)

    def task_record(
        self, framework: Framework, executor: Executor, task: mesos_pb2.TaskInfo
    ) -> mesos_pb2.Task:
        """A new Task (TASK_STAGING) for a TaskInfo this executor runs."""
        return self._task_record(framework, executor, task)

    def _task_record(
        self, framework: Framework, executor: Executor, task: mesos_pb2.TaskInfo
    ) -> mesos_pb2.Task:
        executor_id = None if executor.kind is ExecutorKind.COMMAND else executor.id
        return new_task(task, framework.info, self.agent_id or "", executor_id)

    def _deliver_task(
        self, framework: Framework, executor: Executor, task: mesos_pb2.TaskInfo
    ) -> None:
        """Hand a task to a subscribed custom executor (LAUNCH)."""
        executor.launched_tasks[task.task_id.value] = self._task_record(framework, executor, task)
        assert executor.events is not None
        executor.events.send(
            executor_pb2.Event(
                type=executor_pb2.Event.LAUNCH, launch=executor_pb2.Event.Launch(task=task)
            )
        )

    def _deliver_group(
        self, framework: Framework, executor: Executor, group: mesos_pb2.TaskGroupInfo
    ) -> None:
        for task in group.tasks:
            executor.launched_tasks[task.task_id.value] = self._task_record(
                framework, executor, task
            )
        assert executor.events is not None
        executor.events.send(
            executor_pb2.Event(
                type=executor_pb2.Event.LAUNCH_GROUP,
                launch_group=executor_pb2.Event.LaunchGroup(task_group=group),
            )
        )

    def deliver_queued(self, framework: Framework, executor: Executor) -> None:
        """After SUBSCRIBED: every queued task and group, in order."""
        queued_tasks, executor.queued_tasks = executor.queued_tasks, {}
        queued_groups, executor.queued_groups = executor.queued_groups, []
        for task in queued_tasks.values():
            self._deliver_task(framework, executor, task)
        for group in queued_groups:
            self._deliver_group(framework, executor, group)

    def _create_executor(
        self,
        framework: Framework,
        info: mesos_pb2.ExecutorInfo,
        kind: ExecutorKind,
        role: str,
        command_task: mesos_pb2.TaskInfo | None = None,
    ) -> Executor:
        container_id = new_uuid()
        directory = self.layout.executor_run_dir(
            self.agent_id or "", framework.id, info.executor_id.value, container_id
        )
        executor = Executor(
            info=info,
            kind=kind,
            container_id=container_id,
            directory=directory,
            checkpoint=self._checkpointing(framework),
            role=role,
            completed_tasks=deque(maxlen=self.config.max_completed_tasks_per_executor),
        )
        framework.executors[executor.id] = executor
        if kind is ExecutorKind.CUSTOM:
            executor.runner = CustomExecutorRunner(self, framework, executor)
        elif kind is ExecutorKind.COMMAND:
            assert command_task is not None
            executor.task_infos[command_task.task_id.value] = command_task
            executor.runner = CommandExecutor(
                self.executor_context(framework, executor), command_task
            )
        else:
            executor.runner = DefaultExecutor(self.executor_context(framework, executor))
        self.task_group().start_soon(self._run_executor, framework, executor)
        return executor

    def executor_context(self, framework: Framework, executor: Executor) -> ExecutorContext:
        """What a built-in executor (command, default) of this executor gets."""

        async def send_update(status: mesos_pb2.TaskStatus) -> None:
            await self.handle_status_update(framework, executor, status)

        async def prepare(
            task: mesos_pb2.TaskInfo, container_id: str, parent_id: str | None
        ) -> ContainerConfig:
            return await task_container_config(
                self, framework, executor, task, container_id, parent_id
            )

        return ExecutorContext(
            executor_info=executor.info,
            container_id=executor.container_id,
            containerizer=self.containerizer,
            prepare_task_container=prepare,
            send_update=send_update,
            task_killing_state=lambda: framework.has_capability(
                _FrameworkCapability.TASK_KILLING_STATE
            ),
            default_kill_grace_period_s=self.config.default_kill_grace_period_s,
            shutdown_grace_period_s=shutdown_grace_period_s(self.config, executor.info),
        )

    async def _run_executor(self, framework: Framework, executor: Executor) -> None:
        async def launch_and_supervise() -> Termination | None:
            forgetting = self._forgetting.get((framework.id, executor.id))
            if forgetting is not None:
                await forgetting.wait()
            if executor.checkpoint:
                await anyio.to_thread.run_sync(self._prepare_executor_files, framework, executor)
            else:
                # A few mkdir/open/symlink calls: cheaper inline than a thread hop.
                self._prepare_executor_files(framework, executor)
            runner = executor.runner
            if isinstance(runner, CommandExecutor):
                executor.phase = ExecutorPhase.RUNNING
                return await runner.run()
            if isinstance(runner, DefaultExecutor):
                executor.phase = ExecutorPhase.RUNNING
                await runner.run()
                return Termination(wait_status=0)
            if isinstance(runner, CustomExecutorRunner):
                return await runner.run()
            return None

        await self._supervise_executor(framework, executor, launch_and_supervise)

    def supervise_recovered(
        self,
        framework: Framework,
        executor: Executor,
        supervise: Callable[[], Awaitable[Termination | None]],
    ) -> None:
        """Take over an executor a restart recovered: `supervise` runs it to its end
        (its runner's resume), and the executor ends as a launched one would."""
        self.task_group().start_soon(self._supervise_executor, framework, executor, supervise)

    async def _supervise_executor(
        self,
        framework: Framework,
        executor: Executor,
        supervise: Callable[[], Awaitable[Termination | None]],
    ) -> None:
        termination: Termination | None = None
        try:
            termination = await supervise()
        except Exception as exc:
            log.exception("executor %s failed", executor.id)
            termination = Termination(
                wait_status=None,
                state=_TS.TASK_FAILED,
                reason=_Status.REASON_CONTAINER_LAUNCH_FAILED,
                message=f"Failed to launch executor: {exc}",
            )
        finally:
            if not self._stopping:
                with anyio.CancelScope(shield=True):
                    await self._executor_terminated(framework, executor, termination)

    def _prepare_executor_files(self, framework: Framework, executor: Executor) -> None:
        """Sandbox and checkpoints of a new executor (in a worker thread when it
        checkpoints: those writes are fsynced)."""
        # A command task's spawn opens (creates) its stdout and stderr itself: two inodes
        # fewer made on the loop.
        create_sandbox(executor.directory, stdio=executor.kind is not ExecutorKind.COMMAND)
        if not executor.checkpoint or self.agent_id is None:
            return
        checkpoints.write_framework_info(self.layout, self.agent_id, framework.info)
        checkpoints.write_executor_info(self.layout, self.agent_id, framework.id, executor.info)
        for task in list(executor.task_infos.values()):
            checkpoints.write_task_info(
                self.layout, self.agent_id, framework.id, executor.id, executor.container_id, task
            )

    async def _checkpoint_task(
        self, framework: Framework, executor: Executor, task: mesos_pb2.TaskInfo
    ) -> None:
        if self.agent_id is None:
            return
        await anyio.to_thread.run_sync(
            checkpoints.write_task_info,
            self.layout,
            self.agent_id,
            framework.id,
            executor.id,
            executor.container_id,
            task,
        )

    # ------------------------------------------------------------------ status updates

    async def handle_status_update(
        self, framework: Framework, executor: Executor | None, status: mesos_pb2.TaskStatus
    ) -> None:
        """The agent's half of every update (executor UPDATE calls, built-in executors,
        agent-generated ones): complete the status, track the task, hand it to the
        status update manager. Returns once the update is durable."""
        status.agent_id.value = self.agent_id or ""
        if executor is not None:
            status.executor_id.CopyFrom(executor.info.executor_id)
            await complete_container_status(
                status,
                self.containerizer,
                container_id=executor.container_id,
                executor_pid=executor.pid,
                agent_ip=self.config.public_ip,
            )
        if not status.HasField("timestamp"):
            status.timestamp = time.time()
        task_id = status.task_id.value
        if self.status_updates.seen(framework.id, task_id, status.uuid):
            return
        if executor is not None:
            self._track_state(executor, status)
        update = internal_pb2.StatusUpdate(status=status)
        update.framework_id.value = framework.id
        log_path = None
        if executor is not None and executor.checkpoint and self.agent_id is not None:
            log_path = self.layout.task_updates_file(
                self.agent_id, framework.id, executor.id, executor.container_id, task_id
            )
        await self.status_updates.update(update, log_path=log_path)

    def _track_state(self, executor: Executor, status: mesos_pb2.TaskStatus) -> None:
        task_id = status.task_id.value
        task = executor.launched_tasks.get(task_id)
        if task is None:
            return
        task.state = status.state
        recorded = task.statuses.add()
        recorded.CopyFrom(status)
        recorded.ClearField("data")
        if is_terminal(status.state):
            del executor.launched_tasks[task_id]
            executor.terminated_tasks[task_id] = task
            self.terminal_task_counts[status.state] += 1

    async def _acknowledge_queued(self) -> None:
        """Acknowledgements in arrival order, in this one task: one that needs no disk
        write completes without suspending, so a burst of them costs no task each. One
        that appends to a checkpoint gets a task of its own (fsyncs overlap)."""
        while True:
            while self._acks:
                ack = self._acks.popleft()
                if self.status_updates.writes_to_disk(ack.framework_id.value, ack.task_id.value):
                    self.task_group().start_soon(self._acknowledge, ack)
                else:
                    await self._acknowledge(ack)
            self._acks_queued = anyio.Event()
            await self._acks_queued.wait()

    async def _acknowledge(self, ack: internal_pb2.StatusUpdateAcknowledgement) -> None:
        framework_id, task_id = ack.framework_id.value, ack.task_id.value
        acknowledged = await self.status_updates.acknowledge(framework_id, task_id, ack.uuid)
        if acknowledged is None or not is_terminal(acknowledged.status.state):
            return
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return
        executor = framework.executor_of_task(task_id)
        if executor is None:
            return
        task = executor.terminated_tasks.pop(task_id, None)
        if task is not None:
            executor.completed_tasks.append(task)
        executor.task_infos.pop(task_id, None)
        if executor.phase is ExecutorPhase.TERMINATED and not executor.terminated_tasks:
            self._remove_executor(framework, executor)

    async def drop_undelivered_tasks(
        self,
        framework: Framework,
        executor: Executor,
        known_to_executor: Sequence[mesos_pb2.TaskInfo],
    ) -> None:
        """A recovered executor subscribed again: a task still in TASK_STAGING that it
        does not list never reached it before the agent stopped (Mesos' `subscribe`)."""
        listed = {task.task_id.value for task in known_to_executor}
        partition_aware = framework.has_capability(_FrameworkCapability.PARTITION_AWARE)
        for task_id, task in list(executor.launched_tasks.items()):
            if task.state != _TS.TASK_STAGING or task_id in listed:
                continue
            status = new_status(
                task_id,
                _TS.TASK_DROPPED if partition_aware else _TS.TASK_LOST,
                source=_Status.SOURCE_AGENT,
                message="Task was not delivered to the executor before the agent restarted",
                reason=_Status.REASON_AGENT_RESTARTED,
            )
            await self.handle_status_update(framework, executor, status)

    async def _refuse_task(self, framework: Framework, task: mesos_pb2.TaskInfo, why: str) -> None:
        partition_aware = framework.has_capability(_FrameworkCapability.PARTITION_AWARE)
        status = new_status(
            task.task_id.value,
            _TS.TASK_DROPPED if partition_aware else _TS.TASK_LOST,
            source=_Status.SOURCE_AGENT,
            message=why,
            reason=_Status.REASON_EXECUTOR_TERMINATED,
        )
        await self.handle_status_update(framework, None, status)

    # ------------------------------------------------------------------ kill, messages

    def _kill_task(self, message: internal_pb2.KillTask) -> None:
        framework = self.frameworks.get(message.framework_id.value)
        task_id = message.task_id.value
        if framework is None:
            log.warning("cannot kill task %s of unknown framework", task_id)
            return
        policy = message.kill_policy if message.HasField("kill_policy") else None
        executor = framework.executor_of_task(task_id)
        if executor is None:
            log.warning("cannot kill unknown task %s", task_id)
            info = mesos_pb2.TaskInfo(name=task_id)
            info.task_id.value = task_id
            self.task_group().start_soon(self._refuse_task, framework, info, "Cannot find executor")
            return
        if task_id in executor.terminated_tasks:
            return
        group = self.task_group()
        queued = executor.queued_tasks.pop(task_id, None)
        if queued is not None:
            group.start_soon(self._killed_during_launch, framework, executor, queued)
            return
        for queued_group in executor.queued_groups:
            if any(task.task_id.value == task_id for task in queued_group.tasks):
                # A group is delivered whole or not at all: killing one kills it.
                executor.queued_groups.remove(queued_group)
                for task in queued_group.tasks:
                    group.start_soon(self._killed_during_launch, framework, executor, task)
                return
        if executor.runner is not None:
            executor.runner.kill_task(task_id, policy)

    async def _killed_during_launch(
        self, framework: Framework, executor: Executor, task: mesos_pb2.TaskInfo
    ) -> None:
        status = new_status(
            task.task_id.value,
            _TS.TASK_KILLED,
            source=_Status.SOURCE_AGENT,
            message="Killed before delivery to the executor",
            reason=_Status.REASON_TASK_KILLED_DURING_LAUNCH,
        )
        executor.launched_tasks[task.task_id.value] = self._task_record(framework, executor, task)
        await self.handle_status_update(framework, executor, status)

    def _framework_message(self, message: internal_pb2.FrameworkToExecutor) -> None:
        framework = self.frameworks.get(message.framework_id.value)
        executor = framework.executors.get(message.executor_id.value) if framework else None
        if executor is None or executor.events is None:
            log.debug("dropping message for executor %s", message.executor_id.value)
            return
        executor.events.send(
            executor_pb2.Event(
                type=executor_pb2.Event.MESSAGE,
                message=executor_pb2.Event.Message(data=message.data),
            )
        )

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        framework = self.frameworks.get(framework_id)
        executor = framework.executors.get(executor_id) if framework else None
        if executor is None or executor.phase is ExecutorPhase.TERMINATED:
            return
        executor.phase = ExecutorPhase.TERMINATING
        if executor.runner is not None:
            executor.runner.shutdown()

    # ------------------------------------------------------------------ executor end

    async def _executor_terminated(
        self, framework: Framework, executor: Executor, termination: Termination | None
    ) -> None:
        executor.phase = ExecutorPhase.TERMINATED
        executor.termination = termination
        if executor.events is not None:
            executor.events.close()
            executor.events = None
        if executor.kind is not ExecutorKind.DEFAULT:
            await self._destroy_quietly(executor.container_id)
        # Whatever the executor did not finish fails with it, undelivered tasks too.
        undelivered = list(executor.queued_tasks.values())
        undelivered += [task for group in executor.queued_groups for task in group.tasks]
        executor.queued_tasks.clear()
        executor.queued_groups.clear()
        for info in undelivered:
            executor.launched_tasks[info.task_id.value] = self._task_record(
                framework, executor, info
            )
        for task_id in list(executor.launched_tasks):
            await self.handle_status_update(
                framework, executor, _executor_lost_status(task_id, termination)
            )
        if executor.kind is not ExecutorKind.COMMAND:
            wait_status = termination.wait_status if termination is not None else None
            if wait_status is None:
                wait_status = 0 if executor.kind is ExecutorKind.DEFAULT else -1
            else:
                self.failed_executor_count += int(wait_status != 0)
            exited = internal_pb2.ExitedExecutor(status=wait_status)
            exited.agent_id.value = self.agent_id or ""
            exited.framework_id.value = framework.id
            exited.executor_id.CopyFrom(executor.info.executor_id)
            await self.send_to_master(internal_pb2.AgentToMaster(exited_executor=exited))
        if not executor.terminated_tasks:
            self._remove_executor(framework, executor)

    def _remove_executor(self, framework: Framework, executor: Executor) -> None:
        if framework.executors.get(executor.id) is executor:
            del framework.executors[executor.id]
            framework.completed_executors.append(executor)
            if executor.checkpoint and self.agent_id is not None and not self._stopping:
                self._forget_checkpoint(framework.id, executor)
        self._maybe_remove_framework(framework)

    def _forget_checkpoint(self, framework_id: str, executor: Executor) -> None:
        """Every update of the executor is acknowledged: a restart has nothing to find in
        its checkpoint. A new executor with the same id waits for the removal before
        it writes its own (`_forgetting`)."""
        assert self.agent_id is not None
        key = (framework_id, executor.id)
        previous = self._forgetting.get(key)
        done = anyio.Event()
        self._forgetting[key] = done
        arguments = (self.layout, self.agent_id, framework_id, executor.id, executor.container_id)

        async def forget() -> None:
            try:
                if previous is not None:
                    await previous.wait()
                await anyio.to_thread.run_sync(checkpoints.forget_run, *arguments)
            finally:
                done.set()
                if self._forgetting.get(key) is done:
                    del self._forgetting[key]

        self.task_group().start_soon(forget)

    async def destroy_container_quietly(self, container_id: str) -> None:
        """Destroy a container that may have ended (or be unknown) already."""
        await self._destroy_quietly(container_id)

    async def _destroy_quietly(self, container_id: str) -> None:
        try:
            await self.containerizer.destroy(container_id)
        except Exception as exc:
            log.debug("destroying container %s: %s", container_id, exc)

    # ------------------------------------------------------------------ lookups

    def find_executor(
        self, framework_id: str, executor_id: str
    ) -> tuple[Framework, Executor] | None:
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return None
        executor = framework.executors.get(executor_id)
        if executor is None:
            return None
        return framework, executor

    def _build_router(self) -> Router:
        from mesoslite.agent.routes import build_router

        return build_router(self)


def _containers_of(executor: Executor) -> list[str]:
    """The executor's container and those its tasks run in."""
    runner = executor.runner
    if isinstance(runner, DefaultExecutor | RecoveredTaskGroup):
        return [executor.container_id, *runner.task_container_ids()]
    return [executor.container_id]


def _executor_lost_status(task_id: str, termination: Termination | None) -> mesos_pb2.TaskStatus:
    """The agent's update for a task whose executor ended under it."""
    if termination is not None and termination.state is not None:
        return new_status(
            task_id,
            termination.state,
            source=_Status.SOURCE_AGENT,
            message=termination.message or "Executor terminated",
            reason=termination.reason
            if termination.reason is not None
            else _Status.REASON_EXECUTOR_TERMINATED,
        )
    message = "Executor terminated"
    if termination is not None and termination.message:
        message = f"Executor terminated: {termination.message}"
    return new_status(
        task_id,
        _TS.TASK_FAILED,
        source=_Status.SOURCE_AGENT,
        message=message,
        reason=_Status.REASON_EXECUTOR_TERMINATED,
    )
