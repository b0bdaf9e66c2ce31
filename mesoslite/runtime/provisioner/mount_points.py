"""A shared layer with an image's mount points, made once per image.

Every container of an image mounts the same things (/proc, /dev, /sys, the sandbox at
/mnt/mesos/sandbox, /etc/hosts, /etc/resolv.conf). Where the image lacks a target, the
launcher used to make it in the container's overlay before mounting on it: each such
mkdir or touch is an overlayfs copy-up (its parents copied into the upper directory
through the work directory), paid again by every container and then deleted with its
upper directory. Instead the provisioner adds one more read-only layer on top of the
image's: the targets made once, exactly as the launcher would make them (by making them
through an overlay of the image's layers, so that modes and owners of copied-up parents
are the image's), kept under `<provisioner dir>/mountpoints/<key>/layer`. The launcher
then finds its targets in place, and an untouched container's upper directory stays
empty.

A target under a symbolic link of the image is left out (the launcher resolves it
itself, at launch, as before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from mesoslite.runtime.isolator import MountPoint
from mesoslite.runtime.provisioner.mounts import unmount, unmount_all_under

__all__ = ["MountPoint", "mount_point_layer", "prune_mount_point_layers"]

_LAYER = "layer"
_SOURCE = "source.json"


def _key(layers: Sequence[Path], points: Sequence[MountPoint]) -> str:
    document = json.dumps(
        [[str(layer) for layer in layers], [[p.path, p.directory] for p in points]]
    )
    return hashlib.sha256(document.encode()).hexdigest()[:32]


def _under_a_link(rootfs: Path, path: str) -> bool:
    current = rootfs
    for part in Path(path.lstrip("/")).parts:
        current = current / part
        if current.is_symlink():
            return True
    return False


def _make(rootfs: Path, point: MountPoint) -> None:
    """What the launcher does for a target (linux_launcher._apply_mount)."""
    if _under_a_link(rootfs, point.path):
        return
    target = rootfs / point.path.lstrip("/")
    if point.directory:
        target.mkdir(parents=True, exist_ok=True)
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()


def mount_point_layer(
    directory: Path, layers: Sequence[Path], points: Sequence[MountPoint]
) -> Path:
    """The layer holding `points` above `layers` (bottom first): found on disk, or made
    (blocking: run it in a worker thread). Concurrent callers may both make it; one
    rename wins and the other's copy is dropped."""
    from mesoslite.runtime.provisioner.overlay_backend import OverlayBackend

    final = directory / _key(layers, points)
    if (final / _LAYER).is_dir():
        return final / _LAYER
    directory.mkdir(parents=True, exist_ok=True)
    build = directory / f".build-{uuid.uuid4().hex}"
    try:
        rootfs = OverlayBackend().create(list(layers), build)
        try:
            for point in points:
                _make(rootfs, point)
        finally:
            unmount(rootfs)
        (build / "upper").rename(build / _LAYER)
        (build / _SOURCE).write_text(json.dumps([str(layer) for layer in layers]))
        for leftover in ("work", "rootfs"):
            shutil.rmtree(build / leftover, ignore_errors=True)
        with contextlib.suppress(OSError):
            # Fails when another caller renamed its copy first: theirs is as good.
            os.rename(build, final)
    finally:
        if build.exists():
            unmount_all_under(build)
            shutil.rmtree(build, ignore_errors=True)
    return final / _LAYER


def prune_mount_point_layers(directory: Path) -> None:
    """Delete the layers made for images whose layers are gone, and what a crash left
    of a build (blocking; under the image store's exclusive lock, so that nothing is
    being provisioned meanwhile)."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if entry.name.startswith(".build-"):
            unmount_all_under(entry)
            shutil.rmtree(entry, ignore_errors=True)
            continue
        try:
            sources = [Path(p) for p in json.loads((entry / _SOURCE).read_text())]
        except (OSError, ValueError, TypeError):
            sources = []
        if not sources or any(not source.exists() for source in sources):
            shutil.rmtree(entry, ignore_errors=True)
