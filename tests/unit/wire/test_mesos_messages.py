"""The codec on the real mesos.v1 messages: what pymesos sends and what clients expect."""

from __future__ import annotations

import json
import math

import pytest

from mesoslite.proto import executor_pb2, mesos_pb2, scheduler_pb2
from mesoslite.wire.json_codec import JsonConversionError, from_json, to_json_bytes, to_json_dict
from mesoslite.wire.media import JSON, decode_message
from mesoslite.wire.recordio import encode_record


def test_framework_info_writes_non_deprecated_defaults() -> None:
    out = to_json_dict(mesos_pb2.FrameworkInfo(user="alice", name="fw"))
    assert out == {"user": "alice", "name": "fw", "failover_timeout": 0.0, "checkpoint": False}
    assert "role" not in out  # deprecated, default "*": written only when set
    assert to_json_dict(mesos_pb2.FrameworkInfo(user="a", name="b", role="eng"))["role"] == "eng"


def test_resource_role_written_only_when_set() -> None:
    resource = mesos_pb2.Resource(name="cpus", type=mesos_pb2.Value.SCALAR, scalar={"value": 1})
    assert to_json_bytes(resource) == b'{"name":"cpus","type":"SCALAR","scalar":{"value":1.0}}'
    resource.role = "*"
    assert to_json_dict(resource)["role"] == "*"


def test_command_info_defaults() -> None:
    out = to_json_dict(mesos_pb2.CommandInfo(value="ls", uris=[{"value": "http://x/y.tgz"}]))
    assert out["shell"] is True
    assert out["uris"] == [{"value": "http://x/y.tgz", "extract": True}]


def test_master_info_port_and_ip_numbers() -> None:
    out = to_json_bytes(mesos_pb2.MasterInfo(id="m", ip=16777343, hostname="localhost"))
    assert out == b'{"id":"m","ip":16777343,"port":5050,"hostname":"localhost"}'


def test_heartbeat_record_matches_the_spec_example() -> None:
    payload = to_json_bytes(scheduler_pb2.Event(type=scheduler_pb2.Event.HEARTBEAT))
    assert encode_record(payload) == b'20\n{"type":"HEARTBEAT"}'


def test_error_event_carries_type_and_member() -> None:
    event = scheduler_pb2.Event(
        type=scheduler_pb2.Event.ERROR, error={"message": "Framework has been removed"}
    )
    assert to_json_bytes(event) == (
        b'{"type":"ERROR","error":{"message":"Framework has been removed"}}'
    )


def test_status_update_event() -> None:
    uuid = bytes.fromhex("abcdef1234567890abcdef1234567890")
    event = scheduler_pb2.Event(
        type=scheduler_pb2.Event.UPDATE,
        update={
            "status": {
                "task_id": {"value": "t1"},
                "state": mesos_pb2.TASK_RUNNING,
                "source": mesos_pb2.TaskStatus.SOURCE_EXECUTOR,
                "agent_id": {"value": "a-S0"},
                "timestamp": 1700000000.125,
                "uuid": uuid,
            }
        },
    )
    status = json.loads(to_json_bytes(event))["update"]["status"]
    assert status["state"] == "TASK_RUNNING"
    assert status["source"] == "SOURCE_EXECUTOR"
    assert status["timestamp"] == 1700000000.125
    assert status["uuid"] == "q83vEjRWeJCrze8SNFZ4kA=="


def test_offer_ranges_are_numbers() -> None:
    offer = mesos_pb2.Offer(
        id={"value": "o1"},
        framework_id={"value": "f"},
        agent_id={"value": "a"},
        hostname="h",
        resources=[
            {
                "name": "ports",
                "type": mesos_pb2.Value.RANGES,
                "ranges": {"range": [{"begin": 31000, "end": 32000}]},
                "allocation_info": {"role": "*"},
            }
        ],
    )
    ports = to_json_dict(offer)["resources"][0]
    assert ports["ranges"] == {"range": [{"begin": 31000, "end": 32000}]}
    assert ports["allocation_info"] == {"role": "*"}


