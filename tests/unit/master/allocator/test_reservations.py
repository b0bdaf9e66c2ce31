"""Reserved resources go only to frameworks in the role (or a role below it)."""

from __future__ import annotations

from mesoslite.resources import parse_resources

from .builders import make_allocator, offered, resources, summary


def test_reserved_resources_go_only_to_their_role() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus(eng):2;mem(eng):2048"))
    allocator.add_framework("ops", ["ops"], capabilities=[])
    assert allocator.allocate(now=0) == []
    allocator.add_framework("eng", ["eng"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("eng", "agent", "eng")}


def test_reservations_for_a_parent_serve_its_subroles() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus(a):2;mem(a):2048"))
    allocator.add_framework("sibling", ["ab"], capabilities=[])
    allocator.add_framework("child", ["a/b"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("child", "agent", "a/b")}


def test_reservations_for_a_subrole_do_not_serve_the_parent() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus(a/b):2;mem(a/b):2048"))
    allocator.add_framework("parent", ["a"], capabilities=[])
    assert allocator.allocate(now=0) == []


def test_one_agent_can_serve_several_roles_at_once() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus(eng):1;mem(eng):512;cpus:1;mem:512"))
    allocator.add_framework("ops", ["ops"], capabilities=[])
    allocator.add_framework("eng", ["eng"], capabilities=[])
    allocations = {a.role: offered(a) for a in allocator.allocate(now=0)}
    # "eng" and "ops" tie on share; "eng" sorts first and gets all it may use, the
    # unreserved half included; "ops" gets nothing left.
    assert allocations == {"eng": parse_resources("cpus(eng):1;mem(eng):512;cpus:1;mem:512")}


def test_reserved_resources_stay_for_their_role_when_another_role_goes_first() -> None:
    allocator = make_allocator()
    allocator.add_agent("busy", resources("cpus:4;mem:4096"))
    allocator.add_framework("eng", ["eng"], capabilities=[])
    allocator.allocate(now=0)  # eng now holds a large share
    allocator.add_framework("ops", ["ops"], capabilities=[])
    allocator.add_agent("agent", resources("cpus(eng):1;mem(eng):512;cpus:1;mem:512"))
    allocations = {a.role: offered(a) for a in allocator.allocate(now=0)}
    assert allocations == {
        "ops": parse_resources("cpus:1;mem:512"),
        "eng": parse_resources("cpus(eng):1;mem(eng):512"),
    }


def test_reserved_resources_are_offered_with_their_reservations() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus(eng):2;mem(eng):2048"))
    allocator.add_framework("eng", ["eng"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    assert all(r.reservations[0].role == "eng" for r in allocation.resources)
    assert all(r.allocation_info.role == "eng" for r in allocation.resources)
