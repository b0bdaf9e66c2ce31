"""The refusal filter store on its own."""

from __future__ import annotations

from mesoslite.master.allocator.refusals import RefusalFilters
from mesoslite.resources import parse_resources


def test_a_filter_covers_subsets_of_what_was_refused() -> None:
    filters = RefusalFilters()
    filters.add("fw", "r", "agent", parse_resources("cpus:2;mem:64"), expires_at=10)
    assert filters.is_filtered("fw", "r", "agent", parse_resources("cpus:1"))
    assert not filters.is_filtered("fw", "r", "agent", parse_resources("cpus:3"))
    assert not filters.is_filtered("fw", "other", "agent", parse_resources("cpus:1"))
    assert not filters.is_filtered("other", "r", "agent", parse_resources("cpus:1"))


def test_expiry_returns_the_agents_and_drops_the_filters() -> None:
    filters = RefusalFilters()
    filters.add("fw", "r", "one", parse_resources("cpus:1"), expires_at=5)
    filters.add("fw", "r", "two", parse_resources("cpus:1"), expires_at=9)
    assert filters.expire(4) == set()
    assert filters.expire(5) == {"one"}
    assert len(filters) == 1
    assert filters.next_expiry() == 9


def test_clearing_by_framework_roles_and_agent() -> None:
    filters = RefusalFilters()
    filters.add("fw", "a", "one", parse_resources("cpus:1"), expires_at=5)
    filters.add("fw", "b", "one", parse_resources("cpus:1"), expires_at=6)
    filters.add("fw", "a", "two", parse_resources("cpus:1"), expires_at=7)
    filters.clear_framework("fw", roles={"b"})
    assert not filters.has_filters("fw", "b", "one")
    filters.clear_agent("one")
    assert not filters.has_filters("fw", "a", "one")
    assert filters.next_expiry() == 7
    filters.clear_framework("fw")
    assert len(filters) == 0
    assert filters.next_expiry() is None
    assert filters.expire(100) == set()
