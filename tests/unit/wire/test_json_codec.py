"""The JSON codec against the rules of spec section 1.7, on a test-only schema."""

from __future__ import annotations

import json
import math
from types import ModuleType
from typing import Any

import pytest

from mesoslite.wire.json_codec import (
    JsonConversionError,
    JsonParseError,
    WireError,
    from_json,
    from_json_value,
    to_json_bytes,
    to_json_dict,
)


def conversion_error(pb_type: Any, data: Any) -> str:
    with pytest.raises(JsonConversionError) as info:
        from_json(data, pb_type)
    assert isinstance(info.value, WireError)
    return info.value.message


# ---------------------------------------------------------------- parsing: leniency


def test_unknown_keys_are_ignored_at_every_level(pb: ModuleType) -> None:
    message = from_json(
        {"nope": 1, "leaf": {"text": "t", "junk": [1, 2]}, "leaves": [{"x": {"y": None}}]},
        pb.Everything,
    )
    assert message.leaf.text == "t"
    assert len(message.leaves) == 1


def test_null_means_unset(pb: ModuleType) -> None:
    message = from_json('{"text": null, "leaf": null, "texts": null, "i32": null}', pb.Everything)
    assert not message.HasField("text")
    assert not message.HasField("leaf")
    assert list(message.texts) == []


def test_empty_object_sets_a_message_field(pb: ModuleType) -> None:
    assert from_json('{"leaf": {}}', pb.Everything).HasField("leaf")


def test_integers_from_numbers_and_numeric_strings(pb: ModuleType) -> None:
    message = from_json(
        {"i32": "-5", "i64": "9223372036854775807", "u64": 18446744073709551615, "u32": 7.0},
        pb.Everything,
    )
    assert message.i32 == -5
    assert message.i64 == 2**63 - 1
    assert message.u64 == 2**64 - 1
    assert message.u32 == 7


def test_integer_errors(pb: ModuleType) -> None:
    assert "'i32'" in conversion_error(pb.Everything, {"i32": "five"})
    assert "out of range" in conversion_error(pb.Everything, {"i32": 2**31})
    assert "out of range" in conversion_error(pb.Everything, {"u64": -1})
    assert "boolean" in conversion_error(pb.Everything, {"i64": True})
    conversion_error(pb.Everything, {"i64": {"value": 1}})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(1, 1.0), (2.5, 2.5), ("3.25", 3.25), ("Infinity", math.inf), ("-Infinity", -math.inf)],
)
def test_doubles(pb: ModuleType, raw: Any, expected: float) -> None:
    assert from_json({"dbl": raw}, pb.Everything).dbl == expected


def test_double_errors(pb: ModuleType) -> None:
    conversion_error(pb.Everything, {"dbl": "lots"})
    conversion_error(pb.Everything, {"dbl": True})


@pytest.mark.parametrize(
    ("raw", "expected"), [(True, True), (False, False), ("true", True), ("false", False)]
)
def test_bools(pb: ModuleType, raw: Any, expected: bool) -> None:
    message = from_json({"flag": raw}, pb.Everything)
    assert message.HasField("flag")
    assert message.flag is expected


def test_bool_errors(pb: ModuleType) -> None:
    conversion_error(pb.Everything, {"flag": 1})
    conversion_error(pb.Everything, {"flag": "yes"})


def test_string_must_be_a_string(pb: ModuleType) -> None:
    assert "'text'" in conversion_error(pb.Everything, {"text": 5})


def test_enums_by_name(pb: ModuleType) -> None:
    message = from_json({"color": "GREEN", "colors": ["RED", "GREEN"]}, pb.Everything)
    assert message.color == pb.GREEN
    assert list(message.colors) == [pb.RED, pb.GREEN]


def test_enum_as_number_is_an_error(pb: ModuleType) -> None:
    assert "'color'" in conversion_error(pb.Everything, {"color": 1})


def test_unknown_enum_name_drops_an_optional_field(pb: ModuleType) -> None:
    message = from_json({"color": "PURPLE", "colors": ["RED", "PURPLE"]}, pb.Everything)
    assert not message.HasField("color")
    assert list(message.colors) == [pb.RED]


def test_unknown_enum_name_fails_a_required_field(pb: ModuleType) -> None:
    error = conversion_error(pb.Strict, {"color": "PURPLE", "id": {"value": "a"}})
    assert "PURPLE" in error


def test_bytes_are_base64(pb: ModuleType) -> None:
    assert from_json({"data": "AP8="}, pb.Everything).data == b"\x00\xff"


