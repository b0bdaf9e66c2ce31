"""Tasks in container images through `mesoslite up` and a v1 scheduler (root: Linux
isolation): a local docker-registry serves an image built from busybox-static; the
task runs in it (root filesystem, image config); APPC and DOCKER-typed containers are
refused as Mesos refuses them; volumes are mounted as declared; every update carries
the container's status; the agent reports real cgroup figures. Nothing is left behind."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mesoslite.client.scheduler import SchedulerClient
from mesoslite.proto import mesos_pb2, scheduler_pb2
from tests.conftest import require, require_binary, require_root
from tests.e2e.conftest import UpNode, free_port, start_up, stop_up
from tests.support.busybox_image import (
    BUSYBOX_IMAGE_ENV,
    BUSYBOX_IMAGE_HOSTNAME,
    build_busybox_image,
    push_busybox,
)
from tests.support.leaks import assert_nothing_left
from tests.support.registry import running_registry

pytestmark = pytest.mark.anyio

_TS = mesos_pb2.TaskState
_TERMINAL = frozenset(
    {
        _TS.TASK_FINISHED,
        _TS.TASK_FAILED,
        _TS.TASK_KILLED,
        _TS.TASK_ERROR,
        _TS.TASK_LOST,
        _TS.TASK_DROPPED,
    }
)
TASK_CPUS = 0.5
TASK_MEM_MB = 64
MB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def image_reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_root()
    registry_binary = require_binary("docker-registry")
    require_binary("umoci")
    require_binary("skopeo")
    busybox = require_binary("busybox")
    image = build_busybox_image(tmp_path_factory.mktemp("image"), busybox)
    with running_registry(registry_binary, tmp_path_factory.mktemp("registry")) as registry:
        yield push_busybox(image, registry.host)


@pytest.fixture(scope="module")
def up(image_reference: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpNode]:
    require(shutil.which("busybox") is not None, "needs busybox-static")
    cluster = start_up(
        tmp_path_factory.mktemp("up"),
        "--peer-port",
        str(free_port()),
        "--resources",
        "cpus:8;mem:8192;disk:4096;ports:[31000-32000]",
    )
    try:
        yield cluster
    finally:
        stop_up(cluster)  # Ctrl-C: the node stops its tasks
        assert_nothing_left(cluster.data_dir)


def image_task(name: str, reference: str, shell: str) -> mesos_pb2.TaskInfo:
    task = mesos_pb2.TaskInfo(name=name)
    task.task_id.value = name
    task.command.value = shell
    task.container.type = mesos_pb2.ContainerInfo.MESOS
    task.container.mesos.image.type = mesos_pb2.Image.DOCKER
    task.container.mesos.image.docker.name = reference
    return task


@dataclass
class TaskRun:
    """A framework that launches tasks from its first offer and records their updates."""

    client: SchedulerClient
    events: AsyncIterator[scheduler_pb2.Event]
    statuses: dict[str, list[mesos_pb2.TaskStatus]] = field(default_factory=dict)
    agent_id: mesos_pb2.AgentID | None = None

    async def launch(self, tasks: list[mesos_pb2.TaskInfo]) -> None:
        async for event in self.events:
            if event.type == scheduler_pb2.Event.SUBSCRIBED:
                self.client.framework_info.id.CopyFrom(event.subscribed.framework_id)
            if event.type != scheduler_pb2.Event.OFFERS:
                continue
            offer = event.offers.offers[0]
            self.agent_id = offer.agent_id
            for task in tasks:
                task.agent_id.CopyFrom(offer.agent_id)
                for name, amount in (("cpus", TASK_CPUS), ("mem", TASK_MEM_MB)):
                    resource = task.resources.add(name=name, type=mesos_pb2.Value.SCALAR)
                    resource.scalar.value = amount
                    resource.allocation_info.role = offer.allocation_info.role
            await self.client.launch(offer, tasks)
            return

    async def until(self, done: Callable[[dict[str, list[mesos_pb2.TaskStatus]]], bool]) -> None:
        """Acknowledge updates until `done(statuses)`."""
        while not done(self.statuses):
            event = await self.events.__anext__()
            if event.type != scheduler_pb2.Event.UPDATE:
                continue
            status = event.update.status
            self.statuses.setdefault(status.task_id.value, []).append(status)
            await self.client.acknowledge(status)

    def last(self, task_id: str) -> mesos_pb2.TaskStatus:
        return self.statuses[task_id][-1]


def all_terminal(task_ids: list[str]) -> Callable[[dict[str, list[mesos_pb2.TaskStatus]]], bool]:
    def done(statuses: dict[str, list[mesos_pb2.TaskStatus]]) -> bool:
        return all(t in statuses and statuses[t][-1].state in _TERMINAL for t in task_ids)

    return done


async def run_to_end(master: str, tasks: list[mesos_pb2.TaskInfo]) -> TaskRun:
    framework = mesos_pb2.FrameworkInfo(user="root", name="images")
    async with SchedulerClient(master, framework) as client, client.subscription() as events:
        run = TaskRun(client, events.__aiter__())
        await run.launch(tasks)
        await run.until(all_terminal([task.task_id.value for task in tasks]))
        await client.teardown()
    return run


def sandbox_of(cluster: UpNode, status: mesos_pb2.TaskStatus) -> Path:
    container = status.container_status.container_id.value
    runs = f"slaves/*/frameworks/*/executors/*/runs/{container}"
    matches = list((cluster.data_dir / "agent").glob(runs))
    assert len(matches) == 1, matches
    return matches[0]


async def test_a_task_runs_in_its_image(up: UpNode, image_reference: str) -> None:
    shell = (
        "cat /etc/hostname; echo $IMAGE_GREETING; echo $MESOS_SANDBOX; pwd; cat /data/from-image;"
        " test -e /bin/busybox && echo has-busybox; echo oops >&2"
    )
    run = await run_to_end(up.master, [image_task("in-image", image_reference, shell)])
    statuses = run.statuses["in-image"]
    assert [s.state for s in statuses] == [_TS.TASK_STARTING, _TS.TASK_RUNNING, _TS.TASK_FINISHED]
    container = statuses[0].container_status.container_id.value
    for status in statuses:
        assert status.container_status.container_id.value == container
        addresses = [
            a.ip_address for n in status.container_status.network_infos for a in n.ip_addresses
        ]
        assert addresses == ["127.0.0.1"]
    assert statuses[1].container_status.executor_pid > 0
    sandbox = sandbox_of(up, statuses[-1])
    assert (sandbox / "stdout").read_text().splitlines() == [
        BUSYBOX_IMAGE_HOSTNAME,
        BUSYBOX_IMAGE_ENV.split("=", 1)[1],
        "/mnt/mesos/sandbox",
        "/mnt/mesos/sandbox",
        "image data",
        "has-busybox",
    ]
    assert (sandbox / "stderr").read_text() == "oops\n"


async def test_appc_and_docker_containers_are_refused(up: UpNode, image_reference: str) -> None:
    appc = image_task("appc", image_reference, "true")
    appc.container.mesos.image.type = mesos_pb2.Image.APPC
    appc.container.mesos.image.ClearField("docker")
    appc.container.mesos.image.appc.name = "example.com/busybox"
    docker = mesos_pb2.TaskInfo(name="docker")
    docker.task_id.value = "docker"
    docker.command.value = "true"
    docker.container.type = mesos_pb2.ContainerInfo.DOCKER
    docker.container.docker.image = "busybox"
    run = await run_to_end(up.master, [appc, docker])
    refused_appc, refused_docker = run.last("appc"), run.last("docker")
    for refused in (refused_appc, refused_docker):
        assert refused.state == _TS.TASK_FAILED
        assert refused.reason == mesos_pb2.TaskStatus.REASON_CONTAINER_LAUNCH_FAILED
        assert refused.container_status.container_id.value
        assert refused.container_status.network_infos
    assert refused_appc.message == (
        "Failed to launch container: APPC images are not supported: use an image of type"
        " DOCKER (Docker/OCI)"
    )
    assert refused_docker.message == (
        "Failed to launch container: None of the enabled containerizers (mesos) could create"
        " a container for the provided TaskInfo/ExecutorInfo message"
    )


async def test_volumes_as_declared(up: UpNode, image_reference: str, tmp_path: Path) -> None:
    host_rw = tmp_path / "host-rw"
    host_ro = tmp_path / "host-ro"
    host_rw.mkdir()
    host_ro.mkdir()
    (host_ro / "given").write_text("from the host\n")
    shell = (
        "echo written > /host-rw/out && cat /host-ro/given"
        " && ! touch /host-ro/refused 2>/dev/null && echo read-only"
        " && echo shared > /shared/file && echo relative > data/file"
    )
    task = image_task("volumes", image_reference, shell)
    volumes = task.container.volumes
    rw = volumes.add(container_path="/host-rw", mode=mesos_pb2.Volume.RW)
    rw.source.type = mesos_pb2.Volume.Source.HOST_PATH
    rw.source.host_path.path = str(host_rw)
    ro = volumes.add(container_path="/host-ro", mode=mesos_pb2.Volume.RO)
    ro.source.type = mesos_pb2.Volume.Source.HOST_PATH
    ro.source.host_path.path = str(host_ro)
    shared = volumes.add(container_path="/shared", mode=mesos_pb2.Volume.RW)
    shared.source.type = mesos_pb2.Volume.Source.SANDBOX_PATH
    shared.source.sandbox_path.type = mesos_pb2.Volume.Source.SandboxPath.SELF
    shared.source.sandbox_path.path = "shared-dir"
    relative = volumes.add(container_path="data", mode=mesos_pb2.Volume.RW)
    relative.source.type = mesos_pb2.Volume.Source.SANDBOX_PATH
    relative.source.sandbox_path.type = mesos_pb2.Volume.Source.SandboxPath.SELF
    relative.source.sandbox_path.path = "kept"
    run = await run_to_end(up.master, [task])
    finished = run.last("volumes")
    assert finished.state == _TS.TASK_FINISHED, (finished.message, finished.state)
    sandbox = sandbox_of(up, finished)
    assert (sandbox / "stdout").read_text() == "from the host\nread-only\n"
    assert (host_rw / "out").read_text() == "written\n"
    assert not (host_ro / "refused").exists()
    assert (sandbox / "shared-dir" / "file").read_text() == "shared\n"
    assert (sandbox / "kept" / "file").read_text() == "relative\n"


async def test_container_figures_from_cgroups(up: UpNode, image_reference: str) -> None:
    # Some cpu time first, then idle until killed.
    shell = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 600"
    framework = mesos_pb2.FrameworkInfo(user="root", name="figures")
    async with (
        SchedulerClient(up.master, framework) as client,
        client.subscription() as events,
        httpx.AsyncClient(base_url=f"http://{up.agent}", timeout=30) as agent,
    ):
        run = TaskRun(client, events.__aiter__())
        await run.launch([image_task("busy", image_reference, shell)])
        await run.until(lambda s: "busy" in s and s["busy"][-1].state == _TS.TASK_RUNNING)
        container = run.last("busy").container_status.container_id.value
        figures = await _figures_after_work(agent, container)
        assert figures["cpus_limit"] == TASK_CPUS
        assert figures["mem_limit_bytes"] == TASK_MEM_MB * MB
        # The shell execs `sleep` as its last command: one process, one thread.
        assert figures["processes"] == 1 and figures["threads"] == 1
        assert figures["mem_rss_bytes"] > 0
        assert figures["cpus_user_time_secs"] + figures["cpus_system_time_secs"] > 0
        for name in ("cpus_nr_periods", "cpus_nr_throttled", "cpus_throttled_time_secs"):
            assert name in figures
        statistics = (await agent.get("/monitor/statistics")).json()
        (entry,) = [e for e in statistics if e["executor_id"] == "busy"]
        assert entry["statistics"]["cpus_limit"] == TASK_CPUS
        assert entry["statistics"]["mem_limit_bytes"] == TASK_MEM_MB * MB
        await client.kill("busy", run.agent_id)
        await run.until(all_terminal(["busy"]))
        assert run.last("busy").state == _TS.TASK_KILLED
        await client.teardown()


async def _figures_after_work(agent: httpx.AsyncClient, container: str) -> dict[str, Any]:
    """GET_CONTAINERS' statistics of `container` once it has used some cpu time."""
    call = {"type": "GET_CONTAINERS", "get_containers": {"show_nested": True}}
    while True:
        answer = (await agent.post("/api/v1", json=call)).json()
        (entry,) = [
            c
            for c in answer["get_containers"]["containers"]
            if c["container_id"]["value"] == container
        ]
        figures: dict[str, Any] = entry["resource_statistics"]
        used = figures.get("cpus_user_time_secs", 0) + figures.get("cpus_system_time_secs", 0)
        if used > 0:
            return figures
        await anyio.sleep(0.05)


async def test_prune_images_keeps_the_excluded_ones(up: UpNode, image_reference: str) -> None:
    await run_to_end(up.master, [image_task("before-prune", image_reference, "true")])
    records = up.data_dir / "images" / "records"
    assert list(records.glob("*.json"))
    excluded = {"type": "DOCKER", "docker": {"name": image_reference}}
    async with httpx.AsyncClient(base_url=f"http://{up.agent}", timeout=30) as agent:
        kept = await agent.post(
            "/api/v1",
            json={"type": "PRUNE_IMAGES", "prune_images": {"excluded_images": [excluded]}},
        )
        assert kept.status_code == 200
        assert list(records.glob("*.json"))
        pruned = await agent.post("/api/v1", json={"type": "PRUNE_IMAGES"})
        assert pruned.status_code == 200
    assert not list(records.glob("*.json"))
