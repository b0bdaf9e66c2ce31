"""What a restart reads back: the meta directory as the agent writes it, replayed into
the updates still waiting for an acknowledgement; and which configuration changes a
restarted agent may take over its predecessor with."""

from __future__ import annotations

from pathlib import Path

from mesoslite.agent import checkpoints
from mesoslite.agent.checkpoint_reader import read_agent_checkpoint, read_boot_id
from mesoslite.agent.reconfiguration import reconfiguration_error
from mesoslite.agent.sandbox import SandboxLayout, append_durably, create_sandbox
from mesoslite.agent.update_log import ack_record, update_record
from mesoslite.proto import internal_pb2, mesos_pb2
from mesoslite.resources import parse_attributes, parse_resources

_AGENT, _FRAMEWORK, _EXECUTOR, _CONTAINER = "a-S0", "a-0000", "task-1", "c-1"


def _update(state: mesos_pb2.TaskState.ValueType, uuid: bytes) -> internal_pb2.StatusUpdate:
    update = internal_pb2.StatusUpdate()
    update.framework_id.value = _FRAMEWORK
    update.status.task_id.value = "task-1"
    update.status.state = state
    update.status.uuid = uuid
    return update


def _write_agent(layout: SandboxLayout) -> Path:
    info = mesos_pb2.AgentInfo(hostname="h", port=5051)
    info.id.value = _AGENT
    checkpoints.write_agent_info(layout, info)
    framework = mesos_pb2.FrameworkInfo(user="u", name="f", checkpoint=True)
    framework.id.value = _FRAMEWORK
    checkpoints.write_framework_info(layout, _AGENT, framework)
    executor = mesos_pb2.ExecutorInfo()
    executor.executor_id.value = _EXECUTOR
    executor.framework_id.value = _FRAMEWORK
    checkpoints.write_executor_info(layout, _AGENT, _FRAMEWORK, executor)
    create_sandbox(layout.executor_run_dir(_AGENT, _FRAMEWORK, _EXECUTOR, _CONTAINER))
    task = mesos_pb2.TaskInfo(name="t")
    task.task_id.value = "task-1"
    task.agent_id.value = _AGENT
    checkpoints.write_task_info(layout, _AGENT, _FRAMEWORK, _EXECUTOR, _CONTAINER, task)
    return layout.task_updates_file(_AGENT, _FRAMEWORK, _EXECUTOR, _CONTAINER, "task-1")


def test_updates_replay_into_what_waits_for_an_acknowledgement(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path)
    log = _write_agent(layout)
    starting, running, finished = b"s" * 16, b"r" * 16, b"f" * 16
    for record in (
        update_record(_update(mesos_pb2.TASK_STARTING, starting)),
        ack_record(starting),
        update_record(_update(mesos_pb2.TASK_RUNNING, running)),
        update_record(_update(mesos_pb2.TASK_RUNNING, running)),  # a replay: once
        ack_record(finished),  # not the one in flight: ignored
        update_record(_update(mesos_pb2.TASK_FINISHED, finished)),
    ):
        append_durably(log, record)
    # A crash in the middle of the next append leaves a torn record: dropped.
    append_durably(log, update_record(_update(mesos_pb2.TASK_FAILED, b"x" * 16))[:-3])

    checkpoint = read_agent_checkpoint(layout)
    assert checkpoint is not None and checkpoint.agent_id == _AGENT
    [framework] = checkpoint.frameworks
    [executor] = framework.executors
    assert executor.latest_run is not None and executor.earlier_runs == []
    assert executor.latest_run.container_id == _CONTAINER
    [task] = executor.latest_run.tasks
    assert [u.status.uuid for u in task.updates] == [starting, running, finished]
    assert [u.status.uuid for u in task.pending] == [running, finished]
    assert task.last_state == mesos_pb2.TASK_FINISHED


def test_nothing_to_recover_without_the_latest_link(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path)
    _write_agent(layout)
    checkpoints.forget_latest_agent(layout)
    assert read_agent_checkpoint(layout) is None
    assert read_boot_id(layout) is None
    checkpoints.prepare_work_dir(layout)
    assert read_boot_id(layout) == checkpoints.current_boot_id()


def test_a_forgotten_run_takes_its_executor_along(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path)
    _write_agent(layout)
    checkpoints.forget_run(layout, _AGENT, _FRAMEWORK, _EXECUTOR, _CONTAINER)
    assert not layout.executor_meta_dir(_AGENT, _FRAMEWORK, _EXECUTOR).exists()
    assert layout.framework_info_file(_AGENT, _FRAMEWORK).exists()
    # The sandbox stays for the user.
    assert layout.executor_run_dir(_AGENT, _FRAMEWORK, _EXECUTOR, _CONTAINER).is_dir()


def _agent_info(
    resources: str, attributes: str = "", hostname: str = "h", port: int = 5051
) -> mesos_pb2.AgentInfo:
    info = mesos_pb2.AgentInfo(hostname=hostname, port=port)
    info.resources.extend(parse_resources(resources))
    if attributes:
        info.attributes.extend(parse_attributes(attributes))
    return info


def test_resources_and_attributes_may_only_grow() -> None:
    before = _agent_info("cpus:2;mem:1024", "rack:r1")

    def error(after: mesos_pb2.AgentInfo) -> str:
        return reconfiguration_error(before, after) or ""

    assert error(_agent_info("cpus:2;mem:1024", "rack:r1")) == ""
    assert error(_agent_info("cpus:4;mem:2048", "rack:r1;zone:z")) == ""
    assert "resources" in error(_agent_info("cpus:1;mem:1024", "rack:r1"))
    assert "rack" in error(_agent_info("cpus:2;mem:1024", "rack:r2"))
    assert "port" in error(_agent_info("cpus:2;mem:1024", "rack:r1", port=5052))
    assert "hostname" in error(_agent_info("cpus:2;mem:1024", "rack:r1", "other"))
