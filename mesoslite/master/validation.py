"""Validation of what schedulers and operators send, with Mesos' own error texts
(`src/master/validation.cpp`): clients log these messages and people search for them.

Every function returns the error message, or None when the input is valid.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping

from mesoslite.master.ids import validate_id
from mesoslite.master.state import framework_roles
from mesoslite.proto import master_pb2, mesos_pb2, scheduler_pb2
from mesoslite.resources import validate_role

__all__ = [
    "preserve_immutable_fields",
    "validate_framework_info",
    "validate_framework_update",
    "validate_offer_constraint_roles",
    "validate_operator_call",
    "validate_scheduler_call",
    "validate_subscription",
    "validate_suppressed_roles",
]

Call = scheduler_pb2.Call
Capability = mesos_pb2.FrameworkInfo.Capability

# Scheduler calls and the member each must carry (TEARDOWN, REVIVE, SUPPRESS need none).
_SCHEDULER_CALL_MEMBERS: dict[int, str] = {
    Call.ACCEPT: "accept",
    Call.DECLINE: "decline",
    Call.ACCEPT_INVERSE_OFFERS: "accept_inverse_offers",
    Call.DECLINE_INVERSE_OFFERS: "decline_inverse_offers",
    Call.KILL: "kill",
    Call.SHUTDOWN: "shutdown",
    Call.ACKNOWLEDGE: "acknowledge",
    Call.ACKNOWLEDGE_OPERATION_STATUS: "acknowledge_operation_status",
    Call.RECONCILE: "reconcile",
    Call.RECONCILE_OPERATIONS: "reconcile_operations",
    Call.MESSAGE: "message",
    Call.REQUEST: "request",
    Call.UPDATE_FRAMEWORK: "update_framework",
}

UUID_SIZE_BYTES = 16


def validate_scheduler_call(call: scheduler_pb2.Call, principal: str | None = None) -> str | None:
    """`validation::scheduler::call::validate` (the body already parsed completely)."""
    if not call.HasField("type"):
        return "Expecting 'type' to be present"
    if call.type == Call.SUBSCRIBE:
        if not call.HasField("subscribe"):
            return "Expecting 'subscribe' to be present"
        info = call.subscribe.framework_info
        if _id_or_none(info, "id") != _id_or_none(call, "framework_id"):
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        if principal is not None and info.HasField("principal") and principal != info.principal:
            return (
                f"Authenticated principal '{principal}' does not match principal "
                f"'{info.principal}' set in `FrameworkInfo`"
            )
        return None
    if not call.HasField("framework_id"):
        return "Expecting 'framework_id' to be present"
    member = _SCHEDULER_CALL_MEMBERS.get(call.type)
    if member is not None and not call.HasField(member):  # type: ignore[arg-type]
        return f"Expecting '{member}' to be present"
    if call.type == Call.ACKNOWLEDGE and len(call.acknowledge.uuid) != UUID_SIZE_BYTES:
        return "Not a valid UUID"
    if call.type == Call.ACKNOWLEDGE_OPERATION_STATUS:
        if len(call.acknowledge_operation_status.uuid) != UUID_SIZE_BYTES:
            return "Not a valid UUID"
        if not call.acknowledge_operation_status.HasField("agent_id"):
            return "Expecting 'agent_id' to be present"
    if (
        call.type == Call.UPDATE_FRAMEWORK
        and call.framework_id.value != call.update_framework.framework_info.id.value
    ):
        return "'framework_id' differs from 'update_framework.framework_info.id'"
    return None


def _id_or_none(message: mesos_pb2.FrameworkInfo | scheduler_pb2.Call, name: str) -> str | None:
    # Mesos compares the optional FrameworkIDs as messages: unset equals unset.
    if not message.HasField(name):  # type: ignore[arg-type]
        return None
    value: str = getattr(message, name).value
    return value


def validate_framework_info(info: mesos_pb2.FrameworkInfo) -> str | None:
    """`validation::framework::validate`: roles, id, offer filters, failover timeout."""
    error = _validate_roles(info)
    if error is None and info.HasField("id") and info.id.value:
        error = validate_id(info.id.value)
    if error is None:
        error = _validate_offer_filters(info)
    if error is None and not _is_valid_duration(info.failover_timeout):
        timeout = _stringify_double(info.failover_timeout)
        error = f"The framework failover_timeout ({timeout}) is invalid"
    return error


def _validate_roles(info: mesos_pb2.FrameworkInfo) -> str | None:
    multi_role = any(c.type == Capability.MULTI_ROLE for c in info.capabilities)
    if multi_role:
        if info.HasField("role"):
            return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
        duplicates = sorted({role for role in info.roles if list(info.roles).count(role) > 1})
        if duplicates:
            return f"'FrameworkInfo.roles' contains duplicate items: {_stringify_set(duplicates)}"
        for role in info.roles:
            error = validate_role(role)
            if error is not None:
                return f"'FrameworkInfo.roles' contains invalid role: {error}"
        return None
    if info.roles:
        return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
    error = validate_role(info.role)
    if error is not None:
        return f"'FrameworkInfo.role' is not a valid role: {error}"
    return None


def _validate_offer_filters(info: mesos_pb2.FrameworkInfo) -> str | None:
    for offer_filters in info.offer_filters.values():
        for quantities in offer_filters.min_allocatable_resources.quantities:
            if not quantities.quantities:
                return "Resource quantities must contain at least one quantity"
            for name, scalar in quantities.quantities.items():
                error = _validate_input_scalar(scalar.value)
                if error is not None:
                    return f"Invalid resource quantity for '{name}': {error}"
    return None


def _validate_input_scalar(value: float) -> str | None:
    if math.isnan(value):
        return "NaN not supported"
    if math.isinf(value):
        return "Infinite values not supported"
    if value < 0:
        return "Negative values not supported"
    return None


_MAX_DURATION_S = (2**63 - 1) / 1e9


def _is_valid_duration(seconds: float) -> bool:
    # stout's Duration::create: representable as int64 nanoseconds.
    return math.isfinite(seconds) and -_MAX_DURATION_S <= seconds <= _MAX_DURATION_S


def _stringify_double(value: float) -> str:
    return f"{value:g}"


def _stringify_set(items: Iterable[str]) -> str:
    # stout prints a set as "{ a, b }".
    return "{ " + ", ".join(items) + " }"


def validate_suppressed_roles(
    roles: Collection[str], suppressed_roles: Iterable[str]
) -> str | None:
    invalid = sorted(set(suppressed_roles) - set(roles))
    if invalid:
        return f"Suppressed roles {_stringify_set(invalid)} are not contained in the set of roles"
    return None


def validate_offer_constraint_roles(
    roles: Collection[str], constraints: scheduler_pb2.OfferConstraints
) -> str | None:
    for role in constraints.role_constraints:
        if role not in roles:
            return (
                f"Offer constraints specify `role_constraints` for a role '{role}'"
                "not contained in the set of roles"
            )
    return None


def validate_subscription(
    info: mesos_pb2.FrameworkInfo,
    suppressed_roles: Iterable[str],
    *,
    roles_whitelist: Collection[str] | None,
    root_submissions: bool,
    is_completed: bool,
) -> str | None:
    """`Master::validateFramework`: what a SUBSCRIBE must satisfy beyond the message."""
    error = validate_framework_info(info)
    if error is not None:
        return error
    roles = framework_roles(info)
    if roles_whitelist is not None:
        invalid = sorted({r for r in roles if r != "*" and r not in roles_whitelist})
        if invalid:
            return f"Roles {_stringify_set(invalid)} are not present in master's --roles"
    for role in suppressed_roles:
        if role not in roles:
            return f"Suppressed role '{role}' is not contained in the list of roles"
    if info.user == "root" and not root_submissions:
        return "User 'root' is not allowed to run frameworks without --root_submissions set"
    if is_completed:
        return "Framework has been removed"
    return None


def preserve_immutable_fields(old: mesos_pb2.FrameworkInfo, new: mesos_pb2.FrameworkInfo) -> None:
    """On re-subscription `user` and `checkpoint` silently keep their old values."""
    new.user = old.user
    if old.HasField("checkpoint"):
        new.checkpoint = old.checkpoint
    else:
        new.ClearField("checkpoint")


def validate_framework_update(
    old: mesos_pb2.FrameworkInfo, new: mesos_pb2.FrameworkInfo
) -> str | None:
    """`validation::framework::validateUpdate`: fields a framework may never change."""
    old_principal = old.principal if old.HasField("principal") else None
    new_principal = new.principal if new.HasField("principal") else None
    if old_principal != new_principal:
        return "Changing framework's principal is not allowed."
    if new.user != old.user:
        return (
            "Updating 'FrameworkInfo.user' is unsupported"
            f"; attempted to update from '{old.user}' to '{new.user}'"
        )
    if new.checkpoint != old.checkpoint:
        return (
            "Updating 'FrameworkInfo.checkpoint' is unsupported; attempted to update"
            f" from '{_bool(old.checkpoint)}' to '{_bool(new.checkpoint)}'"
        )
    return None


def _bool(value: bool) -> str:
    return "true" if value else "false"


# Operator calls whose member must be present (all others take no parameters).
_OPERATOR_CALL_MEMBERS: Mapping[int, str] = {
    value: master_pb2.Call.Type.Name(value).lower()
    for value in (
        master_pb2.Call.GET_METRICS,
        master_pb2.Call.SET_LOGGING_LEVEL,
        master_pb2.Call.LIST_FILES,
        master_pb2.Call.READ_FILE,
        master_pb2.Call.UPDATE_WEIGHTS,
        master_pb2.Call.RESERVE_RESOURCES,
        master_pb2.Call.UNRESERVE_RESOURCES,
        master_pb2.Call.CREATE_VOLUMES,
        master_pb2.Call.DESTROY_VOLUMES,
        master_pb2.Call.GROW_VOLUME,
        master_pb2.Call.SHRINK_VOLUME,
        master_pb2.Call.UPDATE_MAINTENANCE_SCHEDULE,
        master_pb2.Call.START_MAINTENANCE,
        master_pb2.Call.STOP_MAINTENANCE,
        master_pb2.Call.DRAIN_AGENT,
        master_pb2.Call.DEACTIVATE_AGENT,
        master_pb2.Call.REACTIVATE_AGENT,
        master_pb2.Call.UPDATE_QUOTA,
        master_pb2.Call.SET_QUOTA,
        master_pb2.Call.REMOVE_QUOTA,
        master_pb2.Call.TEARDOWN,
        master_pb2.Call.MARK_AGENT_GONE,
    )
}


def validate_operator_call(call: master_pb2.Call) -> str | None:
    """`validation::master::call::validate`."""
    if not call.HasField("type"):
        return "Expecting 'type' to be present"
    member = _OPERATOR_CALL_MEMBERS.get(call.type)
    if member is not None and not call.HasField(member):  # type: ignore[arg-type]
        return f"Expecting '{member}' to be present"
    if call.type in (master_pb2.Call.GROW_VOLUME, master_pb2.Call.SHRINK_VOLUME):
        body = call.grow_volume if call.type == master_pb2.Call.GROW_VOLUME else call.shrink_volume
        if not body.HasField("agent_id"):
            return (
                "Expecting 'agent_id' to be present; only agent default resources "
                "are supported right now"
            )
    return None
