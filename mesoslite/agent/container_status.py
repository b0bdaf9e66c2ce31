"""The ContainerStatus every TaskStatus of an executor's task carries (Mesos'
`Slave::_statusUpdate`): the container's id, its main pid once known, and, without a
CNI network, the agent's IP as the container's address."""

from __future__ import annotations

import logging

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import Containerizer

__all__ = ["complete_container_status"]

log = logging.getLogger(__name__)


async def complete_container_status(
    status: mesos_pb2.TaskStatus,
    containerizer: Containerizer,
    *,
    container_id: str,
    executor_pid: int | None,
    agent_ip: str,
) -> None:
    """Fill what the update lacks; `container_id` is the executor's container (a task
    group's update names its task's own, nested one, itself)."""
    container_status = status.container_status
    if not container_status.HasField("container_id"):
        container_status.container_id.value = container_id
    if not container_status.HasField("executor_pid"):
        if executor_pid is not None:
            container_status.executor_pid = executor_pid
        else:
            await _merge_running(container_status, containerizer)
    if not container_status.network_infos:
        container_status.network_infos.add().ip_addresses.add(
            protocol=mesos_pb2.NetworkInfo.IPv4, ip_address=agent_ip
        )


async def _merge_running(
    container_status: mesos_pb2.ContainerStatus, containerizer: Containerizer
) -> None:
    """The containerizer's figures (pid, networks) while the container runs."""
    target = container_status.container_id.value
    try:
        current = await containerizer.status(target)
    except Exception as exc:  # not launched yet, or ended
        log.debug("no status for container %s: %s", target, exc)
        return
    if current.HasField("executor_pid"):
        container_status.executor_pid = current.executor_pid
    if not container_status.network_infos:
        container_status.network_infos.extend(current.network_infos)
