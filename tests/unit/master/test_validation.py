"""Scheduler call, FrameworkInfo and operator call validation, with Mesos' messages."""

from __future__ import annotations

from typing import Any

import pytest

from mesoslite.master.validation import (
    preserve_immutable_fields,
    validate_framework_info,
    validate_framework_update,
    validate_operator_call,
    validate_scheduler_call,
    validate_subscription,
    validate_suppressed_roles,
)
from mesoslite.proto import master_pb2, mesos_pb2, scheduler_pb2
from mesoslite.wire.json_codec import from_json


def call(body: dict[str, Any]) -> scheduler_pb2.Call:
    return from_json(body, scheduler_pb2.Call)


def info(**fields: Any) -> mesos_pb2.FrameworkInfo:
    return from_json({"user": "u", "name": "n", **fields}, mesos_pb2.FrameworkInfo)


MULTI_ROLE = [{"type": "MULTI_ROLE"}]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "Expecting 'type' to be present"),
        ({"type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
        (
            {
                "type": "SUBSCRIBE",
                "subscribe": {"framework_info": {"user": "u", "name": "n"}},
                "framework_id": {"value": "x"},
            },
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        ({"type": "ACCEPT"}, "Expecting 'framework_id' to be present"),
        ({"type": "ACCEPT", "framework_id": {"value": "f"}}, "Expecting 'accept' to be present"),
        ({"type": "TEARDOWN", "framework_id": {"value": "f"}}, None),
        ({"type": "REVIVE", "framework_id": {"value": "f"}}, None),
        ({"type": "UNKNOWN", "framework_id": {"value": "f"}}, None),
        (
            {
                "type": "ACKNOWLEDGE",
                "framework_id": {"value": "f"},
                "acknowledge": {
                    "agent_id": {"value": "a"},
                    "task_id": {"value": "t"},
                    "uuid": "AAAA",
                },
            },
            "Not a valid UUID",
        ),
        (
            {
                "type": "ACKNOWLEDGE_OPERATION_STATUS",
                "framework_id": {"value": "f"},
                "acknowledge_operation_status": {
                    "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
                    "operation_id": {"value": "o"},
                },
            },
            "Expecting 'agent_id' to be present",
        ),
        (
            {
                "type": "UPDATE_FRAMEWORK",
                "framework_id": {"value": "f"},
                "update_framework": {
                    "framework_info": {"user": "u", "name": "n", "id": {"value": "g"}}
                },
            },
            "'framework_id' differs from 'update_framework.framework_info.id'",
        ),
    ],
)
def test_scheduler_call_validation(body: dict[str, Any], error: str | None) -> None:
    assert validate_scheduler_call(call(body)) == error


def test_subscribe_principal_must_match_authenticated_one() -> None:
    subscribe = call(
        {
            "type": "SUBSCRIBE",
            "subscribe": {"framework_info": {"user": "u", "name": "n", "principal": "a"}},
        }
    )
    assert validate_scheduler_call(subscribe, principal="a") is None
    assert validate_scheduler_call(subscribe, principal="b") == (
        "Authenticated principal 'b' does not match principal 'a' set in `FrameworkInfo`"
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, None),
        ({"role": "eng"}, None),
        (
            {"roles": ["a"]},
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable",
        ),
        (
            {"capabilities": MULTI_ROLE, "role": "a"},
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable",
        ),
        (
            {"capabilities": MULTI_ROLE, "roles": ["a", "a"]},
            "'FrameworkInfo.roles' contains duplicate items: { a }",
        ),
        ({"capabilities": MULTI_ROLE, "roles": ["a", "b/c"]}, None),
        ({"id": {"value": "a/b"}}, "'a/b' contains invalid characters"),
        ({"id": {"value": ""}}, None),
        ({"failover_timeout": 1e300}, "The framework failover_timeout (1e+300) is invalid"),
        (
            {"offer_filters": {"r": {"min_allocatable_resources": {"quantities": [{}]}}}},
            "Resource quantities must contain at least one quantity",
        ),
        (
            {
                "offer_filters": {
                    "r": {
                        "min_allocatable_resources": {
                            "quantities": [{"quantities": {"cpus": {"value": -1}}}]
                        }
                    }
                }
            },
            "Invalid resource quantity for 'cpus': Negative values not supported",
        ),
    ],
)
def test_framework_info_validation(fields: dict[str, Any], error: str | None) -> None:
    assert validate_framework_info(info(**fields)) == error


@pytest.mark.parametrize("role", ["", "/a", "a/", "a//b", "a/./b", "-a", "a b", ".", ".."])
def test_invalid_roles_are_refused(role: str) -> None:
    error = validate_framework_info(info(role=role))
    assert error is not None and error.startswith("'FrameworkInfo.role' is not a valid role: ")


def test_subscription_rules() -> None:
    assert (
        validate_subscription(
            info(), ["x"], roles_whitelist=None, root_submissions=True, is_completed=False
        )
        == "Suppressed role 'x' is not contained in the list of roles"
    )
    assert (
        validate_subscription(
            info(), [], roles_whitelist=None, root_submissions=True, is_completed=True
        )
        == "Framework has been removed"
    )
    assert (
        validate_subscription(
            info(role="eng"), [], roles_whitelist={"ops"}, root_submissions=True, is_completed=False
        )
        == "Roles { eng } are not present in master's --roles"
    )
    # "*" is always allowed.
    assert (
        validate_subscription(
            info(), [], roles_whitelist={"ops"}, root_submissions=True, is_completed=False
        )
        is None
    )


def test_update_rules() -> None:
    old = info(principal="p", checkpoint=True)
    assert validate_framework_update(old, info(principal="q", checkpoint=True)) == (
        "Changing framework's principal is not allowed."
    )
    assert validate_framework_update(old, info(principal="p", user="x", checkpoint=True)) == (
        "Updating 'FrameworkInfo.user' is unsupported; attempted to update from 'u' to 'x'"
    )
    assert validate_framework_update(old, info(principal="p")) == (
        "Updating 'FrameworkInfo.checkpoint' is unsupported; attempted to update from 'true'"
        " to 'false'"
    )
    new = info(principal="p", user="x")
    preserve_immutable_fields(old, new)
    assert new.user == "u" and new.checkpoint
    assert validate_framework_update(old, new) is None


def test_suppressed_roles_subset() -> None:
    assert validate_suppressed_roles(["a"], ["a"]) is None
    assert validate_suppressed_roles(["a"], ["b", "c"]) == (
        "Suppressed roles { b, c } are not contained in the set of roles"
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "Expecting 'type' to be present"),
        ({"type": "GET_STATE"}, None),
        ({"type": "TEARDOWN"}, "Expecting 'teardown' to be present"),
        ({"type": "GET_METRICS"}, "Expecting 'get_metrics' to be present"),
        (
            {
                "type": "GROW_VOLUME",
                "grow_volume": {
                    "volume": {"name": "disk", "type": "SCALAR", "scalar": {"value": 1}},
                    "addition": {"name": "disk", "type": "SCALAR", "scalar": {"value": 1}},
                },
            },
            "Expecting 'agent_id' to be present; only agent default resources are supported"
            " right now",
        ),
    ],
)
def test_operator_call_validation(body: dict[str, Any], error: str | None) -> None:
    assert validate_operator_call(from_json(body, master_pb2.Call)) == error
