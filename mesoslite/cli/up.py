"""`mesoslite up`: a one-node cluster (master + agent) in one process."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mesoslite import __version__
from mesoslite.agent.config import RecoverMode
from mesoslite.cli.options import agent_options, data_dir_option, recovery_options
from mesoslite.cli.serve import detach, ephemeral_data_dir, run_foreground
from mesoslite.config import (
    DEFAULT_AGENT_PORT,
    DEFAULT_MASTER_PORT,
    default_data_dir,
    default_peer_port,
)

__all__ = ["print_banner", "up"]


def print_banner(addresses: dict[str, str | None], data_dir: Path, elapsed_s: float | None) -> None:
    ready = f" in {elapsed_s:.2f} s" if elapsed_s is not None else ""
    click.echo(f"mesoslite {__version__} is up{ready}")
    master, agent, peer = addresses.get("master"), addresses.get("agent"), addresses.get("peer")
    if master:
        click.echo(f"  master  http://{master}   (state: http://{master}/state)")
    if agent:
        click.echo(f"  agent   http://{agent}")
    if peer:
        click.echo(f"  replica https://{peer}   (members only, mutual TLS)")
    click.echo(f"  data    {data_dir}")
    if master:
        click.echo(f"export MESOS_MASTER={master}")
    token = addresses.get("join_token")
    if master and peer and token is None:
        from mesoslite.replicated_log.identity import read_local_token

        local = read_local_token(data_dir)
        token = str(local) if local is not None else None
    if master and token:
        click.echo("To add a node (--master, --agent or both):")
        click.echo(f"  mesoslite join {master} --token {token} --master --agent")
    sys.stdout.flush()


@click.command()
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_MASTER_PORT, show_default=True, help="Master port.")
@click.option("--agent-port", default=DEFAULT_AGENT_PORT, show_default=True, help="Agent port.")
@click.option(
    "--peer-port",
    type=int,
    default=None,
    help="Replica port (mutual TLS between masters) [default: master port + 1000].",
)
@click.option("--hostname", default=None, help="Hostname to advertise [default: this host's].")
@data_dir_option
@agent_options
@recovery_options
@click.option("--detach", is_flag=True, help="Run in the background; stop with `mesoslite down`.")
@click.option("--ephemeral", is_flag=True, help="Use a temporary data directory, removed on exit.")
def up(
    ip: str,
    port: int,
    agent_port: int,
    peer_port: int | None,
    hostname: str | None,
    data_dir: Path | None,
    resources: str | None,
    attributes: str | None,
    isolation: str | None,
    recover: RecoverMode,
    executor_reregistration_timeout_s: float,
    detach: bool,
    ephemeral: bool,
) -> None:
    """Start a master and an agent in this process (a one-node cluster).

    Prints the URLs and an `export MESOS_MASTER=...` line. Ctrl-C (or `mesoslite down`)
    stops it cleanly and stops every task it started. SIGTERM (or `mesoslite down
    --keep-tasks`), kill -9 or a crash leave the tasks of checkpointing frameworks
    running; the next `up` from the same --data-dir takes them over (docs/recovery.md).
    """
    data_dir = data_dir or default_data_dir()
    if detach:
        if ephemeral:
            raise click.UsageError("--detach and --ephemeral do not go together")
        argv = [a for a in sys.argv[1:] if a != "--detach"]
        if "--data-dir" not in argv and not any(a.startswith("--data-dir=") for a in argv):
            argv += ["--data-dir", str(data_dir)]
        addresses = _detach(argv, data_dir)
        print_banner(dict(addresses), data_dir, None)
        click.echo("Running in the background; stop it with `mesoslite down`.")
        return

    with ephemeral_data_dir(ephemeral, data_dir) as effective_dir:

        def build(path: Path) -> object:
            from mesoslite.cli.builders import (
                agent_config,
                build_node,
                master_config,
                node_for_identity,
                replica_config,
            )
            from mesoslite.replicated_log.identity import NodeIdentity

            identity = NodeIdentity.load(path)
            if identity is not None:
                # A node of an existing cluster restarts as it was.
                return node_for_identity(
                    identity,
                    path,
                    hostname=hostname,
                    resources=resources,
                    attributes=attributes,
                    isolation=isolation,
                    recover=recover,
                    executor_reregistration_timeout_s=executor_reregistration_timeout_s,
                )
            master = master_config(ip, port, hostname, path)
            return build_node(
                master=master,
                replica=replica_config(
                    ip,
                    default_peer_port(port) if peer_port is None else peer_port,
                    hostname,
                    path,
                    advertise_ip=master.public_ip,
                ),
                agent=agent_config(
                    ip,
                    agent_port,
                    hostname,
                    path,
                    resources=resources,
                    attributes=attributes,
                    isolation=isolation,
                    recover=recover,
                    executor_reregistration_timeout_s=executor_reregistration_timeout_s,
                ),
            )

        def ready(addresses: dict[str, str | None], elapsed_s: float) -> None:
            print_banner(addresses, effective_dir, elapsed_s)
            click.echo("Press Ctrl-C to stop.")
            sys.stdout.flush()

        # An ephemeral data directory goes with the process: so must its tasks.
        run_foreground(build, effective_dir, ready, sigterm_keeps_tasks=not ephemeral)


def _detach(argv: list[str], data_dir: Path) -> dict[str, str]:
    return detach(argv, data_dir)
