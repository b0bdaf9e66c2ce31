"""Options that several commands share, so that they read the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mesoslite.config import default_data_dir

__all__ = ["agent_options", "data_dir_option", "recovery_options"]

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(function: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Where the node keeps its state [default: {default_data_dir()}]",
    )(function)


def recovery_options(function: F) -> F:
    """How a restarted agent treats what its previous run left (docs/recovery.md)."""
    for option in reversed(
        [
            click.option(
                "--recover",
                type=click.Choice(["reconnect", "cleanup"]),
                default="reconnect",
                show_default=True,
                help="reconnect: take over the tasks and executors the previous run of the "
                "agent left running (checkpointing frameworks); cleanup: destroy them and "
                "start as a new agent.",
            ),
            click.option(
                "--executor-reregistration-timeout",
                "executor_reregistration_timeout_s",
                type=click.FloatRange(min=0, max=15),
                default=2.0,
                show_default=True,
                help="Seconds a recovered executor has to subscribe again before it is "
                "destroyed (at most 15, as in Mesos).",
            ),
        ]
    ):
        function = option(function)
    return function


def agent_options(function: F) -> F:
    for option in reversed(
        [
            click.option(
                "--resources",
                default=None,
                help="Override discovered resources, Mesos syntax or JSON "
                "(e.g. 'cpus:4;mem:4096;ports:[31000-32000]').",
            ),
            click.option(
                "--attributes", default=None, help="Agent attributes, e.g. 'rack:r1;zone:a'."
            ),
            click.option(
                "--isolation",
                default=None,
                help="Isolators, as Mesos' --isolation (e.g. 'posix/cpu,posix/mem'); "
                "default: the Linux set as root, posix otherwise.",
            ),
        ]
    ):
        function = option(function)
    return function
