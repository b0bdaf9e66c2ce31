"""The scheduler endpoint's HTTP contract, checked with raw requests (spec 1.2-1.5, 8.6
item 11)."""

from __future__ import annotations

import json
import re
import socket
import time

import httpx

from tests.e2e.conftest import UpNode

SUBSCRIBE = {
    "type": "SUBSCRIBE",
    "subscribe": {"framework_info": {"user": "root", "name": "raw", "failover_timeout": 100}},
}


def _read_until(sock: socket.socket, needle: bytes, timeout_s: float = 10) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    deadline = time.monotonic() + timeout_s
    while needle not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_pymesos_exact_subscribe_request_gets_chunked_stream(cluster: UpNode) -> None:
    host, port = cluster.master.split(":")
    body = json.dumps(SUBSCRIBE).encode()
    # Byte for byte what pymesos' process.py sends (Connection: close included).
    request = (
        f"POST /api/v1/scheduler HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = _read_until(sock, b'"HEARTBEAT"')
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["mesos-stream-id"])
    # First chunk holds exactly one RecordIO record: SUBSCRIBED.
    chunk_size_line, _, after = rest.partition(b"\r\n")
    chunk = after[: int(chunk_size_line, 16)]
    length_line, _, record = chunk.partition(b"\n")
    assert int(length_line) == len(record)
    event = json.loads(record)
    assert event["type"] == "SUBSCRIBED"
    assert event["subscribed"]["heartbeat_interval_seconds"] == 15.0
    assert event["subscribed"]["master_info"]["version"] == "1.12.0"
    assert b'{"type":"HEARTBEAT"}' in rest


def _post(http: httpx.Client, body: bytes | str, **headers: str) -> httpx.Response:
    return http.post("/api/v1/scheduler", content=body, headers=headers)


def test_wrong_content_type_is_415(master_http: httpx.Client) -> None:
    response = _post(master_http, json.dumps(SUBSCRIBE), **{"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_missing_content_type_is_400(master_http: httpx.Client) -> None:
    response = master_http.post("/api/v1/scheduler", content=json.dumps(SUBSCRIBE))
    assert response.status_code == 400
    assert "Content-Type" in response.text


def test_get_is_405_with_allow_post(master_http: httpx.Client) -> None:
    response = master_http.get("/api/v1/scheduler")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_invalid_json_is_400(master_http: httpx.Client) -> None:
    response = _post(master_http, "{not json", **{"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "Failed to parse body into JSON" in response.text


def test_enum_as_number_is_400(master_http: httpx.Client) -> None:
    response = _post(
        master_http,
        json.dumps({"type": 1, "subscribe": SUBSCRIBE["subscribe"]}),
        **{"Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_accept_text_plain_on_subscribe_is_406(master_http: httpx.Client) -> None:
    response = _post(
        master_http,
        json.dumps(SUBSCRIBE),
        **{"Content-Type": "application/json", "Accept": "text/plain"},
    )
    assert response.status_code == 406


def test_call_for_unknown_framework_is_400(master_http: httpx.Client) -> None:
    call = {"type": "REVIVE", "framework_id": {"value": "no-such-framework"}}
    response = _post(
        master_http,
        json.dumps(call),
        **{"Content-Type": "application/json", "Mesos-Stream-Id": "x"},
    )
    assert response.status_code == 400
    assert "Framework cannot be found" in response.text


def test_subscribe_carrying_stream_id_is_400(master_http: httpx.Client) -> None:
    response = _post(
        master_http,
        json.dumps(SUBSCRIBE),
        **{"Content-Type": "application/json", "Mesos-Stream-Id": "abc"},
    )
    assert response.status_code == 400


def test_unknown_type_name_is_400(master_http: httpx.Client) -> None:
    # An unrecognised enum name is dropped, leaving `type` unset.
    dropped = _post(
        master_http, json.dumps({"type": "NO_SUCH_CALL"}), **{"Content-Type": "application/json"}
    )
    assert dropped.status_code == 400
    assert "type" in dropped.text


def test_stream_id_rules_and_unknown_fields(cluster: UpNode) -> None:
    body = dict(SUBSCRIBE)
    body["subscribe"] = {
        "framework_info": {
            "user": "root",
            "name": "ids",
            "failover_timeout": 100,
            "no_such_field": {"nested": True},
        },
        "also_unknown": 1,
    }
    with (
        httpx.Client(base_url=f"http://{cluster.master}", timeout=10) as http,
        http.stream(
            "POST",
            "/api/v1/scheduler",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        ) as stream,
    ):
        assert stream.status_code == 200  # unknown JSON fields are ignored
        stream_id = stream.headers["mesos-stream-id"]
        buffer = b""
        # Keep a reference: a discarded iterator closes the response (and so the
        # framework's connection) when it is collected.
        chunks = stream.iter_raw()
        for chunk in chunks:
            buffer += chunk
            if b"SUBSCRIBED" in buffer:
                break
        framework_id = re.search(rb'"framework_id":\{"value":"([^"]+)"', buffer)
        assert framework_id is not None
        call = {"type": "REVIVE", "framework_id": {"value": framework_id.group(1).decode()}}
        with httpx.Client(base_url=f"http://{cluster.master}", timeout=10) as calls:
            missing = calls.post(
                "/api/v1/scheduler",
                content=json.dumps(call),
                headers={"Content-Type": "application/json"},
            )
            assert missing.status_code == 400
            wrong = calls.post(
                "/api/v1/scheduler",
                content=json.dumps(call),
                headers={"Content-Type": "application/json", "Mesos-Stream-Id": "not-the-stream"},
            )
            assert wrong.status_code == 400
            right = calls.post(
                "/api/v1/scheduler",
                content=json.dumps(call),
                headers={"Content-Type": "application/json", "Mesos-Stream-Id": stream_id},
            )
            assert right.status_code == 202
            assert right.headers["content-length"] == "0"
            # An explicit UNKNOWN call from a subscribed framework: 501.
            unknown = dict(call, type="UNKNOWN")
            not_implemented = calls.post(
                "/api/v1/scheduler",
                content=json.dumps(unknown),
                headers={"Content-Type": "application/json", "Mesos-Stream-Id": stream_id},
            )
            assert not_implemented.status_code == 501


def test_version_is_numeric_and_health_is_200(master_http: httpx.Client) -> None:
    version = master_http.get("/version").json()["version"]
    assert tuple(int(part) for part in version.split(".")) >= (1, 0, 0)
    assert master_http.get("/health").status_code == 200
    redirect = master_http.get("/redirect", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"].startswith("//")
