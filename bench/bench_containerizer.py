"""Containerizer overhead against the raw OCI runtimes (perf-anchors B5), and launches/s.

Start -> exit of `/bin/true`, N sequential, through:
  posix         MesosContainerizer, posix launcher (posix_spawn, pidfd reaping)
  linux         MesosContainerizer, linux launcher, busybox rootfs; namespaces pid, net,
                ipc, uts, mount (crun's default spec has the same five), cgroups cpu, mem,
                pids, devices
  linux+ckpt    the same, checkpointed: started through the container reaper
  linux-up      the agent's default Linux isolation (no network, no UTS namespace)
  crun, runc    `crun run` / `runc run` of a bundle over the same busybox rootfs (`crun
                spec` defaults, args /bin/true). On a hybrid cgroup host crun 1.8 refuses
                to run, so both run inside `unshare -m` with the unified hierarchy
                unmounted, as in perf-anchors.
Runs are interleaved (A B C ... A B C ...); the median of the repetitions is reported.
Then launches/s: N containers started concurrently (bounded) and waited for.

    sudo python -m bench.bench_containerizer [--count 100] [--reps 3] [--concurrent 500]

Figures are printed, never asserted. Without root only the posix figures are taken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from bench.cluster import describe_host
from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.cgroups.layout import CgroupMode, detect_cgroup_layout
from mesoslite.runtime.containerizer import MesosContainerizer
from mesoslite.runtime.isolation import (
    LINUX_ISOLATION,
    POSIX_ISOLATION,
    IsolationContext,
    isolation_from_flag,
    launcher_for,
)
from mesoslite.runtime.linux_launcher import LinuxLauncher
from mesoslite.runtime.provisioner.image_config import ImageConfig
from tests.integration.runtime.rootfs import build_busybox_rootfs, find_static_busybox

BENCH_ISOLATION = LINUX_ISOLATION + ",namespaces/uts,namespaces/net"


class _Provisioned:
    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self.config = ImageConfig()


class _DirectoryProvisioner:
    def __init__(self, rootfs: Path) -> None:
        self._rootfs = rootfs

    async def provision(
        self, container_id: str, image: mesos_pb2.Image, *, mount_points: object = ()
    ) -> _Provisioned:
        return _Provisioned(self._rootfs)

    async def destroy(self, container_id: str) -> None:
        return None

    async def recover(self, known_ids: object) -> set[str]:
        return set()

    async def prune_images(self, excluded_images: list[mesos_pb2.Image]) -> None:
        return None


def _true_command() -> mesos_pb2.CommandInfo:
    return mesos_pb2.CommandInfo(shell=False, value="/bin/true", arguments=["true"])


def _image_info() -> mesos_pb2.ContainerInfo:
    info = mesos_pb2.ContainerInfo(type=mesos_pb2.ContainerInfo.MESOS)
    info.mesos.image.type = mesos_pb2.Image.DOCKER
    info.mesos.image.docker.name = "busybox"
    return info


class _Variant:
    """One containerizer set-up, entered once and reused by every repetition."""

    def __init__(
        self, name: str, work: Path, flag: str, rootfs: Path | None, checkpoint: bool = False
    ) -> None:
        self.name = name
        self._work = work / name
        self._flag = flag
        self._rootfs = rootfs
        self._checkpoint = checkpoint
        self._counter = 0
        self._cgroups_root_name = f"mesoslite-bench-{uuid.uuid4().hex[:8]}"

    def _config(self) -> tuple[str, ContainerConfig]:
        self._counter += 1
        sandbox = self._work / "sandboxes" / str(self._counter)
        sandbox.mkdir(parents=True)
        config = ContainerConfig(
            command=_true_command(),
            sandbox=sandbox,
            environment={"PATH": "/bin:/usr/bin"},
            container_info=_image_info() if self._rootfs is not None else None,
            resources=[
                mesos_pb2.Resource(
                    name="cpus",
                    type=mesos_pb2.Value.SCALAR,
                    scalar=mesos_pb2.Value.Scalar(value=0.1),
                ),
                mesos_pb2.Resource(
                    name="mem", type=mesos_pb2.Value.SCALAR, scalar=mesos_pb2.Value.Scalar(value=64)
                ),
            ],
            checkpoint=self._checkpoint,
        )
        return f"{self.name}-{self._counter}", config

    async def run(self, body: Callable[[Callable[[], Awaitable[None]]], Awaitable[float]]) -> float:
        context = IsolationContext(
            runtime_dir=self._work / "files", cgroups_root_name=self._cgroups_root_name
        )
        isolators = isolation_from_flag(self._flag, context)
        launcher = launcher_for(isolators, context)
        provisioner = _DirectoryProvisioner(self._rootfs) if self._rootfs else None
        try:
            async with MesosContainerizer(
                launcher=launcher,
                isolators=isolators,
                provisioner=provisioner,
                runtime_dir=self._work / "runtime",
            ) as containerizer:

                async def one() -> None:
                    container_id, config = self._config()
                    await containerizer.launch(container_id, config)
                    await containerizer.wait(container_id)
                    await containerizer.destroy(container_id)

                return await body(one)
        finally:
            if isinstance(launcher, LinuxLauncher):
                launcher.close()
            layout = detect_cgroup_layout()
            if layout is not None:
                for hierarchy in set(layout.v1_hierarchies.values()) | {layout.root}:
                    with contextlib.suppress(OSError):
                        os.rmdir(hierarchy / self._cgroups_root_name)


async def _sequential(count: int, one: Callable[[], Awaitable[None]]) -> float:
    """Seconds per container."""
    started = time.perf_counter()
    for _ in range(count):
        await one()
    return (time.perf_counter() - started) / count


def _concurrent(
    count: int, limit: int
) -> Callable[[Callable[[], Awaitable[None]]], Awaitable[float]]:
    async def body(one: Callable[[], Awaitable[None]]) -> float:
        """Containers per second."""
        slots = anyio.Semaphore(limit)

        async def bounded() -> None:
            async with slots:
                await one()

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(bounded)
        return count / (time.perf_counter() - started)

    return body


def _make_bundle(work: Path, rootfs: Path) -> Path:
    bundle = work / "bundle"
    bundle.mkdir()
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def _runtime_loop(runtime: str, bundle: Path, count: int, state_root: Path) -> float:
    """Seconds per `<runtime> run`, all runs inside one private mount namespace."""
    unmount_unified = ""
    layout = detect_cgroup_layout()
    if layout is not None and layout.mode is CgroupMode.HYBRID:
        unmount_unified = "umount /sys/fs/cgroup/unified 2>/dev/null;"
    script = (
        f"{unmount_unified} i=0; while [ $i -lt {count} ]; do "
        f"{runtime} --root {state_root} run --bundle {bundle} b$$-$i >/dev/null || exit 1;"
        " i=$((i+1)); done"
    )
    started = time.perf_counter()
    subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], check=True)
    return (time.perf_counter() - started) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="sequential containers per rep")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--concurrent", type=int, default=500, help="containers for the launches/s figure"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()

    print(describe_host())
    is_root = os.geteuid() == 0
    busybox = find_static_busybox()
    work = Path(tempfile.mkdtemp(prefix="bench-containerizer-"))
    try:
        variants: list[_Variant] = [_Variant("posix", work, POSIX_ISOLATION, None)]
        runtimes: list[str] = []
        rootfs = None
        if is_root and busybox is not None:
            rootfs = build_busybox_rootfs(work / "rootfs", busybox)
            variants.append(_Variant("linux", work, BENCH_ISOLATION, rootfs))
            variants.append(_Variant("linux+ckpt", work, BENCH_ISOLATION, rootfs, True))
            # What `mesoslite up` runs as root: no network or UTS namespace.
            variants.append(_Variant("linux-up", work, LINUX_ISOLATION, rootfs))
            runtimes = [name for name in ("crun", "runc") if shutil.which(name)]
        else:
            print("not root or no static busybox: posix figures only")

        per_container: dict[str, list[float]] = {}
        bundle = _make_bundle(work, rootfs) if runtimes and rootfs is not None else None
        for _ in range(arguments.reps):
            for variant in variants:
                seconds = anyio.run(variant.run, lambda one: _sequential(arguments.count, one))
                per_container.setdefault(variant.name, []).append(seconds)
            for runtime in runtimes:
                assert bundle is not None
                state_root = work / f"{runtime}-state"
                seconds = _runtime_loop(runtime, bundle, arguments.count, state_root)
                per_container.setdefault(runtime, []).append(seconds)

        print(
            f"\nstart -> exit of /bin/true, {arguments.count} sequential x "
            f"{arguments.reps} reps (median ms per container):"
        )
        medians = {name: statistics.median(values) for name, values in per_container.items()}
        for name, value in medians.items():
            spread = ", ".join(f"{v * 1e3:.2f}" for v in per_container[name])
            print(f"  {name:<11} {value * 1e3:7.2f} ms   (reps: {spread})")
        for ours in ("posix", "linux", "linux+ckpt", "linux-up"):
            for peer in ("crun", "runc"):
                if ours in medians and peer in medians:
                    print(f"  {ours} / {peer}: {medians[ours] / medians[peer]:.2f}x")

        print(
            f"\nlaunches/s: {arguments.concurrent} containers, {arguments.concurrency} at a time:"
        )
        for variant in variants:
            rate = anyio.run(variant.run, _concurrent(arguments.concurrent, arguments.concurrency))
            print(f"  {variant.name:<11} {rate:7.0f} /s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
