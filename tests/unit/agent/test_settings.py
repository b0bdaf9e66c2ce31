"""Agent settings: durations, flags, resource discovery, executor environment, sandboxes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mesoslite.agent.config import AgentConfig
from mesoslite.agent.discovery import discover_attributes, discover_resources
from mesoslite.agent.durations import format_duration
from mesoslite.agent.environment import (
    ExecutorEnvironment,
    command_environment,
    executor_environment,
)
from mesoslite.agent.executors import command_executor_info
from mesoslite.agent.sandbox import SandboxLayout, atomic_write, create_sandbox
from mesoslite.proto import mesos_pb2

from .harness import command_task, framework_info


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5.0, "5secs"),
        (1.5, "1.5secs"),
        (0.5, "500ms"),
        (60.0, "1mins"),
        (900.0, "15mins"),
        (7200.0, "2hrs"),
        (0.0005, "500us"),
        (0.0, "0ns"),
    ],
)
def test_durations_print_like_stout(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_flags_render_durations_and_booleans(tmp_path: Path) -> None:
    flags = AgentConfig(work_dir=tmp_path, executor_registration_timeout_s=60).flags()
    assert flags["executor_registration_timeout"] == "1mins"
    assert flags["executor_shutdown_grace_period"] == "5secs"
    assert flags["http_command_executor"] == "false"
    assert flags["work_dir"] == str(tmp_path)
    assert flags["port"] == "5051"


def test_resources_flag_replaces_discovered_names(tmp_path: Path) -> None:
    config = AgentConfig(work_dir=tmp_path / "missing" / "dir", resources="cpus:3;gpus:1")
    resources = {resource.name: resource for resource in discover_resources(config)}
    assert resources["cpus"].scalar.value == 3.0
    assert resources["gpus"].scalar.value == 1.0
    assert resources["mem"].scalar.value > 0
    assert resources["disk"].scalar.value > 0
    (port_range,) = resources["ports"].ranges.range
    assert (port_range.begin, port_range.end) == (31000, 32000)


def test_json_resources_and_attributes(tmp_path: Path) -> None:
    config = AgentConfig(
        work_dir=tmp_path,
        resources='[{"name":"mem","type":"SCALAR","scalar":{"value":512}}]',
        attributes="rack:r1;level:2",
    )
    resources = {resource.name: resource for resource in discover_resources(config)}
    assert resources["mem"].scalar.value == 512.0
    attributes = {attribute.name: attribute for attribute in discover_attributes(config)}
    assert attributes["rack"].text.value == "r1"
    assert attributes["level"].scalar.value == 2.0


def _spec(checkpoint: bool) -> ExecutorEnvironment:
    return ExecutorEnvironment(
        framework_id="fw",
        executor_id="ex",
        agent_id="ag",
        directory="/sandbox",
        sandbox="/sandbox",
        endpoint="10.0.0.1:5051",
        checkpoint=checkpoint,
        shutdown_grace_period_s=5.0,
    )


def test_executor_environment_from_the_agents_environment(tmp_path: Path) -> None:
    config = AgentConfig(work_dir=tmp_path)
    environment = executor_environment(
        config,
        _spec(checkpoint=False),
        agent_environment={"HOME": "/root", "LIBPROCESS_IP": "10.0.0.1", "LIBPROCESS_PORT": "5051"},
    )
    assert environment["HOME"] == "/root"
    assert environment["LIBPROCESS_IP"] == "10.0.0.1"
    assert environment["LIBPROCESS_PORT"] == "0"
    assert environment["MESOS_SLAVE_PID"] == "slave(1)@10.0.0.1:5051"
    assert environment["MESOS_CHECKPOINT"] == "0"
    assert "MESOS_RECOVERY_TIMEOUT" not in environment


def test_executor_environment_variables_flag_replaces_the_base(tmp_path: Path) -> None:
    config = AgentConfig(work_dir=tmp_path, executor_environment_variables={"ONLY": "this"})
    environment = executor_environment(
        config, _spec(checkpoint=True), agent_environment={"HOME": "/root"}
    )
    assert "HOME" not in environment
    assert environment["ONLY"] == "this"
    assert environment["MESOS_RECOVERY_TIMEOUT"] == "15mins"
    command = mesos_pb2.CommandInfo()
    command.environment.variables.add(name="ONLY", value="overridden")
    assert command_environment(environment, command)["ONLY"] == "overridden"


def test_command_executor_info_is_named_like_mesos() -> None:
    short = command_executor_info(framework_info(), command_task("t1", "echo hi"))
    assert short.executor_id.value == "t1"
    assert short.name == "Command Executor (Task: t1) (Command: sh -c 'echo hi')"
    assert short.source == "t1"
    long = command_executor_info(framework_info(), command_task("t2", "sleep 1000; echo done"))
    assert long.name == "Command Executor (Task: t2) (Command: sh -c 'sleep 1000; ...')"
    argv = command_executor_info(
        framework_info(), command_task("t3", "/bin/ls", shell=False, arguments=("ls", "-l"))
    )
    assert argv.name == "Command Executor (Task: t3) (Command: [/bin/ls, ls, -l])"
    graceful = command_executor_info(framework_info(), command_task("t4", "x", grace_period_s=1))
    assert graceful.shutdown_grace_period.nanoseconds == 3_000_000_000


def test_sandbox_layout_and_latest_link(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path)
    first = layout.executor_run_dir("ag", "fw", "ex", "c1")
    assert first == tmp_path / "slaves/ag/frameworks/fw/executors/ex/runs/c1"
    create_sandbox(first)
    second = layout.executor_run_dir("ag", "fw", "ex", "c2")
    create_sandbox(second)
    assert (first / "stdout").exists() and (first / "stderr").exists()
    assert (second.parent / "latest").resolve() == second.resolve()
    assert layout.task_updates_file("ag", "fw", "ex", "c2", "t") == (
        tmp_path / "meta/slaves/ag/frameworks/fw/executors/ex/runs/c2/tasks/t/task.updates"
    )
    target = layout.agent_info_file("ag")
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(path.name for path in target.parent.iterdir()) == ["slave.info"]


class _FakeNvml:
    """Stands in for pynvml: two devices."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")


def test_gpus_are_discovered_only_with_gpu_isolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    plain = {resource.name for resource in discover_resources(AgentConfig(work_dir=tmp_path))}
    assert "gpus" not in plain
    assert fake.calls == []
    config = AgentConfig(work_dir=tmp_path, isolation="posix/cpu,posix/mem,gpu/nvidia")
    resources = {resource.name: resource for resource in discover_resources(config)}
    assert resources["gpus"].scalar.value == 2.0
    assert fake.calls == ["init", "shutdown"]


def test_a_wildcard_listener_advertises_a_reachable_address(tmp_path: Path) -> None:
    assert AgentConfig(work_dir=tmp_path, ip="0.0.0.0").public_ip == "127.0.0.1"
    config = AgentConfig(work_dir=tmp_path, ip="0.0.0.0", advertise_ip="10.1.2.3")
    assert config.public_ip == "10.1.2.3"
    assert config.advertised_hostname == "10.1.2.3"
    assert AgentConfig(work_dir=tmp_path, ip="10.0.0.5").public_ip == "10.0.0.5"
