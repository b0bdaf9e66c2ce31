"""Image tasks per second through one agent, end to end (root: Linux isolation).

A local docker-registry serves a busybox-static image; `mesoslite up` runs with the
default Linux isolation (filesystem/linux with the image provisioner, pid and ipc
namespaces, cgroups cpu/mem/pids/devices, volumes). One v1 HTTP scheduler (protobuf)
launches N tasks running `true` in the image, packing as many as each offer fits,
pipelining its calls and acknowledging every update. One task runs first so that the
image is pulled before the clock starts. Reported: tasks/s from the first ACCEPT to the
last TASK_FINISHED, and the ACCEPT -> TASK_RUNNING latency. Figures are printed, never
asserted.

    sudo python -m bench.bench_image_tasks [--tasks 1000] [--batch 25]

Uses `dist/mesoslite` when it exists (MESOSLITE_BINARY overrides), else this checkout.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from bench.cluster import mesoslite_command, percentile, start, tree_cpu_seconds
from mesoslite.client.scheduler import SchedulerClient
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.runtime.cgroups.layout import detect_cgroup_layout
from mesoslite.wire import media
from tests.support.busybox_image import build_busybox_image, push_busybox
from tests.support.registry import running_registry

TASK_CPUS = 0.01
TASK_MEM_MB = 32.0
_FAILED = (mesos_pb2.TASK_FAILED, mesos_pb2.TASK_LOST, mesos_pb2.TASK_ERROR, mesos_pb2.TASK_DROPPED)


def _image_task(index: int, offer: mesos_pb2.Offer, image: str) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name=f"i{index}")
    task.task_id.value = f"i{index}"
    task.agent_id.CopyFrom(offer.agent_id)
    task.command.shell = False
    task.command.value = "/bin/true"
    task.command.arguments.append("true")
    task.container.type = mesos_pb2.ContainerInfo.MESOS
    task.container.mesos.image.type = mesos_pb2.Image.DOCKER
    task.container.mesos.image.docker.name = image
    for name, amount in (("cpus", TASK_CPUS), ("mem", TASK_MEM_MB)):
        resource = task.resources.add(name=name, type=mesos_pb2.Value.SCALAR)
        resource.scalar.value = amount
        resource.allocation_info.role = offer.allocation_info.role
    return task


async def launch_all(
    master: str, image: str, total: int, batch: int, first_index: int = 0
) -> tuple[float, list[float]]:
    """Returns tasks/s and the ACCEPT -> RUNNING latencies (seconds)."""
    framework = mesos_pb2.FrameworkInfo(user="root", name="bench-image-tasks")
    accepted_at: dict[str, float] = {}
    running_latency: list[float] = []
    finished = 0
    next_index = first_index
    first_accept = 0.0
    done_at = 0.0
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
                        count = min(fits, first_index + total - next_index, batch)
                        if count <= 0:
                            calls.start_soon(
                                send,
                                functools.partial(client.decline, [offer.id], refuse_seconds=0.0),
                            )
                            continue
                        tasks = [_image_task(next_index + i, offer, image) for i in range(count)]
                        next_index += count
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
                    elif status.state in _FAILED:
                        raise RuntimeError(f"task {task_id} ended {status.state}: {status.message}")
                    if finished == total:
                        done_at = time.perf_counter()
                        break
        await client.teardown()
    return total / (done_at - first_accept), running_latency


def _describe_host() -> str:
    layout = detect_cgroup_layout()
    mode = layout.mode.value if layout is not None else "none"
    return (
        f"nproc={os.cpu_count()} kernel={platform.release()} cgroups={mode} "
        f"python={platform.python_version()} load={os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=25, help="most tasks per ACCEPT")
    parser.add_argument("--isolation", default=None, help="the agent's isolators (default: its)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("image tasks need root (Linux isolation)")
    for tool in ("docker-registry", "umoci", "skopeo", "busybox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs `{tool}` on PATH")
    print(_describe_host())
    print(f"mesoslite: {' '.join(mesoslite_command())}")
    work = Path(tempfile.mkdtemp(prefix="bench-image-tasks-"))
    try:
        image = build_busybox_image(work / "image", shutil.which("busybox") or "busybox")
        with running_registry(shutil.which("docker-registry") or "", work / "registry") as registry:
            reference = push_busybox(image, registry.host)
            extra = ["--resources", "cpus:64;mem:65536;disk:1000;ports:[31000-32000]"]
            if args.isolation:
                extra += ["--isolation", args.isolation]
            cluster = start(*extra)
            try:
                # The first task pulls the image; the measured ones use the local copy.
                anyio.run(launch_all, cluster.master, reference, 1, 1, 1_000_000)
                server_before = tree_cpu_seconds(cluster.process.pid)
                client_before = time.process_time()
                rate, latencies = anyio.run(
                    launch_all, cluster.master, reference, args.tasks, args.batch
                )
                client_cpu = time.process_time() - client_before
                server_after = tree_cpu_seconds(cluster.process.pid)
            finally:
                cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ms = [x * 1000 for x in latencies]
    print(f"{args.tasks} image tasks end to end: {rate:.0f} tasks/s")
    print(
        f"ACCEPT -> TASK_RUNNING: p50 {percentile(ms, 0.5):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
    )
    per_task_ms = 1000 / args.tasks
    print(
        f"CPU per task: mesoslite {(server_after[0] - server_before[0]) * per_task_ms:.2f} ms, "
        f"its containers {(server_after[1] - server_before[1]) * per_task_ms:.2f} ms, "
        f"this scheduler {client_cpu * per_task_ms:.2f} ms; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
