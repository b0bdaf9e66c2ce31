"""`mesoslite image pull|import|ls|rm|prune`: the click commands and their logic.

The CLI package mounts `image_group`; everything here goes through `Provisioner` and its
`ImageStore`, the same ones the agent uses, so the CLI and a running agent can share a data
directory (the store's locks keep them apart).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import anyio
import click

from mesoslite.config import default_data_dir
from mesoslite.runtime.provisioner.credentials import RegistryCredentials
from mesoslite.runtime.provisioner.errors import ProvisionerError
from mesoslite.runtime.provisioner.image_record import ImageRecord
from mesoslite.runtime.provisioner.platform import Platform
from mesoslite.runtime.provisioner.progress import LayerPhase, LayerProgress
from mesoslite.runtime.provisioner.provisioner import Provisioner
from mesoslite.runtime.provisioner.reference import ImageReference
from mesoslite.runtime.provisioner.registry_client import RegistryOptions

__all__ = ["ProgressPrinter", "format_layer_line", "format_size", "image_group", "image_rows"]

_T = TypeVar("_T")
_BAR_WIDTH = 24


def format_size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def format_layer_line(progress: LayerProgress) -> str:
    """One line per layer: "3f2a1b9c0d4e  downloading [#####     ] 1.2 MB / 2.5 MB"."""
    name = progress.layer.partition(":")[2][:12] or progress.layer[:12]
    if progress.phase in (LayerPhase.CACHED, LayerPhase.DONE):
        label = "already present" if progress.phase is LayerPhase.CACHED else "done"
        return f"{name}  {label}"
    fraction = progress.done_bytes / progress.total_bytes if progress.total_bytes else 0.0
    filled = min(_BAR_WIDTH, int(fraction * _BAR_WIDTH))
    bar = "#" * filled + " " * (_BAR_WIDTH - filled)
    return (
        f"{name}  {progress.phase.value:<11} [{bar}] "
        f"{format_size(progress.done_bytes)} / {format_size(progress.total_bytes)}"
    )


@dataclass
class ProgressPrinter:
    """Draws one line per layer: redrawn in place on a terminal, phase changes otherwise."""

    stream: IO[str]
    interactive: bool
    _lines: dict[str, str] = field(default_factory=dict)
    _phases: dict[str, LayerPhase] = field(default_factory=dict)
    _drawn_lines: int = 0

    def __call__(self, progress: LayerProgress) -> None:
        line = format_layer_line(progress)
        if not self.interactive:
            if self._phases.get(progress.layer) is not progress.phase:
                self._phases[progress.layer] = progress.phase
                self.stream.write(line + "\n")
                self.stream.flush()
            return
        self._lines[progress.layer] = line
        if self._drawn_lines:
            # Back to the first line we drew, then overwrite every line.
            self.stream.write(f"\x1b[{self._drawn_lines}F")
        for text in self._lines.values():
            self.stream.write(f"\x1b[2K{text}\n")
        self._drawn_lines = len(self._lines)
        self.stream.flush()


def image_rows(records: list[ImageRecord]) -> list[tuple[str, str, str, str]]:
    """(NAME, IMAGE ID, PLATFORM, SIZE) for `image ls`, names in Docker's short form."""
    rows = []
    for record in records:
        try:
            shown = ImageReference.parse(record.name).familiar
        except ProvisionerError:
            shown = "<none>"
        rows.append(
            (
                shown,
                record.config_digest.short,
                str(record.platform),
                format_size(record.size_bytes),
            )
        )
    return rows


@dataclass(frozen=True)
class _Settings:
    data_dir: Path
    backend: str | None
    insecure_registries: tuple[str, ...]
    docker_config: Path | None
    platform: Platform | None

    def provisioner(self) -> Provisioner:
        credentials = RegistryCredentials()
        if self.docker_config is not None and self.docker_config.is_file():
            credentials = RegistryCredentials.from_docker_config_file(self.docker_config)
        return Provisioner(
            self.data_dir,
            backend=self.backend,
            registry_options=RegistryOptions(
                insecure_registries=self.insecure_registries, credentials=credentials
            ),
            platform=self.platform,
        )


def _run(action: Callable[[], Awaitable[_T]]) -> _T:
    try:
        return anyio.run(action)
    except ProvisionerError as error:
        raise click.ClickException(str(error)) from error


