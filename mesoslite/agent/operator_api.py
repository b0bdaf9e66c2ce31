"""`POST /api/v1` on the agent: the agent operator API (spec section 4.2).

Header rules (`Http::api`), checked before the body is read: Content-Type JSON,
protobuf or RecordIO (400/415); RecordIO needs Message-Content-Type JSON or protobuf
and only ATTACH_CONTAINER_INPUT streams its request (415 either way); Accept negotiated
among JSON, protobuf and RecordIO (406), a streaming Accept (then `Message-Accept`, JSON
by default) only for ATTACH_CONTAINER_OUTPUT and LAUNCH_NESTED_CONTAINER_SESSION (406).
Responses are `mesos.v1.agent.Response` in the negotiated type; the I/O calls are in
`container_io.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
from starlette.requests import Request
from starlette.responses import Response

from mesoslite.agent import files, views
from mesoslite.agent.call_stream import CallStream
from mesoslite.agent.container_call_validation import validate_container_call
from mesoslite.agent.container_io import ContainerIO, OutputMedia
from mesoslite.agent.containers_api import ContainerCalls
from mesoslite.agent.metrics import agent_metrics, system_metrics
from mesoslite.agent.usage import executor_usage, nested_container_ids
from mesoslite.proto import agent_pb2, mesos_pb2
from mesoslite.wire.http import HttpError, message_response
from mesoslite.wire.media import JSON, PROTOBUF, RECORDIO, decode_message, media_type, negotiate

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["BUILD_DATE", "BUILD_TIME", "BUILD_USER", "OperatorApi", "version_info"]

log = logging.getLogger(__name__)

_Call = agent_pb2.Call
_Response = agent_pb2.Response

BUILD_DATE = "2024-08-23 00:00:00"
BUILD_TIME = 1724371200.0
BUILD_USER = "mesoslite"

# Calls whose member must be present (Mesos' `validation::agent::call::validate`).
_REQUIRED_MEMBER = {
    _Call.SET_LOGGING_LEVEL: "set_logging_level",
    _Call.LIST_FILES: "list_files",
    _Call.READ_FILE: "read_file",
    _Call.LAUNCH_NESTED_CONTAINER: "launch_nested_container",
    _Call.WAIT_NESTED_CONTAINER: "wait_nested_container",
    _Call.KILL_NESTED_CONTAINER: "kill_nested_container",
    _Call.REMOVE_NESTED_CONTAINER: "remove_nested_container",
    _Call.LAUNCH_NESTED_CONTAINER_SESSION: "launch_nested_container_session",
    _Call.ATTACH_CONTAINER_INPUT: "attach_container_input",
    _Call.ATTACH_CONTAINER_OUTPUT: "attach_container_output",
    _Call.LAUNCH_CONTAINER: "launch_container",
    _Call.WAIT_CONTAINER: "wait_container",
    _Call.KILL_CONTAINER: "kill_container",
    _Call.REMOVE_CONTAINER: "remove_container",
    _Call.ADD_RESOURCE_PROVIDER_CONFIG: "add_resource_provider_config",
    _Call.UPDATE_RESOURCE_PROVIDER_CONFIG: "update_resource_provider_config",
    _Call.REMOVE_RESOURCE_PROVIDER_CONFIG: "remove_resource_provider_config",
    _Call.MARK_RESOURCE_PROVIDER_GONE: "mark_resource_provider_gone",
}

# The loggers SET_LOGGING_LEVEL turns up.
_LOGGERS = ("mesoslite.agent", "mesoslite.executor", "mesoslite.runtime")

_STREAMING_CALLS = frozenset({_Call.LAUNCH_NESTED_CONTAINER_SESSION, _Call.ATTACH_CONTAINER_OUTPUT})
_MESSAGE_CONTENT_TYPE = "message-content-type"
_MESSAGE_ACCEPT = "message-accept"


def version_info() -> mesos_pb2.VersionInfo:
    from mesoslite import MESOS_VERSION

    return mesos_pb2.VersionInfo(
        version=MESOS_VERSION, build_date=BUILD_DATE, build_time=BUILD_TIME, build_user=BUILD_USER
    )


def validate_agent_call(call: agent_pb2.Call) -> str | None:
    if not call.HasField("type"):
        return "Expecting 'type' to be present"
    member = _REQUIRED_MEMBER.get(call.type)
    if member is not None and not call.HasField(member):  # type: ignore[arg-type]
        return f"Expecting '{member}' to be present"
    return validate_container_call(call)


class OperatorApi:
    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.containers = ContainerCalls(agent)
        self.container_io = ContainerIO(agent, self.containers)
        self.logging_level = 0
        self._logging_reset: anyio.CancelScope | None = None
        self._baseline_levels: dict[str, int] = {}
        self._handlers: dict[
            int, Callable[[agent_pb2.Call], Awaitable[_Response | Response | None]]
        ] = {
            _Call.GET_HEALTH: self._get_health,
            _Call.GET_FLAGS: self._get_flags,
            _Call.GET_VERSION: self._get_version,
            _Call.GET_METRICS: self._get_metrics,
            _Call.GET_LOGGING_LEVEL: self._get_logging_level,
            _Call.SET_LOGGING_LEVEL: self._set_logging_level,
            _Call.LIST_FILES: self._list_files,
            _Call.READ_FILE: self._read_file,
            _Call.GET_STATE: self._get_state,
            _Call.GET_CONTAINERS: self._get_containers,
            _Call.GET_FRAMEWORKS: self._get_frameworks,
            _Call.GET_EXECUTORS: self._get_executors,
            _Call.GET_OPERATIONS: self._get_operations,
            _Call.GET_TASKS: self._get_tasks,
            _Call.GET_AGENT: self._get_agent,
            _Call.GET_RESOURCE_PROVIDERS: self._get_resource_providers,
            _Call.LAUNCH_CONTAINER: self._launch_container,
            _Call.LAUNCH_NESTED_CONTAINER: self._launch_nested_container,
            _Call.WAIT_CONTAINER: self._wait_container,
            _Call.WAIT_NESTED_CONTAINER: self._wait_nested_container,
            _Call.KILL_CONTAINER: self._kill_container,
            _Call.KILL_NESTED_CONTAINER: self._kill_nested_container,
            _Call.REMOVE_CONTAINER: self._remove_container,
            _Call.REMOVE_NESTED_CONTAINER: self._remove_nested_container,
            _Call.PRUNE_IMAGES: self._prune_images,
        }

    async def __call__(self, request: Request) -> Response:
        if request.method != "POST":
            raise HttpError(
                405,
                f"Expecting one of {{ 'POST' }}, but received '{request.method}'",
                headers={"Allow": "POST"},
            )
        content_type, message_content_type = _request_media(request)
        accept, message_accept = _response_media(request)
        calls: CallStream | None = None
        if content_type == RECORDIO:
            assert message_content_type is not None
            calls = CallStream(request.stream(), message_content_type)
            first = await calls.next()
            if first is None:
                raise HttpError(400, "Received EOF while reading request body")
            call = first
        else:
            call = decode_message(await request.body(), content_type, _Call, "agent::Call")
        error = validate_agent_call(call)
        if error is not None:
            raise HttpError(400, f"Failed to validate agent::Call: {error}")
        name = _Call.Type.Name(call.type)
        if calls is not None and call.type != _Call.ATTACH_CONTAINER_INPUT:
            raise HttpError(
                415, f"Streaming 'Content-Type' {RECORDIO} is not supported for {name} call"
            )
        if calls is None and call.type == _Call.ATTACH_CONTAINER_INPUT:
            raise HttpError(415, f"Expecting 'Content-Type' to be {RECORDIO} for {name} call")
        if accept == RECORDIO and call.type not in _STREAMING_CALLS:
            raise HttpError(406, f"Streaming response is not supported for {name} call")
        if call.type == _Call.UNKNOWN:
            raise HttpError(501, "Received 'UNKNOWN' call")
        if call.type == _Call.ATTACH_CONTAINER_INPUT:
            assert calls is not None
            return await self.container_io.attach_input(call, calls)
        if call.type in _STREAMING_CALLS:
            media = OutputMedia(accept, message_accept)
            if call.type == _Call.ATTACH_CONTAINER_OUTPUT:
                return await self.container_io.attach_output(call, media)
            return await self.container_io.launch_session(call, media)
        handler = self._handlers.get(call.type)
        if handler is None:
            raise HttpError(501, f"'{name}' is not supported by this agent")
        response = await handler(call)
        if isinstance(response, Response):
            return response
        if response is None:
            return Response(b"", status_code=200)
        return message_response(response, accept)

    # ------------------------------------------------------------------ simple getters

    async def _get_health(self, call: agent_pb2.Call) -> _Response:
        return _Response(type=_Response.GET_HEALTH, get_health=_Response.GetHealth(healthy=True))

    async def _get_flags(self, call: agent_pb2.Call) -> _Response:
        flags = [
            mesos_pb2.Flag(name=name, value=value)
            for name, value in sorted(self._agent.config.flags().items())
        ]
        return _Response(type=_Response.GET_FLAGS, get_flags=_Response.GetFlags(flags=flags))

    async def _get_version(self, call: agent_pb2.Call) -> _Response:
        return _Response(
            type=_Response.GET_VERSION,
            get_version=_Response.GetVersion(version_info=version_info()),
        )

    async def _get_metrics(self, call: agent_pb2.Call) -> _Response:
        values = agent_metrics(self._agent)
        values.update(await anyio.to_thread.run_sync(system_metrics))
        metrics = [
            mesos_pb2.Metric(name=name, value=value) for name, value in sorted(values.items())
        ]
        return _Response(
            type=_Response.GET_METRICS, get_metrics=_Response.GetMetrics(metrics=metrics)
        )

    async def _get_logging_level(self, call: agent_pb2.Call) -> _Response:
        return _Response(
            type=_Response.GET_LOGGING_LEVEL,
            get_logging_level=_Response.GetLoggingLevel(level=self.logging_level),
        )

    async def _set_logging_level(self, call: agent_pb2.Call) -> None:
        # glog verbosity: any level above 0 means debug logging of the agent (its own
        # loggers only: a master may share the process), for `duration`.
        request = call.set_logging_level
        if self._logging_reset is None:
            self._baseline_levels = {name: logging.getLogger(name).level for name in _LOGGERS}
        else:
            self._logging_reset.cancel()
        self.logging_level = request.level
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(
                logging.DEBUG if request.level > 0 else self._baseline_levels[name]
            )
        scope = anyio.CancelScope()
        self._logging_reset = scope
        duration_s = request.duration.nanoseconds / 1e9
        self._agent.task_group().start_soon(self._reset_logging, scope, duration_s)

    async def _reset_logging(self, scope: anyio.CancelScope, duration_s: float) -> None:
        try:
            with scope:
                await anyio.sleep(duration_s)
        finally:
            # Expired, or the agent stops: back to the baseline. A newer call that
            # replaced this one resets on its own.
            if self._logging_reset is scope:
                self._logging_reset = None
                self.logging_level = 0
                for name in _LOGGERS:
                    logging.getLogger(name).setLevel(self._baseline_levels[name])

    async def _list_files(self, call: agent_pb2.Call) -> _Response:
        roots = views.file_roots(self._agent)
        try:
            entries = await anyio.to_thread.run_sync(files.browse, roots, call.list_files.path)
        except files.FilesError as error:
            raise HttpError(error.status, error.message) from None
        return _Response(
            type=_Response.LIST_FILES,
            list_files=_Response.ListFiles(file_infos=[entry.to_file_info() for entry in entries]),
        )

    async def _read_file(self, call: agent_pb2.Call) -> _Response:
        request = call.read_file
        roots = views.file_roots(self._agent)
        length = request.length if request.HasField("length") else None
        try:
            size, data = await anyio.to_thread.run_sync(
                files.read, roots, request.path, request.offset, length
            )
        except files.FilesError as error:
            raise HttpError(error.status, error.message) from None
        return _Response(
            type=_Response.READ_FILE, read_file=_Response.ReadFile(size=size, data=data)
        )

    async def _get_state(self, call: agent_pb2.Call) -> _Response:
        return _Response(type=_Response.GET_STATE, get_state=views.get_state(self._agent))

    async def _get_frameworks(self, call: agent_pb2.Call) -> _Response:
        return _Response(
            type=_Response.GET_FRAMEWORKS, get_frameworks=views.get_frameworks(self._agent)
        )

    async def _get_executors(self, call: agent_pb2.Call) -> _Response:
        return _Response(
            type=_Response.GET_EXECUTORS, get_executors=views.get_executors(self._agent)
        )

    async def _get_tasks(self, call: agent_pb2.Call) -> _Response:
        return _Response(type=_Response.GET_TASKS, get_tasks=views.get_tasks(self._agent))

    async def _get_operations(self, call: agent_pb2.Call) -> _Response:
        return _Response(type=_Response.GET_OPERATIONS, get_operations=_Response.GetOperations())

    async def _get_agent(self, call: agent_pb2.Call) -> _Response:
        return _Response(
            type=_Response.GET_AGENT,
            get_agent=_Response.GetAgent(agent_info=self._agent.agent_info),
        )

    async def _get_resource_providers(self, call: agent_pb2.Call) -> _Response:
        return _Response(
            type=_Response.GET_RESOURCE_PROVIDERS,
            get_resource_providers=_Response.GetResourceProviders(),
        )

    async def _get_containers(self, call: agent_pb2.Call) -> _Response:
        request = call.get_containers
        agent = self._agent
        containerizer = agent.containerizer
        result = _Response.GetContainers()
        running = set(containerizer.containers())
        reported: set[str] = set()
        # Snapshots: the awaits below let executors come and go meanwhile.
        for framework in list(agent.frameworks.values()):
            for executor in list(framework.executors.values()):
                entry = result.containers.add(executor_name=executor.info.name)
                entry.framework_id.value = framework.id
                entry.executor_id.CopyFrom(executor.info.executor_id)
                entry.container_id.value = executor.container_id
                reported.add(executor.container_id)
                await self._fill_status(entry, executor.container_id, running)
                statistics = await executor_usage(containerizer, executor)
                if statistics is not None:
                    entry.resource_statistics.CopyFrom(statistics)
                if not request.show_nested:
                    continue
                for nested_id in nested_container_ids(executor):
                    nested = result.containers.add(executor_name=executor.info.name)
                    nested.framework_id.value = framework.id
                    nested.executor_id.CopyFrom(executor.info.executor_id)
                    nested.container_id.value = nested_id
                    nested.container_id.parent.value = executor.container_id
                    reported.add(nested_id)
                    await self._fill_status(nested, nested_id, running)
                    await self._fill_usage(nested, nested_id, running)
        if request.show_nested or request.show_standalone:
            # Containers launched through this API (standalone ones and containers nested
            # anywhere), each named with its whole parent chain.
            for container_id in sorted(running - reported):
                try:
                    status = await containerizer.status(container_id)
                except Exception as exc:  # it ended meanwhile
                    log.debug("no status for container %s: %s", container_id, exc)
                    continue
                is_nested = status.container_id.HasField("parent")
                if not (request.show_nested if is_nested else request.show_standalone):
                    continue
                entry = result.containers.add()
                entry.container_id.CopyFrom(status.container_id)
                entry.container_status.CopyFrom(status)
                await self._fill_usage(entry, container_id, running)
        return _Response(type=_Response.GET_CONTAINERS, get_containers=result)

    async def _fill_status(
        self,
        entry: agent_pb2.Response.GetContainers.Container,
        container_id: str,
        running: set[str],
    ) -> None:
        if container_id in running:
            try:
                entry.container_status.CopyFrom(
                    await self._agent.containerizer.status(container_id)
                )
            except Exception as exc:  # it ended meanwhile
                log.debug("no status for container %s: %s", container_id, exc)
        entry.container_status.container_id.CopyFrom(entry.container_id)

    async def _fill_usage(
        self,
        entry: agent_pb2.Response.GetContainers.Container,
        container_id: str,
        running: set[str],
    ) -> None:
        if container_id not in running:
            return
        try:
            usage = await self._agent.containerizer.usage(container_id)
            entry.resource_statistics.CopyFrom(usage)
        except Exception as exc:  # it ended meanwhile
            log.debug("no statistics for container %s: %s", container_id, exc)

    # ------------------------------------------------------------------ containers

    async def _launch_container(self, call: agent_pb2.Call) -> Response:
        request = call.launch_container
        status = await self.containers.launch(
            request.container_id,
            request.command if request.HasField("command") else None,
            request.container if request.HasField("container") else None,
            list(request.resources),
        )
        return Response(b"", status_code=status)

    async def _launch_nested_container(self, call: agent_pb2.Call) -> Response:
        request = call.launch_nested_container
        if not request.container_id.HasField("parent"):
            raise HttpError(400, "Expecting 'container_id.parent' to be present")
        status = await self.containers.launch(
            request.container_id,
            request.command if request.HasField("command") else None,
            request.container if request.HasField("container") else None,
            [],
        )
        return Response(b"", status_code=status)

    async def _wait_container(self, call: agent_pb2.Call) -> _Response:
        result = await self.containers.wait(call.wait_container.container_id)
        return _Response(type=_Response.WAIT_CONTAINER, wait_container=result)

    async def _wait_nested_container(self, call: agent_pb2.Call) -> _Response:
        result = await self.containers.wait(call.wait_nested_container.container_id)
        nested = _Response.WaitNestedContainer()
        nested.ParseFromString(result.SerializeToString())
        return _Response(type=_Response.WAIT_NESTED_CONTAINER, wait_nested_container=nested)

    async def _kill_container(self, call: agent_pb2.Call) -> None:
        request = call.kill_container
        signal_number = request.signal if request.HasField("signal") else None
        await self.containers.kill(request.container_id, signal_number)

    async def _kill_nested_container(self, call: agent_pb2.Call) -> None:
        request = call.kill_nested_container
        signal_number = request.signal if request.HasField("signal") else None
        await self.containers.kill(request.container_id, signal_number)

    async def _remove_container(self, call: agent_pb2.Call) -> None:
        await self.containers.remove(call.remove_container.container_id)

    async def _remove_nested_container(self, call: agent_pb2.Call) -> None:
        await self.containers.remove(call.remove_nested_container.container_id)

    async def _prune_images(self, call: agent_pb2.Call) -> None:
        await self._agent.containerizer.prune_images(list(call.prune_images.excluded_images))


def _request_media(request: Request) -> tuple[str, str | None]:
    """The request's Content-Type and, for a streaming one, Message-Content-Type."""
    content_type = media_type(request.headers.get("content-type"))
    if not content_type:
        raise HttpError(400, "Expecting 'Content-Type' to be present")
    if content_type not in (JSON, PROTOBUF, RECORDIO):
        raise HttpError(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF} or {RECORDIO}")
    message_content_type = request.headers.get(_MESSAGE_CONTENT_TYPE)
    if content_type != RECORDIO:
        if message_content_type is not None:
            raise HttpError(
                415,
                "Expecting 'Message-Content-Type' to be not set for non-streaming requests",
            )
        return content_type, None
    if message_content_type is None:
        raise HttpError(400, "Expecting 'Message-Content-Type' to be set for streaming requests")
    message_type = media_type(message_content_type)
    if message_type not in (JSON, PROTOBUF):
        raise HttpError(415, f"Expecting 'Message-Content-Type' of {JSON} or {PROTOBUF}")
    return content_type, message_type


def _response_media(request: Request) -> tuple[str, str]:
    """The response's type and (for a RecordIO stream) its records' type."""
    accept = negotiate(request.headers.get("accept"), (JSON, PROTOBUF, RECORDIO))
    if accept is None:
        raise HttpError(406, f"Expecting 'Accept' to allow {JSON} or {PROTOBUF} or {RECORDIO}")
    message_accept_header = request.headers.get(_MESSAGE_ACCEPT)
    if accept != RECORDIO:
        if message_accept_header is not None:
            raise HttpError(
                406, "Expecting 'Message-Accept' to be not set for non-streaming responses"
            )
        return accept, accept
    message_accept = negotiate(message_accept_header, (JSON, PROTOBUF))
    if message_accept is None:
        raise HttpError(406, f"Expecting 'Message-Accept' to allow {JSON} or {PROTOBUF}")
    return accept, message_accept
