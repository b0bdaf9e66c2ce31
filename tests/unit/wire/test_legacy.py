"""Legacy JSON shapes (spec section 4.4)."""

from __future__ import annotations

from typing import Any

from mesoslite.proto import mesos_pb2
from mesoslite.wire.legacy import (
    attributes_to_legacy,
    resources_to_legacy,
    task_to_legacy,
)

V = mesos_pb2.Value


def scalar(name: str, value: float, **extra: Any) -> mesos_pb2.Resource:
    return mesos_pb2.Resource(name=name, type=V.SCALAR, scalar={"value": value}, **extra)


def ranges(name: str, *spans: tuple[int, int]) -> mesos_pb2.Resource:
    return mesos_pb2.Resource(
        name=name, type=V.RANGES, ranges={"range": [{"begin": b, "end": e} for b, e in spans]}
    )


def test_empty_resources_still_have_the_four_scalars() -> None:
    assert resources_to_legacy([]) == {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}


def test_resources_summed_merged_and_stringified() -> None:
    out = resources_to_legacy(
        [
            scalar("cpus", 0.1),
            scalar("cpus", 0.2),
            scalar("mem", 128),
            scalar("bugs", 3),
            ranges("ports", (31005, 31010), (31000, 31004)),
            ranges("ports", (32000, 32000)),
            mesos_pb2.Resource(name="zones", type=V.SET, set={"item": ["a", "b"]}),
            mesos_pb2.Resource(name="zones", type=V.SET, set={"item": ["b", "c"]}),
            scalar("cpus", 2, revocable={}),
        ]
    )
    assert out == {
        "cpus": 0.3,  # fixed-point sum, not 0.30000000000000004
        "gpus": 0.0,
        "mem": 128.0,
        "disk": 0.0,
        "bugs": 3.0,
        "cpus_revocable": 2.0,
        "ports": "[31000-31010, 32000-32000]",
        "zones": "{a, b, c}",
    }


def test_attributes() -> None:
    attributes = [
        mesos_pb2.Attribute(name="rack", type=V.TEXT, text={"value": "r1"}),
        mesos_pb2.Attribute(name="level", type=V.SCALAR, scalar={"value": 2}),
        mesos_pb2.Attribute(
            name="span",
            type=V.RANGES,
            ranges={"range": [{"begin": 5, "end": 9}, {"begin": 1, "end": 2}]},
        ),
        mesos_pb2.Attribute(name="os", type=V.SET, set={"item": ["linux", "bsd"]}),
    ]
    assert attributes_to_legacy(attributes) == {
        "rack": "r1",
        "level": 2.0,
        "span": "[5-9, 1-2]",
        "os": "{linux, bsd}",
    }


def test_command_task() -> None:
    task = mesos_pb2.Task(
        name="sleep",
        task_id={"value": "t1"},
        framework_id={"value": "f1"},
        agent_id={"value": "a1"},
        state=mesos_pb2.TASK_RUNNING,
        resources=[scalar("cpus", 1, allocation_info={"role": "eng"}), scalar("mem", 32)],
    )
    assert task_to_legacy(task) == {
        "id": "t1",
        "name": "sleep",
        "framework_id": "f1",
        "executor_id": "",
        "slave_id": "a1",
        "state": "TASK_RUNNING",
        "resources": {"cpus": 1.0, "gpus": 0.0, "mem": 32.0, "disk": 0.0},
        "role": "eng",
        "statuses": [],
    }


def test_full_task() -> None:
    task = mesos_pb2.Task(
        name="web",
        task_id={"value": "t2"},
        framework_id={"value": "f1"},
        executor_id={"value": "e1"},
        agent_id={"value": "a1"},
        state=mesos_pb2.TASK_FINISHED,
        resources=[scalar("cpus", 0.5, allocation_info={"role": "*"})],
        limits={"cpus": {"value": 2.0}, "mem": {"value": float("inf")}},
        statuses=[
            {
                "task_id": {"value": "t2"},
                "state": mesos_pb2.TASK_RUNNING,
                "timestamp": 1700000000.5,
                "healthy": True,
                "labels": {"labels": [{"key": "k", "value": "v"}]},
                "container_status": {
                    "container_id": {"value": "c1"},
                    "network_infos": [{"ip_addresses": [{"ip_address": "127.0.0.1"}]}],
                },
                "uuid": b"0123456789abcdef",
            }
        ],
        user="alice",
        labels={"labels": [{"key": "team", "value": "x"}, {"key": "flag"}]},
        container={"type": mesos_pb2.ContainerInfo.MESOS},
    )
    out = task_to_legacy(task)
    assert list(out) == [
        "id",
        "name",
        "framework_id",
        "executor_id",
        "slave_id",
        "state",
        "resources",
        "limits",
        "role",
        "statuses",
        "user",
        "labels",
        "container",
    ]
    assert out["executor_id"] == "e1"
    assert out["limits"] == {"cpus": 2.0, "mem": float("inf")}
    assert out["labels"] == [{"key": "team", "value": "x"}, {"key": "flag"}]
    assert out["container"]["type"] == "MESOS"
    (status,) = out["statuses"]
    assert status["state"] == "TASK_RUNNING"
    assert status["timestamp"] == 1700000000.5
    assert status["healthy"] is True
    assert status["labels"] == [{"key": "k", "value": "v"}]
    assert status["container_status"]["container_id"] == {"value": "c1"}
    assert status["container_status"]["network_infos"][0]["ip_addresses"][0]["ip_address"] == (
        "127.0.0.1"
    )
    assert "uuid" not in status