def _default_docker_config() -> Path | None:
    directory = os.environ.get("DOCKER_CONFIG")
    path = Path(directory) / "config.json" if directory else Path.home() / ".docker/config.json"
    return path if path.is_file() else None


@click.group("image")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="$MESOSLITE_DATA_DIR or ~/.local/share/mesoslite",
    help="The node's data directory (images live in <data-dir>/images).",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "overlay", "copy"]),
    default="auto",
    show_default=True,
    help="How container root filesystems are made (decides how layers are unpacked).",
)
@click.option(
    "--insecure-registry",
    "insecure_registries",
    multiple=True,
    help="host[:port] or CIDR that may be reached over plain HTTP (loopback always may).",
)
@click.option(
    "--docker-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="docker config.json with registry credentials (default: ~/.docker/config.json).",
)
@click.option("--platform", "platform_text", default=None, help="os/arch[/variant] to pull.")
@click.pass_context
def image_group(
    context: click.Context,
    data_dir: Path,
    backend: str,
    insecure_registries: tuple[str, ...],
    docker_config: Path | None,
    platform_text: str | None,
) -> None:
    """Pull, import, list and remove container images."""
    try:
        platform = Platform.parse(platform_text) if platform_text else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--platform") from error
    context.obj = _Settings(
        data_dir=data_dir,
        backend=None if backend == "auto" else backend,
        insecure_registries=insecure_registries,
        docker_config=docker_config or _default_docker_config(),
        platform=platform,
    )


@image_group.command("pull")
@click.argument("reference")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image id.")
@click.pass_obj
def pull_command(settings: _Settings, reference: str, quiet: bool) -> None:
    """Fetch an image from its registry into the local store."""
    printer = None if quiet else ProgressPrinter(sys.stderr, interactive=sys.stderr.isatty())
    record = _run(lambda: settings.provisioner().pull(reference, progress=printer))
    if quiet:
        click.echo(record.image_id)
    else:
        click.echo(f"{record.name}: {record.image_id} ({format_size(record.size_bytes)})")


@image_group.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None, help="Reference to record the image under.")
@click.pass_obj
def import_command(settings: _Settings, path: Path, name: str | None) -> None:
    """Import a docker-archive (docker save), an OCI layout directory or an OCI archive."""
    printer = ProgressPrinter(sys.stderr, interactive=False)
    records = _run(lambda: settings.provisioner().import_archive(path, name=name, progress=printer))
    for record in records:
        click.echo(f"{record.name}: {record.image_id}")


@image_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per image.")
@click.pass_obj
def list_command(settings: _Settings, as_json: bool) -> None:
    """List the images in the local store."""

    async def records() -> list[ImageRecord]:
        store = await settings.provisioner().store()
        return await store.list_images()

    found = _run(records)
    if as_json:
        click.echo(json.dumps([record.to_json() for record in found], indent=1))
        return
    rows = [("NAME", "IMAGE ID", "PLATFORM", "SIZE"), *image_rows(found)]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@image_group.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Remove even if a container uses it.")
@click.pass_obj
def remove_command(settings: _Settings, names: tuple[str, ...], force: bool) -> None:
    """Remove images (and the layers nothing else uses)."""

    async def remove() -> list[ImageRecord]:
        store = await settings.provisioner().store()
        return [await store.remove(name, force=force) for name in names]

    for record in _run(remove):
        click.echo(f"removed {record.name}")


@image_group.command("prune")
@click.option("--all", "remove_all", is_flag=True, help="Also remove images no container uses.")
@click.option("--keep", multiple=True, help="With --all: an image to keep (repeatable).")
@click.pass_obj
def prune_command(settings: _Settings, remove_all: bool, keep: tuple[str, ...]) -> None:
    """Delete layers no image uses (and with --all, unused images too)."""

    async def prune() -> tuple[tuple[str, ...], int, int]:
        store = await settings.provisioner().store()
        result = await store.prune(remove_unused_images=remove_all, keep=keep)
        return result.removed_images, result.removed_layers, result.freed_bytes

    removed_images, removed_layers, freed_bytes = _run(prune)
    for name in removed_images:
        click.echo(f"removed {name}")
    click.echo(f"{removed_layers} layers removed, {format_size(freed_bytes)} freed")
