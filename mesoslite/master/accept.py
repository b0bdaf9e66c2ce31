"""ACCEPT (wire contract 2.7): validate the offers, apply the operations in order to
what the offers hold, launch what is valid, and give the rest back with the call's
filters.

Validation failures are not HTTP errors: they come back as task updates (TASK_ERROR,
or TASK_LOST/TASK_DROPPED for bad offers) or operation updates (OPERATION_ERROR).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from mesoslite.master.master_updates import master_status
from mesoslite.master.offer_manager import refuse_seconds_of
from mesoslite.master.state import Agent, Framework, OfferRecord
from mesoslite.master.task_state import state_for_framework
from mesoslite.master.task_validation import (
    validate_offer_ids,
    validate_task,
    validate_task_group,
)
from mesoslite.proto import internal_pb2, mesos_pb2, scheduler_pb2
from mesoslite.resources import Resources, to_post_refinement

if TYPE_CHECKING:
    from collections.abc import MutableSequence

    from mesoslite.master.master import Master

__all__ = ["AcceptHandler"]

log = logging.getLogger(__name__)

Operation = mesos_pb2.Offer.Operation
TaskStatus = mesos_pb2.TaskStatus

# Operations this master cannot apply yet: refused, never silently ignored.
_UNSUPPORTED_OPERATIONS = {
    Operation.RESERVE: "reserve",
    Operation.UNRESERVE: "unreserve",
    Operation.CREATE: "create",
    Operation.DESTROY: "destroy",
    Operation.GROW_VOLUME: "grow_volume",
    Operation.SHRINK_VOLUME: "shrink_volume",
    Operation.CREATE_DISK: "create_disk",
    Operation.DESTROY_DISK: "destroy_disk",
}


class AcceptHandler:
    def __init__(self, master: Master) -> None:
        self._master = master

    def accept(self, framework: Framework, accept: scheduler_pb2.Call.Accept) -> None:
        master = self._master
        offer_ids = [offer_id.value for offer_id in accept.offer_ids]
        if not offer_ids:
            error: str | None = "No offers specified"
        else:
            error = validate_offer_ids(offer_ids, _OfferView(master), framework.id)
        records: list[OfferRecord] = []
        for offer_id in offer_ids:
            record = master.state.offers.get(offer_id)
            if record is not None and record.framework_id == framework.id:
                master.offers.take(offer_id)
                records.append(record)
        if error is not None:
            log.warning("ACCEPT from framework %s used invalid offers: %s", framework.id, error)
            for record in records:
                master.offers.give_back(framework.id, record.agent_id, record.resources)
            self._reject_operations(framework, accept.operations, error)
            return
        master.metrics.bump("offers_accepted", len(records))
        agent = master.state.agents[records[0].agent_id]
        role = records[0].role
        remaining = Resources()
        for record in records:
            remaining = remaining + record.resources
        for operation in accept.operations:
            remaining = self._apply(framework, agent, role, operation, remaining)
        master.offers.give_back(
            framework.id, agent.id, remaining, refuse_seconds_of(accept.filters)
        )

    # ------------------------------------------------------------------ operations

    def _apply(
        self,
        framework: Framework,
        agent: Agent,
        role: str,
        operation: mesos_pb2.Offer.Operation,
        remaining: Resources,
    ) -> Resources:
        """Apply one operation to what is left of the offers; returns what is left after."""
        if operation.type == Operation.LAUNCH:
            if operation.HasField("id"):
                self._refuse_launch_with_id(
                    framework, agent, operation, operation.launch.task_infos
                )
                return remaining
            for task in operation.launch.task_infos:
                remaining = self._launch(framework, agent, role, task, remaining)
            return remaining
        if operation.type == Operation.LAUNCH_GROUP:
            group = operation.launch_group
            if operation.HasField("id"):
                self._refuse_launch_with_id(framework, agent, operation, group.task_group.tasks)
                return remaining
            return self._launch_group(framework, agent, role, group, remaining)
        name = _UNSUPPORTED_OPERATIONS.get(operation.type, "unknown")
        message = (
            f"{Operation.Type.Name(operation.type)} operations are not supported by this master yet"
        )
        if operation.type == Operation.UNKNOWN:
            message = "Unknown offer operation"
        log.warning("dropping %s operation of framework %s: %s", name, framework.id, message)
        if operation.HasField("id"):
            self._operation_error(framework, agent.id, operation.id.value, message)
        return remaining

    def _launch(
        self,
        framework: Framework,
        agent: Agent,
        role: str,
        task: mesos_pb2.TaskInfo,
        remaining: Resources,
    ) -> Resources:
        master = self._master
        _prepare_resources(task.resources, role)
        if task.HasField("executor"):
            _prepare_executor(task.executor, framework.id, role)
        error = validate_task(task, framework=framework, agent=agent, offered=remaining)
        if error is not None:
            self._task_error(framework, agent.id, task, TaskStatus.REASON_TASK_INVALID, error)
            return remaining
        consumed = Resources(task.resources)
        if task.HasField("executor") and not agent.has_executor(
            framework.id, task.executor.executor_id.value
        ):
            consumed = consumed + Resources(task.executor.resources)
            master.tasks.add_executor(framework, agent, task.executor)
        master.tasks.add_task(framework, agent, task)
        if agent.link is not None:
            message = internal_pb2.MasterToAgent()
            message.run_task.framework_info.CopyFrom(framework.info)
            message.run_task.task.CopyFrom(task)
            message.run_task.role = role
            agent.link.send(message)
        return remaining - consumed

    def _launch_group(
        self,
        framework: Framework,
        agent: Agent,
        role: str,
        group: mesos_pb2.Offer.Operation.LaunchGroup,
        remaining: Resources,
    ) -> Resources:
        master = self._master
        executor = mesos_pb2.ExecutorInfo()
        executor.CopyFrom(group.executor)
        _prepare_executor(executor, framework.id, role)
        tasks = mesos_pb2.TaskGroupInfo()
        tasks.CopyFrom(group.task_group)
        for task in tasks.tasks:
            _prepare_resources(task.resources, role)
            if task.HasField("executor"):
                _prepare_executor(task.executor, framework.id, role)
            else:
                task.executor.CopyFrom(executor)
        error = validate_task_group(
            tasks, executor, framework=framework, agent=agent, offered=remaining
        )
        if error is not None:
            for task in tasks.tasks:
                self._task_error(
                    framework, agent.id, task, TaskStatus.REASON_TASK_GROUP_INVALID, error
                )
            return remaining
        consumed = Resources()
        for task in tasks.tasks:
            consumed = consumed + Resources(task.resources)
        if not agent.has_executor(framework.id, executor.executor_id.value):
            consumed = consumed + Resources(executor.resources)
            master.tasks.add_executor(framework, agent, executor)
        for task in tasks.tasks:
            master.tasks.add_task(framework, agent, task)
        if agent.link is not None:
            message = internal_pb2.MasterToAgent()
            message.run_task_group.framework_info.CopyFrom(framework.info)
            message.run_task_group.executor_info.CopyFrom(executor)
            message.run_task_group.task_group.CopyFrom(tasks)
            message.run_task_group.role = role
            agent.link.send(message)
        return remaining - consumed

    # ------------------------------------------------------------------ refusals

    def _reject_operations(
        self,
        framework: Framework,
        operations: MutableSequence[mesos_pb2.Offer.Operation],
        error: str,
    ) -> None:
        """Offers were invalid: every task is lost (dropped), every operation errors."""
        state = state_for_framework(mesos_pb2.TASK_DROPPED, framework.partition_aware)
        for operation in operations:
            if operation.type == Operation.LAUNCH:
                tasks = list(operation.launch.task_infos)
            elif operation.type == Operation.LAUNCH_GROUP:
                tasks = list(operation.launch_group.task_group.tasks)
            else:
                if operation.HasField("id"):
                    self._operation_error(framework, None, operation.id.value, error)
                continue
            for task in tasks:
                status = master_status(
                    task.task_id.value,
                    state,
                    reason=TaskStatus.REASON_INVALID_OFFERS,
                    message=f"Task launched with invalid offers: {error}",
                    timestamp=self._master.clock(),
                    agent_id=task.agent_id.value or None,
                )
                self._master.metrics.task_terminated(state)
                self._master.tasks.forward(framework, status)

    def _refuse_launch_with_id(
        self,
        framework: Framework,
        agent: Agent,
        operation: mesos_pb2.Offer.Operation,
        tasks: MutableSequence[mesos_pb2.TaskInfo],
    ) -> None:
        message = (
            "The `id` field cannot be set on LAUNCH or LAUNCH_GROUP operations: "
            "operation feedback is not supported for them"
        )
        self._operation_error(framework, agent.id, operation.id.value, message)
        reason = (
            TaskStatus.REASON_TASK_INVALID
            if operation.type == Operation.LAUNCH
            else TaskStatus.REASON_TASK_GROUP_INVALID
        )
        for task in tasks:
            self._task_error(framework, agent.id, task, reason, message)

    def _task_error(
        self,
        framework: Framework,
        agent_id: str,
        task: mesos_pb2.TaskInfo,
        reason: TaskStatus.Reason.ValueType,
        message: str,
    ) -> None:
        log.info(
            "task %s of framework %s is invalid: %s", task.task_id.value, framework.id, message
        )
        status = master_status(
            task.task_id.value,
            mesos_pb2.TASK_ERROR,
            reason=reason,
            message=message,
            timestamp=self._master.clock(),
            agent_id=agent_id,
        )
        self._master.metrics.task_terminated(mesos_pb2.TASK_ERROR)
        self._master.tasks.forward(framework, status)

    def _operation_error(
        self, framework: Framework, agent_id: str | None, operation_id: str, message: str
    ) -> None:
        if framework.stream is None:
            return
        event = scheduler_pb2.Event(type=scheduler_pb2.Event.UPDATE_OPERATION_STATUS)
        status = event.update_operation_status.status
        status.operation_id.value = operation_id
        status.state = mesos_pb2.OPERATION_ERROR
        status.message = message
        if agent_id:
            status.agent_id.value = agent_id
        framework.stream.events.send(event)


class _OfferView(Mapping[str, mesos_pb2.Offer]):
    """The outstanding offers as `validate_offer_ids` reads them (id -> Offer)."""

    def __init__(self, master: Master) -> None:
        self._offers = master.state.offers

    def __getitem__(self, offer_id: str) -> mesos_pb2.Offer:
        return self._offers[offer_id].offer

    def __iter__(self) -> Iterator[str]:
        return iter(self._offers)

    def __len__(self) -> int:
        return len(self._offers)


def _prepare_resources(resources: MutableSequence[mesos_pb2.Resource], role: str) -> None:
    """In place: the post-refinement format, and the offer's allocation role on each
    (frameworks need not set it; Mesos injects it before validating)."""
    if any(r.HasField("role") or r.HasField("reservation") for r in resources):
        converted = to_post_refinement(resources)
        del resources[:]
        resources.extend(converted)
    for resource in resources:
        if not resource.allocation_info.HasField("role"):
            resource.allocation_info.role = role


def _prepare_executor(executor: mesos_pb2.ExecutorInfo, framework_id: str, role: str) -> None:
    _prepare_resources(executor.resources, role)
    if not executor.HasField("framework_id"):
        executor.framework_id.value = framework_id
