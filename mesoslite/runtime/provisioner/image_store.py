"""The content-addressed image store under <data-dir>/images.

    blobs/sha256/<hex>                    manifests and configs, as fetched (verified)
    layers/<format>/sha256/<diff id hex>/ unpacked layers (format: overlay or oci)
    records/<sha256 of name>.json         one ImageRecord per image name
    leases/<container id>.json            the image each live container uses
    locks/                                flock files
    tmp/                                  staging, on the same filesystem for atomic renames

Concurrency: a layer is unpacked into tmp/ and renamed into place while its own lock is held,
so two pulls (tasks or processes) of one image share the work and the result. Pulls and
leases hold the store lock shared; remove and prune hold it exclusively, so they never delete
what a pull is about to reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ImageNotFoundError, ProvisionerError
from mesoslite.runtime.provisioner.file_lock import FileLock
from mesoslite.runtime.provisioner.image_record import ImageRecord
from mesoslite.runtime.provisioner.layer_unpack import LayerFormat
from mesoslite.runtime.provisioner.reference import ImageReference

__all__ = ["ImageInUseError", "ImageStore", "Lease", "PruneResult"]


class ImageInUseError(ProvisionerError):
    """The image is used by a live container."""


@dataclass(frozen=True)
class PruneResult:
    removed_images: tuple[str, ...]
    removed_layers: int
    freed_bytes: int


@dataclass(frozen=True)
class Lease:
    container_id: str
    image_name: str
    diff_ids: tuple[Digest, ...]


class ImageStore:
    def __init__(self, root: Path, layer_format: LayerFormat) -> None:
        self.root = root
        self.layer_format = layer_format
        for directory in ("blobs", "layers", "records", "leases", "locks", "tmp"):
            (root / directory).mkdir(parents=True, exist_ok=True)

    # Paths and locks.

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def layer_path(self, diff_id: Digest, layer_format: LayerFormat | None = None) -> Path:
        chosen = layer_format or self.layer_format
        return self.root / "layers" / chosen.value / diff_id.algorithm / diff_id.hex

    def has_layer(self, diff_id: Digest) -> bool:
        return self.layer_path(diff_id).is_dir()

    def has_all_layers(self, record: ImageRecord) -> bool:
        return all(self.has_layer(layer.diff_id) for layer in record.layers)

    def layer_paths(self, record: ImageRecord) -> list[Path]:
        """Unpacked layers of an image, bottom layer first."""
        return [self.layer_path(layer.diff_id) for layer in record.layers]

    def new_temp_path(self, suffix: str = "") -> Path:
        return self.root / "tmp" / f"{os.getpid()}-{secrets.token_hex(8)}{suffix}"

    def shared_lock(self) -> FileLock:
        return FileLock(self.root / "locks" / "store.lock", shared=True)

    def exclusive_lock(self) -> FileLock:
        return FileLock(self.root / "locks" / "store.lock")

    def _layer_lock(self, diff_id: Digest) -> FileLock:
        return FileLock(self.root / "locks" / f"layer-{self.layer_format.value}-{diff_id.hex}.lock")

    # Content. Callers hold the shared lock.

    async def store_blob(self, digest: Digest, data: bytes) -> None:
        """Keep verified bytes under their digest (atomic: a reader never sees half a blob)."""
        await anyio.to_thread.run_sync(self._write_atomically, self.blob_path(digest), data)

    async def read_blob(self, digest: Digest) -> bytes:
        return await anyio.to_thread.run_sync(self.blob_path(digest).read_bytes)

    async def add_layer(self, diff_id: Digest, produce: Callable[[Path], Awaitable[None]]) -> bool:
        """Make the unpacked layer `diff_id` exist: unless it already does, `produce` fills a
        fresh staging directory which is then renamed into place. Returns False when the
        layer was already there (or another pull made it while we waited)."""
        if await anyio.to_thread.run_sync(self.has_layer, diff_id):
            return False
        async with self._layer_lock(diff_id):
            if await anyio.to_thread.run_sync(self.has_layer, diff_id):
                return False
            staging = self.new_temp_path(".layer")
            await anyio.to_thread.run_sync(staging.mkdir)
            try:
                await produce(staging)
                final = self.layer_path(diff_id)
                await anyio.to_thread.run_sync(_rename_into_place, staging, final)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_remove_tree, staging)
                raise
            return True

    # Records.

    def _record_path(self, name: str) -> Path:
        return self.root / "records" / f"{hashlib.sha256(name.encode()).hexdigest()}.json"

    def record_path(self, name: str) -> Path:
        """Where the record of this name is (or would be)."""
        return self._record_path(name)

    def read_record(self, path: Path) -> ImageRecord | None:
        return self._read_record(path)

    async def save_record(self, record: ImageRecord) -> None:
        await anyio.to_thread.run_sync(
            self._write_atomically, self._record_path(record.name), record.dumps()
        )

    async def get(self, name: str) -> ImageRecord | None:
        """The record stored under exactly this name."""
        return await anyio.to_thread.run_sync(self._read_record, self._record_path(name))

    async def find(self, text: str) -> ImageRecord | None:
        """A record by reference ("busybox", "host:5000/a:1") or by image id (prefix)."""
        try:
            record = await self.get(str(ImageReference.parse(text)))
        except ProvisionerError:
            record = None
        if record is not None:
            return record
        if text.startswith("sha256:"):
            record = await self.get(text)
            if record is not None:
                return record
        image_id_prefix = text.removeprefix("sha256:")
        if len(image_id_prefix) < 4 or not all(c in "0123456789abcdef" for c in image_id_prefix):
            return None
        matches = [
            r for r in await self.list_images() if r.config_digest.hex.startswith(image_id_prefix)
        ]
        if len({r.config_digest for r in matches}) > 1:
            raise ProvisionerError(f"image id prefix {text!r} is ambiguous")
        return matches[0] if matches else None

    async def list_images(self) -> list[ImageRecord]:
        return await anyio.to_thread.run_sync(self._list_records)

    def _list_records(self) -> list[ImageRecord]:
        records = []
        for path in sorted((self.root / "records").glob("*.json")):
            record = self._read_record(path)
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda record: record.name)

    @staticmethod
    def _read_record(path: Path) -> ImageRecord | None:
        try:
            return ImageRecord.loads(path.read_bytes())
        except FileNotFoundError:
            return None

    # Leases: what live containers use, so that prune keeps it.

    async def lease(self, container_id: str, record: ImageRecord) -> None:
        await anyio.to_thread.run_sync(self.lease_blocking, container_id, record)

    def lease_blocking(self, container_id: str, record: ImageRecord) -> None:
        """Record that the container uses the image (call with the shared lock held).

        Atomic (rename) but not synced: a lease has to survive the agent, not the host;
        after a host crash the container it names is gone anyway."""
        document = {
            "container_id": container_id,
            "image_name": record.name,
            "diff_ids": [str(layer.diff_id) for layer in record.layers],
        }
        temporary = self.new_temp_path(".lease")
        temporary.write_bytes(json.dumps(document).encode())
        os.replace(temporary, self._lease_path(container_id))

    async def release(self, container_id: str) -> None:
        await anyio.to_thread.run_sync(self.release_blocking, container_id)

    def release_blocking(self, container_id: str) -> None:
        self._unlink_quietly(self._lease_path(container_id))

    async def leases(self) -> list[Lease]:
        return await anyio.to_thread.run_sync(self._read_leases)

    def _lease_path(self, container_id: str) -> Path:
        return self.root / "leases" / f"{_safe_file_name(container_id)}.json"

    def _read_leases(self) -> list[Lease]:
        leases = []
        for path in sorted((self.root / "leases").glob("*.json")):
            try:
                document = json.loads(path.read_bytes())
                leases.append(
                    Lease(
                        container_id=str(document["container_id"]),
                        image_name=str(document["image_name"]),
                        diff_ids=tuple(Digest.parse(item) for item in document["diff_ids"]),
                    )
                )
            except (FileNotFoundError, ValueError, KeyError, TypeError, ProvisionerError):
                continue
        return leases

    # Removal.

    async def remove(self, text: str, *, force: bool = False) -> ImageRecord:
        """Forget an image and delete the layers no other image or container uses."""
        async with self.exclusive_lock():
            record = await self.find(text)
            if record is None:
                raise ImageNotFoundError(f"no image {text!r} in the store")
            users = [
                lease.container_id
                for lease in await self.leases()
                if lease.image_name == record.name
            ]
            if users and not force:
                raise ImageInUseError(
                    f"image {record.name} is used by container(s) {', '.join(users)}"
                )
            await anyio.to_thread.run_sync(self._unlink_quietly, self._record_path(record.name))
            await anyio.to_thread.run_sync(self._collect_garbage)
            return record

    async def prune(
        self, *, remove_unused_images: bool = False, keep: Collection[str] = ()
    ) -> PruneResult:
        """Delete layers and blobs no image references, and staging leftovers. With
        `remove_unused_images` (Mesos' PRUNE_IMAGES) first forget every image that no live
        container uses and that is not named in `keep` (references or image ids)."""
        async with self.exclusive_lock():
            removed_images: list[str] = []
            if remove_unused_images:
                kept_names = set()
                for text in keep:
                    record = await self.find(text)
                    if record is not None:
                        kept_names.add(record.name)
                kept_names |= {lease.image_name for lease in await self.leases()}
                for record in await self.list_images():
                    if record.name not in kept_names:
                        path = self._record_path(record.name)
                        await anyio.to_thread.run_sync(self._unlink_quietly, path)
                        removed_images.append(record.name)
            removed_layers, freed_bytes = await anyio.to_thread.run_sync(self._collect_garbage)
            return PruneResult(tuple(removed_images), removed_layers, freed_bytes)

    def _collect_garbage(self) -> tuple[int, int]:
        """Delete unreferenced layers (every format), blobs, layer locks and staging.
        Runs under the exclusive store lock: no pull is in flight anywhere."""
        records = self._list_records()
        referenced_layers = {layer.diff_id for record in records for layer in record.layers}
        referenced_layers |= {d for lease in self._read_leases() for d in lease.diff_ids}
        referenced_blobs = {record.config_digest for record in records}
        referenced_blobs |= {r.manifest_digest for r in records if r.manifest_digest is not None}
        removed_layers = 0
        freed_bytes = 0
        for format_dir in (self.root / "layers").glob("*"):
            for layer_dir in format_dir.glob("*/*"):
                digest = Digest(layer_dir.parent.name, layer_dir.name)
                if digest not in referenced_layers:
                    freed_bytes += _tree_size_bytes(layer_dir)
                    _remove_tree(layer_dir)
                    removed_layers += 1
        for blob in (self.root / "blobs").glob("*/*"):
            if Digest(blob.parent.name, blob.name) not in referenced_blobs:
                freed_bytes += blob.lstat().st_size
                self._unlink_quietly(blob)
        for lock in (self.root / "locks").glob("layer-*.lock"):
            self._unlink_quietly(lock)
        for leftover in (self.root / "tmp").iterdir():
            freed_bytes += _tree_size_bytes(leftover)
            _remove_tree(leftover)
        return removed_layers, freed_bytes

    # Helpers.

    def _write_atomically(self, path: Path, data: bytes) -> None:
        """write, fsync, rename, fsync dir: a crash leaves the old file or the new one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.new_temp_path(".part")
        with temporary.open("wb") as target:
            target.write(data)
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, path)
        directory_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)

    @staticmethod
    def _unlink_quietly(path: Path) -> None:
        path.unlink(missing_ok=True)


def _safe_file_name(text: str) -> str:
    if text and all(c.isalnum() or c in "-_." for c in text) and not text.startswith("."):
        return text
    return hashlib.sha256(text.encode()).hexdigest()


def _rename_into_place(staging: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError as error:
        # Someone made it meanwhile without our lock (a store from an older layout):
        # the content is the same by digest, keep theirs.
        if final.is_dir():
            _remove_tree(staging)
            return
        raise ProvisionerError(f"cannot move layer into {final}: {error}") from error
    directory_fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _tree_size_bytes(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        try:
            return path.lstat().st_size
        except FileNotFoundError:
            return 0
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
    return total
