"""The framework lifecycle (wire contract 2.4): SUBSCRIBE (new, re-subscription after
a disconnection, failover to a new connection), UPDATE_FRAMEWORK, disconnection with
its failover timeout, and removal (TEARDOWN, timeout, operator).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mesoslite.master.events import HEARTBEAT_BYTES, error_event, subscribed_event
from mesoslite.master.state import Framework, SchedulerStream, framework_roles
from mesoslite.master.validation import (
    preserve_immutable_fields,
    validate_framework_info,
    validate_framework_update,
    validate_offer_constraint_roles,
    validate_subscription,
    validate_suppressed_roles,
)
from mesoslite.master.views import framework_entry
from mesoslite.proto import internal_pb2, master_pb2, mesos_pb2, scheduler_pb2
from mesoslite.resources import validate_role
from mesoslite.wire.http import EventStream, HttpError

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["FrameworkManager"]

log = logging.getLogger(__name__)

TaskStatus = mesos_pb2.TaskStatus

# A scheduler that stops reading its stream is cut off (and treated as disconnected)
# once this much is waiting for it, rather than growing the master's memory forever.
MAX_SCHEDULER_BACKLOG_BYTES = 64 * 1024 * 1024


class FrameworkManager:
    def __init__(self, master: Master) -> None:
        self._master = master

    # ------------------------------------------------------------------ subscribe

    def subscribe(
        self,
        subscribe: scheduler_pb2.Call.Subscribe,
        content_type: str,
        principal: str | None = None,
    ) -> EventStream:
        """Open a scheduler event stream: SUBSCRIBED then HEARTBEAT, or a single ERROR
        and the end of the stream when the subscription is refused."""
        master = self._master
        stream_id = str(uuid.uuid4())
        events = EventStream(
            content_type,
            headers={"Mesos-Stream-Id": stream_id},
            max_buffered_bytes=MAX_SCHEDULER_BACKLOG_BYTES,
        )
        info = mesos_pb2.FrameworkInfo()
        info.CopyFrom(subscribe.framework_info)
        if principal is not None and not info.HasField("principal"):
            info.principal = principal
        framework_id = info.id.value if info.HasField("id") else ""
        known = master.state.frameworks.get(framework_id) if framework_id else None
        error = validate_subscription(
            info,
            subscribe.suppressed_roles,
            roles_whitelist=master.config.roles,
            root_submissions=master.config.root_submissions,
            is_completed=known is None and framework_id in master.state.completed_frameworks,
        )
        if error is None and subscribe.HasField("offer_constraints"):
            error = validate_offer_constraint_roles(
                framework_roles(info), subscribe.offer_constraints
            )
        if error is None and known is not None:
            preserve_immutable_fields(known.info, info)
            error = validate_framework_update(known.info, info)
        if error is not None:
            log.info("refusing subscription of framework %r: %s", info.name, error)
            events.send(error_event(error))
            events.close()
            return events

        constraints = (
            subscribe.offer_constraints if subscribe.HasField("offer_constraints") else None
        )
        if known is None:
            if not framework_id:
                info.id.value = master.ids.framework_id()
            framework = Framework(
                info,
                registered_time=master.clock(),
                max_completed_tasks=master.config.max_completed_tasks_per_framework,
                max_unreachable_tasks=master.config.max_unreachable_tasks_per_framework,
            )
            framework.suppressed_roles = set(subscribe.suppressed_roles)
            framework.offer_constraints = constraints
            self._add(framework)
            self._connect(framework, events, stream_id)
            log.info("framework %s (%s) subscribed", framework.id, info.name)
            self.announce(master_pb2.Event.FRAMEWORK_ADDED, framework)
        else:
            framework = known
            self._update(framework, info, subscribe.suppressed_roles, constraints)
            if framework.recovered:
                framework.recovered = False
            else:
                framework.reregistered_time = master.clock()
            self._failover(framework, events, stream_id)
            log.info("framework %s (%s) re-subscribed", framework.id, info.name)
            self.announce(master_pb2.Event.FRAMEWORK_UPDATED, framework)
        master.offers.request_allocation()
        return events

    def _add(self, framework: Framework) -> None:
        master = self._master
        master.state.frameworks[framework.id] = framework
        master.allocator.add_framework(
            framework.id,
            framework.roles,
            capabilities=framework.capabilities,
            suppressed_roles=tuple(framework.suppressed_roles),
            active=False,
            offer_filters=dict(framework.info.offer_filters) or None,
        )

    def _connect(self, framework: Framework, events: EventStream, stream_id: str) -> None:
        master = self._master
        framework.stream = SchedulerStream(stream_id, events)
        framework.connection_epoch += 1
        if not framework.active:
            framework.active = True
            master.allocator.activate_framework(framework.id)
        events.send(subscribed_event(framework.id, master.config.heartbeat_interval_s, master.info))
        events.send_encoded(HEARTBEAT_BYTES[events.content_type])
        events.on_close(lambda: self._stream_closed(framework, events))

    def _failover(self, framework: Framework, events: EventStream, stream_id: str) -> None:
        """A (re-)subscription replaces the framework's connection, if any."""
        old = framework.stream
        if old is not None:
            old.events.send(error_event("Framework failed over"))
            old.events.close()
            framework.stream = None
        # The old connection's offers are void; fresh ones follow on the new stream.
        self._master.offers.discard_all(framework.offer_ids)
        self._connect(framework, events, stream_id)

    # ------------------------------------------------------------------ update

    def update_framework(
        self, framework: Framework, update: scheduler_pb2.Call.UpdateFramework
    ) -> None:
        """UPDATE_FRAMEWORK; raises HttpError 400 when the update is invalid."""
        master = self._master
        info = mesos_pb2.FrameworkInfo()
        info.CopyFrom(update.framework_info)
        error = validate_framework_info(info) or validate_framework_update(framework.info, info)
        roles = framework_roles(info)
        if error is None and master.config.roles is not None:
            invalid = sorted(r for r in roles if r != "*" and r not in master.config.roles)
            if invalid:
                error = f"Roles {{ {', '.join(invalid)} }} are not present in master's --roles"
        if error is None:
            error = validate_suppressed_roles(roles, update.suppressed_roles)
        if error is None and update.HasField("offer_constraints"):
            error = validate_offer_constraint_roles(roles, update.offer_constraints)
        if error is not None:
            raise HttpError(400, f"Invalid UPDATE_FRAMEWORK call: {error}")
        constraints = update.offer_constraints if update.HasField("offer_constraints") else None
        self._update(framework, info, update.suppressed_roles, constraints)
        self.announce(master_pb2.Event.FRAMEWORK_UPDATED, framework)
        master.offers.request_allocation()

    def _update(
        self,
        framework: Framework,
        info: mesos_pb2.FrameworkInfo,
        suppressed_roles: Iterable[str],
        constraints: scheduler_pb2.OfferConstraints | None,
    ) -> None:
        """Apply a new FrameworkInfo: roles, capabilities, suppression, constraints."""
        master = self._master
        old_roles = set(framework.roles)
        framework.update_info(info)
        framework.suppressed_roles = set(suppressed_roles)
        framework.offer_constraints = constraints
        removed_roles = old_roles - set(framework.roles)
        if removed_roles:
            master.offers.rescind_all(
                offer_id
                for offer_id in framework.offer_ids
                if master.state.offers[offer_id].role in removed_roles
            )
        # The allocator also clears the filters of roles leaving the suppressed set.
        master.allocator.update_framework(
            framework.id,
            framework.roles,
            framework.capabilities,
            tuple(framework.suppressed_roles),
            offer_filters=dict(framework.info.offer_filters),
        )
        message = internal_pb2.MasterToAgent()
        message.update_framework.framework_info.CopyFrom(framework.info)
        for agent in master.state.agents.values():
            if agent.link is not None and (
                framework.id in agent.tasks or framework.id in agent.executors
            ):
                agent.link.send(message)

    # ------------------------------------------------------------------ offers control

    def revive(self, framework: Framework, roles: Iterable[str]) -> None:
        roles = tuple(roles)
        if not self._valid_roles(framework, roles, "REVIVE"):
            return
        framework.suppressed_roles -= set(roles or framework.roles)
        self._master.allocator.revive(framework.id, roles)
        self._master.offers.request_allocation()

    def suppress(self, framework: Framework, roles: Iterable[str]) -> None:
        roles = tuple(roles)
        if not self._valid_roles(framework, roles, "SUPPRESS"):
            return
        framework.suppressed_roles |= set(roles or framework.roles)
        self._master.allocator.suppress(framework.id, roles)

    @staticmethod
    def _valid_roles(framework: Framework, roles: tuple[str, ...], call: str) -> bool:
        for role in roles:
            error = validate_role(role)
            if error is None and role not in framework.roles:
                error = f"Role '{role}' is not one of the framework's roles"
            if error is not None:
                log.warning("dropping %s call of framework %s: %s", call, framework.id, error)
                return False
        return True

    # ------------------------------------------------------------------ disconnection

    def _stream_closed(self, framework: Framework, events: EventStream) -> None:
        """The scheduler's connection ended; if it is the current one, the framework is
        disconnected and has `failover_timeout` to come back."""
        master = self._master
        if master.state.frameworks.get(framework.id) is not framework:
            return
        if framework.stream is None or framework.stream.events is not events:
            return  # an old connection: the framework already failed over
        framework.stream = None
        framework.active = False
        master.allocator.deactivate_framework(framework.id)
        master.offers.discard_all(framework.offer_ids)
        framework.connection_epoch += 1
        epoch = framework.connection_epoch
        timeout = max(0.0, framework.info.failover_timeout)
        log.info("framework %s disconnected; it has %gs to fail over", framework.id, timeout)
        master.timers.call_later(timeout, lambda: self._failover_expired(framework, epoch))

    def _failover_expired(self, framework: Framework, epoch: int) -> None:
        if self._master.state.frameworks.get(framework.id) is not framework:
            return
        if framework.connected or framework.connection_epoch != epoch:
            return
        log.info("framework %s did not fail over in time; removing it", framework.id)
        self.remove(framework)

    # ------------------------------------------------------------------ removal

    def remove(self, framework: Framework) -> None:
        """Remove a framework for good: kill its tasks, shut its executors down, move it
        to the completed frameworks (its id can never subscribe again)."""
        master = self._master
        if master.state.frameworks.get(framework.id) is not framework:
            return
        if framework.active:
            framework.active = False
            master.allocator.deactivate_framework(framework.id)
        shutdown = internal_pb2.MasterToAgent()
        shutdown.shutdown_framework.framework_id.value = framework.id
        for agent in master.state.agents.values():
            if agent.link is not None:
                agent.link.send(shutdown)
        for task in list(framework.tasks.values()):
            master.tasks.end_task(
                framework,
                task,
                mesos_pb2.TASK_KILLED,
                reason=TaskStatus.REASON_FRAMEWORK_REMOVED,
                message=f"Framework {framework.id} removed",
                forward=False,
            )
        master.offers.discard_all(framework.offer_ids)
        for agent_id, executors in list(framework.executors.items()):
            executor_agent = master.state.agents.get(agent_id)
            for executor_id in list(executors):
                if executor_agent is not None:
                    master.tasks.remove_executor(framework.id, executor_agent, executor_id)
                else:
                    framework.remove_executor(agent_id, executor_id)
        if framework.stream is not None:
            framework.stream.events.close()
            framework.stream = None
        framework.unregistered_time = master.clock()
        del master.state.frameworks[framework.id]
        master.state.add_completed_framework(framework)
        master.allocator.remove_framework(framework.id)
        master.metrics.bump("frameworks_removed")
        log.info("framework %s removed", framework.id)
        if master.operator_subscribers:
            event = master_pb2.Event(type=master_pb2.Event.FRAMEWORK_REMOVED)
            event.framework_removed.framework_info.CopyFrom(framework.info)
            master.operator_subscribers.broadcast(event)

    def close_all_streams(self) -> None:
        for framework in self._master.state.frameworks.values():
            if framework.stream is not None:
                framework.stream.events.close()

    # ------------------------------------------------------------------ messages

    def send_message(self, framework: Framework, message: scheduler_pb2.Call.Message) -> None:
        """MESSAGE to an executor: best effort."""
        master = self._master
        agent = master.state.agents.get(message.agent_id.value)
        if agent is None or agent.link is None:
            master.metrics.bump("invalid_framework_to_executor_messages")
            return
        outgoing = internal_pb2.MasterToAgent()
        body = outgoing.framework_to_executor
        body.agent_id.value = agent.id
        body.framework_id.value = framework.id
        body.executor_id.CopyFrom(message.executor_id)
        body.data = message.data
        agent.link.send(outgoing)
        master.metrics.bump("valid_framework_to_executor_messages")

    def shutdown_executor(
        self, framework: Framework, shutdown: scheduler_pb2.Call.Shutdown
    ) -> None:
        agent = self._master.state.agents.get(shutdown.agent_id.value)
        if agent is None or agent.link is None:
            log.warning(
                "cannot shut executor %s down: agent %s is not connected",
                shutdown.executor_id.value,
                shutdown.agent_id.value,
            )
            return
        outgoing = internal_pb2.MasterToAgent()
        outgoing.shutdown_executor.framework_id.value = framework.id
        outgoing.shutdown_executor.executor_id.CopyFrom(shutdown.executor_id)
        agent.link.send(outgoing)

    # ------------------------------------------------------------------ operator events

    def announce(self, kind: master_pb2.Event.Type.ValueType, framework: Framework) -> None:
        """FRAMEWORK_ADDED / FRAMEWORK_UPDATED to operator subscribers."""
        subscribers = self._master.operator_subscribers
        if not subscribers:
            return
        event = master_pb2.Event(type=kind)
        member = (
            event.framework_added
            if kind == master_pb2.Event.FRAMEWORK_ADDED
            else event.framework_updated
        )
        member.framework.CopyFrom(framework_entry(self._master, framework))
        subscribers.broadcast(event)
