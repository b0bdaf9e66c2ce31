"""The master: composition root of the bookkeeping, the allocator and the APIs.

`Master` owns the state and the background loops; the work is done by components with
one concern each, which reach one another through it:

* `AgentManager`      agent connections, (re)registration, health, unreachable/gone
* `FrameworkManager`  subscriptions, failover, updates, removal
* `OfferManager`      allocation, offers, rescinds, filters handed to the allocator
* `AcceptHandler`     ACCEPT/DECLINE: offer and task validation, launches
* `TaskTracker`       tasks and executors, status updates, acks, kills, reconciliation

Everything that changes state runs synchronously on the event loop; messages to
agents go through per-connection outboxes, so no state change ever waits on I/O.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from mesoslite import MESOS_VERSION
from mesoslite.master.accept import AcceptHandler
from mesoslite.master.agent_manager import AgentManager
from mesoslite.master.allocator.allocator import Allocator
from mesoslite.master.allocator.config import AllocatorConfig
from mesoslite.master.app import build_router
from mesoslite.master.config import MasterConfig
from mesoslite.master.events import HEARTBEAT_BYTES
from mesoslite.master.files import VirtualFiles
from mesoslite.master.framework_manager import FrameworkManager
from mesoslite.master.ids import IdGenerator
from mesoslite.master.leadership import Leadership, SoleLeadership
from mesoslite.master.metrics import MasterMetrics
from mesoslite.master.offer_manager import OfferManager
from mesoslite.master.state import MasterState
from mesoslite.master.subscribers import OperatorSubscribers
from mesoslite.master.task_tracker import TaskTracker
from mesoslite.master.timers import Timers
from mesoslite.proto import mesos_pb2
from mesoslite.transport.channel import MasterChannel
from mesoslite.wire.routing import Router

__all__ = ["Master", "build_master_info"]

log = logging.getLogger(__name__)

MasterCapability = mesos_pb2.MasterInfo.Capability


def build_master_info(config: MasterConfig, master_id: str) -> mesos_pb2.MasterInfo:
    ip = config.public_ip
    try:
        # Network byte order read as a host (little-endian) uint32: 127.0.0.1 -> 16777343.
        packed_ip = int.from_bytes(socket.inet_aton(ip), "little")
    except OSError:
        packed_ip = 0
    info = mesos_pb2.MasterInfo(
        id=master_id,
        ip=packed_ip,
        port=config.port,
        pid=f"master@{ip}:{config.port}",
        hostname=config.hostname,
        version=MESOS_VERSION,
    )
    info.address.hostname = config.hostname
    info.address.ip = ip
    info.address.port = config.port
    for capability in (
        MasterCapability.AGENT_UPDATE,
        MasterCapability.AGENT_DRAINING,
        MasterCapability.QUOTA_V2,
    ):
        info.capabilities.add(type=capability)
    return info


class Master:
    """A Mesos master: serve `router` over HTTP, `serve_agent` per agent connection,
    and keep `run()` running for the background loops."""

    def __init__(
        self,
        config: MasterConfig,
        *,
        clock: Callable[[], float] = time.time,
        leadership: Leadership | None = None,
    ) -> None:
        self.config = config
        # Who leads, and the registry writes that must commit before their answers.
        self.leadership: Leadership = leadership if leadership is not None else SoleLeadership()
        self.clock = clock
        self.ids = IdGenerator()
        self.info = build_master_info(config, self.ids.master_id)
        self.start_time = clock()
        self.elected_time = self.start_time
        self.state = MasterState(max_completed_frameworks=config.max_completed_frameworks)
        self.weights: dict[str, float] = dict(config.weights)
        self.allocator = Allocator(
            AllocatorConfig(filter_gpu_resources=config.filter_gpu_resources)
        )
        if self.weights:
            self.allocator.update_weights(self.weights)
        self.metrics = MasterMetrics()
        self.operator_subscribers = OperatorSubscribers(
            config.max_operator_event_stream_subscribers
        )
        self.timers = Timers(clock)
        self.files = VirtualFiles()
        if config.log_file is not None:
            self.files.attach("/master/log", config.log_file)
        self.tasks = TaskTracker(self)
        self.offers = OfferManager(self)
        self.frameworks = FrameworkManager(self)
        self.agents = AgentManager(self)
        self.accepts = AcceptHandler(self)
        self._running = False
        self.router: Router = build_router(self)

    def is_leader(self) -> bool:
        """Whether this master leads (and may answer API calls)."""
        return self.leadership.is_leader()

    def leader_info(self) -> mesos_pb2.MasterInfo | None:
        """The leading master, if one is known (used to redirect non-leaders' callers)."""
        return self.leadership.leader_info(self.info)

    @property
    def running(self) -> bool:
        return self._running

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the background loops until cancelled."""
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self.timers.run)
                group.start_soon(self.offers.run)
                group.start_soon(self.agents.run_health_checks)
                group.start_soon(self._send_heartbeats)
                self._running = True
                log.info("master %s ready at %s", self.info.id, self.info.pid)
                task_status.started()
        finally:
            self._running = False
            self.frameworks.close_all_streams()
            self.operator_subscribers.close_all()

    async def serve_agent(self, channel: MasterChannel) -> None:
        """Serve one agent connection until it ends."""
        await self.agents.serve(channel)

    async def _send_heartbeats(self) -> None:
        interval = self.config.heartbeat_interval_s
        while True:
            await anyio.sleep(interval)
            for framework in self.state.frameworks.values():
                if framework.stream is not None:
                    events = framework.stream.events
                    events.send_encoded(HEARTBEAT_BYTES[events.content_type])
            self.operator_subscribers.heartbeat()
