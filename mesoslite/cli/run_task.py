"""The framework behind `mesoslite execute`: subscribe, take one fitting offer, launch
one command task, follow its updates."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import anyio

from mesoslite.client.scheduler import SchedulerClient
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.resources import Resources

__all__ = ["run_task"]

_TERMINAL = {
    mesos_pb2.TASK_FINISHED,
    mesos_pb2.TASK_FAILED,
    mesos_pb2.TASK_KILLED,
    mesos_pb2.TASK_LOST,
    mesos_pb2.TASK_ERROR,
    mesos_pb2.TASK_DROPPED,
    mesos_pb2.TASK_GONE,
    mesos_pb2.TASK_GONE_BY_OPERATOR,
}


async def run_task(
    master: str,
    *,
    name: str,
    command: str,
    resources: list[mesos_pb2.Resource],
    environment: dict[str, str],
    role: str,
    user: str,
    wait: bool,
    offer_timeout_s: float,
    report: Callable[[str], None],
) -> tuple[str, str]:
    """Returns the last state name seen and its message."""
    framework = mesos_pb2.FrameworkInfo(user=user, name=f"mesoslite-execute ({name})")
    framework.roles.append(role)
    if not wait:
        # The task outlives this command: keep the framework registered after we leave.
        framework.failover_timeout = 7 * 24 * 3600.0
    framework.capabilities.add().type = mesos_pb2.FrameworkInfo.Capability.MULTI_ROLE
    framework.capabilities.add().type = mesos_pb2.FrameworkInfo.Capability.TASK_KILLING_STATE
    wanted = Resources(resources)
    task_id = f"{name}-{uuid.uuid4().hex[:8]}"
    launched = False
    last: tuple[str, str] = ("", "")

    async with SchedulerClient(master, framework) as client:
        with anyio.move_on_after(offer_timeout_s) as scope:
            async with client.subscription() as events:
                async for event in events:
                    if event.type == scheduler_pb2.Event.SUBSCRIBED:
                        report(
                            f"Subscribed with framework id {event.subscribed.framework_id.value}"
                        )
                    elif event.type == scheduler_pb2.Event.OFFERS:
                        for offer in event.offers.offers:
                            offered = Resources(offer.resources).without_allocation()
                            if launched or not offered.contains(wanted):
                                await client.decline([offer.id])
                                continue
                            task = mesos_pb2.TaskInfo(name=name)
                            task.task_id.value = task_id
                            task.agent_id.CopyFrom(offer.agent_id)
                            task.command.value = command
                            for key, value in environment.items():
                                variable = task.command.environment.variables.add()
                                variable.name, variable.value = key, value
                            for resource in resources:
                                placed = task.resources.add()
                                placed.CopyFrom(resource)
                                placed.allocation_info.role = offer.allocation_info.role
                            await client.launch(offer, [task])
                            launched = True
                            scope.deadline = float("inf")
                            report(f"Launched task {task_id} on agent {offer.agent_id.value}")
                    elif event.type == scheduler_pb2.Event.UPDATE:
                        status = event.update.status
                        state = mesos_pb2.TaskState.Name(status.state)
                        last = (state, status.message)
                        line = f"Received status update {state} for task {status.task_id.value}"
                        report(line + (f": {status.message}" if status.message else ""))
                        await client.acknowledge(status)
                        if status.state in _TERMINAL or (
                            not wait and status.state == mesos_pb2.TASK_RUNNING
                        ):
                            break
                    elif event.type == scheduler_pb2.Event.ERROR:
                        report(f"Error from the master: {event.error.message}")
                        last = ("ERROR", event.error.message)
                        break
                # Still subscribed: a framework whose task has ended leaves at once;
                # one whose task runs on stays registered (failover timeout above).
                if last[0] != "ERROR" and (wait or last[0] != "TASK_RUNNING"):
                    with anyio.CancelScope(shield=True):
                        await client.teardown()
        if scope.cancelled_caught:
            raise TimeoutError(
                f"no offer that fits the task arrived within {offer_timeout_s:.0f} s"
            )
    return last
