"""Offers: running the allocator, turning its allocations into offers, and taking
offers back (declined, accepted leftovers, rescinded, timed out, agent gone).

Allocation is event-driven: anything that frees resources or changes who wants them
calls `request_allocation()`; changes within `allocation_batch_window_s` are allocated
in one pass. A periodic pass (`allocation_interval_s`, or sooner when the allocator
says a filter expires) catches everything else.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio

from mesoslite.master.events import offers_event, rescind_event
from mesoslite.master.state import Agent, Framework, OfferRecord
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources, to_post_refinement, to_pre_refinement

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["OfferManager", "refuse_seconds_of"]

log = logging.getLogger(__name__)

_REFINEMENT = mesos_pb2.FrameworkInfo.Capability.RESERVATION_REFINEMENT
DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0


def refuse_seconds_of(filters: mesos_pb2.Filters | None) -> float:
    """How long declined resources stay filtered (Mesos' rules for `refuse_seconds`):
    default 5 s; negative or not a number -> 5 s; capped at a year."""
    if filters is None:
        return DEFAULT_REFUSE_SECONDS
    seconds = filters.refuse_seconds
    if math.isnan(seconds) or seconds < 0:
        return DEFAULT_REFUSE_SECONDS
    return min(seconds, MAX_REFUSE_SECONDS)


class OfferManager:
    def __init__(self, master: Master) -> None:
        self._master = master
        self._wanted = anyio.Event()

    # ------------------------------------------------------------------ allocation

    def request_allocation(self) -> None:
        """Something changed: allocate soon (batched)."""
        if not self._wanted.is_set():
            self._wanted.set()

    async def run(self) -> None:
        master = self._master
        config = master.config
        while True:
            timeout = config.allocation_interval_s
            wakeup = master.allocator.next_wakeup(master.clock())
            if wakeup is not None:
                timeout = min(timeout, max(0.0, wakeup - master.clock()))
            with anyio.move_on_after(timeout):
                await self._wanted.wait()
            if self._wanted.is_set() and config.allocation_batch_window_s > 0:
                await anyio.sleep(config.allocation_batch_window_s)
            self._wanted = anyio.Event()
            try:
                self.allocate()
            except Exception:
                # A failed pass must not stop offers for good; the next one retries.
                log.exception("allocation pass failed")

    def allocate(self) -> None:
        """One allocation pass: offers go out, one OFFERS event per framework."""
        master = self._master
        now = master.clock()
        by_framework: dict[str, list[mesos_pb2.Offer]] = {}
        for allocation in master.allocator.allocate(now):
            framework = master.state.frameworks.get(allocation.framework_id)
            agent = master.state.agents.get(allocation.agent_id)
            if (
                framework is None
                or framework.stream is None
                or not framework.active
                or agent is None
                or agent.link is None
            ):
                # Allocated to someone who cannot take it right now: give it back.
                master.allocator.recover(
                    allocation.framework_id,
                    allocation.agent_id,
                    allocation.resources,
                    refuse_seconds=None,
                    now=now,
                )
                continue
            offer = self._make_offer(framework, agent, allocation.role, allocation.resources, now)
            by_framework.setdefault(framework.id, []).append(offer)
        for framework_id, offers in by_framework.items():
            framework = master.state.frameworks[framework_id]
            assert framework.stream is not None
            framework.stream.events.send(offers_event(offers))
            master.metrics.bump("offers_sent", len(offers))

    def _make_offer(
        self,
        framework: Framework,
        agent: Agent,
        role: str,
        resources: list[mesos_pb2.Resource],
        now: float,
    ) -> mesos_pb2.Offer:
        master = self._master
        offer_id = master.ids.offer_id()
        offered = [r for r in resources if r.name != "ephemeral_ports"]
        for resource in offered:
            resource.allocation_info.role = role
        if framework.has_capability(_REFINEMENT):
            shown = to_post_refinement(offered)
        else:
            shown = to_pre_refinement(offered)
        offer = mesos_pb2.Offer(hostname=agent.info.hostname, resources=shown)
        offer.id.value = offer_id
        offer.framework_id.value = framework.id
        offer.agent_id.value = agent.id
        offer.allocation_info.role = role
        offer.url.scheme = "http"
        offer.url.address.hostname = agent.info.hostname
        offer.url.address.ip = agent.ip
        offer.url.address.port = agent.port
        offer.url.path = "/slave(1)"
        offer.attributes.extend(agent.info.attributes)
        for executor_id in framework.executors.get(agent.id, {}):
            offer.executor_ids.add(value=executor_id)
        if agent.info.HasField("domain"):
            offer.domain.CopyFrom(agent.info.domain)
        record = OfferRecord(offer=offer, resources=Resources(resources), made_time=now)
        if master.config.offer_timeout_s is not None:
            record.timeout = master.timers.call_later(
                master.config.offer_timeout_s, lambda: self.rescind(offer_id)
            )
        master.state.offers[offer_id] = record
        framework.offer_ids.add(offer_id)
        agent.offer_ids.add(offer_id)
        return offer

    # ------------------------------------------------------------------ launch flow control

    def _launch_backlog(self, agent: Agent, *, resuming: bool = False) -> bool:
        """Whether the agent has too many tasks to start to be offered more (see
        MasterConfig.max_staging_tasks_per_agent and max_launching_tasks_per_agent).

        A pause for launching tasks ends only once half of them run: resuming at the
        first one would offer one task's room at a time, one ACCEPT per task."""
        config = self._master.config
        staging = config.max_staging_tasks_per_agent
        launching = config.max_launching_tasks_per_agent
        if launching is not None and resuming:
            launching = launching // 2 + 1  # resume with at most half still launching
        return (staging is not None and len(agent.staging) >= staging) or (
            launching is not None and len(agent.launching) >= launching
        )

    def launched_on(self, agent: Agent) -> None:
        """Tasks were launched on the agent: pause its offers if it has too many to
        start."""
        if agent.launch_pause is not None or not self._launch_backlog(agent):
            return
        config = self._master.config
        self._master.allocator.pause_agent(agent.id)
        agent_id = agent.id
        agent.launch_pause = self._master.timers.call_later(
            config.launch_pause_max_s, lambda: self._resume(agent_id)
        )

    def caught_up(self, agent: Agent) -> None:
        """A staging task of the agent moved on (or went away)."""
        if agent.launch_pause is not None and not self._launch_backlog(agent, resuming=True):
            self._resume(agent.id)

    def _resume(self, agent_id: str) -> None:
        agent = self._master.state.agents.get(agent_id)
        if agent is not None and agent.launch_pause is not None:
            agent.launch_pause.cancel()
            agent.launch_pause = None
        self._master.allocator.resume_agent(agent_id)
        self.request_allocation()

    # ------------------------------------------------------------------ taking offers back

    def take(self, offer_id: str) -> OfferRecord | None:
        """Remove an outstanding offer from the books (its resources stay allocated)."""
        master = self._master
        record = master.state.offers.pop(offer_id, None)
        if record is None:
            return None
        if record.timeout is not None:
            record.timeout.cancel()
        framework = master.state.frameworks.get(record.framework_id)
        if framework is not None:
            framework.offer_ids.discard(offer_id)
        agent = master.state.agents.get(record.agent_id)
        if agent is not None:
            agent.offer_ids.discard(offer_id)
        return record

    def give_back(
        self,
        framework_id: str,
        agent_id: str,
        resources: Resources,
        refuse_seconds: float | None = None,
    ) -> None:
        """Return allocated resources to the allocator, optionally filtered for a while."""
        master = self._master
        if (
            resources
            and agent_id in master.state.agents
            and framework_id in master.state.frameworks
        ):
            master.allocator.recover(
                framework_id,
                agent_id,
                resources.to_list(),
                refuse_seconds=refuse_seconds,
                now=master.clock(),
            )
        self.request_allocation()

    def rescind(self, offer_id: str) -> None:
        """Take an offer back and tell the framework (RESCIND)."""
        record = self.take(offer_id)
        if record is None:
            return
        framework = self._master.state.frameworks.get(record.framework_id)
        if framework is not None and framework.stream is not None:
            framework.stream.events.send(rescind_event(offer_id))
        self._master.metrics.bump("offers_rescinded")
        self.give_back(record.framework_id, record.agent_id, record.resources)

    def discard(self, offer_id: str) -> None:
        """Take an offer back without telling anyone (its framework has no stream, or
        a new stream that never saw it)."""
        record = self.take(offer_id)
        if record is not None:
            self.give_back(record.framework_id, record.agent_id, record.resources)

    def rescind_all(self, offer_ids: Iterable[str]) -> None:
        for offer_id in list(offer_ids):
            self.rescind(offer_id)

    def discard_all(self, offer_ids: Iterable[str]) -> None:
        for offer_id in list(offer_ids):
            self.discard(offer_id)

    def decline(
        self, framework: Framework, offer_ids: Iterable[str], filters: mesos_pb2.Filters | None
    ) -> None:
        """DECLINE: the offers' resources go back, filtered for `refuse_seconds`. Offers
        that are not this framework's outstanding offers are ignored."""
        refuse_seconds = refuse_seconds_of(filters)
        for offer_id in offer_ids:
            record = self._master.state.offers.get(offer_id)
            if record is None or record.framework_id != framework.id:
                log.info("ignoring decline of offer %s: no longer valid", offer_id)
                continue
            self.take(offer_id)
            self._master.metrics.bump("offers_declined")
            self.give_back(framework.id, record.agent_id, record.resources, refuse_seconds)
