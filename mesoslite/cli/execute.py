"""`mesoslite execute`: run one command as a task, as `mesos-execute` does."""

from __future__ import annotations

import getpass
import json
import re
import sys

import click

from mesoslite.cli.common import CliError, default_master, normalize_master

__all__ = ["execute", "exit_status_of"]

_EXITED = re.compile(r"exited with status (\d+)")
_SIGNALLED = re.compile(r"terminated with signal .*?(\d+)|killed by signal (\d+)")


def exit_status_of(state_name: str, message: str) -> int:
    """The task's exit status as a shell would report it, from its terminal update."""
    if state_name == "TASK_FINISHED":
        return 0
    match = _EXITED.search(message)
    if match:
        return int(match.group(1))
    match = _SIGNALLED.search(message)
    if match:
        return 128 + int(match.group(1) or match.group(2))
    if state_name == "TASK_KILLED":
        return 128 + 15
    return 1


def _parse_env(values: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in values:
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise CliError(f"--env {value!r}: not valid JSON ({exc.msg})") from None
            if not isinstance(parsed, dict):
                raise CliError(f"--env {value!r}: expected a JSON object")
            env.update({str(k): str(v) for k, v in parsed.items()})
        elif "=" in value:
            key, _, val = value.partition("=")
            env[key] = val
        else:
            raise CliError(f"--env {value!r}: expected KEY=VALUE or a JSON object")
    return env


@click.command()
@click.option(
    "--master",
    "master_address",
    default=default_master,
    show_default="$MESOS_MASTER or 127.0.0.1:5050",
    help="The master (HOST:PORT).",
)
@click.option("--name", required=True, help="Task name (also its id prefix).")
@click.option("--command", "command", required=True, help="Shell command to run.")
@click.option(
    "--resources",
    default="cpus:0.1;mem:32",
    show_default=True,
    help="Resources for the task, Mesos syntax.",
)
@click.option("--env", "env", multiple=True, help="KEY=VALUE (repeatable) or a JSON object.")
@click.option("--role", default="*", show_default=True, help="Role to run the framework in.")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Wait for the task to end and exit with its exit status "
    "(default: return once the task is running).",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=60.0,
    show_default=True,
    help="Seconds to wait for an offer that fits.",
)
def execute(
    master_address: str,
    name: str,
    command: str,
    resources: str,
    env: tuple[str, ...],
    role: str,
    wait: bool,
    timeout_s: float,
) -> None:
    """Run COMMAND as a task on the cluster and report its states."""
    import anyio
    import httpx

    from mesoslite.cli.run_task import run_task
    from mesoslite.client.scheduler import SchedulerError
    from mesoslite.resources import ResourceParseError, parse_resources

    master = normalize_master(master_address)
    environment = _parse_env(env)
    try:
        task_resources = parse_resources(resources)
    except ResourceParseError as exc:
        raise CliError(f"--resources: {exc}") from None
    try:
        state, message = anyio.run(
            lambda: run_task(
                master,
                name=name,
                command=command,
                resources=list(task_resources),
                environment=environment,
                role=role,
                user=getpass.getuser(),
                wait=wait,
                offer_timeout_s=timeout_s,
                report=lambda line: click.echo(line),
            )
        )
    except httpx.TransportError:
        raise CliError(
            f"cannot reach the master at {master}; is it running? (start one with `mesoslite up`)"
        ) from None
    except SchedulerError as exc:
        raise CliError(f"the master refused: {exc}") from None
    except TimeoutError as exc:
        raise CliError(str(exc)) from None
    if wait:
        sys.exit(exit_status_of(state, message))
    if state not in ("TASK_RUNNING", "TASK_FINISHED"):
        sys.exit(exit_status_of(state, message) or 1)