@pytest.mark.parametrize("bad", ["AP8", "A P8=", "@@@@", "é", 12])
def test_invalid_base64_is_an_error(pb: ModuleType, bad: Any) -> None:
    assert "'data'" in conversion_error(pb.Everything, {"data": bad})


def test_single_value_for_a_repeated_field_is_a_one_element_list(pb: ModuleType) -> None:
    message = from_json(
        {"texts": "one", "numbers": "7", "leaves": {"text": "x"}, "colors": "RED"}, pb.Everything
    )
    assert list(message.texts) == ["one"]
    assert list(message.numbers) == [7]
    assert [leaf.text for leaf in message.leaves] == ["x"]
    assert list(message.colors) == [pb.RED]


def test_array_for_a_non_repeated_field_is_an_error(pb: ModuleType) -> None:
    assert "array" in conversion_error(pb.Everything, {"leaf": [{"text": "x"}]})
    assert "array" in conversion_error(pb.Everything, {"text": ["x"]})


def test_maps_are_objects_of_value_messages(pb: ModuleType) -> None:
    message = from_json(
        {
            "limits": {"cpus": {"value": 2.0}, "mem": {"value": "Infinity"}},
            "tags": {"a": "b"},
            "by_number": {"3": "three"},
        },
        pb.Everything,
    )
    assert message.limits["cpus"].value == 2.0
    assert message.limits["mem"].value == math.inf
    assert dict(message.tags) == {"a": "b"}
    assert dict(message.by_number) == {3: "three"}


def test_map_errors(pb: ModuleType) -> None:
    # The scheduler doc's `"limits": {"cpus": "Infinity"}` is wrong for the v1 API.
    assert "limits[cpus]" in conversion_error(pb.Everything, {"limits": {"cpus": "Infinity"}})
    conversion_error(pb.Everything, {"limits": [{"value": 1.0}]})
    conversion_error(pb.Everything, {"by_number": {"x": "y"}})


def test_message_field_needs_an_object(pb: ModuleType) -> None:
    assert "'leaf'" in conversion_error(pb.Everything, {"leaf": "text"})


def test_error_paths_name_nested_and_indexed_fields(pb: ModuleType) -> None:
    error = conversion_error(
        pb.Everything, {"child": {"leaves": [{}, {"ids": [{"value": "a"}, {"value": 3}]}]}}
    )
    assert "'child.leaves[1].ids[1].value'" in error


def test_missing_required_fields_anywhere_are_listed(pb: ModuleType) -> None:
    error = conversion_error(
        pb.Strict, {"color": "RED", "id": {}, "ids": [{"value": "ok"}, {}], "child": {"ids": {}}}
    )
    assert error.startswith("Missing required fields: ")
    listed = error.removeprefix("Missing required fields: ").split(", ")
    assert set(listed) == {
        "id.value",
        "ids[1].value",
        "child.color",
        "child.id",
        "child.ids[0].value",
    }


def test_missing_required_field_at_top_level(pb: ModuleType) -> None:
    assert conversion_error(pb.Strict, {}) == "Missing required fields: color, id"


def test_invalid_json_text_is_a_parse_error(pb: ModuleType) -> None:
    for text in ['{"a":', "", b"\xff\xfe", "[" * 100000]:
        with pytest.raises(JsonParseError):
            from_json(text, pb.Everything)


@pytest.mark.parametrize("text", ["[]", "1", '"s"', "null"])
def test_json_that_is_not_an_object_is_a_conversion_error(pb: ModuleType, text: str) -> None:
    conversion_error(pb.Everything, text)


def test_from_json_accepts_text_bytes_and_decoded_objects(pb: ModuleType) -> None:
    expected = pb.Everything(text="é")
    assert from_json('{"text": "\\u00e9"}', pb.Everything) == expected
    assert from_json('{"text": "é"}'.encode(), pb.Everything) == expected
    assert from_json({"text": "é"}, pb.Everything) == expected
    assert from_json_value({"text": "é"}, pb.Everything) == expected


def test_oneof_members(pb: ModuleType) -> None:
    message = from_json({"second": "4"}, pb.Everything)
    assert message.WhichOneof("choice") == "second"


# ---------------------------------------------------------------- serialisation


def test_only_set_fields_are_written(pb: ModuleType) -> None:
    assert to_json_dict(pb.Everything()) == {}
    assert to_json_dict(pb.Everything(text="", i32=0)) == {"i32": 0, "text": ""}


