"""Errors the containerizer raises to its callers.

    ContainerError
     +-- UnknownContainerError    no such container (the agent answers 404)
     +-- ContainerExistsError     launch of an id already in use
     +-- ContainerLaunchError     the container could not be started; wait() has the reason
"""

from __future__ import annotations

__all__ = [
    "ContainerError",
    "ContainerExistsError",
    "ContainerLaunchError",
    "UnknownContainerError",
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
