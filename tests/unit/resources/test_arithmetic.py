"""Addition, subtraction, containment and equality on concrete examples."""

from __future__ import annotations

from mesoslite.resources import Resources, parse_resources
from tests.unit.resources.builders import dynamic, ranges, scalar, set_of, static, volume


def test_scalars_are_kept_to_three_decimal_places() -> None:
    tenth = Resources([scalar("cpus", 0.1)])
    total = Resources()
    for _ in range(10):
        total = total + tenth
    assert total == Resources([scalar("cpus", 1.0)])
    assert total.scalar("cpus") == 1.0
    assert Resources([scalar("cpus", 0.1), scalar("cpus", 0.2)]).scalar("cpus") == 0.3


def test_scalars_round_half_away_from_zero_and_tiny_ones_vanish() -> None:
    assert Resources([scalar("cpus", 0.0005)]).scalar("cpus") == 0.001
    assert Resources([scalar("cpus", 0.00049)]).is_empty()
    assert Resources([scalar("mem", 1.23456)]).scalar("mem") == 1.235


def test_subtracting_more_than_there_is_leaves_nothing_of_that_resource() -> None:
    left = parse_resources("cpus:1;mem:64")
    remaining = left - parse_resources("cpus:2")
    assert remaining == parse_resources("mem:64")


def test_subtracting_what_is_absent_changes_nothing() -> None:
    left = parse_resources("cpus:1")
    assert left - parse_resources("gpus:1") == left
    assert left - parse_resources("cpus(eng):1") == left


def test_ranges_coalesce_when_added_and_split_when_subtracted() -> None:
    ports = Resources([ranges("ports", (1, 5))]) + Resources([ranges("ports", (6, 10), (20, 30))])
    assert ports.ranges("ports") == [(1, 10), (20, 30)]
    assert len(ports) == 1
    remaining = ports - Resources([ranges("ports", (3, 4), (25, 40))])
    assert remaining.ranges("ports") == [(1, 2), (5, 10), (20, 24)]
    assert remaining.quantities()["ports"] == 2 + 6 + 5


def test_ranges_contain_only_whole_subranges() -> None:
    ports = Resources([ranges("ports", (1, 10), (20, 30))])
    assert ports.contains(Resources([ranges("ports", (2, 3), (20, 30))]))
    assert not ports.contains(Resources([ranges("ports", (9, 21))]))


def test_sets_unite_and_subtract() -> None:
    disks = Resources([set_of("disks", "a", "b")]) + Resources([set_of("disks", "b", "c")])
    assert disks.set_items("disks") == {"a", "b", "c"}
    assert (disks - Resources([set_of("disks", "a")])).set_items("disks") == {"b", "c"}
    assert not disks.contains(Resources([set_of("disks", "d")]))


def test_reservations_and_allocations_are_part_of_identity() -> None:
    unreserved = Resources([scalar("cpus", 4)])
    reserved = Resources([scalar("cpus", 4, reservations=[static("eng")])])
    allocated = Resources([scalar("cpus", 4, allocated_to="eng")])
    assert unreserved != reserved
    assert unreserved != allocated
    assert not unreserved.contains(reserved)
    assert len(unreserved + reserved + allocated) == 3
    assert (unreserved + reserved).scalar("cpus") == 8


def test_pre_and_post_refinement_inputs_are_the_same_resources() -> None:
    pre_static = scalar("cpus", 1)
    pre_static.role = "eng"
    pre_dynamic = scalar("mem", 32)
    pre_dynamic.role = "eng"
    pre_dynamic.reservation.principal = "ops"
    post = Resources(
        [
            scalar("cpus", 1, reservations=[static("eng")]),
            scalar("mem", 32, reservations=[dynamic("eng", "ops")]),
        ]
    )
    assert Resources([pre_static, pre_dynamic]) == post


def test_unreserved_role_star_is_the_same_as_no_role() -> None:
    starred = scalar("cpus", 1)
    starred.role = "*"
    assert Resources([starred]) == Resources([scalar("cpus", 1)])


def test_persistent_volumes_are_never_merged_or_split() -> None:
    one = Resources([volume("v1", 100)])
    two = Resources([volume("v2", 100)])
    both = one + two
    assert len(both) == 2
    assert both.scalar("disk") == 200
    assert both - one == two
    partial = Resources([scalar("disk", 50, reservations=[dynamic("eng", "ops")])])
    assert both - partial == both
    assert not both.contains(Resources([volume("v1", 50)]))
    assert both.persistent_volumes() == both


def test_shared_volumes_count_copies() -> None:
    shared = Resources([volume("v1", 10, shared=True)])
    twice = shared + shared
    assert len(twice) == 2
    assert twice.contains(shared)
    assert not shared.contains(twice)
    assert twice - shared == shared
    assert (twice - twice).is_empty()


def test_invalid_and_empty_resources_are_dropped_on_construction() -> None:
    negative = scalar("cpus", -1)
    no_name = scalar("", 1)
    empty_set = set_of("disks")
    assert Resources([negative, no_name, empty_set, scalar("mem", 0)]).is_empty()


def test_iteration_yields_post_refinement_messages_that_rebuild_the_value() -> None:
    original = parse_resources("cpus(eng):2;mem:64;ports:[1-3];disks:{x}")
    messages = list(original)
    assert all(not message.HasField("role") for message in messages)
    assert Resources(messages) == original
    assert original.to_list() == messages


def test_equal_values_hash_equally() -> None:
    left = parse_resources("cpus:1;mem:2")
    right = parse_resources("mem:2;cpus:0.5") + parse_resources("cpus:0.5")
    assert left == right
    assert hash(left) == hash(right)
    assert len({left, right}) == 1


def test_str_is_the_text_syntax() -> None:
    assert str(parse_resources("cpus:1.5;mem(eng):64;ports:[1-3];disks:{b,a}")) == (
        "cpus:1.5;mem(eng):64;ports:[1-3];disks:{a,b}"
    )


def test_quantity_helpers() -> None:
    resources = parse_resources("cpus:1;cpus(eng):2;ports:[1-10];disks:{a,b}")
    assert resources.scalars() == {"cpus": 3.0}
    assert resources.quantities() == {"cpus": 3.0, "ports": 10.0, "disks": 2.0}
    assert resources.names() == {"cpus", "ports", "disks"}
    assert resources.contains_quantities({"cpus": 3, "ports": 10})
    assert not resources.contains_quantities({"cpus": 3.001})
    assert resources.scalar("gpus") == 0.0


def test_shrink_scalars_caps_each_named_scalar() -> None:
    resources = parse_resources("cpus:4;mem:1024;ports:[1-10]")
    shrunk = resources.shrink_scalars({"cpus": 1.5, "gpus": 1})
    assert shrunk == parse_resources("cpus:1.5;mem:1024;ports:[1-10]")
    assert resources.shrink_scalars({"mem": 0}) == parse_resources("cpus:4;ports:[1-10]")


def test_shrink_scalars_keeps_volumes_only_when_they_fit() -> None:
    volumes = Resources([volume("v1", 100), volume("v2", 100)])
    assert volumes.shrink_scalars({"disk": 150}).scalar("disk") == 100
    assert volumes.shrink_scalars({"disk": 50}).is_empty()
