from __future__ import annotations

import random
from collections.abc import Callable

from mesoslite.testing.sim import NetworkOptions, SimClock, SimNetwork


def _network(
    seed: int = 1,
    latency_min_steps: int = 1,
    latency_max_steps: int = 5,
    loss_probability: float = 0.0,
    duplicate_probability: float = 0.0,
) -> tuple[SimClock, SimNetwork[str], list[tuple[int, int, str]]]:
    clock = SimClock()
    options = NetworkOptions(
        latency_min_steps, latency_max_steps, loss_probability, duplicate_probability
    )
    network: SimNetwork[str] = SimNetwork(clock, random.Random(seed), options)
    received: list[tuple[int, int, str]] = []

    def receiver(node_id: int) -> Callable[[int, str], None]:
        return lambda sender, payload: received.append((sender, node_id, payload))

    for node_id in (1, 2, 3):
        network.attach(node_id, receiver(node_id))
    return clock, network, received


def test_packets_arrive_within_the_latency_bounds_and_may_reorder() -> None:
    clock, network, received = _network(latency_min_steps=2, latency_max_steps=9)
    for i in range(50):
        network.send(1, 2, f"p{i}")
    clock.run_until(1)
    assert received == []
    clock.run_until(9)
    payloads = [payload for _, _, payload in received]
    assert sorted(payloads) == sorted(f"p{i}" for i in range(50))
    assert payloads != [f"p{i}" for i in range(50)]  # independent latencies reorder


def test_loss_and_duplication_follow_their_probabilities() -> None:
    clock, network, received = _network(loss_probability=0.3, duplicate_probability=0.2)
    for i in range(2000):
        network.send(1, 2, str(i))
    clock.run_until(100)
    stats = network.stats
    assert 450 < stats.lost < 750
    assert 300 < stats.duplicated < 500
    assert len(received) == stats.delivered == 2000 + stats.duplicated - stats.lost


def test_partitions_cut_links_including_packets_in_flight() -> None:
    clock, network, received = _network(latency_min_steps=5, latency_max_steps=5)
    network.send(1, 2, "in-flight")
    network.partition([[1], [2, 3]])
    network.send(3, 2, "same-side")
    clock.run_until(10)
    assert received == [(3, 2, "same-side")]
    network.heal()
    network.send(1, 2, "after")
    clock.run_until(20)
    assert received[-1] == (1, 2, "after")


def test_links_can_be_cut_one_way() -> None:
    clock, network, received = _network()
    network.cut_link(1, 2)
    network.send(1, 2, "lost")
    network.send(2, 1, "heard")
    clock.run_until(10)
    assert received == [(2, 1, "heard")]


def test_the_sender_learns_the_outcome_when_the_packet_would_arrive() -> None:
    clock, network, _ = _network(latency_min_steps=3, latency_max_steps=3)
    outcomes: list[tuple[int, bool]] = []
    network.detach(3)
    network.send(1, 2, "x", lambda delivered: outcomes.append((clock.now_steps, delivered)))
    network.send(1, 3, "y", lambda delivered: outcomes.append((clock.now_steps, delivered)))
    clock.run_until(5)
    assert outcomes == [(3, True), (3, False)]


def test_the_same_seed_makes_the_same_decisions() -> None:
    runs = []
    for _ in range(2):
        clock, network, received = _network(seed=42, loss_probability=0.2, latency_max_steps=20)
        for i in range(100):
            network.send(1 + i % 3, 1 + (i + 1) % 3, str(i))
        clock.run_until(50)
        runs.append(received)
    assert runs[0] == runs[1]
