"""`POST /api/v1/executor`: the executor HTTP API on the agent (spec section 3).

Checks in Mesos' order (`Http::executor`): 503 while recovering, 405, Content-Type and
body (400/415), call validation (400), Accept for SUBSCRIBE (406), HEARTBEAT (202),
unknown framework or executor (400), not subscribed (403; 503 for an executor the
agent recovered after a restart, which must SUBSCRIBE again first); then the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from mesoslite.agent.executors import CustomExecutorRunner
from mesoslite.agent.state import Executor, ExecutorKind, ExecutorPhase, Framework
from mesoslite.proto import executor_pb2, internal_pb2, mesos_pb2
from mesoslite.wire.http import EventStream, HttpError, accepted, read_call
from mesoslite.wire.media import negotiate

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["ExecutorApi", "validate_executor_call"]

_Call = executor_pb2.Call
_Event = executor_pb2.Event
_TS = mesos_pb2.TaskState


def validate_executor_call(call: executor_pb2.Call) -> str | None:
    """Mesos' `validation::executor::call::validate`; None when valid."""
    if not call.HasField("type"):
        return "Expecting 'type' to be present"
    if call.type == _Call.SUBSCRIBE:
        if not call.HasField("subscribe"):
            return "Expecting 'subscribe' to be present"
    elif call.type == _Call.UPDATE:
        if not call.HasField("update"):
            return "Expecting 'update' to be present"
        status = call.update.status
        if not status.HasField("uuid"):
            return "Expecting 'uuid' to be present"
        if len(status.uuid) != 16:
            return f"Invalid UUID: expected 16 bytes, got {len(status.uuid)}"
        if status.HasField("executor_id") and status.executor_id != call.executor_id:
            return (
                f"ExecutorID in Call: {call.executor_id.value} does not match ExecutorID "
                f"in TaskStatus: {status.executor_id.value}"
            )
        if status.source != mesos_pb2.TaskStatus.SOURCE_EXECUTOR:
            return "Received Call from executor with invalid source"
        if status.state == _TS.TASK_STAGING:
            return "Received TASK_STAGING from executor which is not allowed"
    elif call.type == _Call.MESSAGE and not call.HasField("message"):
        return "Expecting 'message' to be present"
    return None


class ExecutorApi:
    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    async def __call__(self, request: Request) -> Response:
        agent = self._agent
        if not agent.recovered:
            raise HttpError(503, "Agent has not finished recovery")
        call, _ = await read_call(request, _Call, "executor::Call")
        error = validate_executor_call(call)
        if error is not None:
            raise HttpError(400, f"Failed to validate executor::Call: {error}")
        response_type = None
        if call.type == _Call.SUBSCRIBE:
            response_type = negotiate(request.headers.get("accept"))
            if response_type is None:
                raise HttpError(
                    406, "Expecting 'Accept' to allow application/json or application/x-protobuf"
                )
        if call.type == _Call.HEARTBEAT:
            return accepted()
        framework = agent.frameworks.get(call.framework_id.value)
        if framework is None:
            raise HttpError(400, "Framework cannot be found")
        executor = framework.executors.get(call.executor_id.value)
        if executor is None or executor.kind is not ExecutorKind.CUSTOM:
            raise HttpError(400, "Executor cannot be found")
        if executor.phase is ExecutorPhase.REGISTERING and call.type != _Call.SUBSCRIBE:
            if executor.resubscription_pending:
                raise HttpError(503, "Agent is recovering: the executor must subscribe again")
            raise HttpError(403, "Executor is not subscribed")
        if call.type == _Call.SUBSCRIBE:
            assert response_type is not None
            return await self._subscribe(framework, executor, call.subscribe, response_type)
        if call.type == _Call.UPDATE:
            await self._update(framework, executor, call.update.status)
            return accepted()
        if call.type == _Call.MESSAGE:
            await self._message(framework, executor, call.message.data)
            return accepted()
        raise HttpError(501, "Received 'UNKNOWN' call")

    async def _subscribe(
        self,
        framework: Framework,
        executor: Executor,
        subscribe: executor_pb2.Call.Subscribe,
        content_type: str,
    ) -> Response:
        agent = self._agent
        stream = EventStream(content_type)
        if framework.terminating or executor.phase in (
            ExecutorPhase.TERMINATING,
            ExecutorPhase.TERMINATED,
        ):
            stream.send(_Event(type=_Event.SHUTDOWN))
            stream.close()
            return stream.response()
        previous = executor.events
        if previous is not None:
            previous.close()
        executor.events = stream
        executor.phase = ExecutorPhase.RUNNING

        def disconnected() -> None:
            if executor.events is stream:
                executor.events = None

        stream.on_close(disconnected)
        # Updates the executor sent that the agent may not have seen (after a restart);
        # the status update manager drops the ones it already has by uuid.
        for update in subscribe.unacknowledged_updates:
            status = mesos_pb2.TaskStatus()
            status.CopyFrom(update.status)
            await agent.handle_status_update(framework, executor, status)
        if executor.resubscription_pending:
            executor.resubscription_pending = False
            await agent.drop_undelivered_tasks(framework, executor, subscribe.unacknowledged_tasks)

        subscribed = _Event.Subscribed()
        subscribed.executor_info.CopyFrom(executor.info)
        subscribed.framework_info.CopyFrom(framework.info)
        subscribed.agent_info.CopyFrom(agent.agent_info)
        subscribed.container_id.value = executor.container_id
        stream.send(_Event(type=_Event.SUBSCRIBED, subscribed=subscribed))
        runner = executor.runner
        if isinstance(runner, CustomExecutorRunner):
            runner.subscribed.set()
        if executor.is_idle and not executor.terminated_tasks and not executor.completed_tasks:
            # Nothing to run (its tasks were killed while it started): shut it down.
            agent.shutdown_executor(framework.id, executor.id)
        else:
            agent.deliver_queued(framework, executor)
        return stream.response()

    async def _update(
        self, framework: Framework, executor: Executor, status: mesos_pb2.TaskStatus
    ) -> None:
        await self._agent.handle_status_update(framework, executor, status)
        # The agent has the update (checkpointed when asked): the executor may forget it.
        if executor.events is not None:
            acknowledged = _Event.Acknowledged(uuid=status.uuid)
            acknowledged.task_id.CopyFrom(status.task_id)
            executor.events.send(_Event(type=_Event.ACKNOWLEDGED, acknowledged=acknowledged))

    async def _message(self, framework: Framework, executor: Executor, data: bytes) -> None:
        message = internal_pb2.ExecutorToFramework(data=data)
        message.agent_id.value = self._agent.agent_id or ""
        message.framework_id.value = framework.id
        message.executor_id.CopyFrom(executor.info.executor_id)
        await self._agent.send_to_master(internal_pb2.AgentToMaster(executor_to_framework=message))
