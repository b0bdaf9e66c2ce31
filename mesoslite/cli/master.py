"""`mesoslite master`: a master alone (agents join with `mesoslite agent`)."""

from __future__ import annotations

from pathlib import Path

import click

from mesoslite.cli.options import data_dir_option
from mesoslite.cli.serve import run_foreground
from mesoslite.cli.up import print_banner
from mesoslite.config import DEFAULT_MASTER_PORT, default_data_dir

__all__ = ["master"]


@click.command()
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_MASTER_PORT, show_default=True, help="Master port.")
@click.option("--hostname", default=None, help="Hostname to advertise.")
@data_dir_option
def master(ip: str, port: int, hostname: str | None, data_dir: Path | None) -> None:
    """Run a master without an agent."""
    data_dir = data_dir or default_data_dir()

    def build(path: Path) -> object:
        from mesoslite.cli.builders import build_node, master_config

        return build_node(master=master_config(ip, port, hostname, path))

    run_foreground(build, data_dir, lambda addresses, s: print_banner(addresses, data_dir, s))
