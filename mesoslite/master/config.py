"""The master's settings: what Mesos takes as `mesos-master` flags.

Defaults follow Mesos (section 2.13 of the wire contract) except where a test or a
small cluster wants them smaller; `flags()` reports them under Mesos' flag names for
`/flags` and `GET_FLAGS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MasterConfig", "format_duration"]


@dataclass(frozen=True)
class MasterConfig:
    """Everything the master needs to know at start; immutable once running."""

    # Where the master listens; `advertise_ip` is what it tells others (MasterInfo.ip,
    # pid, redirects) when it listens on a wildcard address.
    ip: str = "127.0.0.1"
    port: int = 5050
    hostname: str = "localhost"
    advertise_ip: str | None = None
    cluster: str | None = None

    # Scheduler and operator event streams.
    heartbeat_interval_s: float = 15.0
    max_operator_event_stream_subscribers: int = 1000

    # Agent health: a ping every interval; this many unanswered in a row (or a closed
    # connection not replaced within interval * count) makes the agent unreachable.
    agent_ping_interval_s: float = 15.0
    max_agent_ping_timeouts: int = 5

    # Offers.
    offer_timeout_s: float | None = None
    allocation_interval_s: float = 1.0
    # Changes arriving within this window are allocated together (event-driven offers).
    allocation_batch_window_s: float = 0.005
    # Launch flow control: an agent with this many tasks in TASK_STAGING (launched, not
    # yet reported by the agent) gets no offers until fewer are, or for at most
    # `launch_pause_max_s` (Mesos' own allocation interval: never later than Mesos would
    # have offered). A scheduler that takes every offer otherwise queues launches
    # faster than the agent starts them, and every task waits behind the queue. None:
    # no flow control.
    max_staging_tasks_per_agent: int | None = 1
    # ...and the same pause while this many tasks are launched but not yet running
    # (TASK_STAGING or TASK_STARTING): the command executor reports STARTING before
    # its container starts, so containers slower to start than the scheduler launches
    # (an image's) would otherwise queue without bound on the agent, and the last of a
    # burst wait seconds for TASK_RUNNING. Deep enough that the agent never runs dry.
    max_launching_tasks_per_agent: int | None = 64
    launch_pause_max_s: float = 1.0

    # Roles: None allows every valid role; otherwise only these (and "*").
    roles: frozenset[str] | None = None
    weights: Mapping[str, float] = field(default_factory=dict)

    # Bookkeeping bounds.
    max_completed_frameworks: int = 50
    max_completed_tasks_per_framework: int = 1000
    max_unreachable_tasks_per_framework: int = 1000

    root_submissions: bool = True
    filter_gpu_resources: bool = True

    # The file the master logs to, served as `/master/log` under `/files` (Mesos'
    # --log_dir names its directory).
    log_file: Path | None = None

    @property
    def public_ip(self) -> str:
        """The address others should use to reach this master."""
        if self.advertise_ip:
            return self.advertise_ip
        if self.ip in ("0.0.0.0", ""):
            return "127.0.0.1"
        return self.ip

    @property
    def agent_unreachable_after_s(self) -> float:
        """How long an agent may stay silent (or disconnected) before it is unreachable."""
        return self.agent_ping_interval_s * self.max_agent_ping_timeouts

    def flags(self) -> dict[str, str]:
        """The settings under Mesos' flag names, values as Mesos prints them."""
        flags = {
            "ip": self.ip,
            "port": str(self.port),
            "hostname": self.hostname,
            "advertise_ip": self.public_ip,
            "agent_ping_timeout": format_duration(self.agent_ping_interval_s),
            "max_agent_ping_timeouts": str(self.max_agent_ping_timeouts),
            "allocation_interval": format_duration(self.allocation_interval_s),
            "max_completed_frameworks": str(self.max_completed_frameworks),
            "max_completed_tasks_per_framework": str(self.max_completed_tasks_per_framework),
            "max_unreachable_tasks_per_framework": str(self.max_unreachable_tasks_per_framework),
            "max_operator_event_stream_subscribers": str(
                self.max_operator_event_stream_subscribers
            ),
            "root_submissions": _flag_bool(self.root_submissions),
            "filter_gpu_resources": _flag_bool(self.filter_gpu_resources),
            "registry": "in_memory",
            "authenticate_frameworks": "false",
            "authenticate_agents": "false",
            "authenticate_http_frameworks": "false",
            "authenticate_http_readonly": "false",
            "authenticate_http_readwrite": "false",
            "http_heartbeat_interval": format_duration(self.heartbeat_interval_s),
        }
        if self.offer_timeout_s is not None:
            flags["offer_timeout"] = format_duration(self.offer_timeout_s)
        if self.roles is not None:
            flags["roles"] = ",".join(sorted(self.roles))
        if self.weights:
            flags["weights"] = ",".join(f"{role}={w:g}" for role, w in sorted(self.weights.items()))
        if self.cluster:
            flags["cluster"] = self.cluster
        if self.log_file is not None:
            flags["log_dir"] = str(self.log_file.parent)
        return flags


def _flag_bool(value: bool) -> str:
    return "true" if value else "false"


# stout's units, largest first, in seconds.
_DURATION_UNITS = (
    ("weeks", 7 * 86400.0),
    ("days", 86400.0),
    ("hrs", 3600.0),
    ("mins", 60.0),
    ("secs", 1.0),
    ("ms", 1e-3),
    ("us", 1e-6),
    ("ns", 1e-9),
)


def format_duration(seconds: float) -> str:
    """A duration the way Mesos (stout) prints it: the largest unit that divides it
    exactly, e.g. 15.0 -> "15secs", 0.5 -> "500ms", 600 -> "10mins"."""
    if seconds == 0 or not math.isfinite(seconds):
        return "0ns" if seconds == 0 else str(seconds)
    for name, size in _DURATION_UNITS:
        count = seconds / size
        if abs(count) >= 1 and math.isclose(count, round(count), rel_tol=0, abs_tol=1e-9):
            return f"{round(count)}{name}"
    return f"{round(seconds / 1e-9)}ns"
