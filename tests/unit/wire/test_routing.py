"""Router: libprocess routing rules (spec section 1.1) and error rendering."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.responses import Response

from mesoslite.wire.http import HttpError
from mesoslite.wire.routing import Router, route_path


class Answer:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        start = messages[0]
        self.status: int = start["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        self.body = b"".join(m.get("body", b"") for m in messages[1:])


def request(app: Any, path: str, method: str = "GET") -> Answer:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    anyio.run(app, scope, receive, send)
    return Answer(messages)


def echo(name: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return Response(f"{name} {route_path(request)}".encode(), media_type="text/plain")

    return endpoint


def make_router(aliases: tuple[str, ...] = ("/master",)) -> Router:
    router = Router(aliases)
    router.add("/state", echo("state"), methods=["GET"])
    router.add("/api/v1", echo("operator"), prefix=True, methods=["POST"])
    router.add("/api/v1/scheduler", echo("scheduler"), prefix=True, methods=["POST"])
    router.add("/monitor/statistics", echo("statistics"))
    router.add("/", echo("root"))
    return router


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/state", b"state /state"),
        ("/master/state", b"state /state"),
        ("/state/", b"state /state"),
        ("/master/state/", b"state /state"),
        ("//master//state//", b"state /state"),
        ("/state.json", b"state /state.json"),
        ("/master/state.json", b"state /state.json"),
        ("/monitor/statistics.json", b"statistics /monitor/statistics.json"),
        ("/", b"root /"),
        ("/master", b"root /"),
    ],
)
def test_exact_routes_and_aliases(path: str, body: bytes) -> None:
    answer = request(make_router(), path)
    assert answer.status == 200
    assert answer.body == body


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1", b"operator /api/v1"),
        ("/api/v1/operator", b"operator /api/v1/operator"),  # pymesos' operator driver
        ("/master/api/v1/operator/", b"operator /api/v1/operator"),
        ("/api/v1/scheduler", b"scheduler /api/v1/scheduler"),
        ("/master/api/v1/scheduler", b"scheduler /api/v1/scheduler"),
        ("/api/v1/scheduler/x/y", b"scheduler /api/v1/scheduler/x/y"),
        ("/api/v1/schedulerx", b"operator /api/v1/schedulerx"),  # segments, not characters
    ],
)
def test_longest_prefix_wins(path: str, body: bytes) -> None:
    answer = request(make_router(), path, "POST")
    assert answer.status == 200
    assert answer.body == body


@pytest.mark.parametrize(
    "path",
    ["/nope", "/state/extra", "/api", "/master/nope", "/slave(1)/state", "/statex", "/nope.json"],
)
def test_unknown_paths_are_404_text(path: str) -> None:
    answer = request(make_router(), path)
    assert answer.status == 404
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["content-length"] == str(len(answer.body))


@pytest.mark.parametrize("path", ["/..", "/state/..", "/master/../state", "/api/v1/..x", "/a/../b"])
def test_dot_dot_is_404(path: str) -> None:
    assert request(make_router(), path, "POST").status == 404


def test_agent_alias() -> None:
    router = Router(["/slave(1)"])
    router.add("/state", echo("state"))
    assert request(router, "/slave(1)/state").body == b"state /state"
    assert request(router, "/state").body == b"state /state"
    assert request(router, "/master/state").status == 404


def test_method_not_allowed_has_allow_header() -> None:
    router = make_router()
    answer = request(router, "/api/v1/scheduler", "GET")
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert answer.body == b"Expecting one of { POST }, but received 'GET'"
    answer = request(router, "/state", "POST")
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert request(router, "/state", "HEAD").status == 200
    assert request(router, "/monitor/statistics", "DELETE").status == 200  # methods=None


def test_http_error_from_endpoint_is_rendered() -> None:
    async def endpoint(request: Request) -> Response:
        raise HttpError(409, "conflict", headers={"X-Why": "because"})

    router = Router()
    router.add("/x", endpoint)
    answer = request(router, "/x")
    assert (answer.status, answer.body, answer.headers["x-why"]) == (409, b"conflict", "because")


def test_http_error_inside_a_task_group_is_rendered() -> None:
    async def endpoint(request: Request) -> Response:
        async def fail() -> None:
            raise HttpError(400, "bad")

        async with anyio.create_task_group() as group:
            group.start_soon(fail)
        return Response(b"unreachable")

    router = Router()
    router.add("/x", endpoint)
    answer = request(router, "/x")
    assert (answer.status, answer.body) == (400, b"bad")


def test_unexpected_exception_is_a_one_line_500(caplog: pytest.LogCaptureFixture) -> None:
    async def endpoint(request: Request) -> Response:
        raise KeyError("line one\nline two")

    router = Router()
    router.add("/x", endpoint)
    answer = request(router, "/x")
    assert answer.status == 500
    assert answer.headers["content-type"].startswith("text/plain")
    assert b"\n" not in answer.body
    assert b"Traceback" not in answer.body
    assert answer.body.startswith(b"Internal server error: KeyError")
    assert any(record.exc_info for record in caplog.records)


def test_mount_raw_asgi_app() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await Response(b"mounted")(scope, receive, send)

    router = Router(["/master"])
    router.add("/files/browse", echo("browse"))
    router.mount("/files", app)
    assert request(router, "/master/files/read/").body == b"mounted"
    assert request(router, "/files/browse").body == b"browse /files/browse"
    assert seen == ["/files/read"]


def test_registration_errors() -> None:
    router = Router(["/master"])
    router.add("/state", echo("state"))
    with pytest.raises(ValueError):
        router.add("/state/", echo("again"))
    with pytest.raises(ValueError):
        router.add("/master/state", echo("aliased"))
    router.add("/state", echo("prefix"), prefix=True)  # exact and prefix tables are separate


def test_lifespan_is_answered() -> None:
    sent: list[str] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    anyio.run(Router(), {"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
