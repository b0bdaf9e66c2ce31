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
import shutil
import tempfile
import time
from pathlib import Path

import anyio

from bench.burst import BurstTasks, launch_burst, scalar_resources
from bench.cluster import describe_host, mesoslite_command, percentile, start, tree_cpu_seconds
from mesoslite.proto import mesos_pb2
from tests.support.busybox_image import build_busybox_image, push_busybox
from tests.support.registry import running_registry

TASK_CPUS = 0.01
TASK_MEM_MB = 32.0
NAME = "bench-image-tasks"


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
    scalar_resources(task, offer, cpus=TASK_CPUS, mem=TASK_MEM_MB)
    return task


def _image_tasks(image: str) -> BurstTasks:
    return BurstTasks(functools.partial(_image_task, image=image), TASK_CPUS, TASK_MEM_MB)


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
    print(describe_host())
    print(f"mesoslite: {' '.join(mesoslite_command())}")
    work = Path(tempfile.mkdtemp(prefix="bench-image-tasks-"))
    try:
        image = build_busybox_image(work / "image", shutil.which("busybox") or "busybox")
        with running_registry(shutil.which("docker-registry") or "", work / "registry") as registry:
            tasks = _image_tasks(push_busybox(image, registry.host))
            extra = ["--resources", "cpus:64;mem:65536;disk:1000;ports:[31000-32000]"]
            if args.isolation:
                extra += ["--isolation", args.isolation]
            cluster = start(*extra)
            try:
                # The first task pulls the image; the measured ones use the local copy.
                anyio.run(launch_burst, cluster.master, NAME, tasks, 1, 1, 1_000_000)
                server_before = tree_cpu_seconds(cluster.process.pid)
                client_before = time.process_time()
                rate, latencies = anyio.run(
                    launch_burst, cluster.master, NAME, tasks, args.tasks, args.batch
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
