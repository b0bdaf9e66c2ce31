"""Seeded random event sequences: bookkeeping stays consistent and the incremental pass
misses nothing a full pass would find."""

from __future__ import annotations

import random

import pytest

from mesoslite.master.allocator import Allocation, Allocator
from mesoslite.resources import Resources

from .builders import GPU, REVOCABLE, make_allocator, offered, resources

_AGENT_SHAPES = [
    "cpus:2;mem:2048;ports:[31000-31010]",
    "cpus:1;mem:512;gpus:1",
    "cpus(a):1;mem(a):512;cpus:1;mem:512",
    "cpus(a/b):2;mem(a/b):1024",
    "cpus:0.5;mem:64;disks:{x,y}",
]
_ROLE_SETS = [["*"], ["a"], ["a/b"], ["b"], ["a", "b"]]


class _World:
    def __init__(self, seed: int, *, with_quota: bool) -> None:
        self.with_quota = with_quota
        self.rng = random.Random(seed)
        self.allocator: Allocator = make_allocator(seed=seed)
        self.now = 0.0
        self.frameworks: set[str] = set()
        self.agents: set[str] = set()
        self.outstanding: list[Allocation] = []
        self.counter = 0

    def step(self) -> None:
        choice = self.rng.randrange(10)
        if choice == 0 or not self.agents:
            self.counter += 1
            agent_id = f"agent-{self.counter}"
            self.allocator.add_agent(agent_id, resources(self.rng.choice(_AGENT_SHAPES)))
            self.agents.add(agent_id)
        elif choice == 1 or not self.frameworks:
            self.counter += 1
            framework_id = f"fw-{self.counter}"
            capabilities = self.rng.sample([GPU, REVOCABLE], self.rng.randrange(3))
            self.allocator.add_framework(
                framework_id, self.rng.choice(_ROLE_SETS), capabilities=capabilities
            )
            self.frameworks.add(framework_id)
        elif choice == 2 and len(self.agents) > 2:
            agent_id = self.rng.choice(sorted(self.agents))
            self.allocator.remove_agent(agent_id)
            self.agents.discard(agent_id)
        elif choice == 3 and len(self.frameworks) > 2:
            framework_id = self.rng.choice(sorted(self.frameworks))
            self.allocator.remove_framework(framework_id)
            self.frameworks.discard(framework_id)
        elif choice == 4:
            framework_id = self.rng.choice(sorted(self.frameworks))
            if self.rng.random() < 0.5:
                self.allocator.suppress(framework_id)
            else:
                self.allocator.revive(framework_id)
        elif choice in (5, 6) and self.outstanding:
            allocation = self.outstanding.pop(self.rng.randrange(len(self.outstanding)))
            refuse = self.rng.choice([None, 0.0, 1.0, 5.0, 30.0])
            self.allocator.recover(
                allocation.framework_id,
                allocation.agent_id,
                allocation.resources,
                refuse_seconds=refuse,
                now=self.now,
            )
        elif choice == 7:
            self.now += self.rng.choice([0.5, 1.0, 5.0])
        elif choice == 8 and self.with_quota:
            role = self.rng.choice(["a", "a/b", "b"])
            if self.rng.random() < 0.3:
                self.allocator.remove_quota(role)
            else:
                guarantee = self.rng.choice([0, 1, 2])
                limit = guarantee + self.rng.choice([0, 1, 3])
                self.allocator.set_quota(
                    role, guarantees={"cpus": guarantee}, limits={"cpus": limit}
                )
        else:
            self.allocate_and_check()

    def allocate_and_check(self) -> None:
        free_before = {a: self.allocator.free(a) for a in self.agents}
        allocations = self.allocator.allocate(self.now)
        taken: dict[str, Resources] = {}
        for allocation in allocations:
            assert allocation.framework_id in self.frameworks
            chunk = offered(allocation)
            assert not chunk.is_empty()
            assert Resources(allocation.resources).allocations().keys() == {allocation.role}
            taken[allocation.agent_id] = taken.get(allocation.agent_id, Resources()) + chunk
        for agent_id, chunk in taken.items():
            assert free_before[agent_id].contains(chunk)
        self.outstanding.extend(allocations)
        self.check_bookkeeping()
        # Whatever the incremental pass skipped, a full pass must not find anything new.
        self.allocator.examine_all_agents()
        assert self.allocator.allocate(self.now) == []

    def check_bookkeeping(self) -> None:
        for agent_id in self.agents:
            allocated = sum(self.allocator.allocated(agent_id).values(), Resources())
            total = self.allocator.total(agent_id)
            assert total.contains(allocated)
            assert allocated + self.allocator.free(agent_id) == total


@pytest.mark.parametrize("with_quota", [False, True], ids=["plain", "quota"])
@pytest.mark.parametrize("seed", range(60))
def test_random_event_sequences(seed: int, with_quota: bool) -> None:
    world = _World(seed, with_quota=with_quota)
    for _ in range(150):
        world.step()
    world.allocate_and_check()
