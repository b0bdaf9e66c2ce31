"""Killing a task's container the way Mesos' executors do: SIGTERM to every process of
the container, SIGKILL once the grace period has passed. A second kill request may
bring the SIGKILL forward but never push it back."""

from __future__ import annotations

import logging
import signal

import anyio
from anyio.abc import TaskGroup

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import Containerizer

__all__ = ["GracefulKill", "kill_grace_period_s"]

log = logging.getLogger(__name__)


def kill_grace_period_s(*policies: mesos_pb2.KillPolicy | None, default_s: float) -> float:
    """The grace period of the first policy that names one (KILL's, then the task's)."""
    for policy in policies:
        if policy is not None and policy.HasField("grace_period"):
            return max(0.0, policy.grace_period.nanoseconds / 1e9)
    return default_s


class GracefulKill:
    def __init__(self, containerizer: Containerizer, container_id: str) -> None:
        self._containerizer = containerizer
        self._container_id = container_id
        self._deadline: float | None = None
        self._changed = anyio.Event()

    @property
    def requested(self) -> bool:
        return self._deadline is not None

    def request(self, grace_period_s: float, task_group: TaskGroup) -> bool:
        """Start (or hurry) the kill. Returns True for the first request. The escalation
        runs in `task_group`, which the caller cancels once the container has ended."""
        deadline = anyio.current_time() + grace_period_s
        if self._deadline is None:
            self._deadline = deadline
            task_group.start_soon(self._escalate)
            return True
        if deadline < self._deadline:
            self._deadline = deadline
            self._changed.set()
        return False

    async def _signal(self, signal_number: int) -> None:
        try:
            await self._containerizer.kill(self._container_id, signal_number)
        except Exception as exc:  # the container may be gone already
            log.debug(
                "signal %d to container %s failed: %s", signal_number, self._container_id, exc
            )

    async def _escalate(self) -> None:
        await self._signal(signal.SIGTERM)
        while True:
            assert self._deadline is not None
            remaining = self._deadline - anyio.current_time()
            if remaining <= 0:
                break
            self._changed = anyio.Event()
            with anyio.move_on_after(remaining):
                await self._changed.wait()
        await self._signal(signal.SIGKILL)
