"""Small builders for `mesos_pb2.Resource` messages used across the resources tests."""

from __future__ import annotations

from collections.abc import Iterable

from mesoslite.proto import mesos_pb2

__all__ = ["dynamic", "ranges", "scalar", "set_of", "static", "volume"]

ReservationInfo = mesos_pb2.Resource.ReservationInfo


def static(role: str) -> ReservationInfo:
    return ReservationInfo(type=ReservationInfo.STATIC, role=role)


def dynamic(role: str, principal: str | None = None) -> ReservationInfo:
    reservation = ReservationInfo(type=ReservationInfo.DYNAMIC, role=role)
    if principal is not None:
        reservation.principal = principal
    return reservation


def _with_metadata(
    resource: mesos_pb2.Resource,
    reservations: Iterable[ReservationInfo],
    allocated_to: str | None,
    revocable: bool,
) -> mesos_pb2.Resource:
    resource.reservations.extend(reservations)
    if allocated_to is not None:
        resource.allocation_info.role = allocated_to
    if revocable:
        resource.revocable.SetInParent()
    return resource


def scalar(
    name: str,
    value: float,
    *,
    reservations: Iterable[ReservationInfo] = (),
    allocated_to: str | None = None,
    revocable: bool = False,
) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SCALAR)
    resource.scalar.value = value
    return _with_metadata(resource, reservations, allocated_to, revocable)


def ranges(
    name: str,
    *pairs: tuple[int, int],
    reservations: Iterable[ReservationInfo] = (),
    allocated_to: str | None = None,
    revocable: bool = False,
) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.RANGES)
    for begin, end in pairs:
        resource.ranges.range.add(begin=begin, end=end)
    return _with_metadata(resource, reservations, allocated_to, revocable)


def set_of(
    name: str,
    *items: str,
    reservations: Iterable[ReservationInfo] = (),
    allocated_to: str | None = None,
    revocable: bool = False,
) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name=name, type=mesos_pb2.Value.SET)
    resource.set.item.extend(items)
    return _with_metadata(resource, reservations, allocated_to, revocable)


def volume(
    persistence_id: str, size_mb: float, *, role: str = "eng", shared: bool = False
) -> mesos_pb2.Resource:
    resource = scalar("disk", size_mb, reservations=[dynamic(role, "ops")])
    resource.disk.persistence.id = persistence_id
    resource.disk.volume.container_path = "data"
    resource.disk.volume.mode = mesos_pb2.Volume.RW
    if shared:
        resource.shared.SetInParent()
    return resource
