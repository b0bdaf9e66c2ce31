"""apply_image_config against every row of Mesos' docker/runtime table."""

from __future__ import annotations

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.provisioner.image_command import ImageCommandError, apply_image_config
from mesoslite.runtime.provisioner.image_config import ImageConfig

NONE = ImageConfig()
CMD = ImageConfig(cmd=("/cmd", "c1", "c2"))
ENTRY = ImageConfig(entrypoint=("/entry", "e1"))
BOTH = ImageConfig(entrypoint=("/entry", "e1"), cmd=("c1", "c2"))


def _command(
    shell: bool, value: str | None = None, arguments: tuple[str, ...] = ()
) -> mesos_pb2.CommandInfo:
    command = mesos_pb2.CommandInfo(shell=shell, arguments=list(arguments))
    if value is not None:
        command.value = value
    return command


def _argv(
    command: mesos_pb2.CommandInfo | None, config: ImageConfig
) -> tuple[bool, str, list[str]]:
    launch = apply_image_config(command, config)
    return launch.command.shell, launch.command.value, list(launch.command.arguments)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (CMD, (False, "/cmd", ["/cmd", "c1", "c2"])),
        (ENTRY, (False, "/entry", ["/entry", "e1"])),
        (BOTH, (False, "/entry", ["/entry", "e1", "c1", "c2"])),
    ],
)
def test_no_value_no_arguments_runs_the_image_default(
    config: ImageConfig, expected: tuple[bool, str, list[str]]
) -> None:
    assert _argv(_command(shell=False), config) == expected
    # No CommandInfo at all (a nested container) means the same.
    assert _argv(None, config) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (CMD, (False, "/cmd", ["/cmd", "a1", "a2"])),
        (ENTRY, (False, "/entry", ["/entry", "e1", "a1", "a2"])),
        (BOTH, (False, "/entry", ["/entry", "e1", "a1", "a2"])),
    ],
)
def test_arguments_without_value_replace_cmd(
    config: ImageConfig, expected: tuple[bool, str, list[str]]
) -> None:
    assert _argv(_command(shell=False, arguments=("a1", "a2")), config) == expected


@pytest.mark.parametrize("config", [NONE, CMD, ENTRY, BOTH])
def test_value_without_shell_ignores_the_image(config: ImageConfig) -> None:
    assert _argv(_command(False, "/bin/tool"), config) == (False, "/bin/tool", [])
    assert _argv(_command(False, "/bin/tool", ("tool", "-x")), config) == (
        False,
        "/bin/tool",
        ["tool", "-x"],
    )


@pytest.mark.parametrize("config", [NONE, CMD, ENTRY, BOTH])
def test_shell_command_ignores_the_image(config: ImageConfig) -> None:
    assert _argv(_command(True, "echo hi"), config) == (True, "echo hi", [])
    assert _argv(_command(True, "echo hi", ("x",)), config) == (True, "echo hi", ["x"])


@pytest.mark.parametrize("config", [NONE, CMD, ENTRY, BOTH])
def test_shell_without_value_is_an_error(config: ImageConfig) -> None:
    with pytest.raises(ImageCommandError):
        apply_image_config(_command(True), config)
    with pytest.raises(ImageCommandError):
        apply_image_config(_command(True, arguments=("a",)), config)


def test_nothing_to_run_is_an_error() -> None:
    with pytest.raises(ImageCommandError, match="neither Entrypoint nor Cmd"):
        apply_image_config(_command(False), NONE)
    with pytest.raises(ImageCommandError):
        apply_image_config(_command(False, arguments=("a",)), NONE)


def test_environment_working_dir_and_user() -> None:
    config = ImageConfig(
        cmd=("/app",), env=("PATH=/img/bin", "KEEP=1"), working_dir="/srv", user="app"
    )
    command = _command(False)
    command.environment.variables.add(name="PATH", value="/task/bin")
    secret = command.environment.variables.add(name="TOKEN")
    secret.type = mesos_pb2.Environment.Variable.SECRET
    launch = apply_image_config(command, config)
    assert launch.environment == {"PATH": "/task/bin", "KEEP": "1"}
    assert launch.working_dir == "/srv"
    assert launch.user == "app"
    command.user = "other"
    assert apply_image_config(command, config).user == "other"
    bare = apply_image_config(_command(False), ImageConfig(cmd=("/app",)))
    assert (bare.working_dir, bare.user, bare.environment) == (None, None, {})


def test_the_given_command_is_not_modified() -> None:
    command = _command(False, arguments=("a",))
    apply_image_config(command, BOTH)
    assert not command.HasField("value")
    assert list(command.arguments) == ["a"]