PYMESOS_SUBSCRIBE = (
    b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "alice", "name": "fw",'
    b' "hostname": "h", "failover_timeout": 100, "capabilities": [{"type": "GPU_RESOURCES"}],'
    b' "id": {"value": "f-0001"}}, "credentials": {"principal": "p"}},'
    b' "framework_id": {"value": "f-0001"}}'
)


def test_pymesos_subscribe_parses() -> None:
    call = decode_message(PYMESOS_SUBSCRIBE, JSON, scheduler_pb2.Call, "Call")
    assert call.type == scheduler_pb2.Call.SUBSCRIBE
    info = call.subscribe.framework_info
    assert (info.user, info.failover_timeout, info.id.value) == ("alice", 100.0, "f-0001")
    assert [c.type for c in info.capabilities] == [mesos_pb2.FrameworkInfo.Capability.GPU_RESOURCES]
    assert call.framework_id.value == "f-0001"


def test_pymesos_accept_with_junk_keys_parses() -> None:
    body = {
        "type": "ACCEPT",
        "framework_id": {"value": "f"},
        "accept": {
            "offer_ids": [{"value": "o1"}],
            "operations": [
                {
                    "type": "LAUNCH",
                    "launch": {
                        "task_infos": [
                            {
                                "name": "t",
                                "task_id": {"value": "t1"},
                                "agent_id": {"value": "a"},
                                "slave_id": {"value": "a"},
                                "resources": [
                                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}
                                ],
                                "executor": {
                                    "executor_id": {"value": "default"},
                                    "command": {"value": "python -m x"},
                                    "command.environment": {"variables": []},
                                },
                                "data": "aGVsbG8=",
                                "limits": {"cpus": {"value": 2}, "mem": {"value": "Infinity"}},
                            }
                        ]
                    },
                }
            ],
            "filters": {"refuse_seconds": 4294967295},
        },
    }
    call = from_json(body, scheduler_pb2.Call)
    task = call.accept.operations[0].launch.task_infos[0]
    assert task.data == b"hello"
    assert task.executor.command.value == "python -m x"
    assert task.limits["mem"].value == math.inf
    assert call.accept.filters.refuse_seconds == 4294967295.0


def test_unknown_call_type_leaves_type_unset() -> None:
    call = from_json({"type": "MAKE_COFFEE"}, scheduler_pb2.Call)
    assert not call.HasField("type")


def test_enum_number_is_rejected() -> None:
    with pytest.raises(JsonConversionError):
        from_json({"type": 1}, scheduler_pb2.Call)


def test_missing_required_fields_in_a_call() -> None:
    body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "fw"}}}
    with pytest.raises(JsonConversionError) as info:
        from_json(body, scheduler_pb2.Call)
    assert info.value.message == "Missing required fields: subscribe.framework_info.user"


def test_executor_update_from_pymesos() -> None:
    body = {
        "type": "UPDATE",
        "executor_id": {"value": "e"},
        "framework_id": {"value": "f"},
        "update": {
            "status": {
                "task_id": {"value": "t"},
                "state": "TASK_RUNNING",
                "timestamp": 1700000000,
                "uuid": "q83vEjRWeJCrze8SNFZ4kA==",
                "source": "SOURCE_EXECUTOR",
                "agent_id": {"value": "a"},
            }
        },
    }
    call = from_json(body, executor_pb2.Call)
    assert len(call.update.status.uuid) == 16
    assert call.update.status.timestamp == 1700000000.0


def test_round_trip_task_info() -> None:
    task = mesos_pb2.TaskInfo(
        name="t",
        task_id={"value": "t1"},
        agent_id={"value": "a"},
        command={
            "value": "echo \u00e9",
            "environment": {"variables": [{"name": "A", "value": "1"}]},
        },
        health_check={"type": mesos_pb2.HealthCheck.COMMAND, "command": {"value": "true"}},
        limits={"cpus": {"value": 2.0}},
        labels={"labels": [{"key": "k", "value": "v"}]},
    )
    text = to_json_bytes(task)
    assert text.isascii()
    back = from_json(text, mesos_pb2.TaskInfo)
    # Defaults written out come back as explicitly set fields with the same values.
    assert to_json_bytes(back) == text
    assert back.command.value == task.command.value
