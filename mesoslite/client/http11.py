"""A small HTTP/1.1 keep-alive client for short calls (the scheduler's non-SUBSCRIBE calls).

Why not httpx for these: a pipelined scheduler sends thousands of tiny POSTs (an
ACKNOWLEDGE per status update), and httpx spends ~1.2-1.7 ms of CPU on each (its pool
checks every idle connection with a syscall before each request); this client spends a
fraction of that. It does one thing: POST a small body on a kept-alive connection and
read the whole response (Content-Length, chunked, or until close). Errors are httpx's
exception types, so callers see the same failures as before.

A connection idle for longer than `idle_s` is not reused (servers close idle
connections: uvicorn after 5 s); a reused connection that turns out to have been closed
before any byte of the answer arrived is retried once on a new one.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

import anyio
import anyio.abc
import httpx

__all__ = ["CallPool", "CallResponse"]

_MAX_HEAD_BYTES = 65536


@dataclass(frozen=True)
class CallResponse:
    status_code: int
    headers: dict[str, str]  # lower-case names
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _ClosedBeforeAnswer(Exception):
    """The peer closed the connection before sending any byte of the response."""


class _Connection:
    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self.reusable = True
        self.idle_since = 0.0

    async def _fill(self) -> bool:
        try:
            data = await self._stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        except OSError as error:
            raise httpx.ReadError(str(error)) from error
        self._buffer += data
        return True

    async def request(self, head: bytes, body: bytes) -> CallResponse:
        try:
            await self._stream.send(head + body)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as error:
            raise _ClosedBeforeAnswer from error
        buffer = self._buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > _MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("response head too large")
            if not await self._fill():
                if not buffer:
                    raise _ClosedBeforeAnswer
                raise httpx.RemoteProtocolError("connection closed in the response head")
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        del buffer[: end + 4]
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
            raise httpx.RemoteProtocolError(f"bad status line {lines[0]!r}")
        try:
            status = int(status_line[1])
        except ValueError:
            raise httpx.RemoteProtocolError(f"bad status line {lines[0]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("connection", "").lower() == "close" or status_line[0] == "HTTP/1.0":
            self.reusable = False
        if status in (204, 304) or 100 <= status < 200:
            content = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            content = await self._read_chunked()
        elif "content-length" in headers:
            content = await self._read_exactly(int(headers["content-length"]))
        else:
            self.reusable = False
            while await self._fill():
                pass
            content = bytes(buffer)
            buffer.clear()
        return CallResponse(status, headers, content)

    async def _read_exactly(self, size: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < size:
            if not await self._fill():
                raise httpx.RemoteProtocolError("connection closed in the response body")
        content = bytes(buffer[:size])
        del buffer[:size]
        return content

    async def _read_line(self) -> bytes:
        buffer = self._buffer
        while (end := buffer.find(b"\r\n")) < 0:
            if not await self._fill():
                raise httpx.RemoteProtocolError("connection closed in a chunked body")
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        return line

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await self._read_line()
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise httpx.RemoteProtocolError(f"bad chunk size {size_line!r}") from None
            if size == 0:
                while await self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(await self._read_exactly(size))
            await self._read_exactly(2)

    async def aclose(self) -> None:
        self.reusable = False
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()


class CallPool:
    """Keep-alive connections to one `http://host:port`, at most `max_connections` busy
    at once (callers beyond that wait their turn)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float,
        max_connections: int = 32,
        idle_s: float = 4.0,
    ) -> None:
        self._host = host
        self._port = port
        self._host_header = f"{host}:{port}"
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._idle_s = idle_s
        self._idle: collections.deque[_Connection] = collections.deque()
        self._busy = 0
        self._waiters: collections.deque[anyio.Event] = collections.deque()
        self._closed = False

    @classmethod
    def for_url(cls, base_url: str, *, timeout_s: float) -> CallPool | None:
        """A pool for a plain `http://` base URL without a path; None for anything else."""
        url = httpx.URL(base_url)
        if url.scheme != "http" or url.path not in ("", "/") or not url.host:
            return None
        return cls(url.host, url.port or 80, timeout_s=timeout_s)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> CallResponse:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        await self._acquire()
        try:
            with anyio.fail_after(self._timeout_s):
                return await self._exchange(head, body)
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"no answer from {self._host_header} in {self._timeout_s} s"
            ) from None
        finally:
            self._release()

    async def _exchange(self, head: bytes, body: bytes) -> CallResponse:
        connection = await self._idle_connection()
        reused = connection is not None
        if connection is None:
            connection = await self._connect()
        try:
            try:
                response = await connection.request(head, body)
            except _ClosedBeforeAnswer:
                await connection.aclose()
                if not reused:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection without answering"
                    ) from None
                # A kept-alive connection the server had closed meanwhile: once more.
                connection = await self._connect()
                try:
                    response = await connection.request(head, body)
                except _ClosedBeforeAnswer:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection without answering"
                    ) from None
        except BaseException:
            await connection.aclose()
            raise
        if connection.reusable and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            await connection.aclose()
        return response

    async def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely closed
            if now - connection.idle_since < self._idle_s:
                return connection
            await connection.aclose()
        return None

    async def _connect(self) -> _Connection:
        try:
            stream = await anyio.connect_tcp(self._host, self._port)
        except OSError as error:
            raise httpx.ConnectError(str(error)) from error
        return _Connection(stream)

    async def _acquire(self) -> None:
        if self._busy < self._max_connections and not self._waiters:
            self._busy += 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()  # the releaser hands its slot over
        except BaseException:
            if event.is_set():
                self._release()
            else:
                self._waiters.remove(event)
            raise

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._busy -= 1

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            await self._idle.pop().aclose()
