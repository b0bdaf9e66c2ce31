"""The `mesoslite` command line: one module per noun.

Subcommand modules import the heavy parts (servers, protobuf) only when they run, so
`mesoslite --help` and `mesoslite version` stay instant.
"""

from __future__ import annotations

import click

from mesoslite.cli.agent import agent
from mesoslite.cli.down import down
from mesoslite.cli.execute import execute
from mesoslite.cli.master import master
from mesoslite.cli.up import up
from mesoslite.cli.version import version

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """mesoslite: a cluster manager that speaks the Apache Mesos v1 HTTP APIs.

    Start a one-node cluster with `mesoslite up`, point any Mesos framework at the
    printed MESOS_MASTER, and stop it with Ctrl-C (or `mesoslite down`).
    """


for command in (up, down, master, agent, execute, version):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="mesoslite")
