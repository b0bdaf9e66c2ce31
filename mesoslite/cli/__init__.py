"""The `mesoslite` command line: one module per noun.

Subcommands are imported only when they run, so `mesoslite --help`, `mesoslite version`
and the start of `mesoslite up` do not pay for the others' imports.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

__all__ = ["cli", "main"]

# name -> ("module", "attribute"), in the order `--help` lists them.
_COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("mesoslite.cli.up", "up"),
    "join": ("mesoslite.cli.join", "join"),
    "join-token": ("mesoslite.cli.join_token", "join_token"),
    "status": ("mesoslite.cli.status", "status"),
    "leave": ("mesoslite.cli.leave", "leave"),
    "down": ("mesoslite.cli.down", "down"),
    "master": ("mesoslite.cli.master", "master"),
    "agent": ("mesoslite.cli.agent", "agent"),
    "execute": ("mesoslite.cli.execute", "execute"),
    "image": ("mesoslite.runtime.provisioner.cli_support", "image_group"),
    "version": ("mesoslite.cli.version", "version"),
}

_SHORT_HELP: dict[str, str] = {
    "up": "Start a master and an agent in this process (a one-node cluster).",
    "join": "Join a cluster as a master and/or an agent, with a join token.",
    "join-token": "Print (or rotate, or revoke) the token new nodes join with.",
    "status": "Show members, the leader, term, commit index and agents.",
    "leave": "Leave the cluster (or remove a dead member with --member).",
    "down": "Stop the node running from the data directory.",
    "master": "Run a master without an agent.",
    "agent": "Run an agent that offers this machine's resources to a master.",
    "execute": "Run a command as a task on the cluster and report its states.",
    "image": "Pull, import, list and remove container images.",
    "version": "Print mesoslite's version and the Mesos API version it speaks.",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        command = getattr(module, target[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, _SHORT_HELP[name]) for name in _COMMANDS])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """mesoslite: a cluster manager that speaks the Apache Mesos v1 HTTP APIs.

    Start a one-node cluster with `mesoslite up`, point any Mesos framework at the
    printed MESOS_MASTER, and stop it with Ctrl-C (or `mesoslite down`).
    """


def _children_stand_alone() -> None:
    """When frozen (one-file binary), the bootloader leaves variables that make a child
    started from this binary reuse this process's unpacked files (which vanish when
    this process exits: a detached node, the container reaper) and that put those files
    on the library path of every task. Children must stand alone."""
    if not getattr(sys, "frozen", False):
        return
    os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


def main() -> None:
    _children_stand_alone()
    # Hidden: the frozen binary starts the containerizer's reaper as itself. It is
    # dispatched before click so that it starts as fast as possible.
    if sys.argv[1:2] == ["_container-reaper"]:
        from mesoslite.runtime.reaper import main as reaper_main

        sys.exit(reaper_main(sys.argv[2:]))
    cli(prog_name="mesoslite")
