"""The master's bookkeeping: frameworks, agents and their tasks and executors.

Everything Mesos defines is kept as its protobuf message (FrameworkInfo, AgentInfo,
Task, ExecutorInfo); the records here only add what a connection or an index needs.
A task's `Task` message is one object shared by its framework's and its agent's maps,
so an update is made once and both views see it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from mesoslite.master.agent_link import AgentLink
from mesoslite.master.timers import Timer
from mesoslite.proto import mesos_pb2, scheduler_pb2
from mesoslite.resources import Resources
from mesoslite.wire.http import EventStream

__all__ = [
    "LAUNCHING_STATES",
    "Agent",
    "Framework",
    "GoneAgent",
    "MasterState",
    "OfferRecord",
    "SchedulerStream",
    "UnreachableAgent",
    "framework_roles",
]

Capability = mesos_pb2.FrameworkInfo.Capability

# A task launched and not yet running (launch flow control counts these).
LAUNCHING_STATES = frozenset({mesos_pb2.TASK_STAGING, mesos_pb2.TASK_STARTING})


def framework_roles(info: mesos_pb2.FrameworkInfo) -> tuple[str, ...]:
    """The roles a framework subscribes with: `roles` for MULTI_ROLE, else `role`."""
    if any(c.type == Capability.MULTI_ROLE for c in info.capabilities):
        return tuple(info.roles)
    return (info.role,)


@dataclass
class SchedulerStream:
    """A framework's current SUBSCRIBE connection."""

    stream_id: str
    events: EventStream


class Framework:
    """A framework known to the master (subscribed, disconnected, or recovered from an
    agent's re-registration and not yet subscribed)."""

    def __init__(
        self,
        info: mesos_pb2.FrameworkInfo,
        *,
        registered_time: float,
        max_completed_tasks: int,
        max_unreachable_tasks: int,
    ) -> None:
        self.id = info.id.value
        self.info = info
        self.roles: tuple[str, ...] = ()
        self.capabilities: frozenset[int] = frozenset()
        self.update_info(info)
        self.suppressed_roles: set[str] = set()
        self.offer_constraints: scheduler_pb2.OfferConstraints | None = None
        self.stream: SchedulerStream | None = None
        # Offers are made only to active frameworks (subscribed, not deactivated).
        self.active = False
        # Known only from an agent's report; no scheduler has subscribed yet.
        self.recovered = False
        self.registered_time = registered_time
        self.reregistered_time: float | None = None
        self.unregistered_time: float | None = None
        # Live tasks (and terminal ones whose last update is not yet acknowledged).
        self.tasks: dict[str, mesos_pb2.Task] = {}
        self.unreachable_tasks: OrderedDict[str, mesos_pb2.Task] = OrderedDict()
        self.completed_tasks: deque[mesos_pb2.Task] = deque(maxlen=max_completed_tasks)
        self._max_unreachable_tasks = max_unreachable_tasks
        # Ids of outstanding offers (the offers live in MasterState.offers).
        self.offer_ids: set[str] = set()
        # agent id -> executor id -> ExecutorInfo (custom and default executors only).
        self.executors: dict[str, dict[str, mesos_pb2.ExecutorInfo]] = {}
        # Bumped on every (re)subscription and disconnection: a failover timer only
        # removes the framework if nothing happened since it was armed.
        self.connection_epoch = 0

    def update_info(self, info: mesos_pb2.FrameworkInfo) -> None:
        self.info = info
        self.roles = framework_roles(info)
        self.capabilities = frozenset(c.type for c in info.capabilities)

    @property
    def connected(self) -> bool:
        return self.stream is not None

    def has_capability(self, capability: int) -> bool:
        return capability in self.capabilities

    @property
    def partition_aware(self) -> bool:
        return Capability.PARTITION_AWARE in self.capabilities

    def add_unreachable_task(self, task: mesos_pb2.Task) -> None:
        self.unreachable_tasks[task.task_id.value] = task
        while len(self.unreachable_tasks) > self._max_unreachable_tasks:
            self.unreachable_tasks.popitem(last=False)

    def add_executor(self, agent_id: str, executor: mesos_pb2.ExecutorInfo) -> None:
        self.executors.setdefault(agent_id, {})[executor.executor_id.value] = executor

    def remove_executor(self, agent_id: str, executor_id: str) -> None:
        on_agent = self.executors.get(agent_id)
        if on_agent is not None:
            on_agent.pop(executor_id, None)
            if not on_agent:
                del self.executors[agent_id]


