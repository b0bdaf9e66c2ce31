"""The agent API's I/O calls (spec 4.2), served from containers' I/O switchboards:

LAUNCH_NESTED_CONTAINER_SESSION  launches a DEBUG container under the given parent and
                                 streams its output (ProcessIO records) while it lives;
                                 the container is killed when the connection closes.
ATTACH_CONTAINER_OUTPUT          streams a container's output from now on.
ATTACH_CONTAINER_INPUT           a streaming request: the first record names the
                                 container, the following ones carry ProcessIO (STDIN
                                 data, TTY_INFO, HEARTBEAT); answered 200 when the input
                                 ends, or a second after the container's output ended.

Output streams are RecordIO records encoded as the Message-Accept type (Content-Type
application/recordio) or, with a non-streaming Accept, as the Accept type itself.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from starlette.responses import Response

from mesoslite.agent.call_stream import CallStream
from mesoslite.agent.containers_api import ContainerCalls, LaunchOutcome, describe_container_id
from mesoslite.proto import agent_pb2, mesos_pb2
from mesoslite.runtime.api import ContainerClass
from mesoslite.runtime.errors import UnknownContainerError
from mesoslite.runtime.io_switchboard import (
    InputConflictError,
    IOSwitchboard,
    SwitchboardInputError,
)
from mesoslite.wire.http import EventStream, HttpError
from mesoslite.wire.media import RECORDIO

if TYPE_CHECKING:
    from mesoslite.agent.agent import Agent

__all__ = ["SWITCHBOARD_DISABLED", "ContainerIO", "OutputMedia", "validate_process_io"]

log = logging.getLogger(__name__)

# Mesos' text: a Mesos CLI client matches it to say "launched without a TTY".
SWITCHBOARD_DISABLED = "I/O switchboard server was disabled for this container"
# A client that falls this far behind a container's output is cut off.
_MAX_BUFFERED_OUTPUT_BYTES = 64 * 1024 * 1024
# Mesos' switchboard answers an input connection this long after the output ended.
_INPUT_AFTER_OUTPUT_S = 1.0

_Call = agent_pb2.Call
_ProcessIO = agent_pb2.ProcessIO


@dataclass(frozen=True)
class OutputMedia:
    """How an output stream is encoded: `accept` is the response's Content-Type (JSON,
    protobuf or RecordIO); `message_accept` the records' encoding with RecordIO."""

    accept: str
    message_accept: str


def validate_process_io(request: _Call.AttachContainerInput) -> str | None:
    """Mesos' switchboard validation of a record after the first."""
    if request.type != _Call.AttachContainerInput.PROCESS_IO:
        name = _Call.AttachContainerInput.Type.Name(request.type)
        return f"Expecting 'attach_container_input.type' to be 'PROCESS_IO' instead of: '{name}'"
    if not request.HasField("process_io"):
        return "Expecting 'attach_container_input.process_io' to be present"
    message = request.process_io
    if not message.HasField("type"):
        return "Expecting 'process_io.type' to be present"
    if message.type == _ProcessIO.CONTROL:
        if not message.HasField("control"):
            return "Expecting 'process_io.control' to be present"
        control = message.control
        if not control.HasField("type"):
            return "Expecting 'process_io.control.type' to be present"
        if control.type == _ProcessIO.Control.TTY_INFO:
            if not control.HasField("tty_info"):
                return "Expecting 'process_io.control.tty_info' to be present"
            if not control.tty_info.HasField("window_size"):
                return "Expecting 'tty_info.window_size' to be present"
        elif control.type == _ProcessIO.Control.HEARTBEAT:
            if not control.HasField("heartbeat"):
                return "Expecting 'process_io.control.heartbeat' to be present"
        else:
            return "'process_io.control.type' is unknown"
        return None
    if message.type == _ProcessIO.DATA:
        if not message.HasField("data"):
            return "Expecting 'process_io.data' to be present"
        if not message.data.HasField("type"):
            return "Expecting 'process_io.data.type' to be present"
        if message.data.type != _ProcessIO.Data.STDIN:
            return "Expecting 'process_io.data.type' to be 'STDIN'"
        if not message.data.HasField("data"):
            return "Expecting 'process_io.data.data' to be present"
        return None
    return "'process_io.type' is unknown"


