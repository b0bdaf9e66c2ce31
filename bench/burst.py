"""A v1 HTTP scheduler (protobuf) that launches a burst of tasks as fast as offers come,
for the end-to-end launch benchmarks: it packs as many tasks as each offer fits (at
most `batch` per ACCEPT), pipelines its calls (at most 64 in flight), acknowledges every
update, and measures tasks/s from the first ACCEPT to the last TASK_FINISHED and each
task's ACCEPT -> TASK_RUNNING latency."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from mesoslite.client.scheduler import SchedulerClient
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.wire import media

__all__ = ["BurstTasks", "launch_burst", "scalar_resources"]

_FAILED = (mesos_pb2.TASK_FAILED, mesos_pb2.TASK_LOST, mesos_pb2.TASK_ERROR, mesos_pb2.TASK_DROPPED)


@dataclass(frozen=True)
class BurstTasks:
    """What to launch: `make(index, offer)` builds task number `index`, which uses
    `cpus` and `mem_mb` (so that the scheduler knows how many fit an offer)."""

    make: Callable[[int, mesos_pb2.Offer], mesos_pb2.TaskInfo]
    cpus: float
    mem_mb: float


def scalar_resources(task: mesos_pb2.TaskInfo, offer: mesos_pb2.Offer, **amounts: float) -> None:
    """Add `name=amount` scalars to the task, in the offer's allocation role."""
    for name, amount in amounts.items():
        resource = task.resources.add(name=name, type=mesos_pb2.Value.SCALAR)
        resource.scalar.value = amount
        resource.allocation_info.role = offer.allocation_info.role


async def launch_burst(
    master: str,
    name: str,
    tasks: BurstTasks,
    total: int,
    batch: int,
    first_index: int = 0,
) -> tuple[float, list[float]]:
    """Launch tasks `first_index` .. `first_index + total - 1`; returns tasks/s and the
    ACCEPT -> RUNNING latencies (seconds)."""
    framework = mesos_pb2.FrameworkInfo(user="root", name=name)
    accepted_at: dict[str, float] = {}
    running_latency: list[float] = []
    finished = 0
    next_index = first_index
    end_index = first_index + total
    first_accept = 0.0
    done_at = 0.0
    # Calls are pipelined, as a v1 scheduler may: acknowledgements and launches go out
    # concurrently instead of one round trip at a time.
    in_flight = anyio.Semaphore(64)

    async def send(call: Callable[[], Awaitable[None]]) -> None:
        async with in_flight:
            await call()

    async with (
        SchedulerClient(master, framework, content_type=media.PROTOBUF) as client,
        client.subscription() as events,
    ):
        async with anyio.create_task_group() as calls:
            async for event in events:
                if event.type == scheduler_pb2.Event.OFFERS:
                    for offer in event.offers.offers:
                        cpus = sum(r.scalar.value for r in offer.resources if r.name == "cpus")
                        mem = sum(r.scalar.value for r in offer.resources if r.name == "mem")
                        fits = int(min(cpus / tasks.cpus, mem / tasks.mem_mb))
                        count = min(fits, end_index - next_index, batch)
                        if count <= 0:
                            # Everything is launched: a scheduler with nothing left to
                            # run declines for long (else the offer comes right back).
                            refuse_s = 3600.0 if next_index >= end_index else 0.0
                            decline = functools.partial(
                                client.decline, [offer.id], refuse_seconds=refuse_s
                            )
                            calls.start_soon(send, decline)
                            continue
                        launched = [tasks.make(next_index + i, offer) for i in range(count)]
                        next_index += count
                        now = time.perf_counter()
                        first_accept = first_accept or now
                        for task in launched:
                            accepted_at[task.task_id.value] = now
                        launch = functools.partial(
                            client.launch, offer, launched, refuse_seconds=0.0
                        )
                        calls.start_soon(send, launch)
                elif event.type == scheduler_pb2.Event.UPDATE:
                    status = event.update.status
                    task_id = status.task_id.value
                    if status.state == mesos_pb2.TASK_RUNNING and task_id in accepted_at:
                        running_latency.append(time.perf_counter() - accepted_at[task_id])
                    calls.start_soon(send, functools.partial(client.acknowledge, status))
                    if status.state == mesos_pb2.TASK_FINISHED:
                        finished += 1
                    elif status.state in _FAILED:
                        raise RuntimeError(f"task {task_id} ended {status.state}: {status.message}")
                    if finished == total:
                        done_at = time.perf_counter()
                        break
        # Every acknowledgement has been answered; the framework leaves.
        await client.teardown()
    return total / (done_at - first_accept), running_latency
