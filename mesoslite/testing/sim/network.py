"""`SimNetwork`: a packet simulator with latency, loss, duplication, reordering and
partitions, every decision drawn from one seeded generator.

Reordering comes from independent random latencies. Links are directed, so a partition
may be asymmetric (a hears b, b does not hear a). Whether a packet arrives is decided when
it would arrive: a link cut while a packet is in flight loses it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mesoslite.testing.sim.clock import SimClock

__all__ = ["NetworkOptions", "NetworkStats", "SimNetwork"]

PayloadT = TypeVar("PayloadT")
Outcome = Callable[[bool], None]


@dataclass(slots=True)
class NetworkOptions:
    latency_min_steps: int = 1
    latency_max_steps: int = 5
    loss_probability: float = 0.0
    duplicate_probability: float = 0.0

    def validate(self) -> None:
        if not 1 <= self.latency_min_steps <= self.latency_max_steps:
            raise ValueError("need 1 <= latency_min_steps <= latency_max_steps")
        for probability in (self.loss_probability, self.duplicate_probability):
            if not 0.0 <= probability < 1.0:
                raise ValueError("probabilities must lie in [0, 1)")


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0  # dropped by random loss
    cut: int = 0  # dropped by a partition or a detached receiver
    duplicated: int = 0


class SimNetwork(Generic[PayloadT]):
    __slots__ = ("_clock", "_cut_links", "_receivers", "_rng", "options", "stats")

    def __init__(self, clock: SimClock, rng: random.Random, options: NetworkOptions) -> None:
        options.validate()
        self._clock = clock
        self._rng = rng
        self.options = options
        self.stats = NetworkStats()
        self._receivers: dict[int, Callable[[int, PayloadT], None]] = {}
        self._cut_links: set[tuple[int, int]] = set()

    # -- endpoints -------------------------------------------------------------------------

    def attach(self, node_id: int, receive: Callable[[int, PayloadT], None]) -> None:
        """Deliver packets for `node_id` to `receive(from_id, payload)` from now on."""
        self._receivers[node_id] = receive

    def detach(self, node_id: int) -> None:
        """The node is down: packets for it are lost, including those in flight."""
        self._receivers.pop(node_id, None)

    # -- partitions ------------------------------------------------------------------------

    def cut_link(self, from_id: int, to_id: int) -> None:
        self._cut_links.add((from_id, to_id))

    def isolate(self, node_id: int, others: Collection[int]) -> None:
        for other in others:
            if other != node_id:
                self._cut_links.add((node_id, other))
                self._cut_links.add((other, node_id))

    def partition(self, groups: Sequence[Collection[int]]) -> None:
        """Nodes hear only nodes of their own group."""
        for group in groups:
            for other_group in groups:
                if other_group is group:
                    continue
                for a in group:
                    for b in other_group:
                        self._cut_links.add((a, b))

    def connect(self, a: int, b: int) -> None:
        """Restore the links between `a` and `b`, both ways."""
        self._cut_links.discard((a, b))
        self._cut_links.discard((b, a))

    def heal(self) -> None:
        self._cut_links.clear()

    def is_connected(self, from_id: int, to_id: int) -> bool:
        return (from_id, to_id) not in self._cut_links

    def cut_links(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._cut_links)

    # -- traffic ---------------------------------------------------------------------------

    def send(
        self, from_id: int, to_id: int, payload: PayloadT, on_outcome: Outcome | None = None
    ) -> None:
        """Send one packet. `on_outcome(delivered)` runs when its fate is known (at the
        time it would arrive), as a connection-oriented transport would report it."""
        self.stats.sent += 1
        rng = self._rng
        options = self.options
        self._schedule(from_id, to_id, payload, on_outcome, rng.random() < options.loss_probability)
        if options.duplicate_probability and rng.random() < options.duplicate_probability:
            self.stats.duplicated += 1
            self._schedule(from_id, to_id, payload, None, False)

    def _schedule(
        self,
        from_id: int,
        to_id: int,
        payload: PayloadT,
        on_outcome: Outcome | None,
        lost: bool,
    ) -> None:
        options = self.options
        span = options.latency_max_steps - options.latency_min_steps + 1
        latency_steps = options.latency_min_steps + int(self._rng.random() * span)

        def arrive() -> None:
            receive = self._receivers.get(to_id)
            if lost:
                self.stats.lost += 1
                delivered = False
            elif receive is None or (from_id, to_id) in self._cut_links:
                self.stats.cut += 1
                delivered = False
            else:
                self.stats.delivered += 1
                delivered = True
            if on_outcome is not None:
                on_outcome(delivered)
            if delivered and receive is not None:
                receive(from_id, payload)

        self._clock.call_later(latency_steps, arrive)
