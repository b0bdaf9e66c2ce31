"""Validation of ACCEPT calls: offer ids, tasks, task groups and their executors, with
Mesos' error texts (`src/master/validation.cpp`, `src/common/validation.cpp`).

Every function returns the error message, or None when the input is valid. The master
has already put the offer's allocation role on every resource and the framework id on
every executor before calling these (as Mesos does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mesoslite.master.ids import validate_id
from mesoslite.master.state import Agent, Framework
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources, validate_resources

__all__ = [
    "validate_executor_info",
    "validate_offer_ids",
    "validate_task",
    "validate_task_group",
]

_DISK = "Invalid DiskInfo: "
MIN_CPUS = 0.01
MIN_MEM_MB = 32.0

ExecutorInfo = mesos_pb2.ExecutorInfo
HealthCheck = mesos_pb2.HealthCheck
CheckInfo = mesos_pb2.CheckInfo


# ---------------------------------------------------------------------------- offers


def validate_offer_ids(
    offer_ids: Sequence[str], offers: Mapping[str, mesos_pb2.Offer], framework_id: str
) -> str | None:
    """`validation::offer::validate`: unique, outstanding, this framework's, one role,
    one agent."""
    seen: set[str] = set()
    for offer_id in offer_ids:
        if offer_id in seen:
            return f"Duplicate offer {offer_id} in offer list"
        seen.add(offer_id)
    for offer_id in offer_ids:
        if offer_id not in offers:
            return f"Offer {offer_id} is no longer valid"
    for offer_id in offer_ids:
        owner = offers[offer_id].framework_id.value
        if owner != framework_id:
            return (
                f"Offer {offer_id} has invalid framework {owner}"
                f" while framework {framework_id} is expected"
            )
    role: str | None = None
    for offer_id in offer_ids:
        offer_role = offers[offer_id].allocation_info.role
        if role is None:
            role = offer_role
        elif offer_role != role:
            return (
                f"Aggregated offers must be allocated to the same role. Offer {offer_id}"
                f" uses role '{offer_role} but another is using role '{role}"
            )
    agent_id: str | None = None
    for offer_id in offer_ids:
        offer_agent = offers[offer_id].agent_id.value
        if agent_id is None:
            agent_id = offer_agent
        elif offer_agent != agent_id:
            return (
                "Aggregated offers must belong to one single agent. Offer "
                f"{offer_id} uses agent {offer_agent} and agent {agent_id}"
            )
    return None


# ---------------------------------------------------------------------------- resources


def _validate_resources(resources: Iterable[mesos_pb2.Resource]) -> str | None:
    """`resource::validate`."""
    resources = list(resources)
    error = validate_resources(resources)
    if error is not None:
        return f"Invalid resources: {error}"
    gpus = sum(r.scalar.value for r in resources if r.name == "gpus")
    if round(gpus * 1000) % 1000 != 0:
        return "Invalid 'gpus' resource: The 'gpus' resource must be an unsigned integer"
    for resource in resources:
        if not resource.HasField("disk"):
            continue
        disk = resource.disk
        if disk.HasField("persistence"):
            if resource.HasField("revocable"):
                return f"{_DISK}Persistent volumes cannot be created from revocable resources"
            if not resource.reservations and resource.role in ("", "*"):
                return f"{_DISK}Persistent volumes cannot be created from unreserved resources"
            if not disk.HasField("volume"):
                return "Invalid DiskInfo: Expecting 'volume' to be set for persistent volume"
            if disk.volume.HasField("host_path"):
                return "Invalid DiskInfo: Expecting 'host_path' to be unset for persistent volume"
            id_error = validate_id(disk.persistence.id)
            if id_error is not None:
                return f"Invalid DiskInfo: Invalid persistence ID for persistent volume: {id_error}"
        elif disk.HasField("volume"):
            return "Invalid DiskInfo: Non-persistent volume not supported"
        elif not disk.HasField("source"):
            return "Invalid DiskInfo: DiskInfo is set but empty"
    return None


def _validate_single_allocation_role(resources: Iterable[mesos_pb2.Resource]) -> str | None:
    role: str | None = None
    for resource in resources:
        if not resource.allocation_info.HasField("role"):
            return "The resources are not allocated to a role"
        if role is None:
            role = resource.allocation_info.role
        elif resource.allocation_info.role != role:
            return (
                f"The resources have multiple allocation roles ('{resource.allocation_info.role}'"
                f" and '{role}') but only one allocation role is allowed"
            )
    return None


def _validate_revocable_mix(resources: Iterable[mesos_pb2.Resource]) -> str | None:
    resources = list(resources)
    if not any(r.HasField("revocable") for r in resources):
        return None  # the common case, without building a Resources
    collection = Resources(resources)
    revocable = collection.revocable()
    for name in sorted(collection.names()):
        of_name = collection.named(name)
        if of_name.revocable() and of_name != revocable.named(name):
            return f"Cannot use both revocable and non-revocable '{name}' at the same time"
    return None


def _overlapping(parts: Sequence[Resources]) -> bool:
    # Ranges and sets that overlap between parts vanish in the sum: compare quantities.
    if not any(_has_ranges_or_sets(part) for part in parts):
        return False
    total = Resources()
    quantities: dict[str, float] = {}
    for part in parts:
        total = total + part
        for name, amount in part.quantities().items():
            quantities[name] = quantities.get(name, 0.0) + amount
    summed = total.quantities()
    return any(abs(summed.get(name, 0.0) - amount) > 1e-9 for name, amount in quantities.items())


def _has_ranges_or_sets(resources: Resources) -> bool:
    return any(r.type != mesos_pb2.Value.SCALAR for r in resources)


# ---------------------------------------------------------------------------- commands, checks


def _validate_command_info(command: mesos_pb2.CommandInfo) -> str | None:
    Variable = mesos_pb2.Environment.Variable
    for variable in command.environment.variables:
        if variable.type == Variable.SECRET:
            if not variable.HasField("secret"):
                return (
                    f"Environment variable '{variable.name}' of type 'SECRET' must have"
                    " a secret set"
                )
            if variable.HasField("value"):
                return (
                    f"Environment variable '{variable.name}' of type 'SECRET' must not have"
                    " a value set"
                )
        elif variable.type == Variable.VALUE:
            if not variable.HasField("value"):
                return (
                    f"Environment variable '{variable.name}' of type 'VALUE' must have a value set"
                )
            if variable.HasField("secret"):
                return (
                    f"Environment variable '{variable.name}' of type 'VALUE' must not have"
                    " a secret set"
                )
        else:
            return "Environment variable of type 'UNKNOWN' is not allowed"
    return None


# Volume.Source type -> the member it needs (`common::validation::validateVolume`).
_VOLUME_SOURCE_MEMBERS = {
    mesos_pb2.Volume.Source.DOCKER_VOLUME: ("docker_volume", "DOCKER_VOLUME volume"),
    mesos_pb2.Volume.Source.HOST_PATH: ("host_path", "HOST_PATH volume"),
    mesos_pb2.Volume.Source.SANDBOX_PATH: ("sandbox_path", "SANDBOX_PATH volume"),
    mesos_pb2.Volume.Source.SECRET: ("secret", "SECRET volume"),
    mesos_pb2.Volume.Source.CSI_VOLUME: ("csi_volume", "CSI volume"),
}


def _validate_volume(volume: mesos_pb2.Volume) -> str | None:
    sources = sum(volume.HasField(name) for name in ("host_path", "image", "source"))
    if sources != 1:
        return "Only one of them should be set: 'host_path', 'image' and 'source'"
    if not volume.HasField("source"):
        return None
    member = _VOLUME_SOURCE_MEMBERS.get(volume.source.type)
    if member is None:
        return "'source.type' is unknown"
    name, kind = member
    if not volume.source.HasField(name):  # type: ignore[arg-type]
        return f"'source.{name}' is not set for {kind}"
    if name == "csi_volume" and not volume.source.csi_volume.HasField("static_provisioning"):
        return "'source.csi_volume.static_provisioning' is not set for CSI volume"
    return None


def _validate_container_info(container: mesos_pb2.ContainerInfo) -> str | None:
    for volume in container.volumes:
        error = _validate_volume(volume)
        if error is not None:
            return f"Invalid volume: {error}"
    if container.type == mesos_pb2.ContainerInfo.DOCKER:
        if not container.HasField("docker"):
            return "DockerInfo 'docker' is not set for DOCKER typed ContainerInfo"
        if any(parameter.key == "name" for parameter in container.docker.parameters):
            return "Parameter in DockerInfo must not be 'name'"
    return None


def _validate_timing(message: HealthCheck | CheckInfo, names: Sequence[str]) -> str | None:
    for name in names:
        if message.HasField(name) and getattr(message, name) < 0.0:  # type: ignore[arg-type]
            return f"Expecting '{name}' to be non-negative"
    return None


def _validate_health_check(check: mesos_pb2.HealthCheck) -> str | None:
    if not check.HasField("type"):
        return "HealthCheck must specify 'type'"
    if check.type == HealthCheck.COMMAND:
        if not check.HasField("command"):
            return "Expecting 'command' to be set for COMMAND health check"
        if not check.command.HasField("value"):
            kind = "'shell command'" if check.command.shell else "'executable path'"
            return f"Command health check must contain {kind}"
        error = _validate_command_info(check.command)
        if error is not None:
            return f"Health check's `CommandInfo` is invalid: {error}"
    elif check.type == HealthCheck.HTTP:
        if not check.HasField("http"):
            return "Expecting 'http' to be set for HTTP health check"
        http = check.http
        if http.HasField("scheme") and http.scheme not in ("http", "https"):
            return f"Unsupported HTTP health check scheme: '{http.scheme}'"
        if http.HasField("path") and not http.path.startswith("/"):
            return f"The path '{http.path}' of HTTP health check must start with '/'"
    elif check.type == HealthCheck.TCP:
        if not check.HasField("tcp"):
            return "Expecting 'tcp' to be set for TCP health check"
    else:
        return f"'{HealthCheck.Type.Name(check.type)}' is not a valid health check type"
    return _validate_timing(
        check, ("delay_seconds", "grace_period_seconds", "interval_seconds", "timeout_seconds")
    )


def _validate_check(check: mesos_pb2.CheckInfo) -> str | None:
    if not check.HasField("type"):
        return "CheckInfo must specify 'type'"
    if check.type == CheckInfo.COMMAND:
        if not check.HasField("command"):
            return "Expecting 'command' to be set for COMMAND check"
        error = _validate_command_info(check.command.command)
        if error is not None:
            return f"Check's `CommandInfo` is invalid: {error}"
    elif check.type == CheckInfo.HTTP:
        if not check.HasField("http"):
            return "Expecting 'http' to be set for HTTP check"
        if check.http.HasField("path") and not check.http.path.startswith("/"):
            return f"The path '{check.http.path}' of HTTP check must start with '/'"
    elif check.type == CheckInfo.TCP:
        if not check.HasField("tcp"):
            return "Expecting 'tcp' to be set for TCP check"
    else:
        return f"'{CheckInfo.Type.Name(check.type)}' is not a valid check type"
    return _validate_timing(check, ("delay_seconds", "interval_seconds", "timeout_seconds"))


# ---------------------------------------------------------------------------- executors


def validate_executor_info(executor: ExecutorInfo) -> str | None:
    """`executor::validate`: type, id, grace period, command and container."""
    if executor.type == ExecutorInfo.DEFAULT:
        if executor.HasField("command"):
            return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
        if executor.HasField("container"):
            if executor.container.type != mesos_pb2.ContainerInfo.MESOS:
                return "'ExecutorInfo.container.type' must be 'MESOS' for 'DEFAULT' executor"
            if executor.container.mesos.HasField("image"):
                return "'ExecutorInfo.container.mesos.image' must not be set for 'DEFAULT' executor"
    elif executor.type == ExecutorInfo.CUSTOM and not executor.HasField("command"):
        return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
    error = validate_id(executor.executor_id.value)
    if error is not None:
        return error
    if (
        executor.HasField("shutdown_grace_period")
        and executor.shutdown_grace_period.nanoseconds < 0
    ):
        return "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
    if executor.HasField("command"):
        error = _validate_command_info(executor.command)
        if error is not None:
            return f"Executor's `CommandInfo` is invalid: {error}"
    if executor.HasField("container"):
        error = _validate_container_info(executor.container)
        if error is not None:
            return f"Executor's `ContainerInfo` is invalid: {error}"
    return None


def _validate_executor_for_framework(
    executor: ExecutorInfo, framework: Framework, agent: Agent
) -> str | None:
    """`executor::internal::validate`."""
    error = validate_executor_info(executor)
    if error is not None:
        return error
    if not executor.HasField("framework_id"):
        return "'ExecutorInfo.framework_id' must be set"
    if executor.framework_id.value != framework.id:
        return (
            f"ExecutorInfo has an invalid FrameworkID (Actual: {executor.framework_id.value}"
            f" vs Expected: {framework.id})"
        )
    error = _validate_resources(executor.resources)
    if error is not None:
        return f"Executor uses invalid resources: {error}"
    error = _validate_single_allocation_role(executor.resources)
    if error is not None:
        return f"Invalid executor resources: {error}"
    error = _validate_revocable_mix(executor.resources)
    if error is not None:
        return f"Executor mixes revocable and non-revocable resources: {error}"
    existing = agent.executors.get(framework.id, {}).get(executor.executor_id.value)
    if existing is not None and existing != executor:
        return (
            "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.\n"
            "------------------------------------------------------------\n"
            f"Existing ExecutorInfo:\n{existing}\n"
            "------------------------------------------------------------\n"
            f"ExecutorInfo:\n{executor}\n"
            "------------------------------------------------------------\n"
        )
    return None


# ---------------------------------------------------------------------------- tasks


def _validate_task_fields(
    task: mesos_pb2.TaskInfo, framework: Framework, agent: Agent
) -> str | None:
    """`task::internal::validateTask`: everything but the executor, in Mesos' order."""
    task_id = task.task_id.value
    error = validate_id(task_id)
    if error is not None:
        return error
    if task_id in framework.tasks:
        return f"Task has duplicate ID: {task_id}"
    if task_id in framework.unreachable_tasks:
        return f"Task reuses the ID of an unreachable task: {task_id}"
    if task.agent_id.value != agent.id:
        return f"Task uses invalid agent {task.agent_id.value} while agent {agent.id} is expected"
    if (
        task.HasField("kill_policy")
        and task.kill_policy.HasField("grace_period")
        and task.kill_policy.grace_period.nanoseconds < 0
    ):
        return "Task's 'kill_policy.grace_period' must be non-negative"
    if task.HasField("max_completion_time") and task.max_completion_time.nanoseconds < 0:
        return "Task's `max_completion_time` must be non-negative"
    if task.HasField("check"):
        error = _validate_check(task.check)
        if error is not None:
            return f"Task uses invalid check: {error}"
    if task.HasField("health_check"):
        error = _validate_health_check(task.health_check)
        if error is not None:
            return f"Task uses invalid health check: {error}"
    if not task.resources:
        return "Task uses no resources"
    error = _validate_resources(task.resources)
    if error is not None:
        return f"Task uses invalid resources: {error}"
    error = _validate_single_allocation_role(task.resources)
    if error is not None:
        return f"Invalid task resources: {error}"
    error = _validate_revocable_mix(task.resources)
    if error is not None:
        return f"Task mixes revocable and non-revocable resources: {error}"
    if task.HasField("command"):
        error = _validate_command_info(task.command)
        if error is not None:
            return f"Task's `CommandInfo` is invalid: {error}"
    if task.HasField("container"):
        error = _validate_container_info(task.container)
        if error is not None:
            return f"Task's `ContainerInfo` is invalid: {error}"
    return _validate_limits(task, agent)


