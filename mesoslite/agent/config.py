"""The agent's settings: what Mesos calls the agent flags.

Durations are plain seconds (suffix `_s`); `flags()` renders them the way Mesos prints
its flags (stout durations such as `5secs`), for GET_FLAGS and `/flags`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mesoslite import MESOS_VERSION
from mesoslite.agent.durations import format_duration

__all__ = ["DEFAULT_ISOLATION", "AgentConfig", "RecoverMode"]

DEFAULT_ISOLATION = "posix/cpu,posix/mem"

# `--recover`: "reconnect" takes over what the previous run of the agent left (its id,
# checkpointed executors and tasks); "cleanup" destroys all of it and starts as a new
# agent.
RecoverMode = Literal["reconnect", "cleanup"]


@dataclass(frozen=True)
class AgentConfig:
    work_dir: Path
    ip: str = "127.0.0.1"
    port: int = 5051
    # Advertised in AgentInfo and offers; "" means "use the ip".
    hostname: str = ""
    # What executors and the master are told to use when `ip` is a wildcard address.
    advertise_ip: str | None = None
    # `--resources`: Mesos syntax (`cpus:2;mem:1024;ports:[31000-32000]`) or a JSON
    # array of Resource; named resources replace the discovered ones.
    resources: str | None = None
    # `--attributes`: `rack:r1;zone:z2`.
    attributes: str | None = None
    # `--isolation` (None: the default set).
    isolation: str | None = None
    executor_shutdown_grace_period_s: float = 5.0
    executor_registration_timeout_s: float = 60.0
    executor_reregistration_timeout_s: float = 2.0
    # What command and default executors use when neither KILL nor the task names one.
    default_kill_grace_period_s: float = 3.0
    # Reported to executors as MESOS_HTTP_COMMAND_EXECUTOR.
    http_command_executor: bool = False
    # `--executor_environment_variables`: replaces the agent's own environment as the
    # base environment of executors when set.
    executor_environment_variables: Mapping[str, str] | None = None
    # Checkpoint frameworks that ask for it (Mesos >= 1.0 always does).
    checkpoint: bool = True
    recover: RecoverMode = "reconnect"
    # Executors' recovery settings (only passed on when checkpointing).
    recovery_timeout_s: float = 900.0
    executor_subscription_backoff_max_s: float = 2.0
    # Where the sandbox appears inside a container with its own image.
    sandbox_directory: str = "/mnt/mesos/sandbox"
    # Status updates are resent from this interval, doubling up to the maximum.
    status_update_retry_initial_s: float = 10.0
    status_update_retry_max_s: float = 600.0
    # Reconnecting to the master: random backoff doubling from this factor up to the cap.
    registration_backoff_factor_s: float = 1.0
    registration_backoff_max_s: float = 60.0
    # Executor HEARTBEAT events (Mesos: every 30 minutes).
    executor_heartbeat_interval_s: float = 1800.0
    # How much history the state endpoints keep.
    max_completed_frameworks: int = 50
    max_completed_executors_per_framework: int = 150
    max_completed_tasks_per_executor: int = 200
    # The agent's log file, served as /slave/log by /files (optional).
    log_file: Path | None = None
    version: str = MESOS_VERSION
    # Extra labels shown in /flags (e.g. what the CLI was given).
    extra_flags: Mapping[str, str] = field(default_factory=dict)

    @property
    def public_ip(self) -> str:
        """The address others reach this agent at (MESOS_AGENT_ENDPOINT, pid)."""
        if self.advertise_ip:
            return self.advertise_ip
        if self.ip in ("0.0.0.0", "", "::"):
            return "127.0.0.1"
        return self.ip

    @property
    def advertised_hostname(self) -> str:
        return self.hostname or self.public_ip

    @property
    def isolation_or_default(self) -> str:
        return self.isolation or DEFAULT_ISOLATION

    def flags(self) -> dict[str, str]:
        """The settings as Mesos-style flag strings (GET_FLAGS, `/flags`)."""
        values = {
            "work_dir": str(self.work_dir),
            "ip": self.ip,
            "advertise_ip": self.public_ip,
            "port": str(self.port),
            "hostname": self.advertised_hostname,
            "isolation": self.isolation_or_default,
            "executor_shutdown_grace_period": format_duration(
                self.executor_shutdown_grace_period_s
            ),
            "executor_registration_timeout": format_duration(self.executor_registration_timeout_s),
            "executor_reregistration_timeout": format_duration(
                self.executor_reregistration_timeout_s
            ),
            "http_command_executor": _bool(self.http_command_executor),
            "recovery_timeout": format_duration(self.recovery_timeout_s),
            "sandbox_directory": self.sandbox_directory,
            "registration_backoff_factor": format_duration(self.registration_backoff_factor_s),
            "recover": self.recover,
            "strict": "true",
            "launcher": "posix",
            "containerizers": "mesos",
        }
        if self.resources is not None:
            values["resources"] = self.resources
        if self.attributes is not None:
            values["attributes"] = self.attributes
        if self.log_file is not None:
            values["log_dir"] = str(self.log_file.parent)
        values.update(self.extra_flags)
        return values


def _bool(value: bool) -> str:
    return "true" if value else "false"
