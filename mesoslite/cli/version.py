"""`mesoslite version`."""

from __future__ import annotations

import click

from mesoslite import MESOS_VERSION, __version__

__all__ = ["version"]


@click.command()
def version() -> None:
    """Print mesoslite's version and the Mesos API version it speaks."""
    click.echo(f"mesoslite {__version__} (Mesos API {MESOS_VERSION})")
