"""Frameworks and agents coming and going, resources used and recovered."""

from __future__ import annotations

import pytest

from mesoslite.master.allocator import AllocatorError
from mesoslite.resources import Resources, parse_resources

from .builders import make_allocator, offered, resources, summary


def test_offered_resources_stay_allocated_until_recovered() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    assert allocator.free("agent").is_empty()
    assert allocator.allocated("agent") == {("fw", "*"): offered(allocation)}
    allocator.recover("fw", "agent", allocation.resources, refuse_seconds=None, now=0)
    assert allocator.free("agent") == parse_resources("cpus:2;mem:2048")
    assert allocator.allocated("agent") == {}


def test_partial_recovery_frees_only_that_part() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    allocator.allocate(now=0)
    allocator.recover("fw", "agent", resources("cpus:0.5;mem:100"), refuse_seconds=None, now=0)
    assert allocator.free("agent") == parse_resources("cpus:0.5;mem:100")


def test_recovering_what_is_not_allocated_is_ignored() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    allocator.recover("fw", "agent", resources("cpus:1"), refuse_seconds=None, now=0)
    allocator.recover("fw", "gone", resources("cpus:1"), refuse_seconds=None, now=0)
    assert allocator.free("agent") == parse_resources("cpus:2;mem:2048")


def test_removing_a_framework_frees_everything_it_held() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:2;mem:2048"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    allocator.add_framework("next", ["*"], capabilities=[], active=False)
    (allocation,) = allocator.allocate(now=0)
    allocator.remove_framework("fw")
    allocator.activate_framework("next")
    assert summary(allocator.allocate(now=0)) == {("next", "agent", "*")}
    # A late recover for the removed framework's offer changes nothing.
    allocator.recover("fw", "agent", allocation.resources, refuse_seconds=None, now=0)
    assert allocator.free("agent").is_empty()


def test_removing_an_agent_releases_its_share() -> None:
    allocator = make_allocator()
    allocator.add_agent("one", resources("cpus:1;mem:1024"))
    allocator.add_agent("two", resources("cpus:1;mem:1024"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    allocator.allocate(now=0)
    assert allocator.role_share("*") == 1.0
    allocator.remove_agent("one")
    assert allocator.role_share("*") == 1.0  # all of what is left
    allocator.remove_agent("two")
    assert allocator.role_share("*") == 0.0
    with pytest.raises(AllocatorError):
        allocator.free("one")


def test_updating_an_agent_keeps_allocations_and_offers_the_growth() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:1;mem:1024"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    allocator.allocate(now=0)
    allocator.update_agent("agent", resources("cpus:2;mem:2048"))
    (grown,) = allocator.allocate(now=0)
    assert offered(grown) == parse_resources("cpus:1;mem:1024")
    assert allocator.total("agent") == parse_resources("cpus:2;mem:2048")


def test_agents_re_registering_with_running_tasks() -> None:
    allocator = make_allocator()
    allocator.add_agent(
        "agent",
        resources("cpus:4;mem:4096"),
        used={("fw", "eng"): resources("cpus:3;mem:3072")},
        hostname="host-1",
    )
    assert allocator.free("agent") == parse_resources("cpus:1;mem:1024")
    # The framework re-subscribes later; its share already counts the tasks.
    allocator.add_framework("fw", ["eng"], capabilities=[])
    assert allocator.framework_share("fw", "eng") == 0.75


def test_used_accounts_only_what_is_not_already_allocated() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:4;mem:4096"))
    allocator.add_framework("fw", ["eng"], capabilities=[])
    allocator.add_framework("late", ["eng"], capabilities=[], active=False)
    (allocation,) = allocator.allocate(now=0)
    allocator.used("fw", "agent", allocation.resources)  # launched from the offer
    assert allocator.allocated("agent") == {("fw", "eng"): offered(allocation)}
    allocator.recover("fw", "agent", allocation.resources, refuse_seconds=None, now=0)
    # A task the master learns about later (framework re-registration) is accounted.
    allocator.used("late", "agent", resources("cpus:1;mem:64"))
    assert allocator.allocated("agent") == {("late", "eng"): parse_resources("cpus:1;mem:64")}


def test_resources_without_allocation_info_need_an_unambiguous_role() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:4;mem:4096"))
    allocator.add_framework("multi", ["a", "b"], capabilities=[])
    assert len(allocator.allocate(now=0)) == 1
    # Only one of its roles holds these, so the role is clear.
    allocator.recover("multi", "agent", resources("cpus:1"), refuse_seconds=None, now=0)
    assert allocator.free("agent") == parse_resources("cpus:1")
    with pytest.raises(AllocatorError, match="allocation_info"):
        allocator.used("multi", "agent", resources("cpus:1;mem:5000"))


def test_allocations_carry_the_role_on_every_resource() -> None:
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:1;mem:1024;ports:[1-10];disks:{a}"))
    allocator.add_framework("fw", ["eng"], capabilities=[])
    (allocation,) = allocator.allocate(now=0)
    assert {r.allocation_info.role for r in allocation.resources} == {"eng"}
    assert Resources(allocation.resources).allocations().keys() == {"eng"}


@pytest.mark.parametrize(
    "mistake",
    [
        lambda a: a.add_framework("fw", ["*"], capabilities=[]),
        lambda a: a.add_agent("agent", []),
        lambda a: a.add_framework("bad", ["a//b"], capabilities=[]),
        lambda a: a.update_framework("missing", ["*"], []),
        lambda a: a.suppress("missing"),
        lambda a: a.update_agent("missing", []),
        lambda a: a.used("fw", "missing", []),
        lambda a: a.update_weights({"eng": 0}),
        lambda a: a.set_quota("eng", guarantees={"cpus": 2}, limits={"cpus": 1}),
    ],
)
def test_inconsistent_requests_raise(mistake) -> None:  # type: ignore[no-untyped-def]
    allocator = make_allocator()
    allocator.add_agent("agent", resources("cpus:1;mem:1024"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    with pytest.raises(AllocatorError):
        mistake(allocator)


def test_removing_unknown_things_is_harmless() -> None:
    allocator = make_allocator()
    allocator.remove_framework("missing")
    allocator.remove_agent("missing")
