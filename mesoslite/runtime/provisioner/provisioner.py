"""The provisioner the containerizer calls: an Image in, a root filesystem out.

<root>/images/                          the ImageStore (shared with `mesoslite image`)
<root>/provisioner/containers/<id>/     one per container: container.json, rootfs/ and
                                        the backend's own directories (upper/, work/)

A container whose image is already stored is provisioned in one worker-thread call
(record, lease, container record, mount) and destroyed in another; the image's record is
parsed once and kept while its file is unchanged. Leases and container records are
renamed into place but not synced: they only have to survive the agent (after a host
crash the containers they name are gone).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.provisioner.backend_choice import backend_named, choose_backend
from mesoslite.runtime.provisioner.credentials import Credential, RegistryCredentials
from mesoslite.runtime.provisioner.errors import ProvisionerError, UnsupportedImageError
from mesoslite.runtime.provisioner.image_config import ImageConfig
from mesoslite.runtime.provisioner.image_import import import_image
from mesoslite.runtime.provisioner.image_pull import pull_image
from mesoslite.runtime.provisioner.image_record import ImageRecord, ImageSource
from mesoslite.runtime.provisioner.image_store import ImageStore
from mesoslite.runtime.provisioner.mount_points import (
    MountPoint,
    mount_point_layer,
    prune_mount_point_layers,
)
from mesoslite.runtime.provisioner.platform import Platform
from mesoslite.runtime.provisioner.progress import ProgressCallback
from mesoslite.runtime.provisioner.reference import ImageReference
from mesoslite.runtime.provisioner.registry_client import RegistryClient, RegistryOptions
from mesoslite.runtime.provisioner.rootfs_backend import BackendName, RootfsBackend

__all__ = ["ProvisionInfo", "Provisioner", "credentials_of_image"]

_CONTAINER_RECORD = "container.json"


class _NotStored(Exception):
    """The image (or a layer of it) is not in the store: it has to be pulled."""


@dataclass(frozen=True)
class ProvisionInfo:
    # The container's root filesystem on the host.
    rootfs: Path
    # The image's runtime defaults; combine with the task's command via apply_image_config.
    config: ImageConfig
    image: ImageRecord


def credentials_of_image(docker: mesos_pb2.Image.Docker) -> RegistryCredentials:
    """Credentials an Image.Docker carries: `config` (a Secret holding a docker config.json)
    and the deprecated `credential` (principal/secret, for any registry)."""
    credentials = RegistryCredentials()
    if docker.HasField("config"):
        secret = docker.config
        if secret.type != mesos_pb2.Secret.VALUE or not secret.HasField("value"):
            raise UnsupportedImageError(
                "Image.Docker.config must be a VALUE secret (secret references are not supported)"
            )
        credentials = RegistryCredentials.from_docker_config(secret.value.data)
    if docker.HasField("credential"):
        credential = Credential(docker.credential.principal, docker.credential.secret)
        credentials = RegistryCredentials(credentials.by_registry, default=credential)
    return credentials


class Provisioner:
    def __init__(
        self,
        root: Path,
        *,
        backend: BackendName | str | None = None,
        registry_options: RegistryOptions | None = None,
        platform: Platform | None = None,
    ) -> None:
        """`backend`: "overlay", "copy", or None/"auto" to probe on first use."""
        self.root = root
        self.registry_options = registry_options or RegistryOptions()
        self.platform = platform or Platform.host()
        self._requested_backend = backend
        self._backend: RootfsBackend | None = None
        self._store: ImageStore | None = None
        self._setup_lock = anyio.Lock()
        # reference -> (record, (mtime ns, size, inode) of its file when it was read)
        self._records: dict[str, tuple[ImageRecord, tuple[int, int, int]]] = {}
        # The backend of each container this provisioner made (destroy need not read
        # its record back); recovered containers are looked up in their records.
        self._made_by: dict[str, RootfsBackend] = {}

    @property
    def containers_root(self) -> Path:
        return self.root / "provisioner" / "containers"

    @property
    def mount_points_root(self) -> Path:
        return self.root / "provisioner" / "mountpoints"

    async def backend(self) -> RootfsBackend:
        await self._ensure_ready()
        assert self._backend is not None
        return self._backend

    async def store(self) -> ImageStore:
        await self._ensure_ready()
        assert self._store is not None
        return self._store

    async def _ensure_ready(self) -> None:
        async with self._setup_lock:
            if self._store is not None:
                return
            scratch = self.root / "provisioner"
            await anyio.to_thread.run_sync(lambda: scratch.mkdir(parents=True, exist_ok=True))
            backend = await anyio.to_thread.run_sync(
                choose_backend, self._requested_backend, scratch
            )
            self._store = await anyio.to_thread.run_sync(
                ImageStore, self.root / "images", backend.layer_format
            )
            self._backend = backend

    # Images.

    async def pull(
        self,
        reference: str,
        *,
        credentials: RegistryCredentials | None = None,
        progress: ProgressCallback | None = None,
    ) -> ImageRecord:
        store = await self.store()
        options = self.registry_options
        if credentials is not None:
            merged = credentials.merged_over(options.credentials)
            options = dataclasses.replace(options, credentials=merged)
        # Building the client loads the CA bundle: file reads, kept off the event loop.
        client = await anyio.to_thread.run_sync(RegistryClient, options)
        async with client:
            return await pull_image(
                store,
                client,
                ImageReference.parse(reference),
                platform=self.platform,
                progress=progress,
            )

    async def import_archive(
        self, path: Path, *, name: str | None = None, progress: ProgressCallback | None = None
    ) -> list[ImageRecord]:
        store = await self.store()
        return await import_image(store, path, name=name, platform=self.platform, progress=progress)

    @staticmethod
    def _docker_reference(image: mesos_pb2.Image) -> str:
        if image.type == mesos_pb2.Image.APPC:
            raise UnsupportedImageError(
                "APPC images are not supported: use an image of type DOCKER (Docker/OCI)"
            )
        if image.type != mesos_pb2.Image.DOCKER or not image.docker.name:
            raise UnsupportedImageError("image must be of type DOCKER with docker.name set")
        return str(ImageReference.parse(image.docker.name))

    def _stored_record(self, store: ImageStore, reference: str) -> ImageRecord:
        """The stored record of `reference` with all its layers (worker thread)."""
        path = store.record_path(reference)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise _NotStored() from None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._records.get(reference)
        if cached is not None and cached[1] == key:
            record = cached[0]
        else:
            loaded = store.read_record(path)
            if loaded is None:
                raise _NotStored()
            record = loaded
            self._records[reference] = (record, key)
        if not store.has_all_layers(record):
            if record.source != ImageSource.REGISTRY:
                raise ProvisionerError(
                    f"layers of imported image {record.name} are missing: import it again"
                )
            raise _NotStored()
        return record

    # Containers.

    async def provision(
        self,
        container_id: str,
        image: mesos_pb2.Image,
        *,
        progress: ProgressCallback | None = None,
        mount_points: Sequence[MountPoint] = (),
    ) -> ProvisionInfo:
        """Make the root filesystem of `image` for a new container. Image.cached (the
        default) uses the local copy when there is one; cached=false asks the registry.
        `mount_points`: what the launcher will mount on in every container (with the
        overlay backend they come from a layer shared by the image's containers, see
        mount_points.py)."""
        reference = self._docker_reference(image)
        store = await self.store()
        backend = await self.backend()
        self._container_dir(container_id)  # refuses an id that cannot name a directory
        if image.cached:
            try:
                return await anyio.to_thread.run_sync(
                    self._provision_stored, container_id, reference, store, backend, mount_points
                )
            except _NotStored:
                pass
        record = await self.pull(
            image.docker.name, credentials=credentials_of_image(image.docker), progress=progress
        )
        return await anyio.to_thread.run_sync(
            self._provision_record, container_id, record, store, backend, mount_points
        )

    def _provision_stored(
        self,
        container_id: str,
        reference: str,
        store: ImageStore,
        backend: RootfsBackend,
        mount_points: Sequence[MountPoint],
    ) -> ProvisionInfo:
        record = self._stored_record(store, reference)
        return self._provision_record(container_id, record, store, backend, mount_points)

    def _provision_record(
        self,
        container_id: str,
        record: ImageRecord,
        store: ImageStore,
        backend: RootfsBackend,
        mount_points: Sequence[MountPoint] = (),
    ) -> ProvisionInfo:
        """Lease the image, record the container, make its root filesystem (worker
        thread); on failure nothing of it is left."""
        container_dir = self._container_dir(container_id)
        if container_dir.exists():
            raise ProvisionerError(f"container {container_id} already has a root filesystem")
        try:
            with store.shared_lock().held_blocking():
                if not store.has_all_layers(record):
                    raise ProvisionerError(f"layers of {record.name} were removed meanwhile")
                store.lease_blocking(container_id, record)
                layers = store.layer_paths(record)
                if mount_points and layers and backend.name == BackendName.OVERLAY:
                    # Under the shared lock: a prune cannot take the image's layers away
                    # while their mount point layer is made.
                    layers = [
                        *layers,
                        mount_point_layer(self.mount_points_root, layers, mount_points),
                    ]
            _write_container_record(container_dir, container_id, record, backend, layers)
            rootfs = backend.create(layers, container_dir)
        except BaseException:
            self._destroy_blocking(container_id, store, backend)
            raise
        self._made_by[container_id] = backend
        return ProvisionInfo(rootfs=rootfs, config=record.config, image=record)

    async def destroy(self, container_id: str) -> None:
        """Unmount and delete the container's rootfs and release its image (idempotent)."""
        store = await self.store()
        backend = await self.backend()
        await anyio.to_thread.run_sync(self._destroy_blocking, container_id, store, backend)

    def _destroy_blocking(
        self, container_id: str, store: ImageStore, default_backend: RootfsBackend
    ) -> None:
        container_dir = self._container_dir(container_id)
        backend = self._made_by.pop(container_id, None)
        if backend is None:
            stored = _read_container_record(container_dir)
            backend = backend_named(stored.backend) if stored else default_backend
        backend.destroy(container_dir)
        store.release_blocking(container_id)

    async def prune_images(self, excluded_images: list[mesos_pb2.Image]) -> None:
        """Mesos' PRUNE_IMAGES: forget the images no container uses (except the excluded
        ones) and delete the layers and blobs nothing needs any more."""
        keep = [image.docker.name for image in excluded_images if image.docker.name]
        store = await self.store()
        await store.prune(remove_unused_images=True, keep=keep)
        self._records.clear()
        async with store.exclusive_lock():
            # No provisioning meanwhile: none is making or mounting one of these.
            await anyio.to_thread.run_sync(prune_mount_point_layers, self.mount_points_root)

    async def recover(self, known_ids: Collection[str]) -> set[str]:
        """After a restart: keep (and remount if needed) the rootfs of containers in
        `known_ids`, destroy every other one. Returns the ids whose rootfs is back."""
        known = set(known_ids)
        recovered: set[str] = set()
        directories = await anyio.to_thread.run_sync(self._container_dirs)
        store = await self.store()
        for container_dir in directories:
            stored = await anyio.to_thread.run_sync(_read_container_record, container_dir)
            if stored is None or stored.container_id not in known:
                backend = backend_named(stored.backend) if stored else await self.backend()
                await anyio.to_thread.run_sync(backend.destroy, container_dir)
                if stored is not None:
                    await store.release(stored.container_id)
                continue
            backend = backend_named(stored.backend)
            await anyio.to_thread.run_sync(backend.recover, stored.layers, container_dir)
            recovered.add(stored.container_id)
        for lease in await store.leases():
            if lease.container_id not in recovered:
                await store.release(lease.container_id)
        return recovered

    def _container_dir(self, container_id: str) -> Path:
        if (
            not container_id
            or container_id.startswith(".")
            or not all(c.isalnum() or c in "-_." for c in container_id)
        ):
            raise ProvisionerError(f"invalid container id {container_id!r}")
        return self.containers_root / container_id

    def _container_dirs(self) -> list[Path]:
        if not self.containers_root.is_dir():
            return []
        return sorted(path for path in self.containers_root.iterdir() if path.is_dir())


@dataclass(frozen=True)
class _ContainerRecord:
    container_id: str
    image_name: str
    backend: BackendName
    layers: list[Path]


def _write_container_record(
    container_dir: Path,
    container_id: str,
    record: ImageRecord,
    backend: RootfsBackend,
    layers: list[Path],
) -> None:
    container_dir.mkdir(parents=True, exist_ok=False)
    document = {
        "container_id": container_id,
        "image_name": record.name,
        "backend": backend.name.value,
        "layers": [str(layer) for layer in layers],
    }
    # Renamed into place, not synced (see the module docstring).
    temporary = container_dir / f"{_CONTAINER_RECORD}.part"
    temporary.write_text(json.dumps(document), encoding="utf-8")
    os.replace(temporary, container_dir / _CONTAINER_RECORD)


def _read_container_record(container_dir: Path) -> _ContainerRecord | None:
    try:
        document = json.loads((container_dir / _CONTAINER_RECORD).read_text(encoding="utf-8"))
        return _ContainerRecord(
            container_id=str(document["container_id"]),
            image_name=str(document["image_name"]),
            backend=BackendName(document["backend"]),
            layers=[Path(layer) for layer in document["layers"]],
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
