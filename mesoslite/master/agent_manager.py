"""Agents: their connections, (re)registration, health, and what happens when one is
lost (unreachable), replaced (a new agent at the same address) or marked gone.

Health (wire contract 7.1): the master pings every connected agent each
`agent_ping_interval_s`; after `max_agent_ping_timeouts` unanswered pings in a row,
or when a closed connection is not replaced within as long, the agent is unreachable:
its tasks are reported TASK_UNREACHABLE (TASK_LOST to frameworks that are not
PARTITION_AWARE), its offers rescinded, every framework gets FAILURE{agent_id}. An
unreachable agent that re-registers gets its tasks back (REASON_AGENT_REREGISTERED).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from mesoslite.master.agent_link import AgentLink
from mesoslite.master.events import failure_event, message_event
from mesoslite.master.leadership import time_info
from mesoslite.master.master_updates import task_snapshot_status
from mesoslite.master.state import Agent, Framework, GoneAgent, UnreachableAgent
from mesoslite.master.views import agent_entry
from mesoslite.proto import internal_pb2, master_pb2, mesos_pb2, registry_pb2
from mesoslite.resources import Resources, validate_resources
from mesoslite.transport.channel import ChannelClosed, MasterChannel

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["AgentManager"]

log = logging.getLogger(__name__)

TaskStatus = mesos_pb2.TaskStatus


class AgentManager:
    def __init__(self, master: Master) -> None:
        self._master = master
        self._ping_sequence = 0

    # ------------------------------------------------------------------ connections

    async def serve(self, channel: MasterChannel) -> None:
        """Serve one agent connection until it ends (see AgentServer)."""
        link = AgentLink(channel)
        async with anyio.create_task_group() as group:

            async def deliver() -> None:
                try:
                    await link.pump()
                except ChannelClosed:
                    pass
                except Exception:
                    # A transport failure ends this connection, not the master.
                    log.exception("sending to agent %s failed; dropping the connection", link.peer)
                # The connection is gone (or we closed it): stop reading too.
                group.cancel_scope.cancel()

            group.start_soon(deliver)
            try:
                async for message in channel:
                    if link.closed:
                        break
                    try:
                        self._dispatch(link, message)
                    except Exception:
                        # A bad message (or a bug) must not take the connection down.
                        log.exception("failed to handle a message from agent %s", link.peer)
            finally:
                link.close()
                self._connection_closed(link)
                group.cancel_scope.cancel()

    def _dispatch(self, link: AgentLink, message: internal_pb2.AgentToMaster) -> None:
        kind = message.WhichOneof("message")
        if kind == "register_agent":
            self._register(link, message.register_agent)
            return
        if kind == "reregister_agent":
            self._reregister(link, message.reregister_agent)
            return
        agent = self._agent_of(link)
        if agent is None:
            log.warning("ignoring %s from unregistered agent %s", kind, link.peer)
            return
        if kind == "status_update":
            self._master.tasks.handle_status_update(agent, message.status_update)
        elif kind == "pong":
            agent.unanswered_pings = 0
        elif kind == "executor_to_framework":
            self._executor_message(agent, message.executor_to_framework)
        elif kind == "exited_executor":
            self._executor_exited(agent, message.exited_executor)

    def _agent_of(self, link: AgentLink) -> Agent | None:
        if link.agent_id is None:
            return None
        agent = self._master.state.agents.get(link.agent_id)
        return agent if agent is not None and agent.link is link else None

    def _connection_closed(self, link: AgentLink) -> None:
        agent = self._agent_of(link)
        if agent is None:
            return
        master = self._master
        agent.link = None
        agent.disconnected_at = master.clock()
        log.info("agent %s (%s) disconnected", agent.id, agent.endpoint)
        master.offers.rescind_all(agent.offer_ids)
        master.allocator.deactivate_agent(agent.id)
        disconnected_at = agent.disconnected_at
        master.timers.call_later(
            master.config.agent_unreachable_after_s,
            lambda: self._reconnect_expired(agent, disconnected_at),
        )

    def _reconnect_expired(self, agent: Agent, disconnected_at: float) -> None:
        if self._master.state.agents.get(agent.id) is not agent:
            return
        if agent.link is None and agent.disconnected_at == disconnected_at:
            self.mark_unreachable(agent, "agent did not reconnect in time")

    # ------------------------------------------------------------------ registration

    def _register(self, link: AgentLink, message: internal_pb2.RegisterAgent) -> None:
        master = self._master
        error = validate_resources(message.agent_info.resources)
        if error is not None:
            log.warning("refusing registration of agent at %s: %s", message.endpoint, error)
            link.close()
            return
        existing = master.state.agent_by_endpoint(message.endpoint)
        if existing is not None:
            if existing.link is link:
                # A retry on the same connection: answer again.
                self._send_registered(existing, reregistered=False)
                return
            self.remove(existing, "a new agent registered at the same address")
        info = mesos_pb2.AgentInfo()
        info.CopyFrom(message.agent_info)
        info.id.value = master.ids.agent_id()
        # The agent is admitted once the registry has it: only then is it told.
        operation = registry_pb2.RegistryOperation()
        operation.admit_agent.info.CopyFrom(info)
        master.leadership.record(operation)
        master.leadership.after_recorded(lambda: self._admit(link, info, message))

    def _admit(
        self, link: AgentLink, info: mesos_pb2.AgentInfo, message: internal_pb2.RegisterAgent
    ) -> None:
        master = self._master
        if link.closed:
            return
        agent = Agent(
            info,
            endpoint=message.endpoint,
            version=message.version,
            capabilities=list(message.capabilities),
            link=link,
            registered_time=master.clock(),
        )
        link.agent_id = agent.id
        master.state.agents[agent.id] = agent
        master.state.recovered_agents.pop(agent.id, None)
        master.allocator.add_agent(
            agent.id,
            list(info.resources),
            used={},
            attributes=tuple(info.attributes),
            hostname=info.hostname,
            gpus=Resources(info.resources).scalar("gpus") > 0,
        )
        master.metrics.bump("slave_registrations")
        log.info("agent %s registered at %s", agent.id, agent.endpoint)
        self._send_registered(agent, reregistered=False)
        self._broadcast_agent_added(agent)
        master.offers.request_allocation()

    def _reregister(self, link: AgentLink, message: internal_pb2.ReregisterAgent) -> None:
        master = self._master
        agent_id = message.agent_info.id.value
        if not agent_id or agent_id in master.state.gone_agents:
            log.warning("refusing re-registration of agent %r: it is gone", agent_id)
            link.close()
            return
        error = validate_resources(message.agent_info.resources)
        if error is not None:
            log.warning("refusing re-registration of agent %s: %s", agent_id, error)
            link.close()
            return
        agent = master.state.agents.get(agent_id)
        if agent is not None:
            self._reconnect(agent, link, message)
        else:
            if not master.leadership.is_admitted(agent_id):
                # Back from unreachable (or unknown to the registry): record it first.
                operation = registry_pb2.RegistryOperation()
                operation.mark_reachable.info.CopyFrom(message.agent_info)
                master.leadership.record(operation)
            master.leadership.after_recorded(lambda: self._readmit_recorded(link, message))
            return
        master.metrics.bump("slave_reregistrations")
        master.offers.request_allocation()

    def _readmit_recorded(self, link: AgentLink, message: internal_pb2.ReregisterAgent) -> None:
        master = self._master
        if link.closed:
            return
        agent = master.state.agents.get(message.agent_info.id.value)
        if agent is not None:
            self._reconnect(agent, link, message)  # a retry raced with the registry write
        else:
            self._readmit(link, message)
        master.metrics.bump("slave_reregistrations")
        master.offers.request_allocation()

    def _reconnect(
        self, agent: Agent, link: AgentLink, message: internal_pb2.ReregisterAgent
    ) -> None:
        """A known agent comes back on a new connection (or retries on its own)."""
        master = self._master
        if agent.link is not None and agent.link is not link:
            agent.link.close()
        agent.link = link
        link.agent_id = agent.id
        agent.disconnected_at = None
        agent.unanswered_pings = 0
        agent.reregistered_time = master.clock()
        agent.endpoint = message.endpoint
        agent.version = message.version
        agent.capabilities = list(message.capabilities)
        reported = {(t.framework_id.value, t.task_id.value) for t in message.tasks}
        # Tasks the master knows but the agent does not: lost on the way (e.g. a launch
        # queued on the old connection).
        for task in list(agent.all_tasks()):
            key = (task.framework_id.value, task.task_id.value)
            if key not in reported:
                framework = master.state.frameworks.get(key[0])
                master.tasks.end_task(
                    framework,
                    task,
                    mesos_pb2.TASK_GONE,
                    reason=TaskStatus.REASON_TASK_UNKNOWN,
                    message="Task is unknown to the agent",
                )
        self._adopt_reported(agent, message)
        for framework_id, task_id in list(agent.killed_tasks):
            killed = agent.get_task(framework_id, task_id)
            if killed is not None:
                master.tasks.send_kill(agent, framework_id, killed.task_id)
        if not agent.deactivated:
            master.allocator.activate_agent(agent.id)
        log.info("agent %s reconnected from %s", agent.id, agent.endpoint)
        self._send_registered(agent, reregistered=True)

    def _readmit(self, link: AgentLink, message: internal_pb2.ReregisterAgent) -> None:
        """An agent this master does not have registered: unreachable before, or known
        to a previous master. It keeps its id and its tasks."""
        master = self._master
        info = mesos_pb2.AgentInfo()
        info.CopyFrom(message.agent_info)
        was_unreachable = master.state.unreachable_agents.pop(info.id.value, None) is not None
        agent = Agent(
            info,
            endpoint=message.endpoint,
            version=message.version,
            capabilities=list(message.capabilities),
            link=link,
            registered_time=master.clock(),
        )
        agent.reregistered_time = agent.registered_time
        link.agent_id = agent.id
        master.state.agents[agent.id] = agent
        master.state.recovered_agents.pop(agent.id, None)
        master.allocator.add_agent(
            agent.id,
            list(info.resources),
            used={},
            attributes=tuple(info.attributes),
            hostname=info.hostname,
            gpus=Resources(info.resources).scalar("gpus") > 0,
        )
        self._adopt_reported(agent, message)
        log.info(
            "agent %s re-registered at %s%s",
            agent.id,
            agent.endpoint,
            " after being unreachable" if was_unreachable else "",
        )
        self._send_registered(agent, reregistered=True)
        self._broadcast_agent_added(agent)

    def _adopt_reported(self, agent: Agent, message: internal_pb2.ReregisterAgent) -> None:
        """Take over the executors and tasks an agent reports that the master does not
        have, telling frameworks about tasks they were told were unreachable/lost."""
        master = self._master
        infos = {f.id.value: f for f in message.frameworks}
        completed = master.state.completed_frameworks
        refused: set[str] = set()
        for executor in message.executor_infos:
            framework = self._framework_for(executor.framework_id.value, infos, refused)
            if framework is None or agent.has_executor(framework.id, executor.executor_id.value):
                continue
            master.tasks.add_executor(framework, agent, executor)
            self._mark_used(framework, agent, executor.resources)
        for reported in message.tasks:
            framework = self._framework_for(reported.framework_id.value, infos, refused)
            if framework is None:
                continue
            if agent.get_task(framework.id, reported.task_id.value) is not None:
                continue
            task = mesos_pb2.Task()
            task.CopyFrom(reported)
            task.agent_id.value = agent.id
            framework.tasks[task.task_id.value] = task
            agent.add_task(task)
            self._mark_used(framework, agent, task.resources)
            was_unreachable = framework.unreachable_tasks.pop(task.task_id.value, None)
            if was_unreachable is not None:
                status = task_snapshot_status(
                    task,
                    task.state,
                    reason=TaskStatus.REASON_AGENT_REREGISTERED,
                    message="Unreachable agent re-reregistered",
                    timestamp=master.clock(),
                )
                master.tasks.forward(framework, status)
        for framework_id in refused | (set(infos) & set(completed)):
            self._shutdown_framework(agent, framework_id)

    def _framework_for(
        self,
        framework_id: str,
        reported: dict[str, mesos_pb2.FrameworkInfo],
        refused: set[str],
    ) -> Framework | None:
        """The framework of a reported task or executor; recovered from the agent's
        report if this master has never seen it. None for removed frameworks."""
        master = self._master
        framework = master.state.frameworks.get(framework_id)
        if framework is not None:
            return framework
        if framework_id in master.state.completed_frameworks or framework_id not in reported:
            refused.add(framework_id)
            return None
        framework = Framework(
            reported[framework_id],
            registered_time=master.clock(),
            max_completed_tasks=master.config.max_completed_tasks_per_framework,
            max_unreachable_tasks=master.config.max_unreachable_tasks_per_framework,
        )
        framework.recovered = True
        master.state.frameworks[framework_id] = framework
        master.allocator.add_framework(
            framework.id,
            framework.roles,
            capabilities=framework.capabilities,
            active=False,
        )
        master.frameworks.announce(master_pb2.Event.FRAMEWORK_ADDED, framework)
        return framework

    def _mark_used(
        self, framework: Framework, agent: Agent, resources: Sequence[mesos_pb2.Resource]
    ) -> None:
        if resources:
            self._master.allocator.used(framework.id, agent.id, resources)

    def _send_registered(self, agent: Agent, *, reregistered: bool) -> None:
        if agent.link is None:
            return
        message = internal_pb2.MasterToAgent()
        body = message.agent_reregistered if reregistered else message.agent_registered
        body.agent_id.value = agent.id
        body.master_info.CopyFrom(self._master.info)
        agent.link.send(message)

    def _shutdown_framework(self, agent: Agent, framework_id: str) -> None:
        if agent.link is None:
            return
        message = internal_pb2.MasterToAgent()
        message.shutdown_framework.framework_id.value = framework_id
        agent.link.send(message)

    # ------------------------------------------------------------------ executors

    def _executor_message(self, agent: Agent, message: internal_pb2.ExecutorToFramework) -> None:
        master = self._master
        framework = master.state.frameworks.get(message.framework_id.value)
        if framework is None or framework.stream is None:
            master.metrics.bump("invalid_executor_to_framework_messages")
            return
        framework.stream.events.send(
            message_event(agent.id, message.executor_id.value, message.data)
        )
        master.metrics.bump("valid_executor_to_framework_messages")

    def _executor_exited(self, agent: Agent, message: internal_pb2.ExitedExecutor) -> None:
        master = self._master
        framework_id = message.framework_id.value
        executor_id = message.executor_id.value
        # Command executors are not tracked by the master: nothing to report for them.
        if not master.tasks.remove_executor(framework_id, agent, executor_id):
            return
        framework = master.state.frameworks.get(framework_id)
        if framework is not None and framework.stream is not None:
            framework.stream.events.send(failure_event(agent.id, executor_id, message.status))

    # ------------------------------------------------------------------ health

    async def run_health_checks(self) -> None:
        interval = self._master.config.agent_ping_interval_s
        while True:
            await anyio.sleep(interval)
            self.check_health()

    def check_health(self) -> None:
        """One round: agents that missed too many pings become unreachable; every other
        connected agent gets a ping."""
        config = self._master.config
        self._ping_sequence += 1
        ping = internal_pb2.MasterToAgent()
        ping.ping.sequence = self._ping_sequence
        for agent in list(self._master.state.agents.values()):
            if agent.link is None:
                continue
            if agent.unanswered_pings >= config.max_agent_ping_timeouts:
                self.mark_unreachable(agent, "health check timed out")
                continue
            agent.unanswered_pings += 1
            agent.link.send(ping)

    # ------------------------------------------------------------------ losing agents

    def mark_unreachable(self, agent: Agent, why: str) -> None:
        master = self._master
        now = master.clock()
        log.warning("agent %s (%s) is unreachable: %s", agent.id, agent.endpoint, why)
        master.metrics.bump("slave_unreachable_scheduled")
        operation = registry_pb2.RegistryOperation()
        operation.mark_unreachable.agent_id.value = agent.id
        operation.mark_unreachable.timestamp.CopyFrom(time_info(now))
        master.leadership.record(operation)
        self._detach(agent)
        master.state.unreachable_agents[agent.id] = UnreachableAgent(agent.info, now)
        message = f"Agent {agent.info.hostname} is unreachable: {why}"
        for task in list(agent.all_tasks()):
            framework = master.state.frameworks.get(task.framework_id.value)
            master.tasks.end_task(
                framework,
                task,
                mesos_pb2.TASK_UNREACHABLE,
                reason=TaskStatus.REASON_AGENT_REMOVED,
                message=message,
                unreachable=True,
                unreachable_time=now,
            )
        self._forget_executors(agent)
        master.metrics.bump("slave_unreachable_completed")
        self._announce_removal(agent)

    def remove(self, agent: Agent, why: str) -> None:
        """The agent is replaced for good (a new agent at its address)."""
        master = self._master
        log.warning("removing agent %s (%s): %s", agent.id, agent.endpoint, why)
        operation = registry_pb2.RegistryOperation()
        operation.remove_agent.agent_id.value = agent.id
        master.leadership.record(operation)
        self._detach(agent)
        for task in list(agent.all_tasks()):
            framework = master.state.frameworks.get(task.framework_id.value)
            master.tasks.end_task(
                framework,
                task,
                mesos_pb2.TASK_GONE,
                reason=TaskStatus.REASON_AGENT_REMOVED,
                message=f"Agent {agent.info.hostname} removed: {why}",
            )
        self._forget_executors(agent)
        master.metrics.bump("slave_removals")
        self._announce_removal(agent)

    def mark_gone(self, agent_id: str) -> bool:
        """MARK_AGENT_GONE: the agent may never come back; False if it is unknown."""
        master = self._master
        now = master.clock()
        if agent_id in master.state.gone_agents:
            return True
        agent = master.state.agents.get(agent_id)
        message = "Agent has been marked gone by an operator"
        if agent is not None or agent_id in master.state.unreachable_agents:
            operation = registry_pb2.RegistryOperation()
            operation.mark_gone.agent_id.value = agent_id
            operation.mark_gone.timestamp.CopyFrom(time_info(now))
            master.leadership.record(operation)
        if agent is not None:
            self._detach(agent)
            master.state.gone_agents[agent_id] = GoneAgent(agent_id, now)
            for task in list(agent.all_tasks()):
                framework = master.state.frameworks.get(task.framework_id.value)
                master.tasks.end_task(
                    framework,
                    task,
                    mesos_pb2.TASK_GONE_BY_OPERATOR,
                    reason=TaskStatus.REASON_AGENT_REMOVED_BY_OPERATOR,
                    message=message,
                )
            self._forget_executors(agent)
            self._announce_removal(agent)
            return True
        if master.state.unreachable_agents.pop(agent_id, None) is None:
            return False
        master.state.gone_agents[agent_id] = GoneAgent(agent_id, now)
        # Tasks last seen unreachable are gone now; partition-aware frameworks hear it.
        for framework in master.state.frameworks.values():
            for task in list(framework.unreachable_tasks.values()):
                if task.agent_id.value != agent_id:
                    continue
                del framework.unreachable_tasks[task.task_id.value]
                status = task_snapshot_status(
                    task,
                    mesos_pb2.TASK_GONE_BY_OPERATOR,
                    reason=TaskStatus.REASON_AGENT_REMOVED_BY_OPERATOR,
                    message=message,
                    timestamp=now,
                )
                master.tasks.update_task(task, status)
                framework.completed_tasks.append(task)
                if framework.partition_aware:
                    master.tasks.forward(framework, status)
        return True

    def _detach(self, agent: Agent) -> None:
        """Take the agent out of service: connection, offers, allocator, registry."""
        master = self._master
        link = agent.link
        agent.link = None
        if link is not None:
            link.close()
        master.offers.rescind_all(agent.offer_ids)
        if agent.launch_pause is not None:
            agent.launch_pause.cancel()
            agent.launch_pause = None
        del master.state.agents[agent.id]
        master.allocator.remove_agent(agent.id)

    def _forget_executors(self, agent: Agent) -> None:
        for framework_id, executor in list(agent.all_executors()):
            agent.remove_executor(framework_id, executor.executor_id.value)
            framework = self._master.state.frameworks.get(framework_id)
            if framework is not None:
                framework.remove_executor(agent.id, executor.executor_id.value)

    def _announce_removal(self, agent: Agent) -> None:
        master = self._master
        failure = failure_event(agent.id)
        for framework in master.state.frameworks.values():
            if framework.stream is not None:
                framework.stream.events.send(failure)
        if master.operator_subscribers:
            event = master_pb2.Event(type=master_pb2.Event.AGENT_REMOVED)
            event.agent_removed.agent_id.value = agent.id
            master.operator_subscribers.broadcast(event)

    def _broadcast_agent_added(self, agent: Agent) -> None:
        subscribers = self._master.operator_subscribers
        if not subscribers:
            return
        event = master_pb2.Event(type=master_pb2.Event.AGENT_ADDED)
        event.agent_added.agent.CopyFrom(agent_entry(self._master, agent))
        subscribers.broadcast(event)

    # ------------------------------------------------------------------ operator control

    def deactivate(self, agent: Agent) -> None:
        agent.deactivated = True
        self._master.offers.rescind_all(agent.offer_ids)
        self._master.allocator.deactivate_agent(agent.id)

    def reactivate(self, agent: Agent) -> None:
        agent.deactivated = False
        if agent.link is not None:
            self._master.allocator.activate_agent(agent.id)
            self._master.offers.request_allocation()
