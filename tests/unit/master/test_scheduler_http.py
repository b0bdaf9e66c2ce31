"""The scheduler endpoint's HTTP contract: status codes and messages in Mesos' order
(wire contract 1.2, 1.5, 8.6 item 11), and pymesos' exact SUBSCRIBE request."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from mesoslite.wire.recordio import RecordIODecoder
from tests.unit.master.harness import MasterHarness, Scheduler, running_master

pytestmark = pytest.mark.anyio

SUBSCRIBE = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}


async def post(
    cluster: MasterHarness, body: Any, **headers: str
) -> tuple[int, str, dict[str, str]]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await cluster.http.post(
        "/api/v1/scheduler",
        content=content,
        headers={"Content-Type": "application/json", **headers},
    )
    return response.status_code, response.text, dict(response.headers)


async def test_get_is_405_with_allow_post() -> None:
    async with running_master() as cluster:
        response = await cluster.http.get("/api/v1/scheduler")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


async def test_missing_content_type_is_400() -> None:
    async with running_master() as cluster:
        response = await cluster.http.post("/api/v1/scheduler", content=b"{}")
        assert response.status_code == 400
        assert response.text == "Expecting 'Content-Type' to be present"


async def test_wrong_content_type_is_415() -> None:
    async with running_master() as cluster:
        status, _, _ = await post(cluster, SUBSCRIBE, **{"Content-Type": "text/plain"})
        assert status == 415


async def test_invalid_json_is_400() -> None:
    async with running_master() as cluster:
        status, text, _ = await post(cluster, b"{not json")
        assert status == 400
        assert text.startswith("Failed to parse body into JSON")


async def test_enum_as_number_is_400() -> None:
    async with running_master() as cluster:
        status, text, _ = await post(cluster, {"type": 1, "subscribe": SUBSCRIBE["subscribe"]})
        assert status == 400
        assert text.startswith("Failed to convert JSON into Call protobuf")


async def test_missing_type_is_400() -> None:
    async with running_master() as cluster:
        status, text, _ = await post(cluster, {"subscribe": SUBSCRIBE["subscribe"]})
        assert status == 400
        assert text == "Failed to validate scheduler::Call: Expecting 'type' to be present"


async def test_unknown_fields_are_ignored() -> None:
    async with running_master() as cluster:
        scheduler = Scheduler(cluster)
        await scheduler.subscribe({"no_such_field": 1, "capabilities": [{"type": "MULTI_ROLE"}]})
        assert scheduler.framework_id


async def test_accept_text_plain_on_subscribe_is_406() -> None:
    async with running_master() as cluster:
        status, _, _ = await post(cluster, SUBSCRIBE, Accept="text/plain")
        assert status == 406


async def test_subscribe_with_stream_id_is_400() -> None:
    async with running_master() as cluster:
        status, text, _ = await post(cluster, SUBSCRIBE, **{"Mesos-Stream-Id": "x"})
        assert status == 400
        assert "should not include the 'Mesos-Stream-Id' header" in text


async def test_framework_id_mismatch_in_subscribe_is_400() -> None:
    async with running_master() as cluster:
        body = {
            "type": "SUBSCRIBE",
            "framework_id": {"value": "a"},
            "subscribe": {"framework_info": {"user": "u", "name": "n"}},
        }
        status, text, _ = await post(cluster, body)
        assert status == 400
        assert "'framework_id' differs from 'subscribe.framework_info.id'" in text


async def test_call_for_unknown_framework_is_400() -> None:
    async with running_master() as cluster:
        body = {"type": "REVIVE", "framework_id": {"value": "nope"}}
        status, text, _ = await post(cluster, body, **{"Mesos-Stream-Id": "x"})
        assert status == 400
        assert text == "Framework cannot be found"


async def test_call_without_framework_id_is_400() -> None:
    async with running_master() as cluster:
        status, text, _ = await post(cluster, {"type": "REVIVE"})
        assert status == 400
        assert text.endswith("Expecting 'framework_id' to be present")


async def test_call_without_member_is_400() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler()
        response = await scheduler.call({"type": "ACCEPT"})
        assert response.status_code == 400
        assert response.text.endswith("Expecting 'accept' to be present")


async def test_acknowledge_with_short_uuid_is_400() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler()
        response = await scheduler.call(
            {
                "type": "ACKNOWLEDGE",
                "acknowledge": {
                    "agent_id": {"value": "a"},
                    "task_id": {"value": "t"},
                    "uuid": "AAAA",
                },
            }
        )
        assert response.status_code == 400


async def test_stream_id_rules() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler()
        missing = await cluster.http.post(
            "/api/v1/scheduler",
            json={"type": "REVIVE", "framework_id": {"value": scheduler.framework_id}},
        )
        assert missing.status_code == 400
        assert "should include the 'Mesos-Stream-Id' header" in missing.text
        wrong = await scheduler.call({"type": "REVIVE"}, stream_id="not-it")
        assert wrong.status_code == 400
        assert "didn't match the stream ID" in wrong.text
        right = await scheduler.call({"type": "REVIVE"})
        assert right.status_code == 202
        assert right.headers["content-length"] == "0"


async def test_calls_of_a_disconnected_framework_are_403() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler(failover_timeout=3600.0)
        scheduler.disconnect()
        await scheduler.wait_closed()
        framework = cluster.master.state.frameworks[scheduler.framework_id]
        with anyio.fail_after(10):
            while framework.connected:
                await anyio.sleep(0.01)
        response = await scheduler.call({"type": "REVIVE"})
        assert response.status_code == 403
        assert response.text == "Framework is not subscribed"


async def test_explicit_unknown_type_is_501() -> None:
    async with running_master() as cluster:
        scheduler = await cluster.scheduler()
        response = await scheduler.call({"type": "UNKNOWN"})
        assert response.status_code == 501


async def test_invalid_framework_info_gets_error_event_and_closed_stream() -> None:
    async with running_master() as cluster:
        scheduler = Scheduler(cluster)
        await scheduler.subscribe({"roles": ["a"]}, expect_subscribed=False)
        assert scheduler.status_code == 200
        event = await scheduler.next_event()
        assert event["type"] == "ERROR"
        assert "'FrameworkInfo.roles' must not be set" in event["error"]["message"]
        await scheduler.wait_closed()


async def test_root_user_refused_without_root_submissions() -> None:
    async with running_master(root_submissions=False) as cluster:
        scheduler = Scheduler(cluster)
        await scheduler.subscribe({"user": "root"}, expect_subscribed=False)
        event = await scheduler.next_event()
        assert event == {
            "type": "ERROR",
            "error": {
                "message": "User 'root' is not allowed to run frameworks without"
                " --root_submissions set"
            },
        }


async def test_subscribed_then_heartbeat_with_master_info() -> None:
    async with running_master() as cluster:
        scheduler = Scheduler(cluster)
        await scheduler.subscribe({}, expect_subscribed=False)
        first = await scheduler.next_event(skip_heartbeats=False)
        second = await scheduler.next_event(skip_heartbeats=False)
        assert first["type"] == "SUBSCRIBED"
        assert second == {"type": "HEARTBEAT"}
        subscribed = first["subscribed"]
        assert subscribed["heartbeat_interval_seconds"] == 15.0
        info = subscribed["master_info"]
        assert info["version"] == "1.12.0"
        assert info["ip"] == 16777343
        assert info["pid"] == f"master@127.0.0.1:{info['port']}"
        assert {c["type"] for c in info["capabilities"]} == {
            "AGENT_UPDATE",
            "AGENT_DRAINING",
            "QUOTA_V2",
        }


async def test_pymesos_raw_subscribe_request_is_streamed_chunked() -> None:
    """pymesos writes this request by hand (with `Connection: close`) and rejects a
    response that is not chunked."""
    async with running_master() as cluster:
        port = int(cluster.base_url.rsplit(":", 1)[1])
        body = json.dumps(
            {
                "type": "SUBSCRIBE",
                "subscribe": {"framework_info": {"user": "u", "name": "n", "hostname": "h"}},
            }
        ).encode()
        request = (
            b"POST /api/v1/scheduler HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            b"Accept: application/json\r\n"
            b"Connection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(request)
            data = b""
            with anyio.fail_after(10):
                while b"HEARTBEAT" not in data:
                    data += await stream.receive()
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        assert lines[0] == "HTTP/1.1 200 OK"
        assert headers["transfer-encoding"] == "chunked"
        assert "content-length" not in headers
        assert headers["content-type"] == "application/json"
        assert headers["mesos-stream-id"]
        # First chunk: one RecordIO record holding SUBSCRIBED.
        size_line, _, chunk = rest.partition(b"\r\n")
        record = chunk[: int(size_line, 16)]
        [event] = RecordIODecoder().feed(record)
        assert json.loads(event)["type"] == "SUBSCRIBED"
