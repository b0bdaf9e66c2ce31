"""Pulling an image from a registry into the store: manifest, config, then layers in parallel."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread

from mesoslite.runtime.provisioner import media_types
from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ManifestError, UnsupportedImageError
from mesoslite.runtime.provisioner.image_config import ImageConfigBlob
from mesoslite.runtime.provisioner.image_record import ImageRecord, ImageSource, LayerRecord
from mesoslite.runtime.provisioner.image_store import ImageStore
from mesoslite.runtime.provisioner.layer_unpack import unpack_layer
from mesoslite.runtime.provisioner.manifest import ImageIndex, ImageManifest, parse_manifest
from mesoslite.runtime.provisioner.platform import Platform
from mesoslite.runtime.provisioner.progress import LayerPhase, LayerProgress, ProgressCallback
from mesoslite.runtime.provisioner.reference import ImageReference
from mesoslite.runtime.provisioner.registry_client import RegistryClient

__all__ = ["first_error", "pull_image"]


async def pull_image(
    store: ImageStore,
    client: RegistryClient,
    reference: ImageReference,
    *,
    platform: Platform | None = None,
    progress: ProgressCallback | None = None,
) -> ImageRecord:
    """Fetch `reference` (for `platform`, default this machine's) and record it in the store
    under str(reference). Layers already in the store are not fetched again."""
    wanted_platform = platform or Platform.host()
    async with store.shared_lock():
        manifest, manifest_digest = await _resolve_manifest(
            store, client, reference, wanted_platform
        )
        config_data = await client.fetch_blob_bytes(reference, manifest.config.digest)
        await store.store_blob(manifest.config.digest, config_data)
        config_blob = ImageConfigBlob.parse(config_data)
        layers = _layer_records(manifest, config_blob)
        limiter = anyio.CapacityLimiter(max(1, client.options.max_concurrent_downloads))
        try:
            async with anyio.create_task_group() as task_group:
                for layer in layers:
                    task_group.start_soon(
                        _fetch_layer, store, client, reference, layer, limiter, progress
                    )
        except BaseExceptionGroup as group:
            raise first_error(group) from group
        record = ImageRecord(
            name=str(reference),
            source=ImageSource.REGISTRY,
            config_digest=manifest.config.digest,
            manifest_digest=manifest_digest,
            config=config_blob.config,
            platform=config_blob.platform,
            layers=layers,
            stored_at_s=time.time(),
        )
        await store.save_record(record)
        return record


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report for a failed layer task group: its first plain exception (the
    others are usually the same failure seen by sibling layers), or the group itself when
    it holds cancellation or other base exceptions."""
    if group.subgroup(lambda error: not isinstance(error, Exception)) is not None:
        return group
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


async def _resolve_manifest(
    store: ImageStore, client: RegistryClient, reference: ImageReference, platform: Platform
) -> tuple[ImageManifest, Digest]:
    fetched = await client.fetch_manifest(reference, reference.manifest_selector)
    parsed = parse_manifest(fetched.data, fetched.media_type)
    if isinstance(parsed, ImageIndex):
        chosen = parsed.select(platform)
        fetched = await client.fetch_manifest(reference, str(chosen.digest))
        parsed = parse_manifest(fetched.data, fetched.media_type)
        if isinstance(parsed, ImageIndex):
            raise ManifestError(f"{reference}: an index inside an index is not supported")
    await store.store_blob(fetched.digest, fetched.data)
    return parsed, fetched.digest


def _layer_records(manifest: ImageManifest, config: ImageConfigBlob) -> tuple[LayerRecord, ...]:
    # Only filesystem layers count (an OCI artifact may list other blobs as layers).
    layers = [layer for layer in manifest.layers if media_types.is_layer(layer.media_type)]
    if len(layers) != len(config.diff_ids):
        raise ManifestError(
            f"manifest lists {len(layers)} layers but the config {len(config.diff_ids)} diff ids"
        )
    for layer in layers:
        if media_types.is_foreign_layer(layer.media_type):
            raise UnsupportedImageError(f"foreign (non-distributable) layer {layer.digest}")
    return tuple(
        LayerRecord(
            diff_id=diff_id,
            blob_digest=layer.digest,
            blob_size_bytes=layer.size_bytes,
            media_type=layer.media_type,
        )
        for layer, diff_id in zip(layers, config.diff_ids, strict=True)
    )


async def _fetch_layer(
    store: ImageStore,
    client: RegistryClient,
    reference: ImageReference,
    layer: LayerRecord,
    limiter: anyio.CapacityLimiter,
    progress: ProgressCallback | None,
) -> None:
    name = str(layer.blob_digest)
    total = layer.blob_size_bytes

    def report(phase: LayerPhase, done_bytes: int) -> None:
        if progress is not None:
            progress(LayerProgress(name, phase, done_bytes, total))

    if await anyio.to_thread.run_sync(store.has_layer, layer.diff_id):
        report(LayerPhase.CACHED, total)
        return

    async def produce(staging: Path) -> None:
        blob_path = store.new_temp_path(".blob")
        try:
            report(LayerPhase.DOWNLOADING, 0)
            await client.download_blob(
                reference,
                layer.blob_digest,
                layer.blob_size_bytes,
                blob_path,
                on_progress=lambda done: report(LayerPhase.DOWNLOADING, done),
            )
            report(LayerPhase.UNPACKING, 0)
            await anyio.to_thread.run_sync(
                _unpack_file, blob_path, staging, store, layer.diff_id, report
            )
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_unlink_quietly, blob_path)

    async with limiter:
        added = await store.add_layer(layer.diff_id, produce)
    report(LayerPhase.DONE if added else LayerPhase.CACHED, total)


def _unpack_file(
    blob_path: Path,
    staging: Path,
    store: ImageStore,
    diff_id: Digest,
    report: Callable[[LayerPhase, int], None],
) -> None:
    """Worker thread: unpack, reporting progress back on the event loop's thread."""

    def on_progress(done_bytes: int) -> None:
        anyio.from_thread.run_sync(report, LayerPhase.UNPACKING, done_bytes)

    with blob_path.open("rb") as blob:
        unpack_layer(
            blob, staging, store.layer_format, expected_diff_id=diff_id, on_progress=on_progress
        )


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
