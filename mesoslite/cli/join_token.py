"""`mesoslite join-token [--rotate | --revoke] [-q]`: the token new nodes join with."""

from __future__ import annotations

from pathlib import Path

import click

from mesoslite.cli.cluster_client import admin_post, require_identity
from mesoslite.cli.common import CliError
from mesoslite.cli.options import data_dir_option
from mesoslite.config import default_data_dir

__all__ = ["join_token"]


@click.command("join-token")
@click.option("--rotate", is_flag=True, help="Make a new token; the old one stops working.")
@click.option("--revoke", is_flag=True, help="Revoke every token: nobody can join.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the token.")
@data_dir_option
def join_token(rotate: bool, revoke: bool, quiet: bool, data_dir: Path | None) -> None:
    """Print the join command with this cluster's token (run on a master)."""
    from mesoslite.replicated_log.identity import read_local_token, save_local_token
    from mesoslite.replicated_log.join_token import JoinToken

    data_dir = data_dir or default_data_dir()
    if rotate and revoke:
        raise click.UsageError("--rotate and --revoke do not go together")
    identity = require_identity(data_dir, master=True)
    if rotate or revoke:
        answer = admin_post(data_dir, "/internal/cluster/join-token", {"revoke": revoke})
        if revoke:
            click.echo("every join token is revoked; make a new one with --rotate")
            return
        token = JoinToken.parse(str(answer["token"]))
        save_local_token(data_dir, token)
    else:
        local = read_local_token(data_dir)
        if local is None:
            raise CliError(
                "this node does not know the current token (it was made elsewhere); "
                "make a new one with `mesoslite join-token --rotate`"
            )
        token = local
    if quiet:
        click.echo(str(token))
        return
    click.echo("To add a node (--master, --agent or both):")
    click.echo(f"  mesoslite join {identity.master_address} --token {token} --master --agent")
