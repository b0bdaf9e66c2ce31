"""Importing images without a registry: `docker save` archives, OCI image layout
directories, and OCI archives (a tar of a layout). Every blob and layer is verified."""

from __future__ import annotations

import json
import posixpath
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import anyio
import anyio.from_thread
import anyio.to_thread

from mesoslite.runtime.provisioner import media_types
from mesoslite.runtime.provisioner.digest import Digest, VerifyingReader, digest_of_bytes
from mesoslite.runtime.provisioner.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ImageReferenceError,
    ManifestError,
    ProvisionerError,
    UnsupportedImageError,
)
from mesoslite.runtime.provisioner.image_config import ImageConfigBlob
from mesoslite.runtime.provisioner.image_record import ImageRecord, ImageSource, LayerRecord
from mesoslite.runtime.provisioner.image_store import ImageStore
from mesoslite.runtime.provisioner.layer_unpack import unpack_layer
from mesoslite.runtime.provisioner.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    parse_manifest,
)
from mesoslite.runtime.provisioner.platform import Platform
from mesoslite.runtime.provisioner.progress import LayerPhase, LayerProgress, ProgressCallback
from mesoslite.runtime.provisioner.reference import ImageReference

__all__ = ["import_image"]

_REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"
_MAX_METADATA_BYTES = 8 << 20
_MAX_LINK_DEPTH = 8


class _Source(Protocol):
    """Files of an archive or a layout directory, by relative path."""

    def exists(self, relative: str) -> bool: ...

    def read_bytes(self, relative: str) -> bytes: ...

    def open(self, relative: str) -> IO[bytes]: ...

    def size_bytes(self, relative: str) -> int: ...


class _DirectorySource:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ManifestError(f"{relative!r} points outside {self.root}")
        return path

    def exists(self, relative: str) -> bool:
        return self._path(relative).is_file()

    def read_bytes(self, relative: str) -> bytes:
        path = self._path(relative)
        if path.stat().st_size > _MAX_METADATA_BYTES:
            raise ManifestError(f"{relative} is too large for metadata")
        return path.read_bytes()

    def open(self, relative: str) -> IO[bytes]:
        return self._path(relative).open("rb")

    def size_bytes(self, relative: str) -> int:
        return self._path(relative).stat().st_size


class _TarSource:
    def __init__(self, archive: tarfile.TarFile) -> None:
        self._archive = archive
        self._members = {
            posixpath.normpath(member.name.lstrip("/")): member for member in archive.getmembers()
        }

    def _member(self, relative: str) -> tarfile.TarInfo:
        name = posixpath.normpath(relative)
        for _ in range(_MAX_LINK_DEPTH):
            member = self._members.get(name)
            if member is None:
                raise ImageNotFoundError(f"{relative} is not in the archive")
            if member.issym():
                # Old `docker save` links repeated layers to their first copy.
                name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = posixpath.normpath(member.linkname.lstrip("/"))
            elif member.isreg():
                return member
            else:
                raise ManifestError(f"{relative} in the archive is not a file")
        raise ManifestError(f"{relative}: too many links in the archive")

    def exists(self, relative: str) -> bool:
        try:
            self._member(relative)
        except ProvisionerError:
            return False
        return True

    def read_bytes(self, relative: str) -> bytes:
        member = self._member(relative)
        if member.size > _MAX_METADATA_BYTES:
            raise ManifestError(f"{relative} is too large for metadata")
        with self.open(relative) as stream:
            return stream.read()

    def open(self, relative: str) -> IO[bytes]:
        stream = self._archive.extractfile(self._member(relative))
        assert stream is not None
        return stream

    def size_bytes(self, relative: str) -> int:
        return self._member(relative).size


@contextmanager
def _open_source(path: Path) -> Iterator[_Source]:
    if path.is_dir():
        yield _DirectorySource(path)
        return
    try:
        # Closed by the `with` below, once opening is known to have worked.
        archive = tarfile.open(path, mode="r:*")  # noqa: SIM115
    except (tarfile.TarError, OSError) as error:
        raise UnsupportedImageError(f"{path} is neither a directory nor a tar archive") from error
    with archive:
        yield _TarSource(archive)


