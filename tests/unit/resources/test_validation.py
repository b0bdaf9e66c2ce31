"""Role names (spec 2.4) and resource validation (Mesos' Resources::validate)."""

from __future__ import annotations

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.resources import (
    is_strict_subrole,
    validate_resource,
    validate_resources,
    validate_role,
)
from tests.unit.resources.builders import dynamic, scalar, set_of, static, volume


@pytest.mark.parametrize("role", ["*", "eng", "a/b/c", "team-1", "a.b", "x_y", "a/b-c"])
def test_valid_roles(role: str) -> None:
    assert validate_role(role) is None


@pytest.mark.parametrize(
    "role",
    [
        "",
        "/a",
        "a/",
        "a//b",
        ".",
        "..",
        "a/./b",
        "a/../b",
        "a/*",
        "*/a",
        "-a",
        "a/-b",
        "a b",
        "a\tb",
        "a\nb",
        "a\x08b",
        "a\x7fb",
    ],
)
def test_invalid_roles(role: str) -> None:
    error = validate_role(role)
    assert error is not None
    assert "\n" not in error


def test_strict_subroles() -> None:
    assert is_strict_subrole("a/b", "a")
    assert is_strict_subrole("a/b/c", "a")
    assert not is_strict_subrole("a", "a")
    assert not is_strict_subrole("ab", "a")
    assert not is_strict_subrole("a", "a/b")


def test_valid_resources() -> None:
    assert validate_resource(scalar("cpus", 1)) is None
    assert validate_resource(volume("v", 10, shared=True)) is None
    assert validate_resource(scalar("cpus", 1, reservations=[static("a"), dynamic("a/b")])) is None


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        (scalar("cpus", -0.5), "value < 0"),
        (scalar("cpus", float("inf")), "finite"),
        (set_of("disks", "a", "a"), "duplicated"),
        (scalar("cpus", 1, reservations=[dynamic("a"), static("a/b")]), "STATIC"),
        (scalar("cpus", 1, reservations=[static("a"), dynamic("b")]), "does not refine"),
        (scalar("cpus", 1, reservations=[static("*")]), '"*"'),
        (scalar("cpus", 1, reservations=[static("a//b")]), "adjacent slashes"),
        (
            scalar("cpus", 1, reservations=[mesos_pb2.Resource.ReservationInfo(role="a")]),
            "STATIC or DYNAMIC",
        ),
    ],
)
def test_invalid_resources(resource: mesos_pb2.Resource, fragment: str) -> None:
    error = validate_resource(resource)
    assert error is not None and fragment in error


def test_dynamic_reservation_of_star_is_invalid() -> None:
    resource = scalar("cpus", 1)
    resource.role = "*"
    resource.reservation.principal = "ops"
    assert "cannot be dynamically reserved" in (validate_resource(resource) or "")


def test_disk_info_only_on_disk() -> None:
    resource = scalar("mem", 1)
    resource.disk.persistence.id = "x"
    assert "DiskInfo" in (validate_resource(resource) or "")


def test_only_persistent_volumes_may_be_shared() -> None:
    resource = scalar("cpus", 1)
    resource.shared.SetInParent()
    assert "shared" in (validate_resource(resource) or "")


def test_validate_resources_names_the_culprit() -> None:
    assert validate_resources([scalar("cpus", 1)]) is None
    assert "'mem'" in (validate_resources([scalar("cpus", 1), scalar("mem", -1)]) or "")
