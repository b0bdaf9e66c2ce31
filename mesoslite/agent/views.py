"""Read-only projections of the agent's state, shared by the operator API (protobuf)
and the legacy endpoints (JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mesoslite.agent.files import FileRoots
from mesoslite.agent.sandbox import LATEST
from mesoslite.agent.state import Executor, Framework, new_task
from mesoslite.proto import agent_pb2, mesos_pb2

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = [
    "all_frameworks",
    "file_roots",
    "get_executors",
    "get_frameworks",
    "get_state",
    "get_tasks",
    "queued_tasks",
    "used_resources",
]

_Response = agent_pb2.Response


def all_frameworks(agent: Agent) -> Iterator[tuple[Framework, bool]]:
    """Every framework the agent remembers, with whether it is completed."""
    for framework in agent.frameworks.values():
        yield framework, False
    for framework in agent.completed_frameworks.values():
        yield framework, True


def _executors(framework: Framework) -> Iterator[tuple[Executor, bool]]:
    for executor in framework.executors.values():
        yield executor, False
    for executor in framework.completed_executors:
        yield executor, True


def file_roots(agent: Agent) -> FileRoots:
    """What `/files` may serve right now."""
    roots: list[tuple[str, Path]] = []
    for framework, _ in all_frameworks(agent):
        for executor, _ in _executors(framework):
            directory = executor.directory
            roots.append((str(directory), directory))
            latest = directory.parent / LATEST
            virtual = f"/frameworks/{framework.id}/executors/{executor.id}/runs/{LATEST}"
            roots.append((virtual, latest))
            roots.append((str(latest), latest))
    if agent.config.log_file is not None:
        roots.append(("/slave/log", agent.config.log_file))
    return FileRoots(roots)


def queued_tasks(agent: Agent, executor: Executor, framework: Framework) -> list[mesos_pb2.Task]:
    tasks = [
        new_task(info, framework.info, agent.agent_id or "", executor.id)
        for info in executor.queued_tasks.values()
    ]
    for group in executor.queued_groups:
        tasks.extend(
            new_task(info, framework.info, agent.agent_id or "", executor.id)
            for info in group.tasks
        )
    return tasks


def get_tasks(agent: Agent) -> agent_pb2.Response.GetTasks:
    result = _Response.GetTasks()
    for framework, _ in all_frameworks(agent):
        for executor, _ in _executors(framework):
            result.queued_tasks.extend(queued_tasks(agent, executor, framework))
            result.launched_tasks.extend(executor.launched_tasks.values())
            result.terminated_tasks.extend(executor.terminated_tasks.values())
            result.completed_tasks.extend(executor.completed_tasks)
    return result


def get_executors(agent: Agent) -> agent_pb2.Response.GetExecutors:
    result = _Response.GetExecutors()
    for framework, framework_completed in all_frameworks(agent):
        for executor, completed in _executors(framework):
            entry = _Response.GetExecutors.Executor(executor_info=executor.info)
            if completed or framework_completed:
                result.completed_executors.append(entry)
            else:
                result.executors.append(entry)
    return result


def get_frameworks(agent: Agent) -> agent_pb2.Response.GetFrameworks:
    result = _Response.GetFrameworks()
    for framework, completed in all_frameworks(agent):
        entry = _Response.GetFrameworks.Framework(framework_info=framework.info)
        (result.completed_frameworks if completed else result.frameworks).append(entry)
    return result


def get_state(agent: Agent) -> agent_pb2.Response.GetState:
    return _Response.GetState(
        get_tasks=get_tasks(agent),
        get_executors=get_executors(agent),
        get_frameworks=get_frameworks(agent),
    )


def used_resources(agent: Agent) -> list[mesos_pb2.Resource]:
    """Resources of live tasks and of the executors that run them."""
    used: list[mesos_pb2.Resource] = []
    for framework in agent.frameworks.values():
        for executor in framework.executors.values():
            used.extend(executor.info.resources)
            for task in executor.launched_tasks.values():
                used.extend(task.resources)
            for info in executor.queued_tasks.values():
                used.extend(info.resources)
    return used