def _validate_limits(task: mesos_pb2.TaskInfo, agent: Agent) -> str | None:
    if not task.limits:
        return None
    capable = any(
        c.type == mesos_pb2.AgentInfo.Capability.TASK_RESOURCE_LIMITS for c in agent.capabilities
    )
    if not capable:
        return "Agent is not capable of handling task resource limits"
    if set(task.limits) - {"cpus", "mem"}:
        return "Only cpus and mem may be included in a task's resource limits"
    requested = Resources(task.resources)
    if "cpus" in task.limits:
        if "cpus" not in requested.names():
            return "When a CPU limit is specified, a CPU request must also be specified"
        if task.limits["cpus"].value < requested.scalar("cpus"):
            return "The cpu limit must be greater than or equal to the cpu request"
    if "mem" in task.limits:
        if "mem" not in requested.names():
            return "When a memory limit is specified, a memory request must also be specified"
        if task.limits["mem"].value < requested.scalar("mem"):
            return "The memory limit must be greater than or equal to the memory request"
    return None


def validate_task(
    task: mesos_pb2.TaskInfo, *, framework: Framework, agent: Agent, offered: Resources
) -> str | None:
    """A task of a LAUNCH operation (`task::validate`), against what is still offered."""
    error = _validate_task_fields(task, framework, agent)
    if error is not None:
        return error
    if task.HasField("executor") == task.HasField("command"):
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    task_resources = Resources(task.resources)
    total = task_resources
    if task.HasField("executor"):
        executor = task.executor
        error = _validate_executor_for_framework(executor, framework, agent)
        if error is not None:
            return error
        if executor.HasField("type") and executor.type != ExecutorInfo.CUSTOM:
            return "'ExecutorInfo.type' must be 'CUSTOM'"
        if not executor.HasField("command"):
            return "'ExecutorInfo.command' must be set"
        executor_resources = Resources(executor.resources)
        if executor_resources.shared():
            return (
                f"Executor resources {executor_resources} should not contain any shared resources"
            )
        linux = executor.container.linux_info
        if linux.HasField("share_cgroups") and linux.share_cgroups:
            return "The 'share_cgroups' field cannot be set to 'true' on executor containers"
        if _overlapping([task_resources, executor_resources]):
            return (
                f"There are overlapping resources in the task resources {task_resources}"
                f" and executor resources {executor_resources}"
            )
        error = _validate_revocable_mix([*task.resources, *executor.resources])
        if error is not None:
            return f"Task and its executor mix revocable and non-revocable resources: {error}"
        if not agent.has_executor(framework.id, executor.executor_id.value):
            total = total + executor_resources
    if not offered.contains(total):
        return (
            f"Total resources {_text(total)} required by task and its executor is more than"
            f" available {_text(offered)}"
        )
    linux = task.container.linux_info
    if linux.HasField("share_cgroups") and not linux.share_cgroups:
        return "Only tasks in a task group may have 'share_cgroups' set to 'false'"
    return None


