"""Validation of the agent API's container calls, with Mesos' messages
(`slave/validation.cpp`): container ids, nesting and cgroup sharing rules.

The call's member is checked for presence by the operator API before this runs.
"""

from __future__ import annotations

from mesoslite.proto import agent_pb2, mesos_pb2

__all__ = ["MAX_CONTAINER_ID_LENGTH", "validate_container_call", "validate_container_id"]

# Mesos' MAX_CONTAINER_ID_LENGTH: a container id names directories and cgroups.
MAX_CONTAINER_ID_LENGTH = 242

_Call = agent_pb2.Call


def validate_container_id(container_id: mesos_pb2.ContainerID) -> str | None:
    value = container_id.value
    if not value:
        return "ID must be non-empty"
    if any(c in "/\\" or not c.isprintable() for c in value):
        return f"'{value}' contains invalid characters"
    if len(value) > MAX_CONTAINER_ID_LENGTH:
        return (
            f"'ContainerID.value' '{value}' exceeds the maximum length ({MAX_CONTAINER_ID_LENGTH})"
        )
    # Periods separate the levels of "<parent>.<child>"; spaces confuse paths and logs.
    if "." in value or " " in value:
        return f"'ContainerID.value' '{value}' contains invalid characters"
    if container_id.HasField("parent"):
        error = validate_container_id(container_id.parent)
        if error is not None:
            return f"'ContainerID.parent' is invalid: {error}"
    return None


def _id_error(member: str, container_id: mesos_pb2.ContainerID) -> str | None:
    error = validate_container_id(container_id)
    return f"'{member}.container_id' is invalid: {error}" if error is not None else None


def _nested_id_error(member: str, container_id: mesos_pb2.ContainerID) -> str | None:
    error = _id_error(member, container_id)
    if error is None and not container_id.HasField("parent"):
        error = f"Expecting '{member}.container_id.parent' to be present"
    return error


def _launch_container_error(launch: _Call.LaunchContainer) -> str | None:
    error = _id_error("launch_container", launch.container_id)
    if error is not None:
        return error
    container_id = launch.container_id
    twice_nested = container_id.HasField("parent") and container_id.parent.HasField("parent")
    linux = launch.container.linux_info
    share_cgroups = linux.share_cgroups if linux.HasField("share_cgroups") else True
    invalid = "'launch_container' is invalid: "
    if twice_nested and launch.resources:
        return invalid + "containers nested at the second level or greater cannot specify resources"
    if twice_nested and launch.limits:
        return (
            invalid
            + "containers nested at the second level or greater cannot specify resource limits"
        )
    if twice_nested and not share_cgroups:
        return (
            invalid + "containers nested at the second level or greater cannot set"
            " 'share_cgroups' to 'false'"
        )
    if not container_id.HasField("parent") and linux.HasField("share_cgroups") and share_cgroups:
        return invalid + "containers without a parent cannot set 'share_cgroups' to 'true'"
    return None


# Calls whose member names a nested container / any container in `container_id`.
_NESTED_ID_MEMBERS = {
    _Call.WAIT_NESTED_CONTAINER: "wait_nested_container",
    _Call.KILL_NESTED_CONTAINER: "kill_nested_container",
    _Call.REMOVE_NESTED_CONTAINER: "remove_nested_container",
}
_ID_MEMBERS = {
    _Call.WAIT_CONTAINER: "wait_container",
    _Call.KILL_CONTAINER: "kill_container",
    _Call.REMOVE_CONTAINER: "remove_container",
    _Call.ATTACH_CONTAINER_OUTPUT: "attach_container_output",
}


def _container_id_of(call: agent_pb2.Call, member: str) -> mesos_pb2.ContainerID:
    container_id: mesos_pb2.ContainerID = getattr(call, member).container_id
    return container_id


def validate_container_call(call: agent_pb2.Call) -> str | None:
    """An error for an invalid container call, None otherwise (and for other calls)."""
    kind = call.type
    if kind == _Call.LAUNCH_CONTAINER:
        return _launch_container_error(call.launch_container)
    if kind == _Call.LAUNCH_NESTED_CONTAINER:
        launch = call.launch_nested_container
        error = _nested_id_error("launch_nested_container", launch.container_id)
        linux = launch.container.linux_info
        if (
            error is None
            and linux.HasField("share_cgroups")
            and not linux.share_cgroups
            and launch.container_id.parent.HasField("parent")
        ):
            error = (
                "'launch_nested_container' is invalid: containers nested at the second level"
                " or greater cannot set 'share_cgroups' to 'false'"
            )
        return error
    if kind == _Call.LAUNCH_NESTED_CONTAINER_SESSION:
        session = call.launch_nested_container_session
        error = _nested_id_error("launch_nested_container_session", session.container_id)
        if (
            error is None
            and session.container.HasField("linux_info")
            and not session.container.linux_info.share_cgroups
        ):
            error = (
                "'launch_nested_container_session.container.linux_info' is invalid:"
                " 'share_cgroups' cannot be set to 'false' for nested container sessions"
            )
        return error
    nested_member = _NESTED_ID_MEMBERS.get(kind)
    if nested_member is not None:
        return _nested_id_error(nested_member, _container_id_of(call, nested_member))
    member = _ID_MEMBERS.get(kind)
    if member is not None:
        return _id_error(member, _container_id_of(call, member))
    if kind == _Call.ATTACH_CONTAINER_INPUT:
        attach = call.attach_container_input
        if not attach.HasField("type"):
            return "Expecting 'attach_container_input.type' to be present"
        if attach.type == _Call.AttachContainerInput.UNKNOWN:
            return "'attach_container_input.type' is unknown"
        if attach.type == _Call.AttachContainerInput.CONTAINER_ID:
            return _id_error("attach_container_input", attach.container_id)
    return None
