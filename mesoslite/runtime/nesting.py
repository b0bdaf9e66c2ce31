"""What a nested container shares with its parent, by Mesos' rules.

A nested container (one with a parent: a default executor's task, or one launched
through the agent API) always joins its parent's network and UTS namespaces. The rest
depends on its ContainerInfo.linux_info and its class:

    pid      its own, unless `share_pid_namespace`
    ipc      the parent's, unless `ipc_mode` is PRIVATE (unset: shared, as Mesos keeps
             for backward compatibility)
    mount    the parent's mount namespace is entered first when the container has no
             root filesystem of its own, then a private copy of it is made
    cgroups  the parent's, unless `share_cgroups` is false (then it gets its own, with
             the limits of its own resources)

A DEBUG container (a `task exec` session) joins everything of its parent: every
namespace, the cgroups, and so the root filesystem.
"""

from __future__ import annotations

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerClass, ContainerConfig

__all__ = [
    "is_debug",
    "is_nested",
    "shares_parent_cgroups",
    "shares_parent_ipc_namespace",
    "shares_parent_pid_namespace",
]


def is_nested(config: ContainerConfig) -> bool:
    return config.parent_id is not None


def is_debug(config: ContainerConfig) -> bool:
    return config.container_class is ContainerClass.DEBUG


def _linux_info(config: ContainerConfig) -> mesos_pb2.LinuxInfo | None:
    info = config.container_info
    if info is None or not info.HasField("linux_info"):
        return None
    return info.linux_info


def shares_parent_cgroups(config: ContainerConfig) -> bool:
    if not is_nested(config):
        return False
    if is_debug(config):
        return True
    linux = _linux_info(config)
    # LinuxInfo.share_cgroups defaults to true.
    return linux is None or linux.share_cgroups


def shares_parent_pid_namespace(config: ContainerConfig) -> bool:
    if not is_nested(config):
        return False
    if is_debug(config):
        return True
    linux = _linux_info(config)
    return linux is not None and linux.share_pid_namespace


def shares_parent_ipc_namespace(config: ContainerConfig) -> bool:
    if not is_nested(config):
        return False
    if is_debug(config):
        return True
    linux = _linux_info(config)
    return linux is None or linux.ipc_mode != mesos_pb2.LinuxInfo.PRIVATE
