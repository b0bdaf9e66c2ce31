"""Command-task launch throughput through one agent, end to end.

One v1 HTTP scheduler (protobuf) launches N tasks running `true`, packing as many as each
offer fits, and acknowledges every update. Reported: tasks/s from the first ACCEPT to
the last TASK_FINISHED acknowledged, and the ACCEPT -> TASK_RUNNING latency
distribution. The machine's own fork/exec rate of `true` is measured in the same run as
the ceiling. Targets: >= 300 tasks/s, p99 ACCEPT -> RUNNING <= 150 ms.

    python -m bench.bench_launch [--tasks 1000]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import time

import anyio

from bench.burst import BurstTasks, launch_burst, scalar_resources
from bench.cluster import percentile, start, tree_cpu_seconds
from mesoslite.proto import mesos_pb2

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


def _command_task(index: int, offer: mesos_pb2.Offer) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name=f"t{index}")
    task.task_id.value = f"t{index}"
    task.agent_id.CopyFrom(offer.agent_id)
    task.command.value = "true"
    scalar_resources(task, offer, cpus=TASK_CPUS, mem=TASK_MEM_MB)
    return task


COMMAND_TASKS = BurstTasks(_command_task, TASK_CPUS, TASK_MEM_MB)


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
        rate, latencies = anyio.run(
            launch_burst, cluster.master, "bench-launch", COMMAND_TASKS, args.tasks, args.batch
        )
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
