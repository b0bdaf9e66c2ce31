"""The unified containerizer: one state machine per container.

    PROVISIONING -> PREPARING -> FETCHING -> ISOLATING -> RUNNING -> DESTROYING
         \\______________\\___________\\___________\\___________/
                      (destroy or failure at any step)

PROVISIONING  the image's root filesystem is made (skipped without an image)
PREPARING     isolators prepare in table order; their LaunchInfos are merged
FETCHING      the command's URIs land in the sandbox
ISOLATING     the launcher starts the process (held before exec where it can be held);
              isolators isolate(pid) in table order; then the process is released
RUNNING       a pidfd on the event loop waits for the exit (no thread, no helper process)
DESTROYING    everything left is killed, isolators clean up in reverse order

Fetching comes before the fork, unlike Mesos: the posix launcher's spawn is also its
exec, so the sandbox must be complete before it; fetching needs no pid.

Use it as an async context manager: it owns the task group that supervises containers.
A container that has ended leaves the live set; its Termination stays available to
wait()/destroy() (the most recent `terminations_kept` of them).

Checkpointed containers (config.checkpoint) need a `runtime_dir`: they are started by
the container reaper (see `reaper.py`), which outlives the agent and records their exit
status; their ContainerRecord is written atomically before launch() returns. Other
containers leave a launch mark there while they run (`launch_marks.py`). recover()
re-attaches to the checkpointed ones the agent still knows, reports those that ended
while it was down, and destroys the rest: unknown records, every marked container, and
(with the linux launcher) every container cgroup without a record.

Nested containers (`parent_id`) are launched only under a running parent, inherit its
user and, without an image of their own, its root filesystem; they share its
namespaces as `nesting.py` says. A parent is destroyed only after its nested
containers. DEBUG containers (`task exec` sessions) skip the isolators altogether: they
join everything of their parent. Containers with a TTY, and DEBUG ones, get an I/O
switchboard (`io_switchboard.py`); a `pause` container runs the pause program.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from mesoslite.proto import mesos_pb2
from mesoslite.runtime import linux_syscalls as sys_
from mesoslite.runtime import procfs
from mesoslite.runtime.api import ContainerClass, ContainerConfig, ContainerState, Termination
from mesoslite.runtime.checkpoint import (
    ContainerRecord,
    read_records,
    remove_record,
    write_record,
)
from mesoslite.runtime.command import ResolvedCommand, resolve_command
from mesoslite.runtime.errors import (
    ContainerExistsError,
    ContainerLaunchError,
    UnknownContainerError,
    UnsupportedContainerError,
)
from mesoslite.runtime.exits import WatchedProcess, describe_wait_status
from mesoslite.runtime.fetching import Fetcher
from mesoslite.runtime.image_user import image_user
from mesoslite.runtime.io_switchboard import IOSwitchboard, needs_switchboard
from mesoslite.runtime.isolator import (
    Isolator,
    IsolatorTable,
    LaunchInfo,
    Limitation,
    RecoveredContainer,
)
from mesoslite.runtime.isolators.posix import PosixCpuIsolator, PosixMemIsolator
from mesoslite.runtime.launch_marks import LaunchMark, LaunchMarks
from mesoslite.runtime.launcher import (
    Launcher,
    LaunchError,
    LaunchRequest,
    ParentLink,
    PosixLauncher,
    Supervisor,
    UserIdentity,
)
from mesoslite.runtime.pause import PAUSE_PROGRAM_NAME, write_pause_program
from mesoslite.runtime.provisioner.image_command import apply_image_config
from mesoslite.runtime.provisioning import ImageProvisioner
from mesoslite.runtime.reaper_client import ReaperClient, SupervisedProcess
from mesoslite.runtime.reaper_protocol import read_exit_record

__all__ = ["MesosContainerizer"]

_log = logging.getLogger(__name__)

# How long recovery waits for a SIGKILLed orphan to be gone before cleaning up after it.
_ORPHAN_EXIT_WAIT_S = 5.0

_NEXT_STATES: dict[str, frozenset[str]] = {
    ContainerState.PROVISIONING: frozenset({ContainerState.PREPARING, ContainerState.DESTROYING}),
    ContainerState.PREPARING: frozenset({ContainerState.FETCHING, ContainerState.DESTROYING}),
    ContainerState.FETCHING: frozenset({ContainerState.ISOLATING, ContainerState.DESTROYING}),
    ContainerState.ISOLATING: frozenset({ContainerState.RUNNING, ContainerState.DESTROYING}),
    ContainerState.RUNNING: frozenset({ContainerState.DESTROYING}),
    ContainerState.DESTROYING: frozenset(),
}


@dataclass
class _Container:
    container_id: str
    config: ContainerConfig
    state: str = ContainerState.PROVISIONING
    handle: WatchedProcess | None = None
    pid: int | None = None
    # Isolators whose prepare() ran: those are cleaned up.
    prepared: list[Isolator] = field(default_factory=list)
    provisioned: bool = False
    launch_scope: anyio.CancelScope | None = None
    # Set by destroy()/kill(SIGKILL) so the exit is not read as the task's own failure.
    destroy_requested: bool = False
    termination: Termination | None = None
    ended: anyio.Event = field(default_factory=anyio.Event)
    # Ids of its nested containers (destroyed before it).
    children: set[str] = field(default_factory=set)
    switchboard: IOSwitchboard | None = None
    # What it was launched with (DEBUG children take its cgroups, working directory and
    # environment from here).
    launch_info: LaunchInfo | None = None
    environment: dict[str, str] = field(default_factory=dict)

    def transition(self, state: str) -> None:
        if state not in _NEXT_STATES[self.state]:
            raise RuntimeError(f"container {self.container_id}: {self.state} -> {state}")
        self.state = state


class MesosContainerizer:
    """Implements `mesoslite.runtime.api.Containerizer`."""

    def __init__(
        self,
        *,
        launcher: Launcher | None = None,
        isolators: Iterable[Isolator] | None = None,
        provisioner: ImageProvisioner | None = None,
        fetcher: Fetcher | None = None,
        runtime_dir: Path | None = None,
        reaper_command: list[str] | None = None,
        terminations_kept: int = 4096,
    ) -> None:
        """`runtime_dir`: where checkpoints and the reaper live (needed for checkpointed
        containers and recovery); `reaper_command` overrides how the reaper starts."""
        self._launcher: Launcher = launcher if launcher is not None else PosixLauncher()
        self._isolators = IsolatorTable(
            isolators if isolators is not None else (PosixCpuIsolator(), PosixMemIsolator())
        )
        self._provisioner = provisioner
        self._fetcher = fetcher
        self._terminations_kept = terminations_kept
        self._containers: dict[str, _Container] = {}
        self._terminations: OrderedDict[str, Termination] = OrderedDict()
        self._task_group: TaskGroup | None = None
        self._runtime_dir = runtime_dir
        self._marks = LaunchMarks(runtime_dir) if runtime_dir is not None else None
        self._reaper = (
            ReaperClient(runtime_dir, reaper_command) if runtime_dir is not None else None
        )
        # Written on first use: into runtime_dir, or a private directory removed on exit.
        self._pause_program: Path | None = None
        self._private_dir: Path | None = None

    @property
    def isolators(self) -> IsolatorTable:
        return self._isolators

    async def __aenter__(self) -> MesosContainerizer:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        # Containers keep running (an agent restart recovers checkpointed ones); only
        # the supervision stops.
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, traceback)
        finally:
            self._task_group = None
            if self._reaper is not None:
                self._reaper.close()
            if self._marks is not None:
                self._marks.close()
            for container in self._containers.values():
                if container.handle is not None:
                    container.handle.close()
                if container.switchboard is not None:
                    container.switchboard.close()
            if self._private_dir is not None:
                shutil.rmtree(self._private_dir, ignore_errors=True)

    # -- queries -------------------------------------------------------------------

    def containers(self) -> list[str]:
        return list(self._containers)

    def state(self, container_id: str) -> str:
        """The container's ContainerState value."""
        return self._get(container_id).state

    def _get(self, container_id: str) -> _Container:
        try:
            return self._containers[container_id]
        except KeyError:
            raise UnknownContainerError(container_id) from None

    # -- launch --------------------------------------------------------------------

    async def launch(self, container_id: str, config: ContainerConfig) -> int:
        if self._task_group is None:
            raise RuntimeError("use the containerizer inside `async with`")
        if container_id in self._containers or container_id in self._terminations:
            raise ContainerExistsError(container_id)
        info = config.container_info
        if info is not None and info.HasField("type") and info.type != info.MESOS:
            raise UnsupportedContainerError()
        parent = self._parent_for(config)
        if parent is not None:
            assert parent.pid is not None
            config = dataclasses.replace(
                config,
                user=config.user if config.user is not None else parent.config.user,
                parent_pid=parent.pid,
            )
            parent.children.add(container_id)
        container = _Container(container_id, config)
        self._containers[container_id] = container
        failure: BaseException | None = None
        with anyio.CancelScope() as scope:
            container.launch_scope = scope
            try:
                await self._launch_steps(container)
            except BaseException as error:
                # Cancellation included: whatever was prepared must be undone below.
                failure = error
        container.launch_scope = None
        destroyed = scope.cancel_called
        if failure is None and not destroyed:
            assert container.pid is not None
            return container.pid
        interrupted = (
            failure if failure is not None and not isinstance(failure, Exception) else None
        )
        if destroyed or interrupted is not None:
            why = "destroyed" if destroyed else "interrupted"
            message = f"{why} during launch ({container.state})"
            termination = Termination(wait_status=None, message=message)
        else:
            message = str(failure)
            termination = Termination(
                wait_status=None,
                state=mesos_pb2.TASK_FAILED,
                reason=mesos_pb2.TaskStatus.REASON_CONTAINER_LAUNCH_FAILED,
                message=message,
            )
        with anyio.CancelScope(shield=True):
            await self._teardown(container, termination)
        if interrupted is not None and not destroyed:
            # The caller's own cancellation (or exit) goes on up as it came.
            raise interrupted
        raise ContainerLaunchError(message) from (None if destroyed else failure)

    def _parent_for(self, config: ContainerConfig) -> _Container | None:
        """The running parent of a nested container (None for a top-level one)."""
        if config.parent_id is None:
            if config.container_class is ContainerClass.DEBUG:
                raise ContainerLaunchError("a DEBUG container needs a parent container")
            return None
        parent = self._containers.get(config.parent_id)
        if parent is None:
            raise ContainerLaunchError(f"Parent container {config.parent_id} does not exist")
        if parent.state == ContainerState.DESTROYING:
            raise ContainerLaunchError(
                f"Parent container {config.parent_id} is in 'DESTROYING' state"
            )
        if parent.state != ContainerState.RUNNING or parent.pid is None:
            raise ContainerLaunchError(f"Parent container {config.parent_id} is not running yet")
        return parent

    def _pause_command(self) -> ResolvedCommand:
        if self._pause_program is None:
            directory = self._runtime_dir
            if directory is None:
                self._private_dir = Path(tempfile.mkdtemp(prefix="mesoslite-runtime-"))
                directory = self._private_dir
            self._pause_program = write_pause_program(directory)
            if self._pause_program is None:
                raise LaunchError("no pause program for this machine's architecture")
        return ResolvedCommand(str(self._pause_program), [PAUSE_PROGRAM_NAME])

    async def _launch_steps(self, container: _Container) -> None:
        if container.config.container_class is ContainerClass.DEBUG:
            await self._launch_debug(container)
            return
        config = container.config
        container_id = container.container_id
        container_info = config.container_info
        image_working_directory: str | None = None
        image_user_spec: str | None = None
        parent = self._containers.get(config.parent_id) if config.parent_id else None
        if container_info is not None and container_info.mesos.HasField("image"):
            if self._provisioner is None:
                raise LaunchError("the container has an image but no provisioner is set up")
            mount_points = [
                point
                for isolator in self._isolators.in_order()
                for point in isolator.image_mount_points()
            ]
            provisioned = await self._provisioner.provision(
                container_id, container_info.mesos.image, mount_points=mount_points
            )
            container.provisioned = True
            # The image's Entrypoint/Cmd/Env/User fill what the task leaves out; the
            # agent's environment wins over the image's.
            image_launch = apply_image_config(config.command, provisioned.config)
            config = dataclasses.replace(
                config,
                rootfs=provisioned.rootfs,
                command=image_launch.command,
                environment={**image_launch.environment, **config.environment},
            )
            container.config = config
            image_working_directory = image_launch.working_dir
            if config.user is None:
                image_user_spec = image_launch.user
        elif parent is not None and parent.config.rootfs is not None:
            # No image of its own: it runs in its parent's root filesystem.
            config = dataclasses.replace(config, rootfs=parent.config.rootfs)
            container.config = config

        container.transition(ContainerState.PREPARING)
        launch_info = LaunchInfo()
        if parent is not None:
            # A nested container is on its parent's network, with its parent's hostname.
            launch_info.enter_namespaces = sys_.CLONE_NEWNET | sys_.CLONE_NEWUTS
        for isolator in self._isolators.in_order():
            container.prepared.append(isolator)
            contribution = await isolator.prepare(container_id, config)
            if contribution is not None:
                launch_info.merge(contribution)
        if image_working_directory:
            launch_info.working_directory = image_working_directory

        container.transition(ContainerState.FETCHING)
        if config.command.uris:
            if self._fetcher is None:
                raise LaunchError("the command has URIs but no fetcher is set up")
            await self._fetcher.fetch(
                container_id, list(config.command.uris), config.sandbox, config.user
            )

        container.transition(ContainerState.ISOLATING)
        environment = dict(config.environment)
        environment.update(launch_info.environment)
        user = None
        if config.user is not None:
            user = UserIdentity.lookup(config.user)
        elif image_user_spec is not None and config.rootfs is not None:
            user = image_user(image_user_spec, config.rootfs)
        if needs_switchboard(config) and config.checkpoint:
            # Its I/O relay lives in the agent: it cannot outlive the agent anyway.
            config = dataclasses.replace(config, checkpoint=False)
            container.config = config
        supervisor: Supervisor | None = None
        if config.checkpoint:
            if self._reaper is None or self._task_group is None:
                raise LaunchError("checkpointed containers need the containerizer's runtime_dir")
            await self._reaper.start(self._task_group)
            supervisor = self._reaper
        elif (
            self._launcher.forks_through_reaper
            and self._reaper is not None
            and self._task_group is not None
            and not needs_switchboard(config)
        ):
            # Cheaper than forking the agent (see reaper.py); a switchboard's
            # descriptors stay in the agent, so those containers fork here.
            await self._reaper.start(self._task_group)
            supervisor = self._reaper.forking()
        if config.pause:
            command = self._pause_command()
        else:
            command = resolve_command(config.command, environment, config.rootfs)
        request = LaunchRequest(
            container_id=container_id,
            command=command,
            environment=environment,
            sandbox=config.sandbox,
            user=user,
            launch_info=launch_info,
            supervisor=supervisor,
            parent=ParentLink(parent.container_id, parent.pid)
            if parent is not None and parent.pid is not None
            else None,
        )
        container.launch_info = launch_info
        container.environment = environment
        pid = await self._start_process(container, request)
        if not config.checkpoint and self._runtime_dir is not None:
            self._mark(container)
        for isolator in self._isolators.in_order():
            await isolator.isolate(container_id, pid)
        self._launcher.release(container_id)
        if config.checkpoint:
            await self._checkpoint(container)

        container.transition(ContainerState.RUNNING)
        assert self._task_group is not None
        self._task_group.start_soon(self._supervise, container)

    async def _start_process(self, container: _Container, request: LaunchRequest) -> int:
        """The launcher's part, with the container's switchboard (if it needs one)
        providing stdin/stdout/stderr; returns the pid."""
        config = container.config
        if needs_switchboard(config):
            tty_info = (
                config.container_info.tty_info
                if (
                    config.container_info is not None and config.container_info.HasField("tty_info")
                )
                else None
            )
            switchboard = IOSwitchboard(
                container.container_id,
                tty_info=tty_info,
                log_directory=config.sandbox,
                wait_for_connection=config.container_class is ContainerClass.DEBUG,
            )
            container.switchboard = switchboard
            request = dataclasses.replace(request, stdio=switchboard.open())
        container.handle = await self._launcher.launch(request)
        container.pid = container.handle.pid
        if container.switchboard is not None:
            assert self._task_group is not None
            container.switchboard.start(self._task_group)
        return container.pid

    async def _launch_debug(self, container: _Container) -> None:
        """A DEBUG container: no isolator of its own; it enters every namespace of its
        parent, joins its cgroups, inherits its environment and working directory."""
        config = container.config
        parent = self._containers.get(config.parent_id or "")
        if parent is None or parent.pid is None or parent.launch_info is None:
            raise LaunchError(f"Parent container {config.parent_id} does not exist")
        if config.container_info is not None and config.container_info.mesos.HasField("image"):
            raise LaunchError("a DEBUG container runs in its parent's image: it has none")
        container.transition(ContainerState.PREPARING)
        container.transition(ContainerState.FETCHING)
        container.transition(ContainerState.ISOLATING)
        parent_info = parent.launch_info
        launch_info = LaunchInfo(
            cgroup_join_files=list(parent_info.cgroup_join_files),
            late_cgroup_join_files=list(parent_info.late_cgroup_join_files),
            enter_namespaces=sys_.CLONE_NEWNS
            | sys_.CLONE_NEWPID
            | sys_.CLONE_NEWNET
            | sys_.CLONE_NEWUTS
            | sys_.CLONE_NEWIPC,
            working_directory=parent_info.working_directory or str(parent.config.sandbox),
            shares_parent_cgroups=True,
        )
        environment = {**parent.environment, **config.environment}
        user = UserIdentity.lookup(config.user) if config.user is not None else None
        request = LaunchRequest(
            container_id=container.container_id,
            command=resolve_command(config.command, environment, parent.config.rootfs),
            environment=environment,
            # The parent's: the working directory of a process without namespaces.
            sandbox=parent.config.sandbox,
            user=user,
            launch_info=launch_info,
            parent=ParentLink(parent.container_id, parent.pid),
        )
        container.launch_info = launch_info
        container.environment = environment
        await self._start_process(container, request)
        if self._runtime_dir is not None:
            self._mark(container)
        self._launcher.release(container.container_id)
        container.transition(ContainerState.RUNNING)
        assert self._task_group is not None
        self._task_group.start_soon(self._supervise, container)

    def _mark(self, container: _Container) -> None:
        """A container that dies with the agent is still found by the next one."""
        assert self._marks is not None and container.pid is not None
        sample = procfs.read_process(container.pid)
        start_ticks = sample.start_ticks if sample is not None else 0
        self._marks.write(LaunchMark(container.container_id, container.pid, start_ticks))

    async def _checkpoint(self, container: _Container) -> None:
        assert self._runtime_dir is not None and container.pid is not None
        runtime_dir, pid = self._runtime_dir, container.pid

        def write() -> None:
            sample = procfs.read_process(pid)
            record = ContainerRecord(
                container_id=container.container_id,
                config=container.config,
                pid=pid,
                start_ticks=sample.start_ticks if sample is not None else 0,
                state=ContainerState.RUNNING,
            )
            write_record(runtime_dir, record)

        await anyio.to_thread.run_sync(write)

    # -- supervision and teardown ---------------------------------------------------

    async def _supervise(self, container: _Container) -> None:
        assert container.handle is not None
        wait_status = await container.handle.wait()
        # Reaped: its pid may be recycled, so kill() must stop signalling it right now.
        container.transition(ContainerState.DESTROYING)
        with anyio.CancelScope(shield=True):
            limitation = None
            if not container.destroy_requested:
                limitation = await self._first_limitation(container)
            if limitation is not None:
                termination = Termination(
                    wait_status=wait_status,
                    state=mesos_pb2.TASK_FAILED,
                    reason=limitation.reason,
                    message=limitation.message,
                )
            else:
                termination = Termination(
                    wait_status=wait_status, message=describe_wait_status(wait_status)
                )
            await self._teardown(container, termination)

    async def _first_limitation(self, container: _Container) -> Limitation | None:
        for isolator in container.prepared:
            limitation = await isolator.limitation(container.container_id)
            if limitation is not None:
                return limitation
        return None

    @contextlib.asynccontextmanager
    async def _step(self, container_id: str, what: str) -> AsyncIterator[None]:
        """A cleanup step whose failure is logged, not raised: supervision must go on."""
        try:
            yield
        except Exception:
            _log.exception("container %s: %s failed", container_id, what)

    async def _teardown(self, container: _Container, termination: Termination) -> None:
        """Kill what is left, clean up in reverse, record the termination."""
        if container.state != ContainerState.DESTROYING:
            container.transition(ContainerState.DESTROYING)
        container_id = container.container_id
        try:
            if container.children:
                # Nested containers go first: they live in its namespaces and cgroups.
                async with anyio.create_task_group() as group:
                    for child_id in list(container.children):
                        group.start_soon(self._end_child, child_id)
            handle = container.handle
            if handle is not None and handle.try_reap() is None:
                # A launch that failed after the fork: through the pidfd, never a
                # recycled pid.
                handle.send_signal(signal.SIGKILL)
            async with self._step(container_id, "kill what is left"):
                await self._launcher.destroy(container_id, container.pid)
            if container.handle is not None:
                # Reaps a process the launch got as far as starting.
                await container.handle.wait()
                container.handle.close()
            if container.switchboard is not None:
                async with self._step(container_id, "drain the I/O switchboard"):
                    await container.switchboard.finish()
            # Every step runs even when one fails: a leaked cgroup beats three.
            for isolator in reversed(container.prepared):
                async with self._step(container_id, f"{isolator.name} cleanup"):
                    await isolator.cleanup(container_id)
            if container.provisioned and self._provisioner is not None:
                async with self._step(container_id, "release the root filesystem"):
                    await self._provisioner.destroy(container_id)
            if container.config.checkpoint and self._runtime_dir is not None:
                async with self._step(container_id, "remove the checkpoint"):
                    await anyio.to_thread.run_sync(remove_record, self._runtime_dir, container_id)
            elif self._runtime_dir is not None:
                async with self._step(container_id, "remove the launch mark"):
                    assert self._marks is not None
                    self._marks.remove(container_id)
        finally:
            if container.switchboard is not None:
                container.switchboard.close()
            parent = self._containers.get(container.config.parent_id or "")
            if parent is not None:
                parent.children.discard(container_id)
            container.termination = termination
            self._containers.pop(container_id, None)
            self._terminations[container_id] = termination
            while len(self._terminations) > self._terminations_kept:
                self._terminations.popitem(last=False)
            container.ended.set()

    # -- recovery ------------------------------------------------------------------

    async def recover(self, known_ids: set[str]) -> set[str]:
        if self._task_group is None:
            raise RuntimeError("use the containerizer inside `async with`")
        records: list[ContainerRecord] = []
        marks: list[LaunchMark] = []
        if self._runtime_dir is not None:
            records, _ = await anyio.to_thread.run_sync(read_records, self._runtime_dir)
            assert self._marks is not None
            marks = await anyio.to_thread.run_sync(self._marks.read)
        if records and self._reaper is not None:
            await self._reaper.start(self._task_group)
        recovered: list[_Container] = []
        orphans: list[ContainerRecord] = []
        for record in records:
            if record.container_id in known_ids and record.container_id not in self._containers:
                recovered.append(self._reattach(record))
            else:
                orphans.append(record)
        recovered_ids = {c.container_id for c in recovered}
        orphan_ids = {record.container_id for record in orphans}
        states = [RecoveredContainer(c.container_id, c.config, c.pid) for c in recovered]
        for isolator in self._isolators.in_order():
            await isolator.recover(states, orphan_ids)
        for container in recovered:
            self._containers[container.container_id] = container
            self._task_group.start_soon(self._supervise, container)
        for record in orphans:
            await self._destroy_orphan(record)
        marked_ids = set()
        for mark in marks:
            if mark.container_id not in self._containers:
                marked_ids.add(mark.container_id)
                await self._destroy_marked(mark)
        # Containers of the previous agent that left neither a record nor a mark.
        for orphan_id in await self._launcher.recover(recovered_ids | orphan_ids | marked_ids):
            await self._cleanup_isolators(orphan_id, self._isolators.in_reverse())
        if self._provisioner is not None:
            await self._provisioner.recover(recovered_ids)
        return recovered_ids

    def _process_of(self, record: ContainerRecord) -> WatchedProcess | None:
        """Its process if it still runs (same pid *and* start time), else None."""
        sample = procfs.read_process(record.pid)
        if sample is None or sample.state == "Z" or sample.start_ticks != record.start_ticks:
            return None
        if self._reaper is None:
            return None
        return self._reaper.reattach(record.container_id, record.pid)

    def _reattach(self, record: ContainerRecord) -> _Container:
        container = _Container(record.container_id, record.config)
        container.state = ContainerState.RUNNING
        container.pid = record.pid
        container.prepared = self._isolators.in_order()
        container.provisioned = record.config.rootfs is not None
        process = self._process_of(record)
        if process is None:
            # Ended while we were down: the reaper's record says how, if it could.
            process = SupervisedProcess(record.container_id, record.pid, None)
            exit_record = (
                read_exit_record(self._runtime_dir, record.container_id)
                if self._runtime_dir is not None
                else None
            )
            process.exited(
                exit_record[1] if exit_record is not None and exit_record[0] == record.pid else None
            )
        container.handle = process
        return container

    async def _destroy_orphan(self, record: ContainerRecord) -> None:
        process = self._process_of(record)
        if process is not None:
            # Its process group / cgroup first, while the pid is surely still its own.
            self._launcher.kill(record.container_id, record.pid, signal.SIGKILL)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            process.close()
        await self._launcher.destroy(record.container_id, record.pid if process else None)
        await self._cleanup_isolators(record.container_id, self._isolators.in_reverse())
        if record.config.rootfs is not None and self._provisioner is not None:
            await self._provisioner.destroy(record.container_id)
        assert self._runtime_dir is not None
        await anyio.to_thread.run_sync(remove_record, self._runtime_dir, record.container_id)

    async def _destroy_marked(self, mark: LaunchMark) -> None:
        """A non-checkpointed container of the previous agent: nobody reaps it for us
        (it was the dead agent's child), so its end is watched through a pidfd."""
        sample = procfs.read_process(mark.pid)
        alive = (
            sample is not None and sample.state != "Z" and sample.start_ticks == mark.start_ticks
        )
        pidfd = None
        if alive:
            with contextlib.suppress(ProcessLookupError):
                pidfd = os.pidfd_open(mark.pid)
            self._launcher.kill(mark.container_id, mark.pid, signal.SIGKILL)
        try:
            await self._launcher.destroy(mark.container_id, mark.pid if alive else None)
            if pidfd is not None:
                # Isolators clean up cgroups, which must be empty by then.
                with anyio.move_on_after(_ORPHAN_EXIT_WAIT_S):
                    await anyio.wait_readable(pidfd)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        await self._cleanup_isolators(mark.container_id, self._isolators.in_reverse())
        assert self._marks is not None
        self._marks.remove(mark.container_id)

    async def _end_child(self, container_id: str) -> None:
        # Its termination stays for wait() (WAIT_NESTED_CONTAINER after the parent ended).
        child = self._containers.get(container_id)
        if child is not None:
            await self._end(child)

    async def _cleanup_isolators(self, container_id: str, isolators: list[Isolator]) -> None:
        for isolator in isolators:
            await isolator.cleanup(container_id)

    # -- the rest of the Containerizer protocol --------------------------------------

    async def wait(self, container_id: str) -> Termination:
        container = self._containers.get(container_id)
        if container is None:
            try:
                return self._terminations[container_id]
            except KeyError:
                raise UnknownContainerError(container_id) from None
        await container.ended.wait()
        assert container.termination is not None
        return container.termination

    async def kill(self, container_id: str, signal_number: int) -> None:
        container = self._get(container_id)
        if container.pid is None or container.state == ContainerState.DESTROYING:
            return
        if signal_number == signal.SIGKILL:
            container.destroy_requested = True
        self._launcher.kill(container_id, container.pid, signal_number)

    async def destroy(self, container_id: str) -> Termination:
        container = self._containers.get(container_id)
        if container is None:
            try:
                return self._terminations.pop(container_id)
            except KeyError:
                raise UnknownContainerError(container_id) from None
        termination = await self._end(container)
        self._terminations.pop(container_id, None)
        return termination

    async def _end(self, container: _Container) -> Termination:
        """Kill it (or stop its launch) and wait until it is torn down."""
        container.destroy_requested = True
        if container.launch_scope is not None:
            container.launch_scope.cancel()
        if container.pid is not None and container.state != ContainerState.DESTROYING:
            self._launcher.kill(container.container_id, container.pid, signal.SIGKILL)
        await container.ended.wait()
        assert container.termination is not None
        return container.termination

    async def usage(self, container_id: str) -> mesos_pb2.ResourceStatistics:
        container = self._get(container_id)
        statistics = mesos_pb2.ResourceStatistics()
        for isolator in container.prepared:
            statistics.MergeFrom(await isolator.usage(container_id))
        statistics.timestamp = time.time()
        return statistics

    async def status(self, container_id: str) -> mesos_pb2.ContainerStatus:
        container = self._get(container_id)
        status = mesos_pb2.ContainerStatus()
        status.container_id.CopyFrom(self._container_id_message(container))
        if container.pid is not None:
            status.executor_pid = container.pid
        for isolator in container.prepared:
            status.MergeFrom(await isolator.status(container_id))
        return status

    def _container_id_message(self, container: _Container) -> mesos_pb2.ContainerID:
        """Its ContainerID with the whole chain of parents."""
        message = mesos_pb2.ContainerID(value=container.container_id)
        link, parent_id = message, container.config.parent_id
        while parent_id is not None:
            link.parent.value = parent_id
            link = link.parent
            parent = self._containers.get(parent_id)
            parent_id = parent.config.parent_id if parent is not None else None
        return message

    async def prune_images(self, excluded_images: list[mesos_pb2.Image]) -> None:
        if self._provisioner is not None:
            await self._provisioner.prune_images(excluded_images)

    def switchboard(self, container_id: str) -> IOSwitchboard | None:
        return self._get(container_id).switchboard

    async def update(self, container_id: str, resources: list[mesos_pb2.Resource]) -> None:
        container = self._get(container_id)
        container.config = dataclasses.replace(container.config, resources=list(resources))
        for isolator in container.prepared:
            await isolator.update(container_id, resources)
