"""The DRF orderings on their own."""

from __future__ import annotations

from mesoslite.master.allocator.sorter import (
    ClusterTotals,
    FairShareSorter,
    RoleSorter,
    dominant_share,
)


def _totals(**quantities: int) -> ClusterTotals:
    totals = ClusterTotals()
    totals.add(quantities)
    return totals


def test_dominant_share() -> None:
    assert dominant_share({"cpus": 1, "mem": 512}, {"cpus": 4, "mem": 1024}) == 0.5
    assert dominant_share({"gpus": 1}, {"cpus": 4}) == 0.0
    assert dominant_share({}, {"cpus": 4}) == 0.0


def test_frameworks_sort_by_share_then_name() -> None:
    sorter = FairShareSorter(_totals(cpus=10, mem=100))
    for client in ("c", "b", "a"):
        sorter.add_client(client)
    assert sorter.sorted() == ["a", "b", "c"]
    sorter.allocate("a", {"cpus": 5})
    sorter.allocate("b", {"mem": 20})
    assert sorter.sorted() == ["c", "b", "a"]
    sorter.allocate("a", {"cpus": 5}, sign=-1)
    assert sorter.sorted() == ["a", "c", "b"]


def test_totals_changes_refresh_shares() -> None:
    totals = _totals(cpus=10, mem=100)
    sorter = FairShareSorter(totals)
    sorter.add_client("x")
    sorter.add_client("y")
    sorter.allocate("x", {"cpus": 5})
    sorter.allocate("y", {"mem": 40})
    assert sorter.sorted() == ["y", "x"]
    totals.add({"cpus": 90})
    assert sorter.sorted() == ["x", "y"]
    assert sorter.share("x") == 0.05


def test_departed_clients_keep_their_allocation() -> None:
    sorter = FairShareSorter(_totals(cpus=10))
    sorter.add_client("x")
    sorter.allocate("x", {"cpus": 5})
    sorter.remove_client("x")
    assert sorter.sorted() == []
    assert not sorter.is_unused()
    sorter.add_client("x")
    assert sorter.share("x") == 0.5


def test_roles_sort_hierarchically() -> None:
    roles = RoleSorter(_totals(cpus=100))
    for role in ("a/x", "a/y", "b"):
        roles.activate(role)
    roles.allocate("a/x", {"cpus": 30})
    roles.allocate("b", {"cpus": 20})
    # a (30) is behind b (20); inside a, y (0) is before x (30).
    assert roles.sorted() == ["b", "a/y", "a/x"]
    assert roles.share("a") == 0.3
    assert roles.allocated("a", subtree=True) == {"cpus": 30}
    assert roles.allocated("a") == {}


def test_role_weights_divide_shares() -> None:
    roles = RoleSorter(_totals(cpus=100))
    roles.activate("a")
    roles.activate("b")
    roles.allocate("a", {"cpus": 30})
    roles.allocate("b", {"cpus": 20})
    roles.set_weight("a", 2.0)
    assert roles.sorted() == ["a", "b"]
    assert roles.share("a") == 0.15


def test_inactive_roles_are_not_listed_but_count_for_their_parent() -> None:
    roles = RoleSorter(_totals(cpus=100))
    roles.activate("a/x")
    roles.activate("b")
    roles.allocate("a/gone", {"cpus": 50})
    assert roles.sorted() == ["b", "a/x"]
    roles.deactivate("a/x")
    assert roles.sorted() == ["b"]
    roles.allocate("a/gone", {"cpus": 50}, sign=-1)
    assert roles.share("a") == 0.0
