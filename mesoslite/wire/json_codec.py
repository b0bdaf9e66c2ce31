"""JSON <-> protobuf with Mesos' rules (spec section 1.7), not proto3 JSON.

Mesos' stout library differs from `google.protobuf.json_format` in ways clients see:
proto field names (never camelCase), 64-bit integers as JSON numbers, explicit proto2
defaults written out, and a lenient parser (unknown keys ignored, `null` = unset,
numbers in strings, a lone value for a repeated field). This module implements those
rules directly over protobuf descriptors, so it works for any generated message type.

Speed: every descriptor gets a cached plan (one converter per field) the first time it
is seen, so the per-message work is a dictionary walk with no descriptor inspection.
Parsing builds a plain dict of keyword arguments and lets the protobuf runtime's C
constructor build the whole tree in one call.
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from mesoslite.wire.errors import WireError

__all__ = [
    "JsonConversionError",
    "JsonParseError",
    "WireError",
    "from_json",
    "from_json_value",
    "parse_json",
    "to_json_bytes",
    "to_json_dict",
]

M = TypeVar("M", bound=Message)

_FD = FieldDescriptor


class JsonParseError(WireError):
    """The text is not JSON at all."""


class JsonConversionError(WireError):
    """The JSON does not fit the protobuf message type."""


# --------------------------------------------------------------------------------------
# Serialisation (protobuf -> JSON)
# --------------------------------------------------------------------------------------

# A writer turns one protobuf field value into its JSON value; None means "as is".
_Writer = Callable[[Any], Any] | None


def _write_double(value: float) -> Any:
    # `x - x` is 0.0 for finite numbers and NaN for inf/nan. JSON has no literal for
    # the non-finite ones; write the strings our parser (and stout's) reads back.
    if value - value == 0.0:
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_F32 = struct.Struct("<f")


def _write_float(value: float) -> Any:
    # A float32 field reads back as the nearest double (0.1f -> 0.10000000149011612);
    # write the shortest decimal that round-trips through float32 instead.
    if value - value != 0.0:
        return _write_double(value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if _F32.unpack(_F32.pack(candidate))[0] == value:
            return candidate
    return value


def _enum_values(fd: FieldDescriptor) -> list[Any]:
    assert fd.enum_type is not None  # only called for enum fields
    return list(fd.enum_type.values)


def _descriptor_of(message: Message | type[Message]) -> Descriptor:
    # The stubs type DESCRIPTOR as a union with upb's own class; both behave the same.
    return cast(Descriptor, message.DESCRIPTOR)


def _write_bytes(value: bytes) -> str:
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def _map_key_writer(fd: FieldDescriptor) -> Callable[[Any], str]:
    if fd.type == _FD.TYPE_BOOL:
        return lambda key: "true" if key else "false"
    return str


class _WritePlan:
    """How to write one message type; built once per descriptor."""

    __slots__ = ("defaults", "ordered", "writers")

    def __init__(self, descriptor: Descriptor) -> None:
        # fd -> (json name, kind, writer[, key writer]); kind: 0 single, 1 repeated, 2 map
        self.writers: dict[FieldDescriptor, tuple[str, int, _Writer, Callable[[Any], str]]] = {}
        # Unset optional scalars with an explicit, non-deprecated default are written
        # anyway (stout's JSON writer walks every field and asks for its value). Kept as
        # protobuf values so that they go through the same writer as set values.
        self.defaults: list[tuple[FieldDescriptor, Any]] = []
        previous = -1
        self.ordered = True
        for fd in descriptor.fields:
            if fd.number < previous:
                # ListFields() yields field-number order; the JSON wants declaration order.
                self.ordered = False
            previous = fd.number
            self.writers[fd] = _field_writer(fd)
            if (
                not fd.is_repeated
                and fd.has_presence
                and fd.has_default_value
                and fd.type not in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP)
                and fd.containing_oneof is None
                and not fd.GetOptions().deprecated
            ):
                self.defaults.append((fd, fd.default_value))


def _scalar_writer(fd: FieldDescriptor) -> _Writer:
    kind = fd.type
    if kind == _FD.TYPE_DOUBLE:
        return _write_double
    if kind == _FD.TYPE_FLOAT:
        return _write_float
    if kind == _FD.TYPE_BYTES:
        return _write_bytes
    if kind == _FD.TYPE_ENUM:
        names = {v.number: v.name for v in _enum_values(fd)}
        return lambda number: names.get(number, number)
    if kind in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP):
        return _message_to_dict
    return None  # ints, bools and strings are already JSON values


def _field_writer(fd: FieldDescriptor) -> tuple[str, int, _Writer, Callable[[Any], str]]:
    if fd.is_repeated and fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        key_fd = fd.message_type.fields_by_name["key"]
        value_fd = fd.message_type.fields_by_name["value"]
        return (fd.name, 2, _scalar_writer(value_fd), _map_key_writer(key_fd))
    return (fd.name, 1 if fd.is_repeated else 0, _scalar_writer(fd), str)


_write_plans: dict[Descriptor, _WritePlan] = {}


def _write_plan(descriptor: Descriptor) -> _WritePlan:
    plan = _write_plans.get(descriptor)
    if plan is None:
        plan = _write_plans[descriptor] = _WritePlan(descriptor)
    return plan


def _declaration_index(pair: tuple[FieldDescriptor, Any]) -> int:
    return pair[0].index


def _message_to_dict(message: Message) -> dict[str, Any]:
    # Hot path (every event, every subscriber): plain dict lookups, no helper calls.
    plan = _write_plans.get(message.DESCRIPTOR)  # type: ignore[arg-type]
    if plan is None:
        plan = _write_plan(_descriptor_of(message))
    listed: list[tuple[FieldDescriptor, Any]] = message.ListFields()  # type: ignore[assignment]
    if plan.defaults:
        present = {fd for fd, _ in listed}
        missing = [(fd, value) for fd, value in plan.defaults if fd not in present]
        if missing:
            listed = sorted(listed + missing, key=_declaration_index)
        elif not plan.ordered:
            listed.sort(key=_declaration_index)
    elif not plan.ordered:
        listed.sort(key=_declaration_index)

    out: dict[str, Any] = {}
    writers = plan.writers
    for fd, value in listed:
        entry = writers.get(fd)
        if entry is None:  # an extension: not one of the descriptor's own fields
            entry = _field_writer(fd)
        name, kind, writer, key_writer = entry
        if kind == 0:
            out[name] = writer(value) if writer else value
        elif kind == 1:
            out[name] = [writer(item) for item in value] if writer else list(value)
        else:
            out[name] = {
                key_writer(key): (writer(value[key]) if writer else value[key])
                for key in sorted(value)
            }
    return out


def to_json_dict(message: Message) -> dict[str, Any]:
    """The message as Mesos writes it: a JSON-ready dict (see the module docstring)."""
    return _message_to_dict(message)


_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def to_json_bytes(message: Message) -> bytes:
    """Compact, ASCII-only JSON: no raw newline and one byte per character.

    One client slices RecordIO records by byte count after decoding them to `str`, so
    anything but ASCII (or any pretty-printing) corrupts its stream (spec section 0.2).
    """
    return _encoder.encode(_message_to_dict(message)).encode("ascii")


# --------------------------------------------------------------------------------------
# Parsing (JSON -> protobuf)
# --------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A conversion failure with its field path, collected innermost first on the way up.

    Building the path only when something fails keeps the success path free of string
    work.
    """

    def __init__(self, reason: str, segment: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = [segment]


# A reader takes a JSON value and returns what the protobuf constructor accepts for
# the field, or _DROP when the value is to be ignored (an unknown optional enum name).
_Reader = Callable[[Any], Any]
_DROP = object()

_INT_RANGES = {
    _FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    _FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _FD.TYPE_UINT32: (0, 2**32 - 1),
    _FD.TYPE_FIXED32: (0, 2**32 - 1),
    _FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    _FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _FD.TYPE_UINT64: (0, 2**64 - 1),
    _FD.TYPE_FIXED64: (0, 2**64 - 1),
}


class _Fail(Exception):
    """Raised by readers; the field name is attached by the message reader."""


def _int_reader(low: int, high: int) -> _Reader:
    def read(value: Any) -> Any:
        if isinstance(value, bool):
            raise _Fail("expecting an integer, got a boolean")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            # stout converts a JSON number to the field's type, truncating a fraction.
            if value - value != 0.0:
                raise _Fail(f"expecting an integer, got {value}")
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip(), 10)
            except ValueError:
                raise _Fail(f"expecting an integer, got '{value}'") from None
        else:
            raise _Fail(f"expecting an integer, got {_json_kind(value)}")
        if not low <= number <= high:
            raise _Fail(f"integer {number} out of range")
        return number

    return read


