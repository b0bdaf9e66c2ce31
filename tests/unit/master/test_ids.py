"""Id formats the master hands out, and the rule client-chosen ids follow."""

from __future__ import annotations

import uuid

import pytest

from mesoslite.master.ids import NAME_MAX, IdGenerator, validate_id


def test_formats_follow_mesos() -> None:
    ids = IdGenerator("m")
    assert [ids.framework_id() for _ in range(2)] == ["m-0000", "m-0001"]
    assert [ids.agent_id() for _ in range(2)] == ["m-S0", "m-S1"]
    assert [ids.offer_id() for _ in range(2)] == ["m-O0", "m-O1"]


def test_master_id_is_a_uuid() -> None:
    assert uuid.UUID(IdGenerator().master_id)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", "ID must not be empty"),
        (".", "'.' is disallowed"),
        ("..", "'..' is disallowed"),
        ("a/b", "'a/b' contains invalid characters"),
        ("a\\b", "'a\\b' contains invalid characters"),
        ("a\nb", "'a\nb' contains invalid characters"),
        ("x" * (NAME_MAX + 1), f"ID must not be greater than {NAME_MAX} characters"),
        ("task-1.a_b", None),
        ("x" * NAME_MAX, None),
    ],
)
def test_validate_id(value: str, error: str | None) -> None:
    assert validate_id(value) == error
