"""Selecting by reservation, allocation, revocability and name."""

from __future__ import annotations

from mesoslite.resources import Resources, parse_resources
from tests.unit.resources.builders import dynamic, scalar, static, volume


def _mixed() -> Resources:
    return Resources(
        [
            scalar("cpus", 1),
            scalar("cpus", 2, reservations=[static("a")]),
            scalar("cpus", 4, reservations=[static("a"), dynamic("a/b")]),
            scalar("cpus", 8, reservations=[static("c")]),
            scalar("mem", 16, revocable=True),
        ]
    )


def test_unreserved_and_reserved_partition_the_whole() -> None:
    mixed = _mixed()
    assert mixed.unreserved().scalars() == {"cpus": 1, "mem": 16}
    assert mixed.reserved().scalar("cpus") == 14
    assert mixed.unreserved() + mixed.reserved() == mixed


def test_reserved_for_a_role_means_the_top_of_the_stack() -> None:
    mixed = _mixed()
    assert mixed.reserved("a").scalar("cpus") == 2
    assert mixed.reserved("a/b").scalar("cpus") == 4
    assert set(mixed.reservations_by_role()) == {"a", "a/b", "c"}


def test_allocatable_to_includes_ancestors_reservations() -> None:
    mixed = _mixed()
    assert mixed.allocatable_to("a").scalar("cpus") == 1 + 2
    assert mixed.allocatable_to("a/b").scalar("cpus") == 1 + 2 + 4
    assert mixed.allocatable_to("a/b/c").scalar("cpus") == 1 + 2 + 4
    assert mixed.allocatable_to("ab").scalar("cpus") == 1
    assert mixed.allocatable_to("*").scalar("cpus") == 1


def test_revocable_split() -> None:
    mixed = _mixed()
    assert mixed.revocable().scalars() == {"mem": 16}
    assert mixed.non_revocable() + mixed.revocable() == mixed


def test_refined_reservations() -> None:
    assert _mixed().refined_reservations().scalar("cpus") == 4


def test_shared_split() -> None:
    resources = Resources([volume("v1", 10, shared=True), volume("v2", 10)])
    assert resources.shared() == Resources([volume("v1", 10, shared=True)])
    assert resources.non_shared() == Resources([volume("v2", 10)])


def test_allocation_role_set_and_strip() -> None:
    plain = parse_resources("cpus:1;mem:32")
    offered = plain.with_allocation_role("eng")
    assert all(message.allocation_info.role == "eng" for message in offered)
    assert offered != plain
    assert offered.without_allocation() == plain
    assert offered.allocations() == {"eng": offered}
    assert offered.unallocated().is_empty()
    mixed = offered + parse_resources("disk:5").with_allocation_role("ops")
    assert set(mixed.allocations()) == {"eng", "ops"}


def test_to_unreserved_merges_with_unreserved() -> None:
    assert _mixed().to_unreserved().scalars() == {"cpus": 15, "mem": 16}
    assert len(_mixed().to_unreserved()) == 2


def test_named_and_generic_filter() -> None:
    mixed = _mixed()
    assert mixed.named("mem").scalars() == {"mem": 16}
    assert mixed.filter(lambda resource: len(resource.reservations) == 1).scalar("cpus") == 10
