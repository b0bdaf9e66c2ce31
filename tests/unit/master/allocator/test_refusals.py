"""Declined resources are filtered for (framework, role, agent) until the filter expires."""

from __future__ import annotations

import math

import pytest

from mesoslite.master.allocator import (
    DEFAULT_REFUSE_SECONDS,
    MAX_REFUSE_SECONDS,
    Allocator,
    refusal_duration_seconds,
)

from .builders import make_allocator, resources, summary


def _declined_once(refuse_seconds: float | None) -> Allocator:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    allocator.recover("fw", "agent", allocation.resources, refuse_seconds=refuse_seconds, now=0)
    return allocator


def test_declined_resources_are_not_offered_again_until_the_filter_expires() -> None:
    allocator = _declined_once(refuse_seconds=10)
    assert allocator.allocate(now=1) == []
    assert allocator.next_wakeup(now=1) == 10
    assert allocator.allocate(now=9.999) == []
    assert summary(allocator.allocate(now=10)) == {("fw", "agent", "*")}


def test_without_a_filter_resources_come_straight_back() -> None:
    allocator = _declined_once(refuse_seconds=None)
    assert summary(allocator.allocate(now=0)) == {("fw", "agent", "*")}


def test_zero_refuse_seconds_sets_no_filter() -> None:
    allocator = _declined_once(refuse_seconds=0)
    assert summary(allocator.allocate(now=0)) == {("fw", "agent", "*")}
    assert allocator.next_wakeup(now=0) is None


def test_refused_resources_go_to_another_framework() -> None:
    allocator = _declined_once(refuse_seconds=60)
    allocator.add_framework("other", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=1)) == {("other", "agent", "*")}


def test_a_filter_only_covers_what_was_refused() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert len(allocator.allocate(now=0)) == 1
    # The framework launches on half and declines the rest with a long filter ...
    allocator.recover("fw", "agent", resources("cpus:1;mem:1024"), refuse_seconds=60, now=0)
    assert allocator.allocate(now=1) == []
    # ... then its task ends: more than the refused resources are free, so it is offered.
    allocator.recover("fw", "agent", resources("cpus:1;mem:1024"), refuse_seconds=None, now=2)
    (again,) = allocator.allocate(now=2)
    assert again.framework_id == "fw"


def test_filters_are_per_role() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    allocator.add_framework("fw", ["a", "b"], capabilities=[])
    (first,) = allocator.allocate(now=0)
    allocator.recover("fw", "agent", first.resources, refuse_seconds=60, now=0)
    (second,) = allocator.allocate(now=1)
    assert second.framework_id == "fw"
    assert {first.role, second.role} == {"a", "b"}


def test_deactivation_clears_filters() -> None:
    allocator = _declined_once(refuse_seconds=60)
    allocator.deactivate_framework("fw")
    assert allocator.allocate(now=1) == []
    allocator.activate_framework("fw")
    assert summary(allocator.allocate(now=1)) == {("fw", "agent", "*")}


def test_revive_clears_filters() -> None:
    allocator = _declined_once(refuse_seconds=60)
    allocator.revive("fw")
    assert summary(allocator.allocate(now=1)) == {("fw", "agent", "*")}


def test_next_wakeup_reports_the_earliest_filter() -> None:
    allocator = make_allocator()
    for name in ("one", "two"):
        allocator.add_agent(name, resources("cpus:1;mem:1024"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert allocator.next_wakeup(now=0) == 0  # agents are waiting to be examined
    for allocation in allocator.allocate(now=0):
        seconds = 30 if allocation.agent_id == "one" else 20
        allocator.recover(
            "fw", allocation.agent_id, allocation.resources, refuse_seconds=seconds, now=0
        )
    assert allocator.allocate(now=0) == []
    assert allocator.next_wakeup(now=0) == 20
    assert summary(allocator.allocate(now=25)) == {("fw", "two", "*")}
    assert allocator.next_wakeup(now=25) == 30


def test_next_wakeup_ignores_cleared_filters() -> None:
    allocator = _declined_once(refuse_seconds=60)
    allocator.allocate(now=0)
    allocator.revive("fw")
    allocator.allocate(now=0)
    assert allocator.next_wakeup(now=0) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        (0.0, None),
        (2.5, 2.5),
        (-1.0, DEFAULT_REFUSE_SECONDS),
        (math.nan, DEFAULT_REFUSE_SECONDS),
        (400 * 24 * 3600.0, MAX_REFUSE_SECONDS),
        (math.inf, MAX_REFUSE_SECONDS),
    ],
)
def test_refuse_seconds_follow_mesos_rules(given: float | None, expected: float | None) -> None:
    assert refusal_duration_seconds(given) == expected
