"""`mesoslite agent --master HOST:PORT`: an agent that registers with a remote master."""

from __future__ import annotations

from pathlib import Path

import click

from mesoslite.agent.config import RecoverMode
from mesoslite.cli.common import default_master, normalize_master
from mesoslite.cli.options import agent_options, data_dir_option, recovery_options
from mesoslite.cli.serve import run_foreground
from mesoslite.cli.up import print_banner
from mesoslite.config import DEFAULT_AGENT_PORT, default_data_dir

__all__ = ["agent"]


@click.command()
@click.option(
    "--master",
    "master_address",
    default=default_master,
    show_default="$MESOS_MASTER or 127.0.0.1:5050",
    help="The master to register with (HOST:PORT).",
)
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_AGENT_PORT, show_default=True, help="Agent port.")
@click.option("--hostname", default=None, help="Hostname to advertise.")
@data_dir_option
@agent_options
@recovery_options
def agent(
    master_address: str,
    ip: str,
    port: int,
    hostname: str | None,
    data_dir: Path | None,
    resources: str | None,
    attributes: str | None,
    isolation: str | None,
    recover: RecoverMode,
    executor_reregistration_timeout_s: float,
) -> None:
    """Run an agent that offers this machine's resources to a master.

    Ctrl-C stops it and every task it started. SIGTERM (or `mesoslite down --keep-tasks`)
    stops only the agent: tasks of checkpointing frameworks keep running, and the next
    start from the same --data-dir takes them over (docs/recovery.md).
    """
    data_dir = data_dir or default_data_dir()
    address = normalize_master(master_address)

    def build(path: Path) -> object:
        from mesoslite.cli.builders import agent_config, build_node

        config = agent_config(
            ip,
            port,
            hostname,
            path,
            resources=resources,
            attributes=attributes,
            isolation=isolation,
            recover=recover,
            executor_reregistration_timeout_s=executor_reregistration_timeout_s,
        )
        return build_node(agent=config, master_address=address)

    run_foreground(build, data_dir, lambda addresses, s: print_banner(addresses, data_dir, s))