def _read_double(value: Any) -> Any:
    if isinstance(value, bool):
        raise _Fail("expecting a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        # float() reads "Infinity", "-Infinity", "NaN" and numeric strings, as stout does.
        try:
            return float(value)
        except ValueError:
            raise _Fail(f"expecting a number, got '{value}'") from None
    raise _Fail(f"expecting a number, got {_json_kind(value)}")


def _read_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise _Fail(f"expecting a boolean, got {_json_kind(value)}")


def _read_string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    raise _Fail(f"expecting a string, got {_json_kind(value)}")


def _read_bytes(value: Any) -> Any:
    if not isinstance(value, str):
        raise _Fail(f"expecting a base64 string, got {_json_kind(value)}")
    try:
        return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _Fail("invalid base64") from None


def _enum_reader(fd: FieldDescriptor, required: bool) -> _Reader:
    numbers = {v.name: v.number for v in _enum_values(fd)}

    def read(value: Any) -> Any:
        if not isinstance(value, str):
            # Mesos wants enum names: a number (even a valid one) is an error.
            raise _Fail(f"expecting an enum name, got {_json_kind(value)}")
        number = numbers.get(value)
        if number is None:
            if required:
                raise _Fail(f"unknown enum value '{value}'")
            return _DROP
        return number

    return read


def _message_reader(descriptor: Descriptor) -> _Reader:
    def read(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _Fail(f"expecting a JSON object, got {_json_kind(value)}")
        return _read_object(value, _read_plan(descriptor))

    return read


def _value_reader(fd: FieldDescriptor) -> _Reader:
    kind = fd.type
    if kind in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP):
        assert fd.message_type is not None
        return _message_reader(fd.message_type)
    if kind == _FD.TYPE_ENUM:
        return _enum_reader(fd, fd.is_required)
    if kind in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return _read_double
    if kind == _FD.TYPE_BOOL:
        return _read_bool
    if kind == _FD.TYPE_STRING:
        return _read_string
    if kind == _FD.TYPE_BYTES:
        return _read_bytes
    low, high = _INT_RANGES[kind]
    return _int_reader(low, high)


def _map_key_reader(fd: FieldDescriptor) -> Callable[[str], Any]:
    if fd.type == _FD.TYPE_STRING:
        return lambda key: key
    return _value_reader(fd)  # ints and bools: the string forms are accepted there


def _field_reader(fd: FieldDescriptor) -> _Reader:
    if fd.is_repeated and fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        read_key = _map_key_reader(fd.message_type.fields_by_name["key"])
        read_value = _value_reader(fd.message_type.fields_by_name["value"])

        def read_map(value: Any) -> Any:
            if not isinstance(value, Mapping):
                raise _Fail(f"expecting a JSON object for a map, got {_json_kind(value)}")
            out = {}
            for key, item in value.items():
                if item is None:
                    continue
                try:
                    converted = read_value(item)
                except _Fail as error:
                    raise _Invalid(str(error), f"[{key}]") from None
                except _Invalid as error:
                    error.path.append(f"[{key}]")
                    raise
                if converted is not _DROP:
                    out[read_key(key)] = converted
            return out

        return read_map

    read_one = _value_reader(fd)
    if not fd.is_repeated:

        def read_single(value: Any) -> Any:
            if isinstance(value, list):
                raise _Fail("not expecting a JSON array")
            return read_one(value)

        return read_single

    def read_list(value: Any) -> Any:
        # stout accepts a single value where an array is expected.
        items = value if isinstance(value, list) else [value]
        out = []
        for index, item in enumerate(items):
            if item is None:
                continue
            try:
                converted = read_one(item)
            except _Fail as error:
                raise _Invalid(str(error), f"[{index}]") from None
            except _Invalid as error:
                error.path.append(f"[{index}]")
                raise
            if converted is not _DROP:
                out.append(converted)
        return out

    return read_list


_read_plans: dict[Descriptor, dict[str, tuple[FieldDescriptor, _Reader]]] = {}


def _read_plan(descriptor: Descriptor) -> dict[str, tuple[FieldDescriptor, _Reader]]:
    plan = _read_plans.get(descriptor)
    if plan is None:
        # Store before filling in: readers of recursive types look the plan up lazily.
        plan = _read_plans[descriptor] = {}
        for fd in descriptor.fields:
            plan[fd.name] = (fd, _field_reader(fd))
    return plan


def _read_object(
    obj: Mapping[str, Any], plan: Mapping[str, tuple[FieldDescriptor, _Reader]]
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in obj.items():
        entry = plan.get(key)
        if entry is None or value is None:
            continue  # unknown keys are ignored and null means unset, at every level
        fd, read = entry
        try:
            converted = read(value)
        except _Fail as error:
            raise _Invalid(str(error), fd.name) from None
        except _Invalid as error:
            error.path.append(fd.name)
            raise
        if converted is not _DROP:
            kwargs[fd.name] = converted
    return kwargs


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    if value is None:
        return "null"
    return type(value).__name__


def parse_json(data: bytes | bytearray | memoryview | str) -> Any:
    """JSON text to Python values; raises JsonParseError."""
    try:
        if isinstance(data, memoryview):
            data = data.tobytes()
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise JsonParseError(str(error)) from None


def from_json(data: bytes | str | Mapping[str, Any], message_type: type[M]) -> M:
    """Parse JSON text, or an already decoded JSON object, into `message_type`.

    Raises JsonParseError for text that is not JSON and JsonConversionError when the
    JSON does not fit the message (including missing required fields).
    """
    if isinstance(data, Mapping):
        return from_json_value(data, message_type)
    return from_json_value(parse_json(data), message_type)


def from_json_value(value: Any, message_type: type[M]) -> M:
    """Like from_json for a decoded JSON value of any kind (only an object fits)."""
    if not isinstance(value, Mapping):
        raise JsonConversionError(f"Expecting a JSON object, got {_json_kind(value)}")
    try:
        kwargs = _read_object(value, _read_plan(_descriptor_of(message_type)))
    except _Invalid as error:
        # Segments arrive innermost first; list and map positions attach without a dot.
        path = "".join(
            part if part.startswith("[") or not index else f".{part}"
            for index, part in enumerate(reversed(error.path))
        )
        raise JsonConversionError(f"Invalid value for field '{path}': {error.reason}") from None
    except RecursionError:
        raise JsonConversionError("JSON nested too deeply") from None
    try:
        message = message_type(**kwargs)
    except (ValueError, TypeError) as error:
        # Only reachable for values the readers let through, e.g. a string that is not
        # valid UTF-8 (a lone surrogate escape).
        raise JsonConversionError(str(error)) from None
    if not message.IsInitialized():
        missing = ", ".join(cast(Any, message).FindInitializationErrors())
        raise JsonConversionError(f"Missing required fields: {missing}")
    return message
