"""The master's state as the v1 operator API shows it (`mesos.v1.master.Response`).

Resources appear in the "endpoint" format (both `role`/`reservation` and
`reservations`). These are built on request, never on a hot path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mesoslite.master.state import Agent, Framework
from mesoslite.proto import master_pb2, mesos_pb2
from mesoslite.resources import Resources, to_endpoint_format

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = [
    "agent_allocated",
    "agent_entry",
    "agent_offered",
    "framework_allocated",
    "framework_entry",
    "framework_offered",
    "get_agents",
    "get_executors",
    "get_frameworks",
    "get_master",
    "get_roles",
    "get_state",
    "get_tasks",
    "get_weights",
    "time_info",
]

Response = master_pb2.Response


def time_info(seconds: float) -> mesos_pb2.TimeInfo:
    return mesos_pb2.TimeInfo(nanoseconds=int(seconds * 1e9))


def _endpoint(resources: Iterable[mesos_pb2.Resource]) -> list[mesos_pb2.Resource]:
    return to_endpoint_format(resources)


# ------------------------------------------------------------------ resources in use


def agent_allocated(agent: Agent) -> Resources:
    used = Resources()
    for task in agent.all_tasks():
        used = used + Resources(task.resources)
    for _, executor in agent.all_executors():
        used = used + Resources(executor.resources)
    return used


def agent_offered(master: Master, agent: Agent) -> Resources:
    offered = Resources()
    for offer_id in agent.offer_ids:
        offered = offered + master.state.offers[offer_id].resources
    return offered


def framework_allocated(framework: Framework) -> Resources:
    used = Resources()
    for task in framework.tasks.values():
        used = used + Resources(task.resources)
    for executors in framework.executors.values():
        for executor in executors.values():
            used = used + Resources(executor.resources)
    return used


def framework_offered(master: Master, framework: Framework) -> Resources:
    offered = Resources()
    for offer_id in framework.offer_ids:
        record = master.state.offers.get(offer_id)
        if record is not None:
            offered = offered + record.resources
    return offered


# ------------------------------------------------------------------ entries


def agent_entry(master: Master, agent: Agent) -> Response.GetAgents.Agent:
    entry = Response.GetAgents.Agent(
        active=agent.connected and not agent.deactivated,
        deactivated=agent.deactivated,
        version=agent.version,
        pid=agent.pid,
    )
    entry.agent_info.CopyFrom(agent.info)
    del entry.agent_info.resources[:]
    entry.agent_info.resources.extend(_endpoint(agent.info.resources))
    entry.registered_time.CopyFrom(time_info(agent.registered_time))
    if agent.reregistered_time is not None:
        entry.reregistered_time.CopyFrom(time_info(agent.reregistered_time))
    entry.total_resources.extend(_endpoint(agent.info.resources))
    entry.allocated_resources.extend(_endpoint(agent_allocated(agent)))
    entry.offered_resources.extend(_endpoint(agent_offered(master, agent)))
    entry.capabilities.extend(agent.capabilities)
    return entry


def framework_entry(master: Master, framework: Framework) -> Response.GetFrameworks.Framework:
    entry = Response.GetFrameworks.Framework(
        active=framework.active,
        connected=framework.connected,
        recovered=framework.recovered,
    )
    entry.framework_info.CopyFrom(framework.info)
    entry.registered_time.CopyFrom(time_info(framework.registered_time))
    if framework.reregistered_time is not None:
        entry.reregistered_time.CopyFrom(time_info(framework.reregistered_time))
    if framework.unregistered_time is not None:
        entry.unregistered_time.CopyFrom(time_info(framework.unregistered_time))
    for offer_id in sorted(framework.offer_ids):
        record = master.state.offers.get(offer_id)
        if record is not None:
            entry.offers.add().CopyFrom(record.offer)
    entry.allocated_resources.extend(_endpoint(framework_allocated(framework)))
    entry.offered_resources.extend(_endpoint(framework_offered(master, framework)))
    if framework.offer_constraints is not None:
        entry.offer_constraints.CopyFrom(framework.offer_constraints)
    return entry


# ------------------------------------------------------------------ responses


def get_agents(master: Master) -> Response.GetAgents:
    response = Response.GetAgents()
    for agent in master.state.agents.values():
        response.agents.add().CopyFrom(agent_entry(master, agent))
    response.recovered_agents.extend(master.state.recovered_agents.values())
    return response


def get_frameworks(master: Master) -> Response.GetFrameworks:
    response = Response.GetFrameworks()
    for framework in master.state.frameworks.values():
        response.frameworks.add().CopyFrom(framework_entry(master, framework))
    for framework in master.state.completed_frameworks.values():
        response.completed_frameworks.add().CopyFrom(framework_entry(master, framework))
    return response


def get_tasks(master: Master) -> Response.GetTasks:
    response = Response.GetTasks()
    for framework in master.state.frameworks.values():
        response.tasks.extend(_with_endpoint_resources(framework.tasks.values()))
        response.unreachable_tasks.extend(
            _with_endpoint_resources(framework.unreachable_tasks.values())
        )
        response.completed_tasks.extend(_with_endpoint_resources(framework.completed_tasks))
    for framework in master.state.completed_frameworks.values():
        response.completed_tasks.extend(_with_endpoint_resources(framework.completed_tasks))
    return response


def _with_endpoint_resources(tasks: Iterable[mesos_pb2.Task]) -> list[mesos_pb2.Task]:
    shown = []
    for task in tasks:
        copy = mesos_pb2.Task()
        copy.CopyFrom(task)
        del copy.resources[:]
        copy.resources.extend(_endpoint(task.resources))
        shown.append(copy)
    return shown


def get_executors(master: Master) -> Response.GetExecutors:
    response = Response.GetExecutors()
    for agent in master.state.agents.values():
        for _, executor in agent.all_executors():
            entry = response.executors.add()
            entry.executor_info.CopyFrom(executor)
            entry.agent_id.value = agent.id
    return response


def get_state(master: Master) -> Response.GetState:
    response = Response.GetState()
    response.get_tasks.CopyFrom(get_tasks(master))
    response.get_executors.CopyFrom(get_executors(master))
    response.get_frameworks.CopyFrom(get_frameworks(master))
    response.get_agents.CopyFrom(get_agents(master))
    return response


def get_master(master: Master) -> Response.GetMaster:
    response = Response.GetMaster(start_time=master.start_time, elected_time=master.elected_time)
    response.master_info.CopyFrom(master.info)
    return response


def get_weights(master: Master) -> Response.GetWeights:
    response = Response.GetWeights()
    for role, weight in sorted(master.weights.items()):
        response.weight_infos.add(role=role, weight=weight)
    return response


def known_roles(master: Master) -> dict[str, list[Framework]]:
    """Every role in use (by a framework, a weight or a reservation), with its frameworks."""
    roles: dict[str, list[Framework]] = {role: [] for role in master.weights}
    for framework in master.state.frameworks.values():
        for role in framework.roles:
            roles.setdefault(role, []).append(framework)
    for agent in master.state.agents.values():
        for role in Resources(agent.info.resources).reservations_by_role():
            roles.setdefault(role, [])
    return roles


def get_roles(master: Master) -> Response.GetRoles:
    response = Response.GetRoles()
    allocated_by_role: dict[str, Resources] = {}
    for framework in master.state.frameworks.values():
        for role, resources in framework_allocated(framework).allocations().items():
            allocated_by_role[role] = allocated_by_role.get(role, Resources()) + resources
    for role, frameworks in sorted(known_roles(master).items()):
        entry = response.roles.add(name=role, weight=master.weights.get(role, 1.0))
        for framework in frameworks:
            entry.frameworks.add(value=framework.id)
        entry.resources.extend(_endpoint(allocated_by_role.get(role, Resources())))
    return response
