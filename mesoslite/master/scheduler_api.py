"""`POST /api/v1/scheduler` (wire contract 1.2, 1.5, 2.1-2.2): check the request in
Mesos' order, then hand the call to the master.

Order: leader (307/503) -> method (405) -> Content-Type (400/415) -> body (400) ->
call validation (400) -> for SUBSCRIBE: Accept (406), no stream id (400); for other
calls: framework known (400), subscribed (403), stream id present and current (400).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from mesoslite.master.leadership import require_leader
from mesoslite.master.state import Framework
from mesoslite.master.validation import validate_scheduler_call
from mesoslite.proto import scheduler_pb2
from mesoslite.wire.http import HttpError, accepted, read_call
from mesoslite.wire.media import JSON, PROTOBUF, negotiate

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["SchedulerApi"]

Call = scheduler_pb2.Call
STREAM_ID_HEADER = "Mesos-Stream-Id"


class SchedulerApi:
    def __init__(self, master: Master) -> None:
        self._master = master

    async def __call__(self, request: Request) -> Response:
        master = self._master
        require_leader(master, request)
        call, _ = await read_call(request, Call, "Call")
        error = validate_scheduler_call(call)
        if error is not None:
            raise HttpError(400, f"Failed to validate scheduler::Call: {error}")
        master.metrics.scheduler_calls[Call.Type.Name(call.type)] += 1
        if call.type == Call.SUBSCRIBE:
            return self._subscribe(request, call)
        framework = self._framework_of(request, call)
        return self._dispatch(request, framework, call)

    def _subscribe(self, request: Request, call: scheduler_pb2.Call) -> Response:
        content_type = negotiate(request.headers.get("accept"))
        if content_type is None:
            raise HttpError(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
        if STREAM_ID_HEADER in request.headers:
            raise HttpError(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
        events = self._master.frameworks.subscribe(call.subscribe, content_type)
        return events.response()

    def _framework_of(self, request: Request, call: scheduler_pb2.Call) -> Framework:
        framework = self._master.state.frameworks.get(call.framework_id.value)
        if framework is None:
            raise HttpError(400, "Framework cannot be found")
        if framework.stream is None:
            raise HttpError(403, "Framework is not subscribed")
        stream_id = request.headers.get(STREAM_ID_HEADER)
        if stream_id is None:
            raise HttpError(
                400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        if stream_id != framework.stream.stream_id:
            raise HttpError(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the"
                f" stream ID currently associated with framework ID {framework.id}",
            )
        return framework

    def _dispatch(
        self, request: Request, framework: Framework, call: scheduler_pb2.Call
    ) -> Response:
        master = self._master
        kind = call.type
        if kind == Call.TEARDOWN:
            master.frameworks.remove(framework)
        elif kind == Call.ACCEPT:
            master.accepts.accept(framework, call.accept)
        elif kind == Call.DECLINE:
            master.offers.decline(
                framework,
                [offer_id.value for offer_id in call.decline.offer_ids],
                call.decline.filters if call.decline.HasField("filters") else None,
            )
        elif kind == Call.REVIVE:
            master.frameworks.revive(framework, call.revive.roles)
        elif kind == Call.SUPPRESS:
            master.frameworks.suppress(framework, call.suppress.roles)
        elif kind == Call.KILL:
            master.tasks.kill(framework, call.kill)
        elif kind == Call.SHUTDOWN:
            master.frameworks.shutdown_executor(framework, call.shutdown)
        elif kind == Call.ACKNOWLEDGE:
            master.tasks.acknowledge(framework, call.acknowledge)
        elif kind == Call.RECONCILE:
            master.tasks.reconcile(framework, call.reconcile)
        elif kind == Call.MESSAGE:
            master.frameworks.send_message(framework, call.message)
        elif kind == Call.RECONCILE_OPERATIONS:
            if negotiate(request.headers.get("accept")) is None:
                raise HttpError(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
            master.tasks.reconcile_operations(framework, call.reconcile_operations)
        elif kind == Call.UPDATE_FRAMEWORK:
            master.frameworks.update_framework(framework, call.update_framework)
            return Response(b"", status_code=200)
        elif kind in (
            Call.REQUEST,
            Call.ACCEPT_INVERSE_OFFERS,
            Call.DECLINE_INVERSE_OFFERS,
            Call.ACKNOWLEDGE_OPERATION_STATUS,
        ):
            # Nothing to do: the allocator ignores requests; there are no inverse
            # offers (no maintenance) and no operations with feedback yet.
            pass
        else:
            raise HttpError(501, "Not Implemented")
        return accepted()
