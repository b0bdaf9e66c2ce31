"""Request routing with libprocess' rules (spec section 1.1), for one listener.

Mesos serves HTTP through libprocess, whose routing quirks clients rely on:

* a path may carry the process id (`/master/state` is `/state`; the agent's is
  `/slave(1)`), so ids given as `aliases` are stripped;
* empty segments and a trailing `/` are ignored (`/master/frameworks/` works);
* handlers match the longest prefix (`/api/v1/operator` reaches the `/api/v1` handler),
  here only for routes added with `prefix=True`;
* any path containing `/..` is refused with 404;
* the pre-1.0 `.json` names (`/state.json`) are served by the same endpoint.

The router also renders `HttpError` raised by an endpoint and turns any other failure
into a one-line 500 (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mesoslite.wire.errors import HttpError
from mesoslite.wire.http import error_response

__all__ = ["Endpoint", "Router", "route_path"]

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

# Where the router leaves the normalised path for endpoints (and mounted apps).
_ROUTE_PATH_KEY = "mesoslite.route_path"


def route_path(request: Request) -> str:
    """The path the router matched on: process id stripped, no trailing `/`."""
    path = request.scope.get(_ROUTE_PATH_KEY)
    return path if isinstance(path, str) else request.url.path


@dataclass(frozen=True, slots=True)
class _Route:
    endpoint: Endpoint | None
    app: ASGIApp | None
    methods: frozenset[str] | None
    allow: str


def _normalise(path: str) -> str:
    segments = [segment for segment in path.split("/") if segment]
    return "/" + "/".join(segments)


class Router:
    """An ASGI app routing one listener's requests to endpoints.

    aliases: process-id prefixes to strip, e.g. ["/master"] or ["/slave(1)"].
    json_aliases: also serve `<path>.json` for every exact route `<path>`.
    """

    def __init__(self, aliases: Sequence[str] = (), *, json_aliases: bool = True) -> None:
        self._aliases = frozenset(alias.strip("/") for alias in aliases if alias.strip("/"))
        self._json_aliases = json_aliases
        self._exact: dict[str, _Route] = {}
        self._prefix: dict[str, _Route] = {}

    def add(
        self,
        path: str,
        endpoint: Endpoint,
        *,
        prefix: bool = False,
        methods: Collection[str] | None = None,
    ) -> None:
        """Serve `path` (and, with prefix=True, everything below it) with `endpoint`.

        methods: the allowed methods (others get 405 with `Allow`); None allows all.
        HEAD is allowed wherever GET is.
        """
        self._register(path, _make_route(endpoint, None, methods), prefix)

    def mount(self, path: str, app: ASGIApp) -> None:
        """Hand everything at and below `path` to a raw ASGI app.

        The app gets the request scope with `path` set to the normalised path (alias
        stripped) and the original path in `raw_path`; nothing is rendered for it.
        """
        self._register(path, _make_route(None, app, None), True)

    def _register(self, path: str, route: _Route, prefix: bool) -> None:
        key = _normalise(path)
        first = key.split("/", 2)[1]
        if first in self._aliases:
            raise ValueError(f"route {path!r} starts with the process id alias {first!r}")
        table = self._prefix if prefix else self._exact
        if key in table:
            raise ValueError(f"route {path!r} is already registered")
        table[key] = route

    def _resolve(self, path: str) -> tuple[str, _Route | None]:
        """The normalised path and the route serving it (None: 404)."""
        if "/.." in path:
            return path, None
        route = self._exact.get(path)  # fast path: a canonical path
        if route is not None:
            return path, route
        path = _normalise(path)
        if self._aliases:
            head, _, tail = path[1:].partition("/")
            if head in self._aliases:
                path = "/" + tail
        route = self._exact.get(path)
        if route is not None:
            return path, route
        if self._json_aliases and path.endswith(".json"):
            route = self._exact.get(path[: -len(".json")])
            if route is not None:
                return path, route
        probe = path
        while True:
            route = self._prefix.get(probe)
            if route is not None:
                return path, route
            if probe == "/":
                return path, None
            probe = probe[: probe.rfind("/")] or "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, route = self._resolve(scope["path"])
        scope[_ROUTE_PATH_KEY] = path
        if route is None:
            await _plain(404, "Not Found", scope, receive, send)
            return
        if route.app is not None:
            await route.app(dict(scope, path=path), receive, send)
            return
        if route.methods is not None and scope["method"] not in route.methods:
            await error_response(
                HttpError(
                    405,
                    f"Expecting one of {{ {route.allow} }}, but received '{scope['method']}'",
                    headers={"Allow": route.allow},
                )
            )(scope, receive, send)
            return
        await _call_endpoint(route, scope, receive, send)


def _make_route(
    endpoint: Endpoint | None, app: ASGIApp | None, methods: Collection[str] | None
) -> _Route:
    if methods is None:
        return _Route(endpoint, app, None, "")
    allowed = {method.upper() for method in methods}
    if "GET" in allowed:
        allowed.add("HEAD")
    return _Route(endpoint, app, frozenset(allowed), ", ".join(sorted(allowed)))


async def _call_endpoint(route: _Route, scope: Scope, receive: Receive, send: Send) -> None:
    assert route.endpoint is not None
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    try:
        response = await route.endpoint(Request(scope, receive, send))
        await response(scope, receive, tracking_send)
    except Exception as error:  # includes ExceptionGroup from endpoint task groups
        http_error = _http_error(error)
        if started:
            # Too late for an error response: the status line is out. Let the server
            # close the connection; the log says why.
            log.error(
                "%s %s failed after the response started",
                scope["method"],
                scope["path"],
                exc_info=error,
            )
            return
        if http_error is None:
            log.error("%s %s failed", scope["method"], scope["path"], exc_info=error)
            first_line = (str(error).splitlines() or [""])[0][:200]
            http_error = HttpError(
                500, f"Internal server error: {type(error).__name__}: {first_line}"
            )
        await error_response(http_error)(scope, receive, send)


def _http_error(error: BaseException) -> HttpError | None:
    if isinstance(error, HttpError):
        return error
    if isinstance(error, BaseExceptionGroup):
        # An HttpError raised inside an endpoint's task group arrives wrapped.
        found = [_http_error(inner) for inner in error.exceptions]
        if len(found) == 1 and found[0] is not None:
            return found[0]
    return None


async def _plain(status: int, text: str, scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(HttpError(status, text))(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to start or stop here; answer the protocol so servers do not complain.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
