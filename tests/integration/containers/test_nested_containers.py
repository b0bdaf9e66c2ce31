"""Nested containers through the agent API: they join their parent's namespaces and
cgroups by Mesos' rules, end before it, and answer WAIT/KILL/REMOVE."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from .agent_api import AgentApi, container_id, killed_by_sigkill

pytestmark = pytest.mark.anyio

SLEEP = {"value": "sleep 600"}
# PID 1 of a pid namespace only gets the signals it handles.
TRAPS_TERM = {"value": "trap 'exit 3' TERM; sleep 600 & wait"}


def _namespace(pid: int, name: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{name}")


def _cgroup(pid: int, controller: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    raise AssertionError(f"{pid} has no {controller} cgroup")


async def test_nested_container_shares_the_parents_namespaces_and_cgroups(
    agent: AgentApi,
) -> None:
    parent = container_id("parent-1")
    await agent.launch(parent, SLEEP)
    child = container_id("child-1", parent)
    launched = await agent.post(
        {
            "type": "LAUNCH_NESTED_CONTAINER",
            "launch_nested_container": {"container_id": child, "command": TRAPS_TERM},
        }
    )
    assert launched.status_code == 200, launched.text
    parent_pid = await agent.pid_of("parent-1")
    child_pid = await agent.pid_of("child-1")
    for shared in ("net", "uts", "ipc"):
        assert _namespace(child_pid, shared) == _namespace(parent_pid, shared)
    # Its own pid namespace (share_pid_namespace is false) and its own mount table.
    assert _namespace(child_pid, "pid") != _namespace(parent_pid, "pid")
    assert _namespace(child_pid, "mnt") != _namespace(parent_pid, "mnt")
    # share_cgroups (the default): limited by its parent's memory and cpu cgroups.
    assert _cgroup(child_pid, "memory") == _cgroup(parent_pid, "memory")
    assert _cgroup(child_pid, "cpu") == _cgroup(parent_pid, "cpu")

    listed = {entry["container_id"]["value"]: entry for entry in await agent.containers()}
    assert listed["child-1"]["container_id"]["parent"]["value"] == "parent-1"

    killed = await agent.post(
        {
            "type": "KILL_NESTED_CONTAINER",
            "kill_nested_container": {"container_id": child, "signal": signal.SIGTERM},
        }
    )
    assert killed.status_code == 200
    waited = await agent.ok(
        {"type": "WAIT_NESTED_CONTAINER", "wait_nested_container": {"container_id": child}}
    )
    assert os.WEXITSTATUS(waited["wait_nested_container"]["exit_status"]) == 3
    removed = await agent.post(
        {"type": "REMOVE_NESTED_CONTAINER", "remove_nested_container": {"container_id": child}}
    )
    assert removed.status_code == 200
    await agent.end(parent)


async def test_sharing_is_configurable(agent: AgentApi) -> None:
    parent = container_id("parent-2")
    await agent.launch(parent, SLEEP)
    sharing = container_id("sharing-pid", parent)
    await agent.launch(sharing, SLEEP, linux_info={"share_pid_namespace": True})
    own_cgroups = container_id("own-cgroups", parent)
    await agent.launch(
        own_cgroups, SLEEP, linux_info={"share_cgroups": False, "ipc_mode": "PRIVATE"}
    )
    parent_pid = await agent.pid_of("parent-2")
    sharing_pid = await agent.pid_of("sharing-pid")
    own_pid = await agent.pid_of("own-cgroups")
    assert _namespace(sharing_pid, "pid") == _namespace(parent_pid, "pid")
    assert _cgroup(own_pid, "memory") != _cgroup(parent_pid, "memory")
    assert _namespace(own_pid, "ipc") != _namespace(parent_pid, "ipc")
    assert _namespace(own_pid, "net") == _namespace(parent_pid, "net")
    for nested in (sharing, own_cgroups):
        await agent.end(nested)
    await agent.end(parent)


async def test_nested_containers_end_before_their_parent(agent: AgentApi) -> None:
    parent = container_id("parent-3")
    await agent.launch(parent, SLEEP)
    child = container_id("child-3", parent)
    grandchild = container_id("grandchild-3", child)
    await agent.launch(child, SLEEP)
    await agent.launch(grandchild, SLEEP)
    grandchild_pid = await agent.pid_of("grandchild-3")
    await agent.kill(parent)
    # The parent's end took its nested containers along, children first.
    assert killed_by_sigkill((await agent.wait(grandchild))["exit_status"])
    assert killed_by_sigkill((await agent.wait(child))["exit_status"])
    assert killed_by_sigkill((await agent.wait(parent))["exit_status"])
    assert not Path(f"/proc/{grandchild_pid}").exists()
    for identifier in (grandchild, child, parent):
        await agent.remove(identifier)


async def test_launch_under_a_missing_parent_is_refused(agent: AgentApi) -> None:
    orphan = container_id("orphan", container_id("nobody"))
    answer = await agent.post(
        {
            "type": "LAUNCH_NESTED_CONTAINER",
            "launch_nested_container": {"container_id": orphan, "command": SLEEP},
        }
    )
    assert (answer.status_code, answer.text) == (400, "Parent container nobody does not exist")
    docker = container_id("docker-typed")
    answer = await agent.post(
        {
            "type": "LAUNCH_CONTAINER",
            "launch_container": {
                "container_id": docker,
                "command": SLEEP,
                "container": {"type": "DOCKER", "docker": {"image": "busybox"}},
            },
        }
    )
    assert (answer.status_code, answer.text) == (400, "The provided ContainerInfo is not supported")
    await agent.remove(docker)
