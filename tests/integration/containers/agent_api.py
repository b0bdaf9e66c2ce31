"""A small client of the agent operator API for these tests: JSON calls, streamed
ProcessIO output, and a streamed ATTACH_CONTAINER_INPUT request."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mesoslite.wire.recordio import RecordIODecoder, encode_record

__all__ = ["AgentApi", "InputStream", "OutputStream", "container_id", "stdin_record"]

JSON = "application/json"
RECORDIO = "application/recordio"
Call = dict[str, Any]


def container_id(value: str, parent: dict[str, Any] | None = None) -> dict[str, Any]:
    identifier: dict[str, Any] = {"value": value}
    if parent is not None:
        identifier["parent"] = parent
    return identifier


def stdin_record(data: bytes) -> Call:
    return {
        "type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {
            "type": "PROCESS_IO",
            "process_io": {
                "type": "DATA",
                "data": {"type": "STDIN", "data": base64.b64encode(data).decode()},
            },
        },
    }


@dataclass
class OutputStream:
    """ProcessIO records of a streaming response, as they come."""

    response: httpx.Response
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    records: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False
    _decoder: RecordIODecoder = field(default_factory=RecordIODecoder)
    _chunks: AsyncIterator[bytes] | None = None

    async def read_until(self, wanted: bytes) -> None:
        """Read records until stdout or stderr contains `wanted` (or the stream ends)."""
        if self._chunks is None:
            self._chunks = self.response.aiter_raw()
        while not (wanted and (wanted in self.stdout or wanted in self.stderr)):
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self.ended = True
                return
            for record in self._decoder.feed(chunk):
                self._take(json.loads(record))

    async def read_to_end(self) -> None:
        await self.read_until(b"")

    def _take(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if record.get("type") != "DATA":
            return
        data = base64.b64decode(record["data"].get("data", ""))
        if record["data"]["type"] == "STDOUT":
            self.stdout += data
        else:
            self.stderr += data


@dataclass
class InputStream:
    """The request side of ATTACH_CONTAINER_INPUT: send records while it is open."""

    sender: MemoryObjectSendStream[bytes]
    answer: list[httpx.Response] = field(default_factory=list)

    async def send(self, record: Call) -> None:
        await self.sender.send(encode_record(json.dumps(record).encode()))

    async def close(self) -> None:
        await self.sender.aclose()


class AgentApi:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, call: Call, **headers: str) -> httpx.Response:
        merged = {"Content-Type": JSON, "Accept": JSON, **headers}
        return await self.client.post("/api/v1", content=json.dumps(call), headers=merged)

    async def ok(self, call: Call) -> dict[str, Any]:
        response = await self.post(call)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json() if response.content else {}

    async def launch(self, identifier: dict[str, Any], command: Call, **container: Any) -> None:
        call: Call = {
            "type": "LAUNCH_CONTAINER",
            "launch_container": {"container_id": identifier, "command": command},
        }
        if container:
            call["launch_container"]["container"] = {"type": "MESOS", **container}
        await self.ok(call)

    async def wait(self, identifier: dict[str, Any]) -> dict[str, Any]:
        answer = await self.ok(
            {"type": "WAIT_CONTAINER", "wait_container": {"container_id": identifier}}
        )
        result: dict[str, Any] = answer["wait_container"]
        return result

    async def kill(self, identifier: dict[str, Any], signal_number: int = 9) -> None:
        await self.ok(
            {
                "type": "KILL_CONTAINER",
                "kill_container": {"container_id": identifier, "signal": signal_number},
            }
        )

    async def remove(self, identifier: dict[str, Any]) -> None:
        call = {"type": "REMOVE_CONTAINER", "remove_container": {"container_id": identifier}}
        await self.ok(call)

    async def end(self, identifier: dict[str, Any]) -> dict[str, Any]:
        """Kill (if it runs), wait and remove: the container is gone afterwards."""
        with contextlib.suppress(AssertionError):
            await self.kill(identifier)
        result = await self.wait(identifier)
        await self.remove(identifier)
        return result

    async def containers(self) -> list[dict[str, Any]]:
        answer = await self.ok(
            {
                "type": "GET_CONTAINERS",
                "get_containers": {"show_nested": True, "show_standalone": True},
            }
        )
        listed: list[dict[str, Any]] = answer["get_containers"].get("containers", [])
        return listed

    async def pid_of(self, value: str) -> int:
        for entry in await self.containers():
            if entry["container_id"]["value"] == value:
                return int(entry["container_status"]["executor_pid"])
        raise AssertionError(f"container {value} is not listed")

    @contextlib.asynccontextmanager
    async def output(self, call: Call) -> AsyncIterator[OutputStream]:
        """A streaming call (ATTACH_CONTAINER_OUTPUT, LAUNCH_NESTED_CONTAINER_SESSION)
        the way a Mesos CLI client makes it."""
        headers = {"Content-Type": JSON, "Accept": RECORDIO, "Message-Accept": JSON}
        request = self.client.build_request(
            "POST", "/api/v1", content=json.dumps(call), headers=headers
        )
        response = await self.client.send(request, stream=True)
        try:
            yield OutputStream(response)
        finally:
            await response.aclose()

    @contextlib.asynccontextmanager
    async def input(self, identifier: dict[str, Any]) -> AsyncIterator[InputStream]:
        """ATTACH_CONTAINER_INPUT: the first record names the container; the rest is
        sent through the yielded stream; its answer is in `answer` once it is closed."""
        sender, receiver = anyio.create_memory_object_stream[bytes](16)
        stream = InputStream(sender)
        first = {
            "type": "ATTACH_CONTAINER_INPUT",
            "attach_container_input": {"type": "CONTAINER_ID", "container_id": identifier},
        }
        await sender.send(encode_record(json.dumps(first).encode()))

        async def body(records: MemoryObjectReceiveStream[bytes]) -> AsyncIterator[bytes]:
            async with records:
                async for record in records:
                    yield record

        headers = {
            "Content-Type": RECORDIO,
            "Message-Content-Type": JSON,
            "Accept": JSON,
            "Connection": "close",
        }
        async with anyio.create_task_group() as group:

            async def post() -> None:
                stream.answer.append(
                    await self.client.post("/api/v1", content=body(receiver), headers=headers)
                )

            group.start_soon(post)
            try:
                yield stream
            finally:
                await sender.aclose()


def killed_by_sigkill(wait_status: int) -> bool:
    """Whether a container's main process ended by SIGKILL. A shell running the command
    (`sh -c`) may see its child killed first and exit with 128 + 9 instead: the same
    kill, reported the shell's way."""
    if os.WIFSIGNALED(wait_status):
        return os.WTERMSIG(wait_status) == signal.SIGKILL
    return os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) == 128 + signal.SIGKILL
