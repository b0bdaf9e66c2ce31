"""`--resources` and `--attributes` parsing, and the agent's default resources."""

from __future__ import annotations

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.resources import (
    ResourceParseError,
    Resources,
    default_agent_resources,
    parse_attributes,
    parse_resources,
)
from tests.unit.resources.builders import ranges, scalar, set_of, static


def test_text_syntax() -> None:
    parsed = parse_resources("cpus:4;mem(eng):1024;ports:[31000-32000];disks:{a,b}")
    assert parsed == Resources(
        [
            scalar("cpus", 4),
            scalar("mem", 1024, reservations=[static("eng")]),
            ranges("ports", (31000, 32000)),
            set_of("disks", "a", "b"),
        ]
    )


def test_text_syntax_tolerates_whitespace_and_empty_tokens() -> None:
    parsed = parse_resources(" cpus : 2 ; ;ports:[1-2, 4-5]; disks:{ a , b };")
    assert parsed.ranges("ports") == [(1, 2), (4, 5)]
    assert parsed.set_items("disks") == {"a", "b"}
    assert parsed.scalar("cpus") == 2


def test_default_role_applies_to_resources_without_one() -> None:
    parsed = parse_resources("cpus:1;mem(*):32;disk(ops):5", default_role="eng")
    assert parsed.reserved("eng").scalars() == {"cpus": 1}
    assert parsed.unreserved().scalars() == {"mem": 32}
    assert parsed.reserved("ops").scalars() == {"disk": 5}


def test_repeated_names_add_up() -> None:
    assert parse_resources("cpus:1;cpus:2").scalar("cpus") == 3


def test_empty_text_is_no_resources() -> None:
    assert parse_resources("").is_empty()


def test_json_array() -> None:
    text = (
        '[{"name":"cpus","type":"SCALAR","scalar":{"value":2}},'
        '{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":5}]},'
        '"role":"eng","unknown_key":true}]'
    )
    parsed = parse_resources(text)
    assert parsed.unreserved().scalars() == {"cpus": 2}
    assert parsed.reserved("eng").ranges("ports") == [(1, 5)]


def test_json_gets_the_default_role() -> None:
    parsed = parse_resources('[{"name":"cpus","type":"SCALAR","scalar":{"value":2}}]', "eng")
    assert parsed.reserved("eng").scalar("cpus") == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cpus:abc", "must be a number"),
        ("cpus", "exactly one ':'"),
        ("cpus:1:2", "exactly one ':'"),
        ("cpus(eng:1", "parentheses"),
        ("cpus(/eng):1", "cannot start with a slash"),
        (":1", "empty resource name"),
        ("cpus:-1", "value < 0"),
        ("ports:[5-1]", "begin 5 > end 1"),
        ("ports:[1-5,3-7]", "overlapping"),
        ("ports:[a-b]", "expected ranges"),
        ("ports:[1-2", "mismatched brackets"),
        ("disks:{a,a}", "duplicated"),
        ("disks:{a", "mismatched braces"),
        ("cpus:nan", "finite"),
        ("[not json", "bad resources JSON"),
        ('{"name":"cpus"}', ""),
        ('[{"name":"cpus","type":"SCALAR"}]', "exactly 'scalar'"),
        ('[{"type":"SCALAR","scalar":{"value":1}}]', "Missing required fields: name"),
        ('[{"name":"cpus","type":"SCALAR","scalar":{"value":"x"}}]', "bad resource #0"),
        ('{"a": 1}', ""),
        ("[1]", "expected an object"),
    ],
)
def test_errors_are_one_line_value_errors(text: str, fragment: str) -> None:
    with pytest.raises(ResourceParseError) as raised:
        parse_resources(text)
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert "\n" not in message
    assert fragment in message


def test_bad_default_role_is_rejected() -> None:
    with pytest.raises(ResourceParseError, match="default role"):
        parse_resources("cpus:1", default_role="a//b")


def test_attributes() -> None:
    attributes = parse_attributes("rack:r1;zone:2;ids:[1-3, 7-9];os:ubuntu-22.04")
    assert [attribute.name for attribute in attributes] == ["rack", "zone", "ids", "os"]
    rack, zone, ids, os_name = attributes
    assert rack.type == mesos_pb2.Value.TEXT and rack.text.value == "r1"
    assert zone.type == mesos_pb2.Value.SCALAR and zone.scalar.value == 2
    assert ids.type == mesos_pb2.Value.RANGES
    assert [(r.begin, r.end) for r in ids.ranges.range] == [(1, 3), (7, 9)]
    assert os_name.text.value == "ubuntu-22.04"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("rack", "name:value"), (":r1", "name:value"), ("s:{a,b}", "set values"), ("a:", "empty")],
)
def test_attribute_errors(text: str, fragment: str) -> None:
    with pytest.raises(ResourceParseError, match=fragment):
        parse_attributes(text)


def test_default_agent_resources_leave_a_reserve_on_big_machines() -> None:
    defaults = default_agent_resources(8, 16384, 102400)
    assert defaults.scalars() == {"cpus": 8, "mem": 16384 - 1024, "disk": 102400 - 5120}
    assert defaults.ranges("ports") == [(31000, 32000)]
    assert defaults.unreserved() == defaults


def test_default_agent_resources_halve_small_machines() -> None:
    defaults = default_agent_resources(1, 1500, 8000)
    assert defaults.scalars() == {"cpus": 1, "mem": 750, "disk": 4000}
    at_thresholds = default_agent_resources(1, 2048, 10240)
    assert at_thresholds.scalars() == {"cpus": 1, "mem": 1024, "disk": 5120}