def validate_task_group(
    group: mesos_pb2.TaskGroupInfo,
    executor: ExecutorInfo,
    *,
    framework: Framework,
    agent: Agent,
    offered: Resources,
) -> str | None:
    """A LAUNCH_GROUP operation (`task::group::validate`)."""
    for task in group.tasks:
        error = _validate_group_task(task, framework, agent)
        if error is not None:
            return f"Task '{task.task_id.value}' is invalid: {error}"
    error = _validate_executor_for_framework(executor, framework, agent)
    if error is not None:
        return error
    if not executor.HasField("type"):
        return "'ExecutorInfo.type' must be set"
    if executor.type == ExecutorInfo.UNKNOWN:
        return "Unknown executor type"
    if executor.HasField("container") and executor.container.type == mesos_pb2.ContainerInfo.DOCKER:
        return "Docker ContainerInfo is not supported on the executor"
    for task in group.tasks:
        if task.HasField("executor") and task.executor != executor:
            return (
                f"The `ExecutorInfo` of task '{task.task_id.value}' is different from"
                f" executor '{executor.executor_id.value}'"
            )
    executor_resources = Resources(executor.resources)
    executor_id = executor.executor_id.value
    if "cpus" not in executor_resources.names() or executor_resources.scalar("cpus") < MIN_CPUS:
        cpus = _scalar_or_none(executor_resources, "cpus")
        return (
            f"Executor '{executor_id}' uses less CPUs ({cpus}) than the minimum required"
            f" ({MIN_CPUS:g})"
        )
    if "mem" not in executor_resources.names() or executor_resources.scalar("mem") < MIN_MEM_MB:
        mem = _scalar_or_none(executor_resources, "mem", suffix="MB")
        return (
            f"Executor '{executor_id}' uses less memory ({mem}) than the minimum required"
            f" ({MIN_MEM_MB:g}MB)"
        )
    if "disk" not in executor_resources.names():
        return f"Executor '{executor_id}' uses no disk"
    task_resources = [Resources(task.resources) for task in group.tasks]
    everything = sum(task_resources, Resources()) + executor_resources
    error = _validate_revocable_mix(everything.to_list())
    if error is not None:
        return f"Task group and executor mix revocable and non-revocable resources: {error}"
    if _overlapping([*task_resources, executor_resources]):
        tasks_text = ", ".join(str(r) for r in task_resources)
        return (
            "There are overlapping resources in the task group's task resources"
            f" [ {tasks_text} ] and/or executor resources {executor_resources}"
        )
    total = sum(task_resources, Resources())
    if not agent.has_executor(framework.id, executor_id):
        total = total + executor_resources
    if not offered.contains(total):
        return (
            f"Total resources {_text(total)} required by task group and its executor are more"
            f" than available {_text(offered)}"
        )
    return _validate_group_share_cgroups(group, executor)


