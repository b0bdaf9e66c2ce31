"""The agent's pre-v1 JSON endpoints (spec section 4.4): `/state`, `/flags`, `/health`,
`/version`, `/metrics/snapshot`, `/monitor/statistics`, `/containers` and `/files/*`.

They use Mesos' hand-written legacy shapes (flat ids, legacy resource objects), not the
v1 protobuf JSON. Every path also works under `/slave(1)` (the router strips it).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from mesoslite.agent import files, views
from mesoslite.agent.agent import AGENT_CAPABILITIES
from mesoslite.agent.metrics import agent_metrics, system_metrics
from mesoslite.agent.operator_api import BUILD_DATE, BUILD_TIME, BUILD_USER
from mesoslite.agent.state import Executor, Framework
from mesoslite.agent.usage import executor_usage
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources
from mesoslite.wire.errors import HttpError
from mesoslite.wire.http import json_response
from mesoslite.wire.json_codec import to_json_dict
from mesoslite.wire.legacy import (
    attributes_to_legacy,
    labels_to_legacy,
    resources_to_legacy,
    task_to_legacy,
)
from mesoslite.wire.routing import Router

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["LegacyEndpoints"]

_Capability = mesos_pb2.FrameworkInfo.Capability
_AgentCapability = mesos_pb2.AgentInfo.Capability


def _jsonp(request: Request, value: Any) -> Response:
    callback = request.query_params.get("jsonp")
    if not callback:
        return json_response(value)
    body = f"{callback}({json.dumps(value, separators=(',', ':'))});"
    return Response(body.encode("ascii", "backslashreplace"), media_type="text/javascript")


class LegacyEndpoints:
    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def mount(self, router: Router) -> None:
        get = ["GET"]
        router.add("/state", self.state, methods=get)
        router.add("/flags", self.flags, methods=get)
        router.add("/health", self.health, methods=get)
        router.add("/version", self.version, methods=get)
        router.add("/metrics/snapshot", self.metrics, methods=get)
        router.add("/monitor/statistics", self.statistics, methods=get)
        router.add("/containers", self.containers, methods=get)
        router.add("/files/browse", self.browse, methods=get)
        router.add("/files/read", self.read, methods=get)
        router.add("/files/download", self.download, methods=get)
        router.add("/files/debug", self.debug, methods=get)

    # ------------------------------------------------------------------ simple

    async def flags(self, request: Request) -> Response:
        return _jsonp(request, {"flags": self._agent.config.flags()})

    async def health(self, request: Request) -> Response:
        return Response(b"", status_code=200)

    async def version(self, request: Request) -> Response:
        return _jsonp(
            request,
            {
                "version": self._agent.config.version,
                "build_date": BUILD_DATE,
                "build_time": BUILD_TIME,
                "build_user": BUILD_USER,
            },
        )

    async def metrics(self, request: Request) -> Response:
        values = agent_metrics(self._agent)
        values.update(await anyio.to_thread.run_sync(system_metrics))
        return _jsonp(request, dict(sorted(values.items())))

    # ------------------------------------------------------------------ state

    async def state(self, request: Request) -> Response:
        agent = self._agent
        info = agent.agent_info
        resources = Resources(info.resources)
        reserved = resources.reservations_by_role()
        state: dict[str, Any] = {
            "version": agent.config.version,
            "build_date": BUILD_DATE,
            "build_time": BUILD_TIME,
            "build_user": BUILD_USER,
            "start_time": agent.start_time,
            "id": agent.agent_id or "",
            "pid": agent.pid,
            "hostname": info.hostname,
            "capabilities": [_AgentCapability.Type.Name(c) for c in AGENT_CAPABILITIES],
            "resources": resources_to_legacy(info.resources),
            "reserved_resources": {
                role: resources_to_legacy(part) for role, part in reserved.items()
            },
            "unreserved_resources": resources_to_legacy(resources.unreserved()),
            "reserved_resources_full": {
                role: [to_json_dict(resource) for resource in part]
                for role, part in reserved.items()
            },
            "unreserved_resources_full": [
                to_json_dict(resource) for resource in resources.unreserved()
            ],
            "reserved_resources_allocated": {},
            "unreserved_resources_allocated": resources_to_legacy(views.used_resources(agent)),
            "attributes": attributes_to_legacy(info.attributes),
            "flags": agent.config.flags(),
            "frameworks": [self._framework(framework) for framework in agent.frameworks.values()],
            "completed_frameworks": [
                self._framework(framework) for framework in agent.completed_frameworks.values()
            ],
        }
        if agent.master_info is not None and agent.master_info.hostname:
            state["master_hostname"] = agent.master_info.hostname
        if agent.config.log_file is not None:
            state["log_dir"] = str(agent.config.log_file.parent)
        return _jsonp(request, state)

    def _framework(self, framework: Framework) -> dict[str, Any]:
        info = framework.info
        value: dict[str, Any] = {
            "id": framework.id,
            "name": info.name,
            "user": info.user,
            "failover_timeout": info.failover_timeout,
            "checkpoint": info.checkpoint,
            "hostname": info.hostname,
            "capabilities": [_Capability.Type.Name(c.type) for c in info.capabilities],
            "executors": [
                self._executor(framework, executor) for executor in framework.executors.values()
            ],
            "completed_executors": [
                self._executor(framework, executor) for executor in framework.completed_executors
            ],
        }
        if info.HasField("principal"):
            value["principal"] = info.principal
        if any(c.type == _Capability.MULTI_ROLE for c in info.capabilities):
            value["roles"] = list(info.roles)
        else:
            value["role"] = info.role
        return value

    def _executor(self, framework: Framework, executor: Executor) -> dict[str, Any]:
        info = executor.info
        value: dict[str, Any] = {
            "id": executor.id,
            "name": info.name,
            "source": info.source,
            "container": executor.container_id,
            "directory": str(executor.directory),
            "resources": resources_to_legacy(
                list(info.resources)
                + [r for task in executor.launched_tasks.values() for r in task.resources]
            ),
            "tasks": [
                task_to_legacy(task)
                for task in [*executor.launched_tasks.values(), *executor.terminated_tasks.values()]
            ],
            "queued_tasks": [
                self._queued_task(task)
                for task in views.queued_tasks(self._agent, executor, framework)
            ],
            "completed_tasks": [task_to_legacy(task) for task in executor.completed_tasks],
        }
        if executor.role:
            value["role"] = executor.role
        if info.HasField("labels"):
            value["labels"] = labels_to_legacy(info.labels)
        if info.HasField("type"):
            value["type"] = mesos_pb2.ExecutorInfo.Type.Name(info.type)
        return value

    def _queued_task(self, task: mesos_pb2.Task) -> dict[str, Any]:
        value: dict[str, Any] = {
            "id": task.task_id.value,
            "name": task.name,
            "slave_id": task.agent_id.value,
            "resources": resources_to_legacy(task.resources),
            "role": next(
                (r.allocation_info.role for r in task.resources if r.HasField("allocation_info")),
                "*",
            ),
        }
        if task.HasField("executor_id"):
            value["executor_id"] = task.executor_id.value
        return value

    # ------------------------------------------------------------------ containers

    async def _usage(self) -> list[tuple[Framework, Executor, dict[str, Any]]]:
        """Executors with something running, and their statistics as v1 JSON."""
        entries = []
        # Snapshots: executors may come and go during the awaits.
        for framework in list(self._agent.frameworks.values()):
            for executor in list(framework.executors.values()):
                statistics = await executor_usage(self._agent.containerizer, executor)
                if statistics is not None:
                    entries.append((framework, executor, to_json_dict(statistics)))
        return entries

    async def statistics(self, request: Request) -> Response:
        entries = [
            {
                "framework_id": framework.id,
                "executor_id": executor.id,
                "executor_name": executor.info.name,
                "source": executor.info.source,
                "statistics": statistics,
            }
            for framework, executor, statistics in await self._usage()
        ]
        return _jsonp(request, entries)

    async def containers(self, request: Request) -> Response:
        containerizer = self._agent.containerizer
        entries = []
        for framework, executor, statistics in await self._usage():
            status = mesos_pb2.ContainerStatus()
            if executor.container_id in containerizer.containers():
                with contextlib.suppress(Exception):
                    status = await containerizer.status(executor.container_id)
            status.container_id.value = executor.container_id
            entries.append(
                {
                    "framework_id": framework.id,
                    "executor_id": executor.id,
                    "executor_name": executor.info.name,
                    "source": executor.info.source,
                    "container_id": executor.container_id,
                    "status": to_json_dict(status),
                    "statistics": statistics,
                }
            )
        return _jsonp(request, entries)

    # ------------------------------------------------------------------ files

    async def browse(self, request: Request) -> Response:
        path = request.query_params.get("path", "")
        roots = views.file_roots(self._agent)
        try:
            entries = await anyio.to_thread.run_sync(files.browse, roots, path)
        except files.FilesError as error:
            raise HttpError(error.status, error.message) from None
        return _jsonp(request, [entry.to_legacy() for entry in entries])

    async def read(self, request: Request) -> Response:
        query = request.query_params
        path = query.get("path", "")
        offset = _integer(query.get("offset"), "offset", default=-1)
        length = _integer(query.get("length"), "length", default=None)
        roots = views.file_roots(self._agent)
        try:
            size, data = await anyio.to_thread.run_sync(files.read, roots, path, offset, length)
        except files.FilesError as error:
            raise HttpError(error.status, error.message) from None
        start = size if offset == -1 or offset > size else offset
        return _jsonp(request, {"offset": start, "data": data.decode("utf-8", "replace")})

    async def download(self, request: Request) -> Response:
        path = request.query_params.get("path", "")
        roots = views.file_roots(self._agent)
        try:
            _, real = await anyio.to_thread.run_sync(files.resolve, roots, path)
        except files.FilesError as error:
            raise HttpError(error.status, error.message) from None
        if real.is_dir():
            raise HttpError(400, "Cannot download a directory")
        return FileResponse(
            real,
            media_type="application/octet-stream",
            filename=os.path.basename(path.rstrip("/")) or real.name,
            content_disposition_type="attachment",
        )

    async def debug(self, request: Request) -> Response:
        return _jsonp(request, views.file_roots(self._agent).debug())


def _integer(text: str | None, name: str, *, default: int | None) -> Any:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise HttpError(400, f"Failed to parse {name}: '{text}' is not a number") from None
