"""Command-task launch throughput through one agent, end to end.

One v1 HTTP scheduler (protobuf) launches N tasks running `true`, packing as many as each
offer fits, and acknowledges every update. Reported: tasks/s from the first ACCEPT to
the last TASK_FINISHED acknowledged, and the ACCEPT -> TASK_RUNNING latency
distribution. The machine's own fork/exec rate of `true` is measured in the same run as
the ceiling. Targets: >= 300 tasks/s, p99 ACCEPT -> RUNNING <= 150 ms.

    python bench/bench_launch.py [--tasks 1000]
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import subprocess
import time
from collections.abc import Awaitable, Callable

import anyio

from bench.cluster import percentile, start, tree_cpu_seconds
from mesoslite.client.scheduler import SchedulerClient
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.wire import media

TASK_CPUS = 0.01
TASK_MEM_MB = 1.0


def fork_exec_rate(count: int = 1000) -> float:
    """`true` spawned and reaped back to back: this machine's ceiling."""
    started = time.perf_counter()
    for _ in range(count):
        pid = os.posix_spawn("/bin/true", ["true"], {})
        os.waitpid(pid, 0)
    return count / (time.perf_counter() - started)


def subprocess_rate(count: int = 300) -> float:
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run(["true"], check=True)
    return count / (time.perf_counter() - started)


async def launch_all(master: str, total: int, args_batch: int) -> tuple[float, list[float]]:
    framework = mesos_pb2.FrameworkInfo(user="root", name="bench-launch")
    accepted_at: dict[str, float] = {}
    running_latency: list[float] = []
    finished = 0
    next_index = 0
    first_accept = 0.0
    done_at = 0.0
    # Calls are pipelined, as a v1 scheduler may: acknowledgements and launches go out
    # concurrently (at most 64 in flight) instead of one round trip at a time.
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
                        fits = int(min(cpus / TASK_CPUS, mem / TASK_MEM_MB))
                        count = min(fits, total - next_index, args_batch)
                        if count <= 0:
                            # Everything is launched: a scheduler with nothing left to
                            # run declines for long (else the offer comes right back).
                            refuse_s = 3600.0 if next_index >= total else 0.0
                            await client.decline([offer.id], refuse_seconds=refuse_s)
                            continue
                        tasks = []
                        for _ in range(count):
                            task = mesos_pb2.TaskInfo(name=f"t{next_index}")
                            task.task_id.value = f"t{next_index}"
                            task.agent_id.CopyFrom(offer.agent_id)
                            task.command.value = "true"
                            for name, amount in (("cpus", TASK_CPUS), ("mem", TASK_MEM_MB)):
                                resource = task.resources.add(
                                    name=name, type=mesos_pb2.Value.SCALAR
                                )
                                resource.scalar.value = amount
                                resource.allocation_info.role = offer.allocation_info.role
                            tasks.append(task)
                            next_index += 1
                        now = time.perf_counter()
                        first_accept = first_accept or now
                        for task in tasks:
                            accepted_at[task.task_id.value] = now
                        calls.start_soon(
                            send, functools.partial(client.launch, offer, tasks, refuse_seconds=0.0)
                        )
                elif event.type == scheduler_pb2.Event.UPDATE:
                    status = event.update.status
                    task_id = status.task_id.value
                    if status.state == mesos_pb2.TASK_RUNNING and task_id in accepted_at:
                        running_latency.append(time.perf_counter() - accepted_at[task_id])
                    calls.start_soon(send, functools.partial(client.acknowledge, status))
                    if status.state == mesos_pb2.TASK_FINISHED:
                        finished += 1
                    elif status.state in (
                        mesos_pb2.TASK_FAILED,
                        mesos_pb2.TASK_LOST,
                        mesos_pb2.TASK_ERROR,
                        mesos_pb2.TASK_DROPPED,
                    ):
                        raise RuntimeError(f"task {task_id} ended {status.state}: {status.message}")
                    if finished == total:
                        done_at = time.perf_counter()
                        break
        # Every acknowledgement has been answered; the framework leaves.
        await client.teardown()
    return total / (done_at - first_accept), running_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=25, help="most tasks per ACCEPT")
    parser.add_argument(
        "--isolation",
        default="posix/cpu,posix/mem",
        help="the agent's isolators (the core figure is posix; try the Linux set as root)",
    )
    args = parser.parse_args()
    print(
        f"machine ceiling: posix_spawn+wait of /bin/true: {fork_exec_rate():.0f}/s; "
        f"subprocess.run(['true']): {subprocess_rate():.0f}/s"
    )
    cluster = start(
        "--resources",
        "cpus:64;mem:65536;disk:1000;ports:[31000-32000]",
        "--isolation",
        args.isolation,
    )
    print(f"isolation: {args.isolation}")
    # The scheduler's own start-up objects out of its collector's way (as the node does).
    gc.freeze()
    try:
        server_before = tree_cpu_seconds(cluster.process.pid)
        client_before = time.process_time()
        rate, latencies = anyio.run(launch_all, cluster.master, args.tasks, args.batch)
        client_cpu = time.process_time() - client_before
        server_after = tree_cpu_seconds(cluster.process.pid)
    finally:
        cluster.stop()
    ms = [x * 1000 for x in latencies]
    print(f"{args.tasks} command tasks end to end: {rate:.0f} tasks/s")
    print(
        f"ACCEPT -> TASK_RUNNING: p50 {percentile(ms, 0.5):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
    )
    per_task_ms = 1000 / args.tasks
    print(
        f"CPU per task: mesoslite {(server_after[0] - server_before[0]) * per_task_ms:.2f} ms, "
        f"its task processes {(server_after[1] - server_before[1]) * per_task_ms:.2f} ms, "
        f"this scheduler {client_cpu * per_task_ms:.2f} ms; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
