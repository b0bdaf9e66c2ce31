"""`mesoslite master`: a master alone (agents join with `mesoslite agent`)."""

from __future__ import annotations

from pathlib import Path

import click

from mesoslite.cli.options import data_dir_option
from mesoslite.cli.serve import run_foreground
from mesoslite.cli.up import print_banner
from mesoslite.config import DEFAULT_MASTER_PORT, default_data_dir, default_peer_port

__all__ = ["master"]


@click.command()
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_MASTER_PORT, show_default=True, help="Master port.")
@click.option(
    "--peer-port", type=int, default=None, help="Replica port [default: master port + 1000]."
)
@click.option("--hostname", default=None, help="Hostname to advertise.")
@data_dir_option
def master(
    ip: str, port: int, peer_port: int | None, hostname: str | None, data_dir: Path | None
) -> None:
    """Run a master without an agent (it founds a cluster on an empty data directory;
    other masters and agents join it with `mesoslite join`)."""
    data_dir = data_dir or default_data_dir()

    def build(path: Path) -> object:
        from mesoslite.cli.builders import build_node, master_config, replica_config

        config = master_config(ip, port, hostname, path)
        replica = replica_config(
            ip,
            default_peer_port(port) if peer_port is None else peer_port,
            hostname,
            path,
            advertise_ip=config.public_ip,
        )
        return build_node(master=config, replica=replica)

    run_foreground(build, data_dir, lambda addresses, s: print_banner(addresses, data_dir, s))