def _validate_group_task(
    task: mesos_pb2.TaskInfo, framework: Framework, agent: Agent
) -> str | None:
    error = _validate_task_fields(task, framework, agent)
    if error is not None:
        return error
    if not task.HasField("executor"):
        # The master fills each task's executor in from the group's before validating.
        return "'TaskInfo.executor' must be set"
    if task.HasField("container"):
        if task.container.network_infos and task.health_check.type in (
            HealthCheck.HTTP,
            HealthCheck.TCP,
        ):
            return (
                "HTTP and TCP health checks are not supported for nested containers not"
                " joining parent's network"
            )
        if task.container.type == mesos_pb2.ContainerInfo.DOCKER:
            return "Docker ContainerInfo is not supported on the task"
    if task.limits and not (
        task.container.HasField("linux_info") and not task.container.linux_info.share_cgroups
    ):
        return (
            "Resource limits may only be set for tasks within a task group when the"
            " 'share_cgroups' field is set to 'false'."
        )
    return None


def _validate_group_share_cgroups(
    group: mesos_pb2.TaskGroupInfo, executor: ExecutorInfo
) -> str | None:
    linux = executor.container.linux_info
    if linux.HasField("share_cgroups") and linux.share_cgroups:
        return "The 'share_cgroups' field cannot be set to 'true' on executor containers"
    values = {
        task.container.linux_info.share_cgroups
        if task.container.linux_info.HasField("share_cgroups")
        else True
        for task in group.tasks
    }
    if len(values) > 1:
        return (
            "If set, the value of 'share_cgroups' must be the same for all tasks in each"
            " task group and under a single executor"
        )
    return None


def _scalar_or_none(resources: Resources, name: str, suffix: str = "") -> str:
    if name not in resources.names():
        return "None"
    return f"{resources.scalar(name):g}{suffix}"


def _text(resources: Resources) -> str:
    # Mesos prints empty resources as "{}".
    return str(resources) if resources else "{}"
