"""`mesoslite down`: stop a node started with `--detach`."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import click

from mesoslite.cli.common import CliError, read_running_pid
from mesoslite.cli.options import data_dir_option
from mesoslite.config import default_data_dir

__all__ = ["down"]


@click.command()
@data_dir_option
@click.option(
    "--timeout",
    "timeout_s",
    default=30.0,
    show_default=True,
    help="Seconds to wait for a clean stop before killing it.",
)
@click.option(
    "--keep-tasks",
    is_flag=True,
    help="Stop the node only: tasks of checkpointing frameworks keep running, and the "
    "next start from the same --data-dir takes them over.",
)
def down(data_dir: Path | None, timeout_s: float, keep_tasks: bool) -> None:
    """Stop the node running from the data directory (its tasks are stopped too, unless
    --keep-tasks)."""
    data_dir = data_dir or default_data_dir()
    pid = read_running_pid(data_dir)
    if pid is None:
        raise CliError(f"no mesoslite node is running from {data_dir}")
    # The node reads SIGINT as Ctrl-C (stop everything), SIGTERM as "the process only".
    os.kill(pid, signal.SIGTERM if keep_tasks else signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_running_pid(data_dir) != pid:
            click.echo(f"mesoslite (pid {pid}) stopped")
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise CliError(f"mesoslite (pid {pid}) did not stop within {timeout_s:.0f} s; killed it")
