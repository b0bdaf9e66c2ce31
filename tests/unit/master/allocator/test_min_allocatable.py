"""Chunks too small to be useful are not offered."""

from __future__ import annotations

from mesoslite.master.allocator import AllocatorConfig
from mesoslite.proto import mesos_pb2

from .builders import make_allocator, resources, summary


def test_chunks_below_the_minimum_are_not_offered() -> None:
    allocator = make_allocator()
    allocator.add_agent("tiny", resources("cpus:0.001;mem:16"))
    allocator.add_agent("enough-mem", resources("cpus:0.001;mem:32"))
    allocator.add_agent("enough-cpus", resources("cpus:0.01;mem:1"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {
        ("fw", "enough-mem", "*"),
        ("fw", "enough-cpus", "*"),
    }


def test_agents_with_neither_cpus_nor_mem_are_never_offered() -> None:
    allocator = make_allocator(AllocatorConfig(min_allocatable=()))
    allocator.add_agent("disk-only", resources("disk:1000;ports:[1-100]"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert allocator.allocate(now=0) == []


def test_no_minimum_offers_any_non_empty_chunk() -> None:
    allocator = make_allocator(AllocatorConfig(min_allocatable=()))
    allocator.add_agent("tiny", resources("cpus:0.001"))
    allocator.add_framework("fw", ["*"], capabilities=[])
    assert summary(allocator.allocate(now=0)) == {("fw", "tiny", "*")}


def test_a_framework_may_ask_for_bigger_chunks_per_role() -> None:
    allocator = make_allocator()
    allocator.add_agent("small", resources("cpus:1;mem:512"))
    allocator.add_agent("large", resources("cpus:8;mem:8192"))
    allocator.add_framework(
        "picky", ["*"], capabilities=[], offer_filters={"*": [{"cpus": 4, "mem": 4096}]}
    )
    assert summary(allocator.allocate(now=0)) == {("picky", "large", "*")}


def test_offer_filters_as_protobuf() -> None:
    filters = mesos_pb2.OfferFilters()
    filters.min_allocatable_resources.quantities.add().quantities["cpus"].value = 4
    allocator = make_allocator()
    allocator.add_agent("small", resources("cpus:1;mem:512"))
    allocator.add_framework("picky", ["*"], capabilities=[], offer_filters={"*": filters})
    assert allocator.allocate(now=0) == []
    # An OfferFilters without min_allocatable_resources keeps the cluster minimum.
    allocator.update_framework("picky", ["*"], [], offer_filters={"*": mesos_pb2.OfferFilters()})
    assert summary(allocator.allocate(now=0)) == {("picky", "small", "*")}
