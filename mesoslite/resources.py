"""The Resources algebra over mesos.v1 `Resource` lists, with Mesos' semantics.

A `Resources` value is an immutable multiset of resources. Resources that differ only
in quantity are *addable* (Mesos' word) and are kept merged: scalars are summed in
fixed-point thousandths (Mesos rounds every scalar to three decimal places), ranges are
coalesced, sets are united. Everything else a resource carries (its reservation stack,
allocation role, disk info, revocable/shared markers, provider) is its identity: two
resources with different identities never merge, and `contains` never trades one for
the other. Persistent volumes, MOUNT/BLOCK/RAW disks and shared resources cannot be
split; they are kept as whole copies.

Internally every resource is held in the post-refinement format (the `reservations`
stack); the converters at the bottom produce the other wire formats of spec 1.7.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, NamedTuple, TypeAlias

from mesoslite.proto import mesos_pb2
from mesoslite.wire.json_codec import JsonConversionError, from_json_value

__all__ = [
    "DEFAULT_PORT_RANGE",
    "ResourceError",
    "ResourceParseError",
    "Resources",
    "default_agent_resources",
    "is_strict_subrole",
    "parse_attributes",
    "parse_resources",
    "to_endpoint_format",
    "to_post_refinement",
    "to_pre_refinement",
    "validate_resource",
    "validate_resources",
    "validate_role",
]

_SCALAR: Final = mesos_pb2.Value.SCALAR
_RANGES: Final = mesos_pb2.Value.RANGES
_SET: Final = mesos_pb2.Value.SET
_TEXT: Final = mesos_pb2.Value.TEXT
_STATIC: Final = mesos_pb2.Resource.ReservationInfo.STATIC
_DYNAMIC: Final = mesos_pb2.Resource.ReservationInfo.DYNAMIC
_UNSPLITTABLE_DISK_SOURCES: Final = frozenset(
    {
        mesos_pb2.Resource.DiskInfo.Source.MOUNT,
        mesos_pb2.Resource.DiskInfo.Source.BLOCK,
        mesos_pb2.Resource.DiskInfo.Source.RAW,
    }
)

#: The agent's default port range when `--resources` names no ports (spec 5.2).
DEFAULT_PORT_RANGE: Final = (31000, 32000)

# Mesos' fixed-point scalar arithmetic keeps three decimal digits.
_MILLI_PER_UNIT: Final = 1000


class ResourceError(ValueError):
    """A resource (or role) is invalid, or a conversion is impossible."""


class ResourceParseError(ResourceError):
    """`--resources`/`--attributes` style text could not be parsed."""


# --------------------------------------------------------------------------------------
# Roles (spec 2.4)
# --------------------------------------------------------------------------------------

# Mesos rejects ASCII whitespace and DEL in role names; backspace is rejected as well.
_ROLE_FORBIDDEN_CHARACTERS: Final = frozenset("\t\n\v\f\r \x08\x7f")


def validate_role(name: str) -> str | None:
    """Why `name` is not a valid role name, or None when it is (`"*"` is valid)."""
    if name == "*":
        return None
    if not name:
        return "Empty role name is invalid"
    # Escaped so that the message stays on one line whatever the name holds.
    shown = name.encode("unicode_escape").decode("ascii")
    if name.startswith("/"):
        return f"Role '{shown}' cannot start with a slash"
    if name.endswith("/"):
        return f"Role '{shown}' cannot end with a slash"
    if "//" in name:
        return f"Role '{shown}' cannot contain two adjacent slashes"
    for component in name.split("/"):
        if component in (".", "..", "*"):
            return f"Role '{shown}' cannot have '{component}' as a path component"
        if component.startswith("-"):
            return f"Role '{shown}' cannot have a path component starting with '-'"
        if any(character in _ROLE_FORBIDDEN_CHARACTERS for character in component):
            return f"Role '{shown}' cannot contain whitespace or backspace characters"
    return None


def is_strict_subrole(role: str, ancestor: str) -> bool:
    """Whether `role` lies strictly below `ancestor` in the role tree ("a/b" below "a")."""
    return (
        len(role) > len(ancestor) + 1 and role.startswith(ancestor) and (role[len(ancestor)] == "/")
    )


# --------------------------------------------------------------------------------------
# Identity and amount of one resource
# --------------------------------------------------------------------------------------


class _Reservation(NamedTuple):
    type: int
    role: str
    principal: str | None
    # (key, has_value, value) triples, sorted: Mesos compares labels as a multiset.
    labels: tuple[tuple[str, bool, str], ...]


class _Key(NamedTuple):
    """Everything about a resource except its quantity: resources with equal keys merge."""

    name: str
    type: int
    reservations: tuple[_Reservation, ...]
    allocation_role: str | None
    disk: bytes | None  # deterministic serialization of DiskInfo
    revocable: bool
    shared: bool
    provider_id: str | None
    # Derived from the fields above; kept here so the hot paths need not re-derive it.
    splittable: bool


_Ranges: TypeAlias = tuple[tuple[int, int], ...]
# Scalars are thousandths (int), ranges are coalesced sorted pairs, sets are frozensets.
_Amount: TypeAlias = int | _Ranges | frozenset[str]


def _to_milli(value: float) -> int:
    # llround(value * 1000) as Mesos does: halves round away from zero.
    scaled = abs(value) * _MILLI_PER_UNIT
    rounded = math.floor(scaled + 0.5)
    return rounded if value >= 0 else -rounded


def _format_scalar(milli: int) -> str:
    whole, fraction = divmod(milli, _MILLI_PER_UNIT)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:03d}".rstrip("0")


def _coalesce(ranges: Iterable[tuple[int, int]]) -> _Ranges:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(ranges):
        if merged and begin <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return tuple(merged)


def _ranges_minus(left: _Ranges, right: _Ranges) -> _Ranges:
    result: list[tuple[int, int]] = []
    first_relevant = 0
    for begin, end in left:
        cursor = begin
        while first_relevant < len(right) and right[first_relevant][1] < cursor:
            first_relevant += 1
        index = first_relevant
        while index < len(right) and right[index][0] <= end and cursor <= end:
            cut_begin, cut_end = right[index]
            if cut_begin > cursor:
                result.append((cursor, cut_begin - 1))
            cursor = max(cursor, cut_end + 1)
            index += 1
        if cursor <= end:
            result.append((cursor, end))
    return tuple(result)


def _ranges_contain(outer: _Ranges, inner: _Ranges) -> bool:
    # Both are coalesced, so each inner range must fit inside a single outer range.
    index = 0
    for begin, end in inner:
        while index < len(outer) and outer[index][1] < begin:
            index += 1
        if index == len(outer) or outer[index][0] > begin or outer[index][1] < end:
            return False
    return True


def _ranges_size(ranges: _Ranges) -> int:
    return sum(end - begin + 1 for begin, end in ranges)


def _amount_plus(left: _Amount, right: _Amount) -> _Amount:
    if isinstance(left, int) and isinstance(right, int):
        return left + right
    if isinstance(left, tuple) and isinstance(right, tuple):
        return _coalesce(left + right)
    if isinstance(left, frozenset) and isinstance(right, frozenset):
        return left | right
    raise AssertionError("resources with equal keys have amounts of one kind")


def _amount_minus(left: _Amount, right: _Amount) -> _Amount:
    if isinstance(left, int) and isinstance(right, int):
        # Taking more than there is leaves nothing, as in Mesos (never a negative amount).
        return max(left - right, 0)
    if isinstance(left, tuple) and isinstance(right, tuple):
        return _ranges_minus(left, right)
    if isinstance(left, frozenset) and isinstance(right, frozenset):
        return left - right
    raise AssertionError("resources with equal keys have amounts of one kind")


def _amount_contains(outer: _Amount, inner: _Amount) -> bool:
    if isinstance(outer, int) and isinstance(inner, int):
        return outer >= inner
    if isinstance(outer, tuple) and isinstance(inner, tuple):
        return _ranges_contain(outer, inner)
    if isinstance(outer, frozenset) and isinstance(inner, frozenset):
        return inner <= outer
    raise AssertionError("resources with equal keys have amounts of one kind")


def _amount_quantity(amount: _Amount) -> float:
    """Scalars in units, ranges by how many numbers they hold, sets by item count."""
    if isinstance(amount, int):
        return amount / _MILLI_PER_UNIT
    if isinstance(amount, tuple):
        return float(_ranges_size(amount))
    return float(len(amount))


def _reservation_of(info: mesos_pb2.Resource.ReservationInfo) -> _Reservation:
    labels = tuple(
        sorted((label.key, label.HasField("value"), label.value) for label in info.labels.labels)
    )
    principal = info.principal if info.HasField("principal") else None
    return _Reservation(info.type, info.role, principal, labels)


def _reservations_of(resource: mesos_pb2.Resource) -> tuple[_Reservation, ...]:
    """The reservation stack, reading the pre-refinement fields when the stack is empty."""
    if resource.reservations:
        return tuple(_reservation_of(info) for info in resource.reservations)
    if resource.role == "*":
        return ()
    if resource.HasField("reservation"):
        dynamic = _reservation_of(resource.reservation)
        return (_Reservation(_DYNAMIC, resource.role, dynamic.principal, dynamic.labels),)
    return (_Reservation(_STATIC, resource.role, None, ()),)


def _splittable(resource: mesos_pb2.Resource) -> bool:
    if resource.HasField("shared"):
        return False
    if not resource.HasField("disk"):
        return True
    disk = resource.disk
    if disk.HasField("persistence"):
        return False
    return not (disk.HasField("source") and disk.source.type in _UNSPLITTABLE_DISK_SOURCES)


def _key_of(resource: mesos_pb2.Resource) -> _Key:
    return _Key(
        name=resource.name,
        type=resource.type,
        reservations=_reservations_of(resource),
        allocation_role=(
            resource.allocation_info.role if resource.HasField("allocation_info") else None
        ),
        disk=resource.disk.SerializeToString(deterministic=True)
        if resource.HasField("disk")
        else None,
        revocable=resource.HasField("revocable"),
        shared=resource.HasField("shared"),
        provider_id=resource.provider_id.value if resource.HasField("provider_id") else None,
        splittable=_splittable(resource),
    )


def _amount_of(resource: mesos_pb2.Resource) -> _Amount:
    if resource.type == _SCALAR:
        return _to_milli(resource.scalar.value)
    if resource.type == _RANGES:
        return _coalesce((item.begin, item.end) for item in resource.ranges.range)
    return frozenset(resource.set.item)


def _is_empty_amount(amount: _Amount) -> bool:
    return amount == 0 if isinstance(amount, int) else not amount


def _set_reservation(target: mesos_pb2.Resource.ReservationInfo, source: _Reservation) -> None:
    target.type = mesos_pb2.Resource.ReservationInfo.Type.ValueType(source.type)
    target.role = source.role
    if source.principal is not None:
        target.principal = source.principal
    for key, has_value, value in source.labels:
        label = target.labels.labels.add(key=key)
        if has_value:
            label.value = value


def _proto_of(key: _Key, amount: _Amount) -> mesos_pb2.Resource:
    resource = mesos_pb2.Resource(name=key.name, type=mesos_pb2.Value.Type.ValueType(key.type))
    if isinstance(amount, int):
        resource.scalar.value = amount / _MILLI_PER_UNIT
    elif isinstance(amount, tuple):
        for begin, end in amount:
            resource.ranges.range.add(begin=begin, end=end)
    else:
        resource.set.item.extend(sorted(amount))
    for reservation in key.reservations:
        _set_reservation(resource.reservations.add(), reservation)
    if key.allocation_role is not None:
        resource.allocation_info.role = key.allocation_role
    if key.disk is not None:
        resource.disk.ParseFromString(key.disk)
    if key.revocable:
        resource.revocable.SetInParent()
    if key.shared:
        resource.shared.SetInParent()
    if key.provider_id is not None:
        resource.provider_id.value = key.provider_id
    return resource


# --------------------------------------------------------------------------------------
# Validation (Mesos' Resources::validate)
# --------------------------------------------------------------------------------------


def _validate_reservations(resource: mesos_pb2.Resource) -> str | None:
    if not resource.reservations:
        if resource.role == "*" and resource.HasField("reservation"):
            return 'Invalid reservation: role "*" cannot be dynamically reserved'
        return validate_role(resource.role)
    # The endpoint format repeats a single reservation in `role`/`reservation`; the
    # stack is what counts, so those fields are only checked for consistency below.
    previous_role: str | None = None
    for position, reservation in enumerate(resource.reservations):
        if reservation.type not in (_STATIC, _DYNAMIC):
            return "Invalid reservation: type must be STATIC or DYNAMIC"
        if reservation.type == _STATIC and position > 0:
            return "Invalid reservation: a STATIC reservation may only be at the bottom"
        if reservation.role == "*":
            return 'Invalid reservation: role "*" cannot be reserved for'
        role_error = validate_role(reservation.role)
        if role_error is not None:
            return f"Invalid reservation: {role_error}"
        if previous_role is not None and not is_strict_subrole(reservation.role, previous_role):
            return (
                f"Invalid reservation: role '{reservation.role}' does not refine "
                f"role '{previous_role}'"
            )
        previous_role = reservation.role
    if resource.HasField("role") and resource.role not in ("*", previous_role):
        return (
            f"Invalid reservation: 'Resource.role' ('{resource.role}') disagrees with "
            f"the reservation stack (role '{previous_role}')"
        )
    return None


def _validate_value(resource: mesos_pb2.Resource) -> str | None:
    kind = resource.type
    if kind == _SCALAR:
        if (
            not resource.HasField("scalar")
            or resource.HasField("ranges")
            or resource.HasField("set")
        ):
            return "Invalid scalar resource: exactly 'scalar' must be set"
        value = resource.scalar.value
        if not math.isfinite(value):
            return "Invalid scalar resource: value must be finite"
        if value < 0:
            return "Invalid scalar resource: value < 0"
        return None
    if kind == _RANGES:
        if (
            not resource.HasField("ranges")
            or resource.HasField("scalar")
            or resource.HasField("set")
        ):
            return "Invalid ranges resource: exactly 'ranges' must be set"
        ordered = sorted((item.begin, item.end) for item in resource.ranges.range)
        for begin, end in ordered:
            if begin > end:
                return f"Invalid ranges resource: begin {begin} > end {end}"
        for (_, previous_end), (begin, _) in itertools.pairwise(ordered):
            if begin <= previous_end:
                return "Invalid ranges resource: overlapping ranges"
        return None
    if kind == _SET:
        if (
            not resource.HasField("set")
            or resource.HasField("scalar")
            or resource.HasField("ranges")
        ):
            return "Invalid set resource: exactly 'set' must be set"
        if len(set(resource.set.item)) != len(resource.set.item):
            return "Invalid set resource: duplicated elements"
        return None
    return "Unsupported resource type (resources are SCALAR, RANGES or SET)"


def validate_resource(resource: mesos_pb2.Resource) -> str | None:
    """Why `resource` is invalid (Mesos' `Resources::validate`), or None when it is valid.

    Accepts both the pre- and the post-refinement reservation formats.
    """
    if not resource.name:
        return "Empty resource name"
    value_error = _validate_value(resource)
    if value_error is not None:
        return value_error
    if resource.HasField("disk") and resource.name != "disk":
        return f"DiskInfo should not be set for {resource.name} resource"
    reservation_error = _validate_reservations(resource)
    if reservation_error is not None:
        return reservation_error
    if resource.HasField("shared") and not (
        resource.HasField("disk") and resource.disk.HasField("persistence")
    ):
        return "Persistent volumes are the only supported shared resources"
    return None


def validate_resources(resources: Iterable[mesos_pb2.Resource]) -> str | None:
    """The first resource's error, prefixed with its name, or None when all are valid."""
    for resource in resources:
        error = validate_resource(resource)
        if error is not None:
            return f"Invalid resource '{resource.name}': {error}"
    return None


# --------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------

_Copies: TypeAlias = dict[tuple[_Key, _Amount], int]


def _add_entry(amounts: dict[_Key, _Amount], copies: _Copies, key: _Key, amount: _Amount) -> None:
    if key.splittable:
        current = amounts.get(key)
        amounts[key] = amount if current is None else _amount_plus(current, amount)
    else:
        whole = (key, amount)
        copies[whole] = copies.get(whole, 0) + 1


class Resources:
    """An immutable collection of resources with Mesos' arithmetic.

    `Resources(list_of_protos)` accepts both reservation formats. Like Mesos it silently
    drops resources that are invalid (check first with `validate_resources` where the
    input comes from outside) and ones that are empty (zero scalars, no ranges/items).
    Iterating yields fresh `mesos_pb2.Resource` messages in the post-refinement format.
    """

    __slots__ = ("_amounts", "_copies", "_hash", "_quantities", "_scalars")

    _amounts: dict[_Key, _Amount]
    _copies: _Copies
    _hash: int | None
    _scalars: dict[str, float] | None
    _quantities: dict[str, float] | None

    def __init__(self, resources: Iterable[mesos_pb2.Resource] = ()) -> None:
        amounts: dict[_Key, _Amount] = {}
        copies: _Copies = {}
        for resource in resources:
            if validate_resource(resource) is not None:
                continue
            amount = _amount_of(resource)
            if not _is_empty_amount(amount):
                _add_entry(amounts, copies, _key_of(resource), amount)
        self._amounts = amounts
        self._copies = copies
        self._hash = None
        self._scalars = None
        self._quantities = None

    @classmethod
    def _of(cls, amounts: dict[_Key, _Amount], copies: _Copies) -> Resources:
        made = cls.__new__(cls)
        made._amounts = amounts
        made._copies = copies
        made._hash = None
        made._scalars = None
        made._quantities = None
        return made

    # ------------------------------------------------------------------ arithmetic

    def __add__(self, other: Resources) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        if not other:
            return self
        if not self:
            return other
        amounts = dict(self._amounts)
        for key, amount in other._amounts.items():
            current = amounts.get(key)
            amounts[key] = amount if current is None else _amount_plus(current, amount)
        copies = dict(self._copies)
        for whole, count in other._copies.items():
            copies[whole] = copies.get(whole, 0) + count
        return Resources._of(amounts, copies)

    def __sub__(self, other: Resources) -> Resources:
        """What remains of `self` after taking `other`; what `self` lacks is ignored."""
        if not isinstance(other, Resources):
            return NotImplemented
        if not other or not self:
            return self
        amounts = dict(self._amounts)
        for key, amount in other._amounts.items():
            current = amounts.get(key)
            if current is None:
                continue
            remaining = _amount_minus(current, amount)
            if _is_empty_amount(remaining):
                del amounts[key]
            else:
                amounts[key] = remaining
        copies = dict(self._copies)
        for whole, count in other._copies.items():
            current_count = copies.get(whole)
            if current_count is None:
                continue
            if current_count > count:
                copies[whole] = current_count - count
            else:
                del copies[whole]
        return Resources._of(amounts, copies)

    def contains(self, other: Resources) -> bool:
        """Whether `other` can be taken out of `self` whole (same identities, enough of each)."""
        if self is other or (
            # Equal collections are common (a refused offer against the same free
            # resources) and a dict comparison settles them at C speed.
            len(self._amounts) == len(other._amounts)
            and self._amounts == other._amounts
            and self._copies == other._copies
        ):
            return True
        for key, amount in other._amounts.items():
            mine = self._amounts.get(key)
            if mine is None or not _amount_contains(mine, amount):
                return False
        return all(self._copies.get(whole, 0) >= count for whole, count in other._copies.items())

    def __le__(self, other: Resources) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return other.contains(self)

    def __ge__(self, other: Resources) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self.contains(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self._amounts == other._amounts and self._copies == other._copies

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((frozenset(self._amounts.items()), frozenset(self._copies.items())))
        return self._hash

    def is_empty(self) -> bool:
        return not self._amounts and not self._copies

    def __bool__(self) -> bool:
        return bool(self._amounts) or bool(self._copies)

    def __len__(self) -> int:
        """How many `Resource` messages iterating yields."""
        return len(self._amounts) + sum(self._copies.values())

    def __iter__(self) -> Iterator[mesos_pb2.Resource]:
        for key, amount in self._amounts.items():
            yield _proto_of(key, amount)
        for (key, amount), count in self._copies.items():
            for _ in range(count):
                yield _proto_of(key, amount)

    def to_list(self) -> list[mesos_pb2.Resource]:
        return list(self)

    # ------------------------------------------------------------------ filters

    def _select(self, keep: Callable[[_Key], bool]) -> Resources:
        return Resources._of(
            {key: amount for key, amount in self._amounts.items() if keep(key)},
            {whole: count for whole, count in self._copies.items() if keep(whole[0])},
        )

    def _rekey(self, change: Callable[[_Key], _Key]) -> Resources:
        amounts: dict[_Key, _Amount] = {}
        copies: _Copies = {}
        for key, amount in self._amounts.items():
            _add_entry(amounts, copies, change(key), amount)
        for (key, amount), count in self._copies.items():
            whole = (change(key), amount)
            copies[whole] = copies.get(whole, 0) + count
        return Resources._of(amounts, copies)

    def filter(self, keep: Callable[[mesos_pb2.Resource], bool]) -> Resources:
        """The resources for which `keep` (given a fresh message) returns True."""
        return self._select(lambda key: keep(_proto_of(key, _placeholder_amount(key))))

    def named(self, name: str) -> Resources:
        return self._select(lambda key: key.name == name)

    def unreserved(self) -> Resources:
        return self._select(lambda key: not key.reservations)

    def reserved(self, role: str | None = None) -> Resources:
        """Reserved resources; with `role`, only those whose reservation is for exactly it."""
        if role is None:
            return self._select(lambda key: bool(key.reservations))
        return self._select(
            lambda key: bool(key.reservations) and key.reservations[-1].role == role
        )

    def allocatable_to(self, role: str) -> Resources:
        """What a framework in `role` may be offered: unreserved resources plus those
        reserved for `role` or for one of its ancestors ("a" reservations serve "a/b")."""

        def allocatable(key: _Key) -> bool:
            if not key.reservations:
                return True
            reserved_for = key.reservations[-1].role
            return role == reserved_for or is_strict_subrole(role, reserved_for)

        return self._select(allocatable)

    def revocable(self) -> Resources:
        return self._select(lambda key: key.revocable)

    def non_revocable(self) -> Resources:
        return self._select(lambda key: not key.revocable)

    def shared(self) -> Resources:
        return self._select(lambda key: key.shared)

    def non_shared(self) -> Resources:
        return self._select(lambda key: not key.shared)

    def persistent_volumes(self) -> Resources:
        return self._select(
            lambda key: key.disk is not None and not key.splittable and _has_persistence(key)
        )

    def refined_reservations(self) -> Resources:
        """Resources whose reservation stack is deeper than one (refined reservations)."""
        return self._select(lambda key: len(key.reservations) > 1)

    def reservations_by_role(self) -> dict[str, Resources]:
        """Reserved resources grouped by the role they are reserved for (the stack's top)."""
        roles = {key.reservations[-1].role for key in self._keys() if key.reservations}
        return {role: self.reserved(role) for role in sorted(roles)}

    def to_unreserved(self) -> Resources:
        """The same resources with every reservation removed."""
        return self._rekey(lambda key: key._replace(reservations=()))

    # ------------------------------------------------------------------ allocation info

    def allocations(self) -> dict[str, Resources]:
        """Allocated resources grouped by `allocation_info.role` (kept on the resources)."""
        roles = {key.allocation_role for key in self._keys() if key.allocation_role is not None}
        return {role: self._allocated_to(role) for role in sorted(roles)}

    def _allocated_to(self, role: str) -> Resources:
        return self._select(lambda key: key.allocation_role == role)

    def unallocated(self) -> Resources:
        """Resources that carry no `allocation_info`."""
        return self._select(lambda key: key.allocation_role is None)

    def with_allocation_role(self, role: str) -> Resources:
        """The same resources with `allocation_info.role` set to `role` on each."""
        return self._rekey(lambda key: key._replace(allocation_role=role))

    def without_allocation(self) -> Resources:
        """The same resources with `allocation_info` removed."""
        if all(key.allocation_role is None for key in self._keys()):
            return self
        return self._rekey(lambda key: key._replace(allocation_role=None))

    # ------------------------------------------------------------------ quantities

    def _keys(self) -> Iterator[_Key]:
        yield from self._amounts
        for key, _ in self._copies:
            yield key

    def names(self) -> frozenset[str]:
        return frozenset(key.name for key in self._keys())

    def scalars(self) -> dict[str, float]:
        """Total of every scalar resource by name, whatever its reservation or role."""
        if self._scalars is None:
            milli: dict[str, int] = {}
            for key, amount in self._amounts.items():
                if isinstance(amount, int):
                    milli[key.name] = milli.get(key.name, 0) + amount
            for (key, amount), count in self._copies.items():
                if isinstance(amount, int):
                    milli[key.name] = milli.get(key.name, 0) + amount * count
            self._scalars = {name: value / _MILLI_PER_UNIT for name, value in milli.items()}
        return dict(self._scalars)

    def scalar(self, name: str) -> float:
        """Total of the scalar resource `name` (0.0 when there is none)."""
        if self._scalars is None:
            self.scalars()
        assert self._scalars is not None
        return self._scalars.get(name, 0.0)

    def quantities(self) -> dict[str, float]:
        """Per name: scalar totals, how many numbers ranges hold, how many items sets hold."""
        return dict(self._quantity_totals())

    def _quantity_totals(self) -> dict[str, float]:
        if self._quantities is None:
            totals: dict[str, float] = {}
            for key, amount in self._amounts.items():
                totals[key.name] = totals.get(key.name, 0.0) + _amount_quantity(amount)
            for (key, amount), count in self._copies.items():
                totals[key.name] = totals.get(key.name, 0.0) + _amount_quantity(amount) * count
            self._quantities = {name: round(value, 3) for name, value in totals.items()}
        return self._quantities

    def contains_quantities(self, wanted: Mapping[str, float]) -> bool:
        """Whether, ignoring reservations and other metadata, there is at least `wanted`."""
        have = self._quantity_totals()
        return all(
            _to_milli(have.get(name, 0.0)) >= _to_milli(amount) for name, amount in wanted.items()
        )

    def ranges(self, name: str) -> list[tuple[int, int]]:
        """Every range of the ranges resource `name`, merged across identities."""
        pairs: list[tuple[int, int]] = []
        for key, amount in self._amounts.items():
            if key.name == name and isinstance(amount, tuple):
                pairs.extend(amount)
        for (key, amount), _count in self._copies.items():
            if key.name == name and isinstance(amount, tuple):
                pairs.extend(amount)
        return list(_coalesce(pairs))

    def set_items(self, name: str) -> frozenset[str]:
        """Every item of the set resource `name`, across identities."""
        items: set[str] = set()
        for key, amount in self._amounts.items():
            if key.name == name and isinstance(amount, frozenset):
                items |= amount
        for (key, amount), _count in self._copies.items():
            if key.name == name and isinstance(amount, frozenset):
                items |= amount
        return frozenset(items)

    def shrink_scalars(self, caps: Mapping[str, float]) -> Resources:
        """At most `caps[name]` of each capped scalar (taken in order); the rest untouched.

        Unsplittable resources (volumes) are kept only if they fit whole.
        """
        left = {name: _to_milli(cap) for name, cap in caps.items()}
        amounts: dict[_Key, _Amount] = {}
        copies: _Copies = {}
        for key, amount in self._amounts.items():
            room = left.get(key.name)
            if room is None or not isinstance(amount, int):
                amounts[key] = amount
                continue
            taken = min(amount, max(room, 0))
            left[key.name] = room - taken
            if taken > 0:
                amounts[key] = taken
        for (key, amount), count in self._copies.items():
            room = left.get(key.name)
            if room is None or not isinstance(amount, int):
                copies[(key, amount)] = count
                continue
            fitting = min(count, max(room, 0) // amount) if amount > 0 else count
            left[key.name] = room - fitting * amount
            if fitting > 0:
                copies[(key, amount)] = fitting
        return Resources._of(amounts, copies)

    # ------------------------------------------------------------------ display

    def __str__(self) -> str:
        return ";".join(_describe(key, amount) for key, amount in self._entries())

    def __repr__(self) -> str:
        return f"Resources({str(self)!r})"

    def _entries(self) -> Iterator[tuple[_Key, _Amount]]:
        yield from self._amounts.items()
        for (key, amount), count in self._copies.items():
            for _ in range(count):
                yield key, amount


def _has_persistence(key: _Key) -> bool:
    if key.disk is None:
        return False
    disk = mesos_pb2.Resource.DiskInfo()
    disk.ParseFromString(key.disk)
    return disk.HasField("persistence")


def _placeholder_amount(key: _Key) -> _Amount:
    # `filter` predicates look at identity; a token amount keeps the message valid.
    if key.type == _SCALAR:
        return 0
    if key.type == _RANGES:
        return ()
    return frozenset()


def _describe(key: _Key, amount: _Amount) -> str:
    qualifiers: list[str] = []
    if key.reservations:
        qualifiers.append(",".join(reservation.role for reservation in key.reservations))
    if key.allocation_role is not None:
        qualifiers.append(f"allocated: {key.allocation_role}")
    if key.revocable:
        qualifiers.append("revocable")
    if key.shared:
        qualifiers.append("shared")
    if key.disk is not None:
        qualifiers.append("disk")
    label = key.name + (f"({'; '.join(qualifiers)})" if qualifiers else "")
    if isinstance(amount, int):
        return f"{label}:{_format_scalar(amount)}"
    if isinstance(amount, tuple):
        return f"{label}:[{','.join(f'{begin}-{end}' for begin, end in amount)}]"
    return f"{label}:{{{','.join(sorted(amount))}}}"


# --------------------------------------------------------------------------------------
# Parsing: `--resources`, `--attributes`
# --------------------------------------------------------------------------------------


def _parse_value(text: str, *, context: str) -> mesos_pb2.Value:
    """Mesos' value syntax: `[a-b,c-d]` ranges, `{x,y}` sets, numbers, else text."""
    stripped = text.strip()
    if not stripped:
        raise ResourceParseError(f"{context}: empty value")
    value = mesos_pb2.Value()
    if stripped.startswith("["):
        if not stripped.endswith("]") or stripped.count("[") != 1 or stripped.count("]") != 1:
            raise ResourceParseError(f"{context}: mismatched brackets in '{stripped}'")
        value.type = _RANGES
        for part in stripped[1:-1].split(","):
            if not part.strip():
                continue
            bounds = part.split("-")
            try:
                if len(bounds) != 2:
                    raise ValueError
                begin, end = (int(bound.strip()) for bound in bounds)
            except ValueError:
                raise ResourceParseError(
                    f"{context}: expected ranges like [31000-32000], got '{part.strip()}'"
                ) from None
            if begin < 0 or end < 0:
                raise ResourceParseError(f"{context}: range bounds must be non-negative")
            value.ranges.range.add(begin=begin, end=end)
        return value
    if stripped.startswith("{"):
        if not stripped.endswith("}") or stripped.count("{") != 1 or stripped.count("}") != 1:
            raise ResourceParseError(f"{context}: mismatched braces in '{stripped}'")
        value.type = _SET
        value.set.item.extend(item.strip() for item in stripped[1:-1].split(",") if item.strip())
        return value
    if any(bracket in stripped for bracket in "[]{}"):
        raise ResourceParseError(f"{context}: unexpected bracket in '{stripped}'")
    try:
        number = float(stripped)
    except ValueError:
        value.type = _TEXT
        value.text.value = stripped
        return value
    value.type = _SCALAR
    value.scalar.value = number
    return value


def _split_name_and_role(head: str, *, context: str) -> tuple[str, str | None]:
    head = head.strip()
    if "(" not in head:
        return head, None
    name, _, rest = head.partition("(")
    if not rest.endswith(")") or "(" in rest or ")" in rest[:-1]:
        raise ResourceParseError(f"{context}: bad parentheses (expected 'name(role)')")
    return name.strip(), rest[:-1].strip()


def _parse_text_resources(text: str, default_role: str) -> list[mesos_pb2.Resource]:
    parsed: list[mesos_pb2.Resource] = []
    for token in text.split(";"):
        token = token.strip()
        if not token:
            continue
        context = f"bad resource '{token}'"
        head, colon, body = token.partition(":")
        if not colon or ":" in body:
            raise ResourceParseError(f"{context}: expected exactly one ':' as in 'cpus:4'")
        name, role = _split_name_and_role(head, context=context)
        if not name:
            raise ResourceParseError(f"{context}: empty resource name")
        value = _parse_value(body, context=context)
        if value.type == _TEXT:
            raise ResourceParseError(
                f"{context}: value must be a number, [a-b,...] ranges or a {{x,...}} set"
            )
        resource = mesos_pb2.Resource(name=name, type=value.type, role=role or default_role)
        if value.type == _SCALAR:
            resource.scalar.CopyFrom(value.scalar)
        elif value.type == _RANGES:
            resource.ranges.CopyFrom(value.ranges)
        else:
            resource.set.CopyFrom(value.set)
        error = validate_resource(resource)
        if error is not None:
            raise ResourceParseError(f"{context}: {error}")
        parsed.append(resource)
    return parsed


def _parse_json_resources(text: str, default_role: str) -> list[mesos_pb2.Resource]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResourceParseError(f"bad resources JSON: {exc.msg} at offset {exc.pos}") from None
    if not isinstance(document, list):
        raise ResourceParseError("bad resources JSON: expected an array of Resource objects")
    parsed: list[mesos_pb2.Resource] = []
    for position, item in enumerate(document):
        context = f"bad resource #{position} in JSON"
        if not isinstance(item, dict):
            raise ResourceParseError(f"{context}: expected an object")
        try:
            # Mesos' lenient JSON rules (numbers in strings, a lone value for a list).
            resource = from_json_value(item, mesos_pb2.Resource)
        except JsonConversionError as exc:
            raise ResourceParseError(f"{context}: {exc}") from None
        if not resource.HasField("role") and not resource.reservations:
            resource.role = default_role
        error = validate_resource(resource)
        if error is not None:
            raise ResourceParseError(f"{context} ('{resource.name}'): {error}")
        parsed.append(resource)
    return parsed


def parse_resources(text: str, default_role: str = "*") -> Resources:
    """Parse `--resources`: a JSON array of Resource, or `cpus:4;mem(eng):1024;...`.

    Resources without a role get `default_role` (a static reservation unless `"*"`).
    Raises ResourceParseError with a one-line reason.
    """
    role_error = validate_role(default_role)
    if role_error is not None:
        raise ResourceParseError(f"bad default role: {role_error}")
    stripped = text.strip()
    if stripped.startswith("["):
        return Resources(_parse_json_resources(stripped, default_role))
    return Resources(_parse_text_resources(stripped, default_role))


def parse_attributes(text: str) -> list[mesos_pb2.Attribute]:
    """Parse `--attributes`: `rack:r1;zone:2;ids:[1-3]` into text/scalar/ranges attributes."""
    attributes: list[mesos_pb2.Attribute] = []
    for token in text.split(";"):
        token = token.strip()
        if not token:
            continue
        context = f"bad attribute '{token}'"
        name, colon, body = token.partition(":")
        name = name.strip()
        if not colon or not name:
            raise ResourceParseError(f"{context}: expected 'name:value'")
        value = _parse_value(body, context=context)
        if value.type == _SET:
            raise ResourceParseError(f"{context}: set values are not supported for attributes")
        attribute = mesos_pb2.Attribute(name=name, type=value.type)
        if value.type == _SCALAR:
            attribute.scalar.CopyFrom(value.scalar)
        elif value.type == _RANGES:
            attribute.ranges.CopyFrom(value.ranges)
        else:
            attribute.text.CopyFrom(value.text)
        attributes.append(attribute)
    return attributes


# Below these totals the agent offers half instead of leaving a fixed reserve (spec 5.2).
_MEM_RESERVE_MB: Final = 1024.0
_MEM_HALVING_BELOW_MB: Final = 2048.0
_DISK_RESERVE_MB: Final = 5120.0
_DISK_HALVING_BELOW_MB: Final = 10240.0


def default_agent_resources(cpu_count: int, mem_total_mb: float, disk_total_mb: float) -> Resources:
    """What an agent offers when `--resources` does not say (Mesos' defaults, spec 5.2).

    mem: total minus 1 GB, or half when under 2 GB; disk: total minus 5 GB, or half when
    under 10 GB; ports [31000-32000]. All unreserved.
    """

    def usable(total: float, reserve: float, halving_below: float) -> float:
        return total / 2 if total < halving_below else total - reserve

    def scalar(name: str, amount: float) -> mesos_pb2.Resource:
        resource = mesos_pb2.Resource(name=name, type=_SCALAR)
        resource.scalar.value = amount
        return resource

    ports = mesos_pb2.Resource(name="ports", type=_RANGES)
    ports.ranges.range.add(begin=DEFAULT_PORT_RANGE[0], end=DEFAULT_PORT_RANGE[1])
    return Resources(
        [
            scalar("cpus", float(cpu_count)),
            scalar("mem", usable(mem_total_mb, _MEM_RESERVE_MB, _MEM_HALVING_BELOW_MB)),
            scalar("disk", usable(disk_total_mb, _DISK_RESERVE_MB, _DISK_HALVING_BELOW_MB)),
            ports,
        ]
    )


# --------------------------------------------------------------------------------------
# Wire formats (spec 1.7, Mesos' convertResourceFormat)
# --------------------------------------------------------------------------------------


def _upgraded(resource: mesos_pb2.Resource) -> mesos_pb2.Resource:
    converted = mesos_pb2.Resource()
    converted.CopyFrom(resource)
    if not converted.reservations:
        for reservation in _reservations_of(resource):
            _set_reservation(converted.reservations.add(), reservation)
    converted.ClearField("role")
    converted.ClearField("reservation")
    return converted


def to_post_refinement(resources: Iterable[mesos_pb2.Resource]) -> list[mesos_pb2.Resource]:
    """Copies in the post-refinement format: reservations only in the `reservations` stack."""
    return [_upgraded(resource) for resource in resources]


def to_pre_refinement(resources: Iterable[mesos_pb2.Resource]) -> list[mesos_pb2.Resource]:
    """Copies in the pre-refinement format (`role` plus `reservation` for dynamic ones),
    for frameworks without RESERVATION_REFINEMENT. Raises ResourceError for refined
    reservations, which that format cannot express."""
    converted: list[mesos_pb2.Resource] = []
    for resource in resources:
        upgraded = _upgraded(resource)
        if len(upgraded.reservations) > 1:
            raise ResourceError(
                f"Resource '{resource.name}' has a refined reservation, which the "
                "pre-refinement format cannot express"
            )
        _set_single_reservation_fields(upgraded)
        upgraded.ClearField("reservations")
        converted.append(upgraded)
    return converted


def to_endpoint_format(resources: Iterable[mesos_pb2.Resource]) -> list[mesos_pb2.Resource]:
    """Copies in the operator/endpoint format: the `reservations` stack, plus `role` and
    `reservation` when the stack has at most one entry."""
    converted: list[mesos_pb2.Resource] = []
    for resource in resources:
        upgraded = _upgraded(resource)
        if len(upgraded.reservations) <= 1:
            _set_single_reservation_fields(upgraded)
        converted.append(upgraded)
    return converted


def _set_single_reservation_fields(resource: mesos_pb2.Resource) -> None:
    if not resource.reservations:
        resource.role = "*"
        return
    reservation = resource.reservations[0]
    resource.role = reservation.role
    if reservation.type == _DYNAMIC:
        resource.reservation.SetInParent()
        if reservation.HasField("principal"):
            resource.reservation.principal = reservation.principal
        if reservation.HasField("labels"):
            resource.reservation.labels.CopyFrom(reservation.labels)
