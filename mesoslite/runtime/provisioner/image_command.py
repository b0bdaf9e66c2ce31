"""Combining a task's CommandInfo with the image's Entrypoint/Cmd/Env/WorkingDir/User.

Mesos' rules (docs/isolators/docker-runtime.md, the docker/runtime isolator):
- shell=true: `/bin/sh -c value`; the image's Entrypoint and Cmd are ignored; a shell
  command without a value is an error.
- shell=false with a value: exec `value` with `arguments` as the whole argv; the image's
  Entrypoint and Cmd are ignored.
- shell=false without a value: the image decides the executable.
  - Entrypoint set: Entrypoint[0] with Entrypoint[1:] then, if the task gave arguments,
    those arguments (they replace Cmd), else Cmd.
  - only Cmd set: Cmd[0] with the task's arguments if any, else Cmd[1:].
  - neither: error, there is nothing to run.
The image's Env comes first and the task's own variables override it; the image's
WorkingDir and User apply unless the task says otherwise (CommandInfo.user).
"""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.provisioner.errors import ProvisionerError
from mesoslite.runtime.provisioner.image_config import ImageConfig

__all__ = ["ImageCommandError", "ImageLaunch", "apply_image_config"]


class ImageCommandError(ProvisionerError, ValueError):
    """The task's command and the image together name nothing to run."""


@dataclass(frozen=True)
class ImageLaunch:
    # The command to run, as a CommandInfo: shell=True means `sh -c value`; otherwise exec
    # `value` with `arguments` as the whole argv (argv[0] first).
    command: mesos_pb2.CommandInfo
    # The image's Env with the command's own VALUE variables on top.
    environment: dict[str, str]
    # Inside the container; None: the image names none (the caller picks the sandbox).
    working_dir: str | None
    # "user", "uid", "user:group" or "uid:gid" as the image or CommandInfo names it.
    user: str | None


def apply_image_config(command: mesos_pb2.CommandInfo | None, config: ImageConfig) -> ImageLaunch:
    """What to run in a container of an image with this config (see the module docstring)."""
    given = command if command is not None else mesos_pb2.CommandInfo(shell=False)
    merged = mesos_pb2.CommandInfo()
    merged.CopyFrom(given)
    if given.shell:
        if not given.HasField("value"):
            raise ImageCommandError("shell command without a value")
    elif not given.HasField("value"):
        user_arguments = list(given.arguments)
        if config.entrypoint:
            argv = [*config.entrypoint, *(user_arguments or config.cmd)]
        elif config.cmd:
            argv = [config.cmd[0], *(user_arguments or config.cmd[1:])]
        else:
            raise ImageCommandError(
                "no command to run: the task gives no command value and the image has"
                " neither Entrypoint nor Cmd"
            )
        merged.value = argv[0]
        del merged.arguments[:]
        merged.arguments.extend(argv)
    environment = config.environment()
    if given.HasField("environment"):
        for variable in given.environment.variables:
            # Secrets are resolved by the agent, which sets them itself.
            if variable.type != mesos_pb2.Environment.Variable.SECRET:
                environment[variable.name] = variable.value
    user = given.user if given.HasField("user") and given.user else config.user or None
    return ImageLaunch(
        command=merged,
        environment=environment,
        working_dir=config.working_dir or None,
        user=user,
    )
