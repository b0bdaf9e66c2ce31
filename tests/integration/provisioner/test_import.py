"""Imports without a registry: docker-archive and OCI archive (written by skopeo) and the
OCI layout directory umoci built."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.provisioner import (
    BackendName,
    DigestMismatchError,
    ImageNotFoundError,
    Provisioner,
    ProvisionerError,
)
from tests.support.images import BuiltImage, copy_image

from .expectations import assert_whiteout_image_tree

pytestmark = pytest.mark.anyio


def _docker_image(name: str) -> mesos_pb2.Image:
    return mesos_pb2.Image(type=mesos_pb2.Image.DOCKER, docker=mesos_pb2.Image.Docker(name=name))


async def _assert_provisions(provisioner: Provisioner, name: str) -> None:
    info = await provisioner.provision("c1", _docker_image(name))
    assert_whiteout_image_tree(info.rootfs)
    assert info.config.cmd == ("cat /etc/hostname",)
    await provisioner.destroy("c1")


async def test_docker_archive(whiteout_image: BuiltImage, tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    copy_image(whiteout_image.oci_ref, f"docker-archive:{archive}:example.com/team/app:1.0")
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.COPY)
    records = await provisioner.import_archive(archive)
    assert [record.name for record in records] == ["example.com/team/app:1.0"]
    assert records[0].manifest_digest is None
    await _assert_provisions(provisioner, "example.com/team/app:1.0")
    # Importing again finds every layer in place.
    again = await provisioner.import_archive(archive, name="renamed:2")
    assert [record.name for record in again] == ["docker.io/library/renamed:2"]
    assert again[0].layers == records[0].layers


async def test_docker_archive_without_tags_is_named_by_id(
    whiteout_image: BuiltImage, tmp_path: Path
) -> None:
    archive = tmp_path / "image.tar"
    copy_image(whiteout_image.oci_ref, f"docker-archive:{archive}")
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.COPY)
    (record,) = await provisioner.import_archive(archive)
    assert record.name == str(record.config_digest)
    store = await provisioner.store()
    assert await store.find(record.config_digest.hex[:12]) == record


async def test_oci_archive(whiteout_image: BuiltImage, tmp_path: Path) -> None:
    archive = tmp_path / "image-oci.tar"
    copy_image(whiteout_image.oci_ref, f"oci-archive:{archive}:v1")
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.COPY)
    (record,) = await provisioner.import_archive(archive, name="local/app:v1")
    assert record.name == "docker.io/local/app:v1"
    assert record.manifest_digest is not None
    await _assert_provisions(provisioner, "local/app:v1")


async def test_oci_layout_directory(whiteout_image: BuiltImage, tmp_path: Path) -> None:
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.COPY)
    # The layout holds one image: a name gives it a repository (and any tag).
    (record,) = await provisioner.import_archive(whiteout_image.layout, name="local/app:2")
    assert record.name == "docker.io/local/app:2"
    await _assert_provisions(provisioner, "local/app:2")


async def test_oci_layout_tags_select_among_several_images(
    platform_index: BuiltImage, tmp_path: Path
) -> None:
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.COPY)
    (record,) = await provisioner.import_archive(
        platform_index.layout, name="local/multi:multi-arm64"
    )
    assert record.platform.architecture == "arm64"
    info = await provisioner.provision("c1", _docker_image("local/multi:multi-arm64"))
    assert (info.rootfs / "platform").read_text() == "linux/arm64\n"
    await provisioner.destroy("c1")
    with pytest.raises(ImageNotFoundError):
        await provisioner.import_archive(platform_index.layout, name="local/multi:nope")


async def test_corrupt_layer_in_an_archive_is_detected(
    whiteout_image: BuiltImage, tmp_path: Path
) -> None:
    archive = tmp_path / "image.tar"
    copy_image(whiteout_image.oci_ref, f"docker-archive:{archive}:corrupt:1")
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w") as target:
        manifest = json.loads(source.extractfile("manifest.json").read())  # type: ignore[union-attr]
        smallest = min(manifest[0]["Layers"], key=lambda name: source.getmember(name).size)
        for member in source.getmembers():
            data = source.extractfile(member) if member.isreg() else None
            if member.name == smallest and data is not None:
                content = bytearray(data.read())
                content[0] ^= 0xFF
                import io

                target.addfile(member, io.BytesIO(bytes(content)))
            else:
                target.addfile(member, data)
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.COPY)
    with pytest.raises((DigestMismatchError, ProvisionerError)):
        await provisioner.import_archive(tampered)
    store = await provisioner.store()
    assert await store.list_images() == []


async def test_not_an_image(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    with tarfile.open(junk, "w") as archive:
        archive.add(__file__, arcname="something.py")
    provisioner = Provisioner(tmp_path / "root", backend=BackendName.COPY)
    with pytest.raises(ProvisionerError, match=r"no manifest\.json"):
        await provisioner.import_archive(junk)
