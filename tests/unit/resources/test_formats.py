"""Pre-refinement, post-refinement and endpoint formats (spec 1.7)."""

from __future__ import annotations

import pytest

from mesoslite.resources import (
    ResourceError,
    Resources,
    to_endpoint_format,
    to_post_refinement,
    to_pre_refinement,
)
from tests.unit.resources.builders import dynamic, scalar, static


def test_pre_refinement_format() -> None:
    unreserved, static_one, dynamic_one = to_pre_refinement(
        [
            scalar("cpus", 1),
            scalar("mem", 2, reservations=[static("eng")], allocated_to="eng"),
            scalar("disk", 3, reservations=[dynamic("eng", "ops")]),
        ]
    )
    assert unreserved.HasField("role") and unreserved.role == "*"
    assert not unreserved.HasField("reservation")
    assert static_one.role == "eng" and not static_one.HasField("reservation")
    assert static_one.allocation_info.role == "eng"
    assert dynamic_one.role == "eng" and dynamic_one.reservation.principal == "ops"
    assert not dynamic_one.reservation.HasField("role")
    for converted in (unreserved, static_one, dynamic_one):
        assert not converted.reservations


def test_refined_reservations_cannot_be_downgraded() -> None:
    refined = scalar("cpus", 1, reservations=[static("a"), dynamic("a/b")])
    with pytest.raises(ResourceError, match="refined"):
        to_pre_refinement([refined])


def test_post_refinement_format_from_pre_refinement_input() -> None:
    pre_dynamic = scalar("cpus", 1)
    pre_dynamic.role = "eng"
    pre_dynamic.reservation.principal = "ops"
    starred = scalar("mem", 2)
    starred.role = "*"
    upgraded_dynamic, upgraded_star = to_post_refinement([pre_dynamic, starred])
    assert not upgraded_dynamic.HasField("role")
    assert not upgraded_dynamic.HasField("reservation")
    assert [(r.type, r.role, r.principal) for r in upgraded_dynamic.reservations] == [
        (dynamic("eng").type, "eng", "ops")
    ]
    assert not upgraded_star.HasField("role") and not upgraded_star.reservations


def test_endpoint_format_has_both() -> None:
    unreserved, one, refined = to_endpoint_format(
        [
            scalar("cpus", 1),
            scalar("mem", 2, reservations=[dynamic("eng", "ops")]),
            scalar("disk", 3, reservations=[static("a"), dynamic("a/b")]),
        ]
    )
    assert unreserved.role == "*" and unreserved.HasField("role")
    assert one.role == "eng" and one.reservation.principal == "ops"
    assert len(one.reservations) == 1
    assert not refined.HasField("role") and len(refined.reservations) == 2


def test_formats_describe_the_same_resources() -> None:
    original = [
        scalar("cpus", 1),
        scalar("mem", 2, reservations=[static("eng")]),
        scalar("disk", 3, reservations=[dynamic("eng", "ops")]),
    ]
    value = Resources(original)
    assert Resources(to_pre_refinement(original)) == value
    assert Resources(to_post_refinement(to_pre_refinement(original))) == value
    assert Resources(to_endpoint_format(original)) == value


def test_converters_copy_their_input() -> None:
    original = scalar("cpus", 1)
    to_pre_refinement([original])
    assert not original.HasField("role")
