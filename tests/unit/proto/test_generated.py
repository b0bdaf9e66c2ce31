"""The generated protobuf modules: up to date with the .proto files, and on the
Mesos v1 wire (field numbers, enum values, defaults, deprecation, encodings)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor, descriptor_pb2

from mesoslite.proto import (
    agent_pb2,
    allocator_pb2,
    executor_pb2,
    internal_pb2,
    maintenance_pb2,
    master_pb2,
    mesos_pb2,
    quota_pb2,
    scheduler_pb2,
)
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]
PROTO_DIR = ROOT / "mesoslite" / "proto"
GEN_SCRIPT = ROOT / "scripts" / "gen_proto.sh"


def _generated_files(base: Path) -> dict[str, bytes]:
    proto = base / "mesoslite" / "proto"
    return {
        p.name: p.read_bytes()
        for pattern in ("*_pb2.py", "*_pb2.pyi")
        for p in sorted(proto.glob(pattern))
    }


# ---------------------------------------------------------------- (a) up to date


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    require(importlib.util.find_spec("grpc_tools") is not None, "needs grpcio-tools")
    plugin = Path(sys.executable).parent / "protoc-gen-mypy"
    require(
        plugin.exists() or shutil.which("protoc-gen-mypy") is not None,
        "needs mypy-protobuf (protoc-gen-mypy)",
    )
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(
        ["bash", str(GEN_SCRIPT), str(tmp_path)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    fresh = _generated_files(tmp_path)
    committed = _generated_files(ROOT)
    protos = sorted(p.stem for p in PROTO_DIR.glob("*.proto"))
    assert sorted(fresh) == sorted(f"{s}_pb2.{ext}" for s in protos for ext in ("py", "pyi"))
    assert sorted(committed) == sorted(fresh), "stale or missing generated files"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"regenerate with scripts/gen_proto.sh: {stale} differ"


# ---------------------------------------------------------------- (b) wire sanity


def _field(message: type, name: str) -> descriptor.FieldDescriptor:
    return message.DESCRIPTOR.fields_by_name[name]  # type: ignore[attr-defined, no-any-return]


def _message_type(field: descriptor.FieldDescriptor) -> descriptor.Descriptor:
    assert field.message_type is not None
    return field.message_type


def _numbers(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def test_packages() -> None:
    assert mesos_pb2.DESCRIPTOR.package == "mesos.v1"
    assert scheduler_pb2.Call.DESCRIPTOR.full_name == "mesos.v1.scheduler.Call"
    assert executor_pb2.Event.DESCRIPTOR.full_name == "mesos.v1.executor.Event"
    assert master_pb2.Response.DESCRIPTOR.full_name == "mesos.v1.master.Response"
    assert agent_pb2.ProcessIO.DESCRIPTOR.full_name == "mesos.v1.agent.ProcessIO"
    assert quota_pb2.QuotaConfig.DESCRIPTOR.full_name == "mesos.v1.quota.QuotaConfig"
    assert maintenance_pb2.Schedule.DESCRIPTOR.full_name == "mesos.v1.maintenance.Schedule"
    assert (
        allocator_pb2.InverseOfferStatus.DESCRIPTOR.full_name
        == "mesos.v1.allocator.InverseOfferStatus"
    )
    assert internal_pb2.DESCRIPTOR.package == "mesoslite.internal"
    for module in (mesos_pb2, scheduler_pb2, master_pb2, internal_pb2):
        file_proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(file_proto)
        assert file_proto.syntax in ("", "proto2")  # protoc leaves proto2's unset
        assert not file_proto.HasField("edition")


def test_task_state_values() -> None:
    expected = {
        "TASK_STAGING": 6, "TASK_STARTING": 0, "TASK_RUNNING": 1, "TASK_KILLING": 8,
        "TASK_FINISHED": 2, "TASK_FAILED": 3, "TASK_KILLED": 4, "TASK_ERROR": 7,
        "TASK_LOST": 5, "TASK_DROPPED": 9, "TASK_UNREACHABLE": 10, "TASK_GONE": 11,
        "TASK_GONE_BY_OPERATOR": 12, "TASK_UNKNOWN": 13,
    }  # fmt: skip
    assert dict(mesos_pb2.TaskState.items()) == expected
    # Declaration order is Mesos' (TASK_STAGING first), so it is the proto2 default.
    assert mesos_pb2.TaskStatus().state == mesos_pb2.TASK_STAGING


def test_task_status_fields_and_reasons() -> None:
    assert _numbers(mesos_pb2.TaskStatus) == {
        "task_id": 1, "state": 2, "message": 4, "source": 9, "reason": 10, "data": 3,
        "agent_id": 5, "executor_id": 7, "timestamp": 6, "uuid": 11, "healthy": 8,
        "check_status": 15, "labels": 12, "container_status": 13,
        "unreachable_time": 14, "limitation": 16,
    }  # fmt: skip
    reasons = mesos_pb2.TaskStatus.Reason
    assert sorted(reasons.values()) == list(range(35))
    assert reasons.Value("REASON_AGENT_DRAINING") == 34
    assert reasons.Value("REASON_CONTAINER_LIMITATION_MEMORY") == 8
    assert reasons.Value("REASON_EXECUTOR_TERMINATED") == 1
    assert dict(mesos_pb2.TaskStatus.Source.items()) == {
        "SOURCE_MASTER": 0, "SOURCE_AGENT": 1, "SOURCE_EXECUTOR": 2,
    }  # fmt: skip


def test_scheduler_call_and_event() -> None:
    assert _numbers(scheduler_pb2.Call) == {
        "framework_id": 1, "type": 2, "subscribe": 3, "accept": 4, "decline": 5,
        "accept_inverse_offers": 13, "decline_inverse_offers": 14, "revive": 15,
        "kill": 6, "shutdown": 7, "acknowledge": 8, "acknowledge_operation_status": 17,
        "reconcile": 9, "reconcile_operations": 18, "message": 10, "request": 11,
        "suppress": 16, "update_framework": 19,
    }  # fmt: skip
    call_types = scheduler_pb2.Call.Type
    assert call_types.Value("UPDATE_FRAMEWORK") == 17
    assert call_types.Value("SUPPRESS") == 12
    assert call_types.Value("RECONCILE_OPERATIONS") == 16
    assert _numbers(scheduler_pb2.Call.Subscribe) == {
        "framework_info": 1, "suppressed_roles": 2, "offer_constraints": 3,
    }  # fmt: skip
    assert _numbers(scheduler_pb2.Event) == {
        "type": 1, "subscribed": 2, "offers": 3, "inverse_offers": 9, "rescind": 4,
        "rescind_inverse_offer": 10, "update": 5, "update_operation_status": 11,
        "message": 6, "failure": 7, "error": 8,
    }  # fmt: skip
    assert scheduler_pb2.Event.Type.Value("HEARTBEAT") == 8
    assert scheduler_pb2.Event.Type.Value("UPDATE_OPERATION_STATUS") == 11


def test_executor_call_and_event() -> None:
    assert _field(executor_pb2.Call.Message, "data").number == 2
    assert _field(executor_pb2.Call, "executor_id").is_required
    assert executor_pb2.Call.Type.Value("HEARTBEAT") == 4
    assert executor_pb2.Event.Type.Value("LAUNCH_GROUP") == 8
    assert executor_pb2.Event.Type.Value("HEARTBEAT") == 9
    assert _field(executor_pb2.Event, "launch_group").number == 8
    assert _field(executor_pb2.Event.Subscribed, "container_id").number == 4


def test_operator_api_numbers() -> None:
    master_call = master_pb2.Call
    assert master_call.Type.Value("DRAIN_AGENT") == 37
    assert master_call.Type.Value("UPDATE_QUOTA") == 36
    assert master_call.Type.Value("GET_OPERATIONS") == 33
    assert _field(master_call, "drain_agent").number == 21
    assert _field(master_call, "update_quota").number == 20
    assert _message_type(_field(master_call.DrainAgent, "max_grace_period")).full_name == (
        "google.protobuf.Duration"
    )
    assert master_pb2.Response.Type.Value("GET_OPERATIONS") == 19
    assert _field(master_pb2.Response, "get_operations").number == 20
    agent = _numbers(master_pb2.Response.GetAgents.Agent)
    assert (agent["deactivated"], agent["drain_info"], agent["estimated_drain_start_time"]) == (
        12, 13, 14,
    )  # fmt: skip
    assert master_pb2.Event.Type.Value("HEARTBEAT") == 9
    assert agent_pb2.Call.Type.Value("LAUNCH_CONTAINER") == 22
    assert _field(agent_pb2.Call, "get_containers").number == 20
    assert agent_pb2.Response.Type.Value("GET_AGENT") == 14
    assert _field(agent_pb2.Response, "get_agent").number == 15
    assert allocator_pb2.InverseOfferStatus.Status.Value("UNKNOWN") == 1


def test_explicit_defaults_and_deprecation() -> None:
    assert mesos_pb2.FrameworkInfo().failover_timeout == 0.0
    assert mesos_pb2.FrameworkInfo().role == "*"
    assert mesos_pb2.MasterInfo().port == 5050
    assert mesos_pb2.AgentInfo().port == 5051
    assert mesos_pb2.Filters().refuse_seconds == 5.0
    assert mesos_pb2.CommandInfo().shell is True
    assert mesos_pb2.CommandInfo.URI().extract is True
    assert mesos_pb2.HealthCheck().consecutive_failures == 3
    assert mesos_pb2.LinuxInfo().share_cgroups is True
    assert mesos_pb2.ContainerInfo.DockerInfo().network == mesos_pb2.ContainerInfo.DockerInfo.HOST
    assert mesos_pb2.NetworkInfo.IPAddress().protocol == mesos_pb2.NetworkInfo.IPv4
    assert mesos_pb2.Environment.Variable().type == mesos_pb2.Environment.Variable.VALUE

    def deprecated(message: type, name: str) -> bool:
        return bool(_field(message, name).GetOptions().deprecated)

    assert deprecated(mesos_pb2.FrameworkInfo, "role")
    assert deprecated(mesos_pb2.Resource, "role")
    assert deprecated(mesos_pb2.ExecutorInfo, "source")
    assert deprecated(mesos_pb2.LinuxInfo, "capability_info")
    assert deprecated(mesos_pb2.Image.Docker, "credential")
    assert deprecated(mesos_pb2.ContainerInfo.DockerInfo, "volume_driver")
    assert not deprecated(mesos_pb2.FrameworkInfo, "roles")
    # Explicit defaults are visible to the JSON writer.
    assert _field(mesos_pb2.FrameworkInfo, "checkpoint").has_default_value
    assert not _field(mesos_pb2.FrameworkInfo, "hostname").has_default_value


def test_declaration_order_follows_mesos() -> None:
    resource = [f.name for f in mesos_pb2.Resource.DESCRIPTOR.fields]
    assert resource[:7] == [
        "provider_id", "name", "type", "scalar", "ranges", "set", "role",
    ]  # fmt: skip
    framework = [f.name for f in mesos_pb2.FrameworkInfo.DESCRIPTOR.fields]
    assert framework[5:8] == ["role", "roles", "hostname"]


def test_labels_and_maps() -> None:
    assert _field(mesos_pb2.TaskInfo, "name").is_required
    assert _field(mesos_pb2.TaskInfo, "resources").is_repeated
    url = _field(mesos_pb2.Offer, "url")
    assert not url.is_required and not url.is_repeated and url.has_presence
    limits = _field(mesos_pb2.TaskInfo, "limits")
    assert limits.number == 15
    assert _message_type(limits).GetOptions().map_entry
    assert _field(mesos_pb2.FrameworkInfo, "offer_filters").number == 13
    assert _message_type(_field(mesos_pb2.OperationStatus, "uuid")).full_name == "mesos.v1.UUID"


def test_serialized_bytes() -> None:
    status = mesos_pb2.TaskStatus(
        task_id=mesos_pb2.TaskID(value="t"),
        state=mesos_pb2.TASK_RUNNING,
        uuid=bytes(16),
    )
    assert status.SerializeToString().hex() == "0a030a0174" + "1001" + "5a10" + "00" * 16

    call = scheduler_pb2.Call(
        framework_id=mesos_pb2.FrameworkID(value="f"),
        type=scheduler_pb2.Call.UPDATE_FRAMEWORK,
    )
    call.update_framework.framework_info.user = "u"
    call.update_framework.framework_info.name = "n"
    # 1: {1:"f"}; 2: 17; 19 (tag 0x9a 0x01): {1: {1:"u", 2:"n"}}
    expected = "0a030a0166" + "1011" + "9a0108" + "0a06" + "0a0175" + "12016e"
    assert call.SerializeToString().hex() == expected
    parsed = scheduler_pb2.Call.FromString(call.SerializeToString())
    assert parsed == call
    assert parsed.IsInitialized()


def test_internal_messages_use_mesos_types() -> None:
    register = internal_pb2.RegisterAgent()
    assert register.agent_info.DESCRIPTOR.full_name == "mesos.v1.AgentInfo"
    update = internal_pb2.StatusUpdate()
    assert update.status.DESCRIPTOR.full_name == "mesos.v1.TaskStatus"
    envelope = internal_pb2.MasterToAgent(ping=internal_pb2.Ping(sequence=3))
    assert envelope.WhichOneof("message") == "ping"


@pytest.mark.parametrize(
    "module",
    [mesos_pb2, scheduler_pb2, executor_pb2, master_pb2, agent_pb2, quota_pb2,
     maintenance_pb2, allocator_pb2, internal_pb2],
)  # fmt: skip
def test_generated_sources_match_proto_names(module: object) -> None:
    name = module.__name__.rsplit(".", 1)[-1].removesuffix("_pb2")  # type: ignore[attr-defined]
    assert module.DESCRIPTOR.name == f"mesoslite/proto/{name}.proto"  # type: ignore[attr-defined]
