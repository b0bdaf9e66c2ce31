"""Quota guarantees are served first and protected; quota limits cap a role's subtree."""

from __future__ import annotations

from mesoslite.master.allocator import Allocation, Allocator, Quota

from .builders import make_allocator, offered, resources


def _cluster(agent_count: int = 4) -> Allocator:
    allocator = make_allocator()
    for index in range(agent_count):
        allocator.add_agent(f"agent-{index}", resources("cpus:1;mem:256"))
    return allocator


def _cpus_by_role(allocations: list[Allocation]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for allocation in allocations:
        cpus = offered(allocation).scalar("cpus")
        totals[allocation.role] = totals.get(allocation.role, 0.0) + cpus
    return totals


def test_guaranteed_roles_are_served_before_fair_sharing() -> None:
    allocator = _cluster()
    allocator.update_weights({"a": 10.0})
    allocator.add_framework("fa", ["a"], capabilities=[])
    allocator.add_framework("fq", ["q"], capabilities=[])
    allocator.set_quota("q", guarantees={"cpus": 2})
    assert _cpus_by_role(allocator.allocate(now=0)) == {"q": 2, "a": 2}


def test_without_quota_weights_alone_decide() -> None:
    allocator = _cluster()
    allocator.update_weights({"a": 10.0})
    allocator.add_framework("fa", ["a"], capabilities=[])
    allocator.add_framework("fq", ["q"], capabilities=[])
    assert _cpus_by_role(allocator.allocate(now=0)) == {"a": 3, "q": 1}


def test_a_guarantee_gets_only_what_it_lacks_in_the_first_stage() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:4;mem:1024"))
    allocator.add_framework("fq", ["q"], capabilities=[])
    allocator.add_framework("fz", ["z"], capabilities=[])
    allocator.set_quota("q", guarantees={"cpus": 1.5})
    by_role = {allocation.role: offered(allocation) for allocation in allocator.allocate(now=0)}
    assert by_role["q"].scalar("cpus") == 1.5
    assert by_role["q"].scalar("mem") == 1024  # not guaranteed, nobody needs it held back
    assert by_role["z"].scalar("cpus") == 2.5


def test_unmet_guarantees_hold_back_headroom_from_other_roles() -> None:
    allocator = _cluster()
    allocator.set_quota("q", guarantees={"cpus": 2})
    allocator.add_framework("fa", ["a"], capabilities=[])
    assert _cpus_by_role(allocator.allocate(now=0)) == {"a": 2}
    allocator.add_framework("fq", ["q"], capabilities=[])
    assert _cpus_by_role(allocator.allocate(now=0)) == {"q": 2}


def test_limits_cap_a_role() -> None:
    allocator = _cluster()
    allocator.set_quota("capped", limits={"cpus": 2})
    allocator.add_framework("fc", ["capped"], capabilities=[])
    first = allocator.allocate(now=0)
    assert _cpus_by_role(first) == {"capped": 2}
    # Freeing cpus makes room under the limit again; the held-back agents are retried.
    with_cpus = next(a for a in first if offered(a).scalar("cpus") > 0)
    allocator.recover("fc", with_cpus.agent_id, with_cpus.resources, refuse_seconds=None, now=0)
    assert _cpus_by_role(allocator.allocate(now=0)) == {"capped": 1}


def test_limits_of_an_ancestor_cap_its_subroles() -> None:
    allocator = _cluster()
    allocator.set_quota("a", limits={"cpus": 1})
    allocator.add_framework("fab", ["a/b"], capabilities=[])
    allocator.add_framework("fac", ["a/c"], capabilities=[])
    assert sum(_cpus_by_role(allocator.allocate(now=0)).values()) == 1


def test_removing_a_quota_lifts_its_limit() -> None:
    allocator = _cluster()
    allocator.set_quota("capped", limits={"cpus": 1})
    allocator.add_framework("fc", ["capped"], capabilities=[])
    assert _cpus_by_role(allocator.allocate(now=0)) == {"capped": 1}
    allocator.remove_quota("capped")
    assert _cpus_by_role(allocator.allocate(now=0)) == {"capped": 3}
    assert allocator.quotas() == {}


def test_reservations_count_against_quota() -> None:
    allocator = make_allocator()
    allocator.add_agent("reserved", resources("cpus(q):2;mem(q):256"))
    allocator.add_agent("shared", resources("cpus:2;mem:256"))
    allocator.set_quota("q", guarantees={"cpus": 2})
    allocator.add_framework("fa", ["a"], capabilities=[])
    # q's guarantee is met by its reservation: nothing unreserved is held back.
    assert _cpus_by_role(allocator.allocate(now=0)) == {"a": 2}


def test_quota_is_reported() -> None:
    allocator = make_allocator()
    allocator.set_quota("q", guarantees={"cpus": 1}, limits={"cpus": 4})
    assert allocator.quotas() == {"q": Quota({"cpus": 1}, {"cpus": 4})}


def test_quota_set_later_counts_what_is_already_allocated() -> None:
    allocator = _cluster()
    allocator.add_framework("fc", ["capped"], capabilities=[])
    first = allocator.allocate(now=0)
    assert _cpus_by_role(first) == {"capped": 4}
    for allocation in first[:2]:
        allocator.recover(
            "fc", allocation.agent_id, allocation.resources, refuse_seconds=None, now=0
        )
    allocator.set_quota("capped", limits={"cpus": 3})
    assert _cpus_by_role(allocator.allocate(now=0)) == {"capped": 1}