class ContainerIO:
    def __init__(self, agent: Agent, containers: ContainerCalls) -> None:
        self._agent = agent
        self._containers = containers

    def _switchboard(self, container_id: mesos_pb2.ContainerID) -> IOSwitchboard:
        try:
            switchboard = self._agent.containerizer.switchboard(container_id.value)
        except UnknownContainerError:
            name = describe_container_id(container_id)
            raise HttpError(404, f"Container {name} cannot be found") from None
        if switchboard is None:
            raise HttpError(500, SWITCHBOARD_DISABLED)
        return switchboard

    @staticmethod
    def _output_stream(media: OutputMedia) -> EventStream:
        if media.accept == RECORDIO:
            return EventStream(
                RECORDIO,
                message_content_type=media.message_accept,
                max_buffered_bytes=_MAX_BUFFERED_OUTPUT_BYTES,
            )
        return EventStream(media.accept, max_buffered_bytes=_MAX_BUFFERED_OUTPUT_BYTES)

    async def attach_output(self, call: _Call, media: OutputMedia) -> Response:
        switchboard = self._switchboard(call.attach_container_output.container_id)
        stream = self._output_stream(media)
        switchboard.attach_output(stream)
        return stream.response()

    async def launch_session(self, call: _Call, media: OutputMedia) -> Response:
        request = call.launch_nested_container_session
        container_id = request.container_id
        if not container_id.HasField("parent"):
            raise HttpError(400, "Expecting 'container_id.parent' to be present")
        status = await self._containers.launch(
            container_id,
            request.command if request.HasField("command") else None,
            request.container if request.HasField("container") else None,
            [],
            container_class=ContainerClass.DEBUG,
        )
        if status != LaunchOutcome.LAUNCHED:
            return Response(b"", status_code=status)
        try:
            switchboard = self._switchboard(container_id)
        except HttpError:
            await self._kill(container_id.value)
            raise
        stream = self._output_stream(media)

        def end_session() -> None:
            # The session owns the container: it ends when its client goes away.
            self._agent.task_group().start_soon(self._kill, container_id.value)

        stream.on_close(end_session)
        switchboard.attach_output(stream)
        return stream.response()

    async def _kill(self, container_id: str) -> None:
        with contextlib.suppress(UnknownContainerError):
            await self._agent.containerizer.kill(container_id, signal.SIGKILL)

    async def attach_input(self, first: _Call, calls: CallStream) -> Response:
        request = first.attach_container_input
        if request.type != _Call.AttachContainerInput.CONTAINER_ID:
            raise HttpError(400, "Expecting 'attach_container_input.type' to be CONTAINER_ID")
        switchboard = self._switchboard(request.container_id)
        answer: Response = Response(b"", status_code=200)
        try:
            with switchboard.input_connection():
                async with anyio.create_task_group() as group:

                    async def end_after_output() -> None:
                        await switchboard.wait_output_ended()
                        await anyio.sleep(_INPUT_AFTER_OUTPUT_S)
                        group.cancel_scope.cancel()

                    group.start_soon(end_after_output)
                    failure = await self._relay_input(switchboard, calls)
                    if failure is not None:
                        answer = failure
                    group.cancel_scope.cancel()
        except InputConflictError as error:
            raise HttpError(409, str(error)) from None
        return answer

    async def _relay_input(self, switchboard: IOSwitchboard, calls: CallStream) -> Response | None:
        """Feed the container until the client's stream ends; an error answer or None."""
        async for call in calls:
            if call.type != _Call.ATTACH_CONTAINER_INPUT or not call.HasField(
                "attach_container_input"
            ):
                return _plain(400, "Expecting 'attach_container_input' to be present")
            error = validate_process_io(call.attach_container_input)
            if error is not None:
                return _plain(400, error)
            message = call.attach_container_input.process_io
            if message.type == _ProcessIO.CONTROL:
                if message.control.type == _ProcessIO.Control.TTY_INFO:
                    size = message.control.tty_info.window_size
                    try:
                        switchboard.set_window_size(size.rows, size.columns)
                    except (SwitchboardInputError, OSError) as exc:
                        return _plain(400, f"Unable to set the window size: {exc}")
                continue  # heartbeats only keep the connection open
            data = message.data.data
            if not data and not switchboard.tty:
                switchboard.close_stdin()  # empty data is EOF
                continue
            try:
                await switchboard.write_stdin(data)
            except (SwitchboardInputError, OSError) as exc:
                return _plain(500, f"Failed writing to stdin: {exc}")
        return None


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain")
