"""Dominant Resource Fairness across roles (weighted, hierarchical) and frameworks."""

from __future__ import annotations

from collections import Counter

from mesoslite.master.allocator import Allocator
from mesoslite.resources import parse_resources

from .builders import make_allocator, offered, resources


def _agents(allocator: Allocator, count: int, text: str = "cpus:1;mem:1024") -> None:
    for index in range(count):
        allocator.add_agent(f"agent-{index:02d}", resources(text))


def test_whole_free_remainder_of_an_agent_goes_to_one_framework() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:4;mem:4096;ports:[31000-32000]"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    assert (allocation.framework_id, allocation.agent_id, allocation.role) == ("fw", "agent", "*")
    assert offered(allocation) == parse_resources("cpus:4;mem:4096;ports:[31000-32000]")
    assert all(resource.allocation_info.role == "*" for resource in allocation.resources)


def test_two_frameworks_in_one_role_split_identical_agents_evenly() -> None:
    allocator = make_allocator()
    _agents(allocator, 10)
    allocator.add_framework("fw-a", ["eng"], capabilities=[])
    allocator.add_framework("fw-b", ["eng"], capabilities=[])
    counts = Counter(allocation.framework_id for allocation in allocator.allocate(now=0))
    assert counts == {"fw-a": 5, "fw-b": 5}


def test_two_roles_split_evenly_regardless_of_framework_count() -> None:
    allocator = make_allocator()
    _agents(allocator, 12)
    allocator.add_framework("solo", ["ops"], capabilities=[])
    for index in range(3):
        allocator.add_framework(f"eng-{index}", ["eng"], capabilities=[])
    counts = Counter(allocation.role for allocation in allocator.allocate(now=0))
    assert counts == {"ops": 6, "eng": 6}
    assert allocator.role_share("ops") == allocator.role_share("eng") == 0.5


def test_dominant_share_is_the_largest_fraction_of_any_resource() -> None:
    allocator = make_allocator()
    allocator.add_agent("big-cpu", resources("cpus:8;mem:1024"))
    allocator.add_agent("big-mem", resources("cpus:1;mem:8192"))
    allocator.add_framework("fw", ["a"], capabilities=[])
    allocator.allocate(now=0)
    # 9 of 9 cpus and 9216 of 9216 mem: a dominant share of 1.
    assert allocator.role_share("a") == 1.0


def test_the_role_with_the_lower_dominant_share_is_served_first() -> None:
    allocator = make_allocator()
    allocator.add_agent("held", resources("cpus:4;mem:1024"))
    allocator.add_framework("cpu-heavy", ["batch"], capabilities=[])
    allocator.allocate(now=0)
    allocator.add_framework("newcomer", ["web"], capabilities=[])
    allocator.add_agent("fresh", resources("cpus:1;mem:512"))
    (allocation,) = allocator.allocate(now=0)
    assert allocation.framework_id == "newcomer"


def test_weights_scale_role_shares() -> None:
    allocator = make_allocator()
    _agents(allocator, 9)
    allocator.update_weights({"heavy": 2.0})
    allocator.add_framework("h", ["heavy"], capabilities=[])
    allocator.add_framework("l", ["light"], capabilities=[])
    counts = Counter(allocation.role for allocation in allocator.allocate(now=0))
    assert counts == {"heavy": 6, "light": 3}
    assert allocator.weights() == {"heavy": 2.0}


def test_hierarchical_roles_share_within_their_parent_first() -> None:
    allocator = make_allocator()
    _agents(allocator, 8)
    allocator.add_framework("ab", ["a/b"], capabilities=[])
    allocator.add_framework("ac", ["a/c"], capabilities=[])
    allocator.add_framework("d", ["d"], capabilities=[])
    counts = Counter(allocation.role for allocation in allocator.allocate(now=0))
    # "a" and "d" split the cluster; "a/b" and "a/c" split a's half.
    assert counts == {"d": 4, "a/b": 2, "a/c": 2}
    assert allocator.role_share("a") == 0.5


def test_a_role_with_frameworks_competes_with_its_own_children() -> None:
    allocator = make_allocator()
    _agents(allocator, 4)
    allocator.add_framework("parent", ["a"], capabilities=[])
    allocator.add_framework("child", ["a/b"], capabilities=[])
    counts = Counter(allocation.role for allocation in allocator.allocate(now=0))
    assert counts == {"a": 2, "a/b": 2}


def test_allocations_are_reproducible_for_a_seed() -> None:
    def run(seed: int) -> list[tuple[str, str]]:
        allocator = make_allocator(seed=seed)
        _agents(allocator, 20)
        for index in range(4):
            allocator.add_framework(f"fw-{index}", ["*"], capabilities=[])
        return [(a.framework_id, a.agent_id) for a in allocator.allocate(now=0)]

    assert run(1) == run(1)
    assert len(run(1)) == 20


def test_framework_share_within_a_role() -> None:
    allocator = make_allocator()
    _agents(allocator, 4)
    allocator.add_framework("fw", ["eng"], capabilities=[])
    allocator.allocate(now=0)
    assert allocator.framework_share("fw", "eng") == 1.0
    assert allocator.framework_share("other", "eng") == 0.0
