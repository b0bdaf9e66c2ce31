"""Suppressed roles get nothing; revive brings them back."""

from __future__ import annotations

from mesoslite.master.allocator import Allocator

from .builders import make_allocator, resources, summary


def _setup() -> Allocator:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    return allocator


def test_suppressed_framework_gets_no_offers_until_revived() -> None:
    allocator = _setup()
    allocator.add_framework("fw", ["*"], capabilities=[])
    allocator.suppress("fw")
    assert allocator.allocate(now=0) == []
    allocator.revive("fw")
    assert summary(allocator.allocate(now=0)) == {("fw", "agent", "*")}


def test_suppressing_one_role_leaves_the_others() -> None:
    allocator = _setup()
    allocator.add_framework("fw", ["a", "b"], capabilities=[], suppressed_roles=["a"])
    assert summary(allocator.allocate(now=0)) == {("fw", "agent", "b")}


def test_revive_of_one_role() -> None:
    allocator = _setup()
    allocator.add_framework("fw", ["a", "b"], capabilities=[])
    allocator.suppress("fw", ["a", "b"])
    assert allocator.allocate(now=0) == []
    allocator.revive("fw", ["b"])
    assert summary(allocator.allocate(now=0)) == {("fw", "agent", "b")}


def test_a_suppressed_framework_lets_others_have_the_agent() -> None:
    allocator = _setup()
    allocator.add_framework("quiet", ["*"], capabilities=[], suppressed_roles=["*"])
    allocator.add_framework("busy", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("busy", "agent", "*")}


def test_update_framework_unsuppressing_a_role_clears_its_filters() -> None:
    allocator = _setup()
    allocator.add_framework("fw", ["a"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    allocator.recover("fw", "agent", allocation.resources, refuse_seconds=100, now=0)
    allocator.update_framework("fw", ["a"], [], suppressed_roles=["a"])
    assert allocator.allocate(now=1) == []
    allocator.update_framework("fw", ["a"], [], suppressed_roles=[])
    assert summary(allocator.allocate(now=1)) == {("fw", "agent", "a")}


def test_update_framework_changes_roles() -> None:
    allocator = _setup()
    allocator.add_framework("fw", ["a"], capabilities=[], suppressed_roles=["a"])
    allocator.allocate(now=0)
    allocator.update_framework("fw", ["b"], [], suppressed_roles=[])
    assert summary(allocator.allocate(now=0)) == {("fw", "agent", "b")}


def test_inactive_framework_gets_nothing() -> None:
    allocator = _setup()
    allocator.add_framework("fw", ["*"], capabilities=[], active=False)
    assert allocator.allocate(now=0) == []
    allocator.activate_framework("fw")
    assert summary(allocator.allocate(now=0)) == {("fw", "agent", "*")}
