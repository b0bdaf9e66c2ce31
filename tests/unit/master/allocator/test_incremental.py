"""Only dirty agents are examined; a pass with nothing dirty does nothing."""

from __future__ import annotations

from mesoslite.master.allocator import Allocator

from .builders import make_allocator, resources, summary


def _cluster(agent_count: int = 5) -> Allocator:
    allocator = make_allocator()
    for index in range(agent_count):
        allocator.add_agent(f"agent-{index}", resources("cpus:2;mem:2048"))
    return allocator


def test_a_second_pass_with_no_change_returns_nothing_and_examines_no_agent() -> None:
    allocator = _cluster()
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert len(allocator.allocate(now=0)) == 5
    assert allocator.last_pass.agents_examined == 5
    assert allocator.allocate(now=1) == []
    assert allocator.last_pass.agents_examined == 0
    assert allocator.next_wakeup(now=1) is None


def test_agents_without_takers_are_not_reexamined() -> None:
    allocator = _cluster()
    allocator.allocate(now=0)  # no frameworks yet: nothing offered
    assert allocator.last_pass.agents_examined == 5
    allocator.allocate(now=1)
    assert allocator.last_pass.agents_examined == 0


def test_recovering_resources_dirties_only_that_agent() -> None:
    allocator = _cluster()
    allocator.add_framework("fw", ["*"], capabilities=[])
    allocations = allocator.allocate(now=0)
    chosen = allocations[0]
    allocator.recover("fw", chosen.agent_id, chosen.resources, refuse_seconds=None, now=1)
    assert summary(allocator.allocate(now=1)) == {("fw", chosen.agent_id, "*")}
    assert allocator.last_pass.agents_examined == 1


def test_a_new_framework_dirties_every_agent_with_free_resources() -> None:
    allocator = _cluster()
    allocator.add_framework("first", ["*"], capabilities=[])
    allocations = allocator.allocate(now=0)
    for allocation in allocations[:2]:
        allocator.recover(
            "first", allocation.agent_id, allocation.resources, refuse_seconds=100, now=0
        )
    allocator.allocate(now=0)
    assert allocator.last_pass.agents_examined == 2
    allocator.add_framework("second", ["*"], capabilities=[])
    assert {a.framework_id for a in allocator.allocate(now=1)} == {"second"}
    assert allocator.last_pass.agents_examined == 2


def test_filter_expiry_dirties_the_filtered_agent() -> None:
    allocator = _cluster(agent_count=3)
    allocator.add_framework("fw", ["*"], capabilities=[])
    first = allocator.allocate(now=0)[0]
    allocator.recover("fw", first.agent_id, first.resources, refuse_seconds=5, now=0)
    allocator.allocate(now=1)
    assert allocator.allocate(now=5) != []
    assert allocator.last_pass.agents_examined == 1


def test_launching_from_an_offer_dirties_nothing() -> None:
    allocator = _cluster(agent_count=1)
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert len(allocator.allocate(now=0)) == 1
    allocator.used("fw", "agent-0", resources("cpus:1;mem:512"))
    assert allocator.next_wakeup(now=0) is None
    assert allocator.allocate(now=0) == []


def test_deactivated_agents_are_skipped_and_reexamined_on_activation() -> None:
    allocator = _cluster(agent_count=2)
    allocator.deactivate_agent("agent-1")
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("fw", "agent-0", "*")}
    allocator.activate_agent("agent-1")
    assert summary(allocator.allocate(now=0)) == {("fw", "agent-1", "*")}
    assert allocator.last_pass.agents_examined == 1


def test_paused_agents_are_skipped_until_resumed_whatever_their_activation() -> None:
    allocator = _cluster(agent_count=2)
    allocator.pause_agent("agent-1")
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("fw", "agent-0", "*")}
    # Activation is a separate switch: it does not end a pause.
    allocator.deactivate_agent("agent-1")
    allocator.activate_agent("agent-1")
    assert allocator.allocate(now=0) == []
    allocator.resume_agent("agent-1")
    allocator.resume_agent("no-such-agent")
    assert summary(allocator.allocate(now=0)) == {("fw", "agent-1", "*")}
    assert allocator.last_pass.agents_examined == 1