async def import_image(
    store: ImageStore,
    path: Path,
    *,
    name: str | None = None,
    platform: Platform | None = None,
    progress: ProgressCallback | None = None,
) -> list[ImageRecord]:
    """Import every image of a docker-archive, OCI layout directory or OCI archive (or only
    the one `name` selects); each is recorded under `name`, its own tags, or its image id."""
    wanted_platform = platform or Platform.host()
    return await anyio.to_thread.run_sync(
        _import_blocking, store, path, name, wanted_platform, progress
    )


def _import_blocking(
    store: ImageStore,
    path: Path,
    name: str | None,
    platform: Platform,
    progress: ProgressCallback | None,
) -> list[ImageRecord]:
    # The whole import runs in one worker thread: tarfile reads are sequential anyway.
    # Locks and store writes go back through the event loop.
    with _open_source(path) as source:
        if source.exists("manifest.json"):
            plans = _docker_archive_plans(source, name)
        elif source.exists("index.json"):
            plans = _oci_layout_plans(source, name, platform)
        else:
            raise UnsupportedImageError(
                f"{path}: no manifest.json (docker-archive) nor index.json (OCI layout)"
            )
        return anyio.from_thread.run(_store_plans, store, source, plans, progress)


class _Plan:
    """One image to import: its names, config, and where each layer blob is in the source."""

    def __init__(
        self,
        names: list[str],
        source_kind: str,
        config_data: bytes,
        manifest_digest: Digest | None,
        manifest_data: bytes | None,
        layer_paths: list[str],
        layer_descriptors: list[Descriptor] | None,
    ) -> None:
        self.names = names
        self.source_kind = source_kind
        self.config_data = config_data
        self.config_digest = digest_of_bytes(config_data)
        self.config = ImageConfigBlob.parse(config_data)
        self.manifest_digest = manifest_digest
        self.manifest_data = manifest_data
        self.layer_paths = layer_paths
        self.layer_descriptors = layer_descriptors
        if len(layer_paths) != len(self.config.diff_ids):
            raise ManifestError(
                f"{len(layer_paths)} layers but {len(self.config.diff_ids)} diff ids in the config"
            )


def _canonical_names(names: list[str]) -> list[str]:
    canonical = []
    for text in names:
        try:
            canonical.append(str(ImageReference.parse(text)))
        except ImageReferenceError:
            continue
    return canonical


def _docker_archive_plans(source: _Source, name: str | None) -> list[_Plan]:
    document = json.loads(source.read_bytes("manifest.json"))
    if not isinstance(document, list) or not document:
        raise ManifestError("docker-archive manifest.json is not a list of images")
    plans = []
    for entry in document:
        if not isinstance(entry, dict):
            raise ManifestError("docker-archive manifest.json entry is not an object")
        tags = [str(tag) for tag in entry.get("RepoTags") or []]
        if name is not None:
            wanted = str(ImageReference.parse(name))
            if len(document) > 1 and wanted not in _canonical_names(tags):
                continue
            names = [wanted]
        else:
            names = _canonical_names(tags)
        config_path = str(entry.get("Config", ""))
        layers = [str(layer) for layer in entry.get("Layers") or []]
        plans.append(
            _Plan(
                names,
                ImageSource.DOCKER_ARCHIVE,
                source.read_bytes(config_path),
                None,
                None,
                layers,
                None,
            )
        )
    if not plans:
        raise ImageNotFoundError(f"no image named {name!r} in the archive")
    return plans


def _blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def _read_verified(source: _Source, digest: Digest) -> bytes:
    data = source.read_bytes(_blob_path(digest))
    actual = digest_of_bytes(data, digest.algorithm)
    if actual != digest:
        raise DigestMismatchError(f"blob {digest}", str(digest), str(actual))
    return data


