"""Errors the containerizer raises to its callers.

ContainerError
 +-- UnknownContainerError    no such container (the agent answers 404)
 +-- ContainerExistsError     launch of an id already in use
 +-- ContainerLaunchError     the container could not be started; wait() has the reason
 +-- UnsupportedContainerError  a ContainerInfo this containerizer does not run
"""

from __future__ import annotations

__all__ = [
    "ContainerError",
    "ContainerExistsError",
    "ContainerLaunchError",
    "UnknownContainerError",
    "UnsupportedContainerError",
]


class ContainerError(Exception):
    """Base of the containerizer's errors."""


class UnknownContainerError(ContainerError, KeyError):
    def __str__(self) -> str:
        return f"unknown container {self.args[0]!r}" if self.args else "unknown container"


class ContainerExistsError(ContainerError):
    pass


class ContainerLaunchError(ContainerError):
    pass


class UnsupportedContainerError(ContainerError):
    """ContainerInfo of a type other than MESOS (Mesos' LaunchResult NOT_SUPPORTED: only
    the docker containerizer, which mesoslite does not have, runs DOCKER containers)."""

    def __init__(self) -> None:
        super().__init__(
            "None of the enabled containerizers (mesos) could create a container for the"
            " provided TaskInfo/ExecutorInfo message"
        )