class Agent:
    """A registered agent: its AgentInfo, its connection, and what runs on it."""

    def __init__(
        self,
        info: mesos_pb2.AgentInfo,
        *,
        endpoint: str,
        version: str,
        capabilities: list[mesos_pb2.AgentInfo.Capability],
        link: AgentLink,
        registered_time: float,
    ) -> None:
        self.id = info.id.value
        self.info = info
        # "ip:port" of the agent's HTTP API.
        self.endpoint = endpoint
        self.version = version
        self.capabilities = capabilities
        self.link: AgentLink | None = link
        self.registered_time = registered_time
        self.reregistered_time: float | None = None
        # Deactivated by an operator: no offers, tasks keep running.
        self.deactivated = False
        # framework id -> task id -> Task
        self.tasks: dict[str, dict[str, mesos_pb2.Task]] = {}
        # (framework id, task id) of its tasks still in TASK_STAGING (launched, no
        # update yet), and the timer that ends a pause of its offers (flow control).
        self.staging: set[tuple[str, str]] = set()
        # Launched and not yet running: TASK_STAGING or TASK_STARTING.
        self.launching: set[tuple[str, str]] = set()
        self.launch_pause: Timer | None = None
        # framework id -> executor id -> ExecutorInfo
        self.executors: dict[str, dict[str, mesos_pb2.ExecutorInfo]] = {}
        self.offer_ids: set[str] = set()
        # Kills sent while the agent may not have received them; re-sent on re-registration.
        self.killed_tasks: set[tuple[str, str]] = set()
        # Health: pings sent since the last pong, and when the connection was lost.
        self.unanswered_pings = 0
        self.disconnected_at: float | None = None

    @property
    def pid(self) -> str:
        """libprocess-style address, as Mesos tools expect it: slave(1)@ip:port."""
        return f"slave(1)@{self.endpoint}"

    @property
    def connected(self) -> bool:
        return self.link is not None

    @property
    def ip(self) -> str:
        return self.endpoint.rpartition(":")[0]

    @property
    def port(self) -> int:
        port = self.endpoint.rpartition(":")[2]
        return int(port) if port.isdigit() else self.info.port

    def add_task(self, task: mesos_pb2.Task) -> None:
        self.tasks.setdefault(task.framework_id.value, {})[task.task_id.value] = task
        if task.state == mesos_pb2.TASK_STAGING:
            self.staging.add((task.framework_id.value, task.task_id.value))
        if task.state in LAUNCHING_STATES:
            self.launching.add((task.framework_id.value, task.task_id.value))

    def remove_task(self, task: mesos_pb2.Task) -> None:
        self.staging.discard((task.framework_id.value, task.task_id.value))
        self.launching.discard((task.framework_id.value, task.task_id.value))
        framework_tasks = self.tasks.get(task.framework_id.value)
        if framework_tasks is not None:
            framework_tasks.pop(task.task_id.value, None)
            if not framework_tasks:
                del self.tasks[task.framework_id.value]

    def get_task(self, framework_id: str, task_id: str) -> mesos_pb2.Task | None:
        return self.tasks.get(framework_id, {}).get(task_id)

    def all_tasks(self) -> Iterator[mesos_pb2.Task]:
        for framework_tasks in self.tasks.values():
            yield from framework_tasks.values()

    def has_executor(self, framework_id: str, executor_id: str) -> bool:
        return executor_id in self.executors.get(framework_id, {})

    def add_executor(self, framework_id: str, executor: mesos_pb2.ExecutorInfo) -> None:
        self.executors.setdefault(framework_id, {})[executor.executor_id.value] = executor

    def remove_executor(self, framework_id: str, executor_id: str) -> mesos_pb2.ExecutorInfo | None:
        on_framework = self.executors.get(framework_id)
        if on_framework is None:
            return None
        executor = on_framework.pop(executor_id, None)
        if not on_framework:
            del self.executors[framework_id]
        return executor

    def all_executors(self) -> Iterator[tuple[str, mesos_pb2.ExecutorInfo]]:
        for framework_id, executors in self.executors.items():
            for executor in executors.values():
                yield framework_id, executor


@dataclass
class OfferRecord:
    """An outstanding offer: the message sent, and the resources as the allocator
    allocated them (post-refinement format, allocation role set), to give back."""

    offer: mesos_pb2.Offer
    resources: Resources
    made_time: float
    timeout: Timer | None = None

    @property
    def framework_id(self) -> str:
        return self.offer.framework_id.value

    @property
    def agent_id(self) -> str:
        return self.offer.agent_id.value

    @property
    def role(self) -> str:
        return self.offer.allocation_info.role


@dataclass
class UnreachableAgent:
    """An agent that stopped answering; it may come back and re-register."""

    info: mesos_pb2.AgentInfo
    unreachable_time: float


@dataclass
class GoneAgent:
    """An agent an operator marked gone: it may never come back."""

    agent_id: str
    gone_time: float


@dataclass
class MasterState:
    """All of the master's in-memory state, indexed for the hot paths."""

    max_completed_frameworks: int
    frameworks: dict[str, Framework] = field(default_factory=dict)
    completed_frameworks: OrderedDict[str, Framework] = field(default_factory=OrderedDict)
    agents: dict[str, Agent] = field(default_factory=dict)
    unreachable_agents: dict[str, UnreachableAgent] = field(default_factory=dict)
    gone_agents: dict[str, GoneAgent] = field(default_factory=dict)
    # Agents the registry admitted before this master took over that have not
    # re-registered yet (Mesos' "recovered" agents): reconciliation stays silent about
    # tasks that may be on them.
    recovered_agents: dict[str, mesos_pb2.AgentInfo] = field(default_factory=dict)
    # Outstanding offers by offer id.
    offers: dict[str, OfferRecord] = field(default_factory=dict)

    def add_completed_framework(self, framework: Framework) -> None:
        self.completed_frameworks[framework.id] = framework
        while len(self.completed_frameworks) > self.max_completed_frameworks:
            self.completed_frameworks.popitem(last=False)

    def agent_by_endpoint(self, endpoint: str) -> Agent | None:
        # Registration only (rare); not a hot path.
        for agent in self.agents.values():
            if agent.endpoint == endpoint:
                return agent
        return None