def _oci_layout_plans(source: _Source, name: str | None, platform: Platform) -> list[_Plan]:
    index = parse_manifest(source.read_bytes("index.json"), media_types.OCI_INDEX)
    if not isinstance(index, ImageIndex):
        raise ManifestError("index.json is not an image index")
    entries = list(index.manifests)
    wanted: ImageReference | None = ImageReference.parse(name) if name is not None else None
    if wanted is not None and len(entries) > 1:
        accepted = {wanted.tag, str(wanted), name}
        entries = [
            entry
            for entry in entries
            if entry.annotations.get(_REF_NAME_ANNOTATION) in accepted
            or entry.annotations.get(_CONTAINERD_NAME_ANNOTATION) in accepted
        ]
        if not entries:
            raise ImageNotFoundError(f"no image tagged {wanted.tag!r} in the layout")
    plans = []
    for entry in entries:
        descriptor = entry
        data = _read_verified(source, descriptor.digest)
        parsed = parse_manifest(data, descriptor.media_type)
        if isinstance(parsed, ImageIndex):
            descriptor = parsed.select(platform)
            data = _read_verified(source, descriptor.digest)
            parsed = parse_manifest(data, descriptor.media_type)
            if isinstance(parsed, ImageIndex):
                raise ManifestError("an index inside an index is not supported")
        manifest: ImageManifest = parsed
        layers = [layer for layer in manifest.layers if media_types.is_layer(layer.media_type)]
        if wanted is not None:
            names = [str(wanted)]
        else:
            names = _canonical_names(
                [
                    entry.annotations.get(_CONTAINERD_NAME_ANNOTATION, ""),
                    # A bare tag ("latest") names no repository: only a full reference counts.
                    entry.annotations.get(_REF_NAME_ANNOTATION, "")
                    if "/" in entry.annotations.get(_REF_NAME_ANNOTATION, "")
                    else "",
                ]
            )[:1]
        plans.append(
            _Plan(
                names,
                ImageSource.OCI_LAYOUT,
                _read_verified(source, manifest.config.digest),
                descriptor.digest,
                data,
                [_blob_path(layer.digest) for layer in layers],
                layers,
            )
        )
    return plans


async def _store_plans(
    store: ImageStore, source: _Source, plans: list[_Plan], progress: ProgressCallback | None
) -> list[ImageRecord]:
    records = []
    async with store.shared_lock():
        for plan in plans:
            await store.store_blob(plan.config_digest, plan.config_data)
            if plan.manifest_digest is not None and plan.manifest_data is not None:
                await store.store_blob(plan.manifest_digest, plan.manifest_data)
            layer_records = []
            for index, (layer_path, diff_id) in enumerate(
                zip(plan.layer_paths, plan.config.diff_ids, strict=True)
            ):
                descriptor = plan.layer_descriptors[index] if plan.layer_descriptors else None
                size = source.size_bytes(layer_path)
                blob_digest = descriptor.digest if descriptor is not None else diff_id
                await _import_layer(store, source, layer_path, diff_id, descriptor, size, progress)
                layer_records.append(
                    LayerRecord(
                        diff_id=diff_id,
                        blob_digest=blob_digest,
                        blob_size_bytes=size,
                        media_type=descriptor.media_type
                        if descriptor is not None
                        else media_types.OCI_LAYER,
                    )
                )
            for record_name in plan.names or [str(plan.config_digest)]:
                record = ImageRecord(
                    name=record_name,
                    source=plan.source_kind,
                    config_digest=plan.config_digest,
                    manifest_digest=plan.manifest_digest,
                    config=plan.config.config,
                    platform=plan.config.platform,
                    layers=tuple(layer_records),
                    stored_at_s=time.time(),
                )
                await store.save_record(record)
                records.append(record)
    return records


async def _import_layer(
    store: ImageStore,
    source: _Source,
    layer_path: str,
    diff_id: Digest,
    descriptor: Descriptor | None,
    size_bytes: int,
    progress: ProgressCallback | None,
) -> None:
    label = str(descriptor.digest) if descriptor is not None else str(diff_id)

    def report(phase: LayerPhase, done_bytes: int) -> None:
        if progress is not None:
            progress(LayerProgress(label, phase, done_bytes, size_bytes))

    async def produce(staging: Path) -> None:
        report(LayerPhase.UNPACKING, 0)
        await anyio.to_thread.run_sync(
            _unpack_from_source, source, layer_path, descriptor, staging, store, diff_id
        )

    added = await store.add_layer(diff_id, produce)
    report(LayerPhase.DONE if added else LayerPhase.CACHED, size_bytes)


def _unpack_from_source(
    source: _Source,
    layer_path: str,
    descriptor: Descriptor | None,
    staging: Path,
    store: ImageStore,
    diff_id: Digest,
) -> None:
    with source.open(layer_path) as stream:
        reader: Any = stream
        verifying = None
        if descriptor is not None:
            verifying = VerifyingReader(stream, descriptor.digest, f"layer {descriptor.digest}")
            reader = verifying
        unpack_layer(reader, staging, store.layer_format, expected_diff_id=diff_id)
        if verifying is not None:
            verifying.drain_and_verify()
