"""Algebraic laws checked on seeded random resources (no hypothesis needed)."""

from __future__ import annotations

import random

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources
from tests.unit.resources.builders import dynamic, ranges, scalar, set_of, static

_SEEDS = range(200)
_PORT_SPACE = 60


def _random_metadata(rng: random.Random) -> dict[str, object]:
    reservations = rng.choice([[], [], [static("a")], [static("a"), dynamic("a/b", "p")]])
    return {
        "reservations": reservations,
        "allocated_to": rng.choice([None, None, "a"]),
        "revocable": rng.random() < 0.2,
    }


def _random_resource(rng: random.Random) -> mesos_pb2.Resource:
    kind = rng.randrange(3)
    metadata = _random_metadata(rng)
    if kind == 0:
        amount = rng.choice([rng.randrange(0, 5000) / 1000, rng.randrange(0, 8), 0.1, 0.2])
        return scalar(rng.choice(["cpus", "mem"]), amount, **metadata)  # type: ignore[arg-type]
    if kind == 1:
        pairs = []
        for _ in range(rng.randrange(1, 4)):
            begin = rng.randrange(_PORT_SPACE)
            pairs.append((begin, min(_PORT_SPACE, begin + rng.randrange(8))))
        # Valid resources have non-overlapping ranges; build them via the algebra.
        return next(iter(_merged_ranges(pairs, metadata)))
    items = rng.sample(["a", "b", "c", "d", "e"], rng.randrange(1, 4))
    return set_of("disks", *items, **metadata)  # type: ignore[arg-type]


def _merged_ranges(pairs: list[tuple[int, int]], metadata: dict[str, object]) -> Resources:
    total = Resources()
    for pair in pairs:
        total = total + Resources([ranges("ports", pair, **metadata)])  # type: ignore[arg-type]
    return total


def _disjoint(a: Resources, b: Resources) -> bool:
    a_ports = {n for begin, end in a.ranges("ports") for n in range(begin, end + 1)}
    b_ports = {n for begin, end in b.ranges("ports") for n in range(begin, end + 1)}
    return not (a_ports & b_ports) and not (a.set_items("disks") & b.set_items("disks"))


def _random_resources(rng: random.Random) -> Resources:
    return Resources([_random_resource(rng) for _ in range(rng.randrange(0, 6))])


@pytest.mark.parametrize("seed", _SEEDS)
def test_addition_is_commutative_and_associative(seed: int) -> None:
    rng = random.Random(seed)
    a, b, c = (_random_resources(rng) for _ in range(3))
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert a + Resources() == a


@pytest.mark.parametrize("seed", _SEEDS)
def test_subtraction_undoes_addition(seed: int) -> None:
    rng = random.Random(seed)
    a, b = _random_resources(rng), _random_resources(rng)
    # Ranges and sets add as unions, so adding overlapping ones cannot be undone (as in
    # Mesos); the law holds for scalars always and for the rest when they are disjoint.
    assert ((a + b) - b).named("cpus") == a.named("cpus")
    if _disjoint(a, b):
        assert (a + b) - b == a
    assert (a - a).is_empty()
    assert a - Resources() == a


@pytest.mark.parametrize("seed", _SEEDS)
def test_containment_is_consistent_with_arithmetic(seed: int) -> None:
    rng = random.Random(seed)
    a, b = _random_resources(rng), _random_resources(rng)
    assert (a + b).contains(a)
    assert (a + b).contains(b)
    assert a.contains(a - b)
    assert (a - b) <= a
    if a.contains(b):
        assert (a - b) + b == a
    assert (a.contains(b) and b.contains(a)) == (a == b)


@pytest.mark.parametrize("seed", _SEEDS)
def test_messages_round_trip_and_filters_partition(seed: int) -> None:
    rng = random.Random(seed)
    a = _random_resources(rng)
    assert Resources(list(a)) == a
    assert hash(Resources(list(a))) == hash(a)
    assert a.unreserved() + a.reserved() == a
    assert a.revocable() + a.non_revocable() == a
    assert a.unallocated() + sum(a.allocations().values(), Resources()) == a


@pytest.mark.parametrize("seed", _SEEDS)
def test_range_arithmetic_matches_integer_sets(seed: int) -> None:
    rng = random.Random(seed)

    def random_ports() -> tuple[Resources, set[int]]:
        numbers: set[int] = set()
        pairs = []
        for _ in range(rng.randrange(0, 5)):
            begin = rng.randrange(_PORT_SPACE)
            end = min(_PORT_SPACE, begin + rng.randrange(10))
            pairs.append((begin, end))
            numbers.update(range(begin, end + 1))
        return _merged_ranges(pairs, {}), numbers

    (left, left_numbers), (right, right_numbers) = random_ports(), random_ports()

    def numbers_of(resources: Resources) -> set[int]:
        return {n for begin, end in resources.ranges("ports") for n in range(begin, end + 1)}

    assert numbers_of(left + right) == left_numbers | right_numbers
    assert numbers_of(left - right) == left_numbers - right_numbers
    assert left.contains(right) == (right_numbers <= left_numbers)


@pytest.mark.parametrize("seed", _SEEDS)
def test_scalar_sums_are_exact_in_thousandths(seed: int) -> None:
    rng = random.Random(seed)
    thousandths = [rng.randrange(1, 10_000) for _ in range(rng.randrange(1, 30))]
    total = Resources()
    for amount in thousandths:
        total = total + Resources([scalar("cpus", amount / 1000)])
    assert total == Resources([scalar("cpus", sum(thousandths) / 1000)])
    for amount in thousandths:
        total = total - Resources([scalar("cpus", amount / 1000)])
    assert total.is_empty()
