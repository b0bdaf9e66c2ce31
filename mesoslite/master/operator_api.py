"""`POST /api/v1` (also `/api/v1/operator`, as pymesos' operator driver calls it): the
master operator API (wire contract 4.1, 4.3).

Checks come in Mesos' order: leader -> method -> Content-Type -> body -> validation
-> Accept (for every call). Calls this master cannot carry out yet (reservations,
volumes, quota and maintenance changes, draining) are refused with a status code and
a reason; they never fail with a traceback.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
from starlette.requests import Request
from starlette.responses import Response

from mesoslite import MESOS_VERSION
from mesoslite.master import views
from mesoslite.master.events import OPERATOR_HEARTBEAT_BYTES
from mesoslite.master.files import FileNotFound
from mesoslite.master.leadership import require_leader
from mesoslite.master.metrics import metrics_snapshot
from mesoslite.master.timers import Timer
from mesoslite.master.validation import validate_operator_call
from mesoslite.master.weights import update_weights
from mesoslite.proto import master_pb2, mesos_pb2
from mesoslite.wire.http import EventStream, HttpError, message_response, read_call
from mesoslite.wire.media import JSON, PROTOBUF, negotiate

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["OperatorApi", "version_info"]

log = logging.getLogger(__name__)

Call = master_pb2.Call

# An operator subscriber that stops reading is cut off past this backlog.
MAX_SUBSCRIBER_BACKLOG_BYTES = 16 * 1024 * 1024
Response_ = master_pb2.Response

# Build facts reported by GET_VERSION and /version.
BUILD_DATE = "2024-08-23 00:00:00"
BUILD_TIME = 1724371200.0
BUILD_USER = "mesoslite"


def version_info() -> mesos_pb2.VersionInfo:
    return mesos_pb2.VersionInfo(
        version=MESOS_VERSION, build_date=BUILD_DATE, build_time=BUILD_TIME, build_user=BUILD_USER
    )


_NOT_YET = {
    Call.RESERVE_RESOURCES: (409, "Dynamic reservations are not supported by this master yet"),
    Call.UNRESERVE_RESOURCES: (409, "Dynamic reservations are not supported by this master yet"),
    Call.CREATE_VOLUMES: (409, "Persistent volumes are not supported by this master yet"),
    Call.DESTROY_VOLUMES: (409, "Persistent volumes are not supported by this master yet"),
    Call.GROW_VOLUME: (409, "Persistent volumes are not supported by this master yet"),
    Call.SHRINK_VOLUME: (409, "Persistent volumes are not supported by this master yet"),
    Call.UPDATE_MAINTENANCE_SCHEDULE: (501, "Maintenance is not supported by this master yet"),
    Call.START_MAINTENANCE: (501, "Maintenance is not supported by this master yet"),
    Call.STOP_MAINTENANCE: (501, "Maintenance is not supported by this master yet"),
    Call.DRAIN_AGENT: (501, "Agent draining is not supported by this master yet"),
    Call.UPDATE_QUOTA: (501, "Quota is not supported by this master yet"),
    Call.SET_QUOTA: (501, "Quota is not supported by this master yet"),
    Call.REMOVE_QUOTA: (501, "Quota is not supported by this master yet"),
}

# Calls naming an agent: an unknown agent is a bad request before anything else.
_AGENT_OF = {
    Call.RESERVE_RESOURCES: lambda call: call.reserve_resources.agent_id.value,
    Call.UNRESERVE_RESOURCES: lambda call: call.unreserve_resources.agent_id.value,
    Call.CREATE_VOLUMES: lambda call: call.create_volumes.agent_id.value,
    Call.DESTROY_VOLUMES: lambda call: call.destroy_volumes.agent_id.value,
    Call.GROW_VOLUME: lambda call: call.grow_volume.agent_id.value,
    Call.SHRINK_VOLUME: lambda call: call.shrink_volume.agent_id.value,
}


class OperatorApi:
    def __init__(self, master: Master) -> None:
        self._master = master
        self._logging_level = 0
        self._baseline_level: int | None = None
        self._revert_timer: Timer | None = None

    async def __call__(self, request: Request) -> Response:
        require_leader(self._master, request)
        call, _ = await read_call(request, Call, "Call")
        error = validate_operator_call(call)
        if error is not None:
            raise HttpError(400, f"Failed to validate master::Call: {error}")
        content_type = negotiate(request.headers.get("accept"))
        if content_type is None:
            raise HttpError(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
        if call.type == Call.SUBSCRIBE:
            return self._subscribe(content_type)
        if call.type in (Call.LIST_FILES, Call.READ_FILE):
            return await self._files(call, content_type)
        if call.type == Call.GET_WEIGHTS:
            # Registry-backed: answered from what is committed, after a leadership check.
            committed = await self._master.leadership.committed_weights()
            if committed is not None:
                answer = Response_(type=Response_.GET_WEIGHTS)
                for role, weight in sorted(committed.items()):
                    answer.get_weights.weight_infos.add(role=role, weight=weight)
                return message_response(answer, content_type)
        response = self._handle(call)
        # Registry writes the call made must commit before it is answered.
        await self._master.leadership.recorded()
        if response is None:
            return Response(b"", status_code=200)
        return message_response(response, content_type)

    def _handle(self, call: master_pb2.Call) -> master_pb2.Response | None:
        """The answer to a call (None: an empty 200); raises HttpError on refusal."""
        master = self._master
        kind = call.type
        if kind in _AGENT_OF:
            agent_id = _AGENT_OF[kind](call)
            if agent_id not in master.state.agents:
                raise HttpError(400, f"No agent found with specified ID '{agent_id}'")
        if kind in _NOT_YET:
            status, message = _NOT_YET[kind]
            raise HttpError(status, message)
        response = Response_()
        if kind == Call.GET_HEALTH:
            response.type = Response_.GET_HEALTH
            response.get_health.healthy = True
        elif kind == Call.GET_FLAGS:
            response.type = Response_.GET_FLAGS
            for flag_name, flag_value in sorted(master.config.flags().items()):
                response.get_flags.flags.add(name=flag_name, value=flag_value)
        elif kind == Call.GET_VERSION:
            response.type = Response_.GET_VERSION
            response.get_version.version_info.CopyFrom(version_info())
        elif kind == Call.GET_METRICS:
            response.type = Response_.GET_METRICS
            for name, value in sorted(metrics_snapshot(master).items()):
                response.get_metrics.metrics.add(name=name, value=value)
        elif kind == Call.GET_LOGGING_LEVEL:
            response.type = Response_.GET_LOGGING_LEVEL
            response.get_logging_level.level = self._logging_level
        elif kind == Call.SET_LOGGING_LEVEL:
            self._set_logging_level(call.set_logging_level)
            return None
        elif kind == Call.GET_STATE:
            response.type = Response_.GET_STATE
            response.get_state.CopyFrom(views.get_state(master))
        elif kind == Call.GET_AGENTS:
            response.type = Response_.GET_AGENTS
            response.get_agents.CopyFrom(views.get_agents(master))
        elif kind == Call.GET_FRAMEWORKS:
            response.type = Response_.GET_FRAMEWORKS
            response.get_frameworks.CopyFrom(views.get_frameworks(master))
        elif kind == Call.GET_EXECUTORS:
            response.type = Response_.GET_EXECUTORS
            response.get_executors.CopyFrom(views.get_executors(master))
        elif kind == Call.GET_OPERATIONS:
            response.type = Response_.GET_OPERATIONS
            response.get_operations.SetInParent()
        elif kind == Call.GET_TASKS:
            response.type = Response_.GET_TASKS
            response.get_tasks.CopyFrom(views.get_tasks(master))
        elif kind == Call.GET_ROLES:
            response.type = Response_.GET_ROLES
            response.get_roles.CopyFrom(views.get_roles(master))
        elif kind == Call.GET_WEIGHTS:
            response.type = Response_.GET_WEIGHTS
            response.get_weights.CopyFrom(views.get_weights(master))
        elif kind == Call.UPDATE_WEIGHTS:
            update_weights(master, call.update_weights.weight_infos)
            return None
        elif kind == Call.GET_MASTER:
            response.type = Response_.GET_MASTER
            response.get_master.CopyFrom(views.get_master(master))
        elif kind == Call.GET_MAINTENANCE_STATUS:
            response.type = Response_.GET_MAINTENANCE_STATUS
            response.get_maintenance_status.status.SetInParent()
        elif kind == Call.GET_MAINTENANCE_SCHEDULE:
            response.type = Response_.GET_MAINTENANCE_SCHEDULE
            response.get_maintenance_schedule.schedule.SetInParent()
        elif kind == Call.GET_QUOTA:
            response.type = Response_.GET_QUOTA
            response.get_quota.status.SetInParent()
        elif kind == Call.TEARDOWN:
            self._teardown(call.teardown.framework_id.value)
            return None
        elif kind == Call.MARK_AGENT_GONE:
            agent_id = call.mark_agent_gone.agent_id.value
            if not master.agents.mark_gone(agent_id):
                raise HttpError(404, f"Agent '{agent_id}' not found")
            return None
        elif kind in (Call.DEACTIVATE_AGENT, Call.REACTIVATE_AGENT):
            self._set_agent_active(call)
            return None
        else:
            raise HttpError(501, "Not Implemented")
        return response

    # ------------------------------------------------------------------ calls

    def _subscribe(self, content_type: str) -> Response:
        master = self._master
        events = EventStream(content_type, max_buffered_bytes=MAX_SUBSCRIBER_BACKLOG_BYTES)
        if not master.operator_subscribers.add(events):
            raise HttpError(503, "Maximum number of subscribers reached")
        event = master_pb2.Event(type=master_pb2.Event.SUBSCRIBED)
        event.subscribed.get_state.CopyFrom(views.get_state(master))
        event.subscribed.heartbeat_interval_seconds = master.config.heartbeat_interval_s
        events.send(event)
        events.send_encoded(OPERATOR_HEARTBEAT_BYTES[content_type])
        return events.response()

    async def _files(self, call: master_pb2.Call, content_type: str) -> Response:
        files = self._master.files
        response = Response_()
        try:
            if call.type == Call.LIST_FILES:
                path = call.list_files.path
                infos = await anyio.to_thread.run_sync(files.browse, path)
                response.type = Response_.LIST_FILES
                response.list_files.file_infos.extend(infos)
            else:
                path = call.read_file.path
                length = call.read_file.length if call.read_file.HasField("length") else None
                size, data = await anyio.to_thread.run_sync(
                    files.read, path, call.read_file.offset, length
                )
                response.type = Response_.READ_FILE
                response.read_file.size = size
                response.read_file.data = data
        except (FileNotFound, IsADirectoryError, OSError):
            raise HttpError(404, f"File '{path}' not found") from None
        return message_response(response, content_type)

    def _set_logging_level(self, request: master_pb2.Call.SetLoggingLevel) -> None:
        """glog verbosity: 0 is the normal level; higher means more detail (DEBUG here),
        for `duration`, after which the level reverts."""
        package_logger = logging.getLogger("mesoslite")
        if self._baseline_level is None:
            self._baseline_level = package_logger.level
        baseline = self._baseline_level
        self._logging_level = request.level
        package_logger.setLevel(logging.DEBUG if request.level > 0 else baseline)
        if self._revert_timer is not None:
            self._revert_timer.cancel()

        def revert() -> None:
            self._logging_level = 0
            package_logger.setLevel(baseline)

        self._revert_timer = self._master.timers.call_later(
            request.duration.nanoseconds / 1e9, revert
        )

    def _teardown(self, framework_id: str) -> None:
        framework = self._master.state.frameworks.get(framework_id)
        if framework is None:
            raise HttpError(400, "No framework found with specified ID")
        self._master.frameworks.remove(framework)

    def _set_agent_active(self, call: master_pb2.Call) -> None:
        master = self._master
        deactivate = call.type == Call.DEACTIVATE_AGENT
        agent_id = (
            call.deactivate_agent.agent_id.value
            if deactivate
            else call.reactivate_agent.agent_id.value
        )
        agent = master.state.agents.get(agent_id)
        if agent is None:
            raise HttpError(400, f"Unknown agent '{agent_id}'")
        if deactivate:
            master.agents.deactivate(agent)
        else:
            master.agents.reactivate(agent)