def test_explicit_non_deprecated_defaults_are_written(pb: ModuleType) -> None:
    assert to_json_dict(pb.Defaults()) == {
        "timeout": 0.0,
        "checkpoint": False,
        "shell": True,
        "color": "GREEN",
        "port": 5050,
        "big": 5,
        "blob": "aGk=",
        "refuse": 5.0,
    }


def test_deprecated_default_written_only_when_set(pb: ModuleType) -> None:
    assert "role" not in to_json_dict(pb.Defaults())
    assert to_json_dict(pb.Defaults(role="eng"))["role"] == "eng"


def test_set_values_override_defaults(pb: ModuleType) -> None:
    out = to_json_dict(pb.Defaults(shell=False, timeout=2.5, color=pb.RED))
    assert (out["shell"], out["timeout"], out["color"]) == (False, 2.5, "RED")


def test_int64_written_as_numbers(pb: ModuleType) -> None:
    text = to_json_bytes(pb.Everything(i64=-(2**63), u64=2**64 - 1, numbers=[1, 2]))
    assert text == b'{"i64":-9223372036854775808,"u64":18446744073709551615,"numbers":[1,2]}'


def test_doubles_always_carry_a_decimal_point(pb: ModuleType) -> None:
    assert to_json_bytes(pb.Everything(dbl=15)) == b'{"dbl":15.0}'


def test_non_finite_doubles_are_written_as_strings(pb: ModuleType) -> None:
    out = to_json_bytes(pb.Everything(limits={"mem": {"value": math.inf}}, dbl=-math.inf))
    assert out == b'{"dbl":"-Infinity","limits":{"mem":{"value":"Infinity"}}}'


def test_float32_written_shortest(pb: ModuleType) -> None:
    assert to_json_dict(pb.Everything(flt=0.1)) == {"flt": 0.1}


def test_enums_bytes_maps_written(pb: ModuleType) -> None:
    message = pb.Everything(
        color=pb.RED,
        colors=[pb.GREEN],
        data=b"\x00\xff",
        tags={"b": "2", "a": "1"},
        by_number={3: "c"},
    )
    assert to_json_dict(message) == {
        "data": "AP8=",
        "color": "RED",
        "colors": ["GREEN"],
        "tags": {"a": "1", "b": "2"},
        "by_number": {"3": "c"},
    }


def test_empty_repeated_and_maps_are_omitted(pb: ModuleType) -> None:
    message = pb.Everything(texts=[], tags={})
    assert to_json_dict(message) == {}


def test_fields_follow_declaration_order(pb: ModuleType) -> None:
    # `late` (30) is declared before `early` (23).
    assert list(to_json_dict(pb.Everything(early="e", late="l", text="t"))) == [
        "text",
        "late",
        "early",
    ]


def test_json_bytes_are_compact_ascii_without_newlines(pb: ModuleType) -> None:
    text = to_json_bytes(pb.Everything(text="h\u00e9\n\u2603 \U0001f600", texts=["a\r\nb"]))
    assert text.isascii()
    assert b"\n" not in text and b"\r" not in text and b": " not in text and b", " not in text
    assert json.loads(text)["text"] == "h\u00e9\n\u2603 \U0001f600"


def test_empty_submessage_is_written_as_empty_object(pb: ModuleType) -> None:
    message = pb.Everything()
    message.leaf.SetInParent()
    assert to_json_bytes(message) == b'{"leaf":{}}'


# ---------------------------------------------------------------- round trips


def test_round_trip_everything(pb: ModuleType) -> None:
    message = pb.Everything(
        i32=-1,
        i64=2**40,
        u32=4,
        u64=2**63,
        s64=-9,
        dbl=0.5,
        flag=False,
        text="x\u00e9",
        data=bytes(range(256)),
        color=pb.GREEN,
        colors=[pb.RED, pb.GREEN],
        texts=["a", "b"],
        numbers=[-1, 0, 1],
        leaf={"text": "t", "id": {"value": "i"}, "ids": [{"value": "a"}]},
        leaves=[{"text": "1"}, {}],
        limits={"cpus": {"value": 1.5}},
        tags={"k": "v"},
        by_number={-1: "neg"},
        child={"child": {"text": "deep"}},
        first="one",
        late="l",
        early="e",
    )
    assert from_json(to_json_bytes(message), pb.Everything) == message


def test_round_trip_defaults_keeps_values(pb: ModuleType) -> None:
    # Writing defaults makes them explicit on the way back; the values are unchanged.
    back = from_json(to_json_bytes(pb.Defaults()), pb.Defaults)
    assert back.shell is True and back.port == 5050 and back.HasField("shell")
