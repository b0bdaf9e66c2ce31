"""Pulls from a real docker-registry: manifest kinds, platforms, auth, tampering, races."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.provisioner import (
    AuthenticationError,
    BackendName,
    Credential,
    DigestMismatchError,
    ImageNotFoundError,
    LayerPhase,
    LayerProgress,
    Platform,
    Provisioner,
    RegistryCredentials,
    RegistryOptions,
)
from mesoslite.runtime.provisioner.layer_unpack import zstd_supported
from tests.conftest import require
from tests.support.images import build_layered_image, copy_image, push_layout
from tests.support.registry import RegistryServer

from .conftest import PASSWORD, USER, WHITEOUT_REPOSITORY, TokenRegistry, Tools
from .expectations import assert_whiteout_image_tree

pytestmark = pytest.mark.anyio

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]


def _provisioner(root: Path, **options: object) -> Provisioner:
    return Provisioner(
        root,
        backend=BackendName.COPY,
        registry_options=RegistryOptions(**options),  # type: ignore[arg-type]
    )


def _docker_image(name: str) -> mesos_pb2.Image:
    return mesos_pb2.Image(type=mesos_pb2.Image.DOCKER, docker=mesos_pb2.Image.Docker(name=name))


@pytest.mark.parametrize("tag", ["oci", "docker"])
async def test_pull_and_provision_gives_the_merged_tree(
    registry: RegistryServer, tmp_path: Path, tag: str
) -> None:
    provisioner = _provisioner(tmp_path)
    events: list[LayerProgress] = []
    record = await provisioner.pull(
        f"{registry.host}/{WHITEOUT_REPOSITORY}:{tag}", progress=events.append
    )
    assert record.name == f"{registry.host}/{WHITEOUT_REPOSITORY}:{tag}"
    assert len(record.layers) == 3
    assert record.config.entrypoint == ("/bin/sh", "-c")
    assert record.config.working_dir == "/data"
    # Progress: every layer ends DONE with all its bytes; downloads count up to the size.
    for layer in record.layers:
        mine = [event for event in events if event.layer == str(layer.blob_digest)]
        assert mine[-1].phase is LayerPhase.DONE
        assert mine[-1].done_bytes == mine[-1].total_bytes == layer.blob_size_bytes
        downloads = [e.done_bytes for e in mine if e.phase is LayerPhase.DOWNLOADING]
        assert downloads == sorted(downloads) and downloads[-1] == layer.blob_size_bytes

    info = await provisioner.provision("c1", _docker_image(record.name))
    assert_whiteout_image_tree(info.rootfs)
    assert info.config == record.config
    await provisioner.destroy("c1")
    assert not info.rootfs.exists()


async def test_second_pull_uses_the_cache(registry: RegistryServer, tmp_path: Path) -> None:
    provisioner = _provisioner(tmp_path)
    await provisioner.pull(f"{registry.host}/{WHITEOUT_REPOSITORY}:oci")
    events: list[LayerProgress] = []
    # Same layers under a Docker schema 2 manifest: nothing is downloaded again.
    await provisioner.pull(f"{registry.host}/{WHITEOUT_REPOSITORY}:docker", progress=events.append)
    assert {event.phase for event in events} == {LayerPhase.CACHED}


async def test_pull_by_digest(registry: RegistryServer, tmp_path: Path) -> None:
    provisioner = _provisioner(tmp_path)
    by_tag = await provisioner.pull(f"{registry.host}/{WHITEOUT_REPOSITORY}:oci")
    assert by_tag.manifest_digest is not None
    pinned = f"{registry.host}/{WHITEOUT_REPOSITORY}@{by_tag.manifest_digest}"
    by_digest = await provisioner.pull(pinned)
    assert by_digest.name == pinned
    assert by_digest.config_digest == by_tag.config_digest


async def test_missing_image_is_reported(registry: RegistryServer, tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="not found"):
        await _provisioner(tmp_path).pull(f"{registry.host}/test/nothing-here:1")


@pytest.mark.parametrize("architecture", ["amd64", "arm64"])
async def test_index_selects_the_platform(
    registry: RegistryServer, tmp_path: Path, architecture: str
) -> None:
    provisioner = Provisioner(
        tmp_path, backend=BackendName.COPY, platform=Platform("linux", architecture)
    )
    record = await provisioner.pull(f"{registry.host}/test/multi:1")
    assert record.platform.architecture == architecture
    info = await provisioner.provision("c1", _docker_image(record.name))
    assert (info.rootfs / "platform").read_text() == f"linux/{architecture}\n"
    await provisioner.destroy("c1")


async def test_index_defaults_to_this_machine(registry: RegistryServer, tmp_path: Path) -> None:
    if Platform.host().architecture not in ("amd64", "arm64"):
        pytest.skip("the test index has amd64 and arm64 only")
    record = await _provisioner(tmp_path).pull(f"{registry.host}/test/multi:1")
    assert record.platform.architecture == Platform.host().architecture


async def test_basic_auth(basic_auth_registry: RegistryServer, tmp_path: Path) -> None:
    reference = f"{basic_auth_registry.host}/{WHITEOUT_REPOSITORY}:oci"
    with pytest.raises(AuthenticationError, match="wants credentials"):
        await _provisioner(tmp_path / "none").pull(reference)
    wrong = RegistryCredentials(default=Credential(USER, "wrong"))
    with pytest.raises(AuthenticationError):
        await _provisioner(tmp_path / "wrong", credentials=wrong).pull(reference)
    right = RegistryCredentials({basic_auth_registry.host: Credential(USER, PASSWORD)})
    record = await _provisioner(tmp_path / "right", credentials=right).pull(reference)
    assert len(record.layers) == 3


async def test_basic_auth_from_the_images_docker_config(
    basic_auth_registry: RegistryServer, tmp_path: Path
) -> None:
    import base64
    import json

    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = json.dumps({"auths": {f"http://{basic_auth_registry.host}": {"auth": auth}}})
    image = _docker_image(f"{basic_auth_registry.host}/{WHITEOUT_REPOSITORY}:oci")
    image.docker.config.type = mesos_pb2.Secret.VALUE
    image.docker.config.value.data = config.encode()
    provisioner = _provisioner(tmp_path)
    info = await provisioner.provision("c1", image)
    assert_whiteout_image_tree(info.rootfs)
    await provisioner.destroy("c1")


async def test_token_auth_with_credentials(token_registry: TokenRegistry, tmp_path: Path) -> None:
    reference = f"{token_registry.server.host}/{WHITEOUT_REPOSITORY}:oci"
    with pytest.raises(AuthenticationError):
        await _provisioner(tmp_path / "anonymous").pull(reference)
    credentials = RegistryCredentials(default=Credential(USER, PASSWORD))
    record = await _provisioner(tmp_path / "alice", credentials=credentials).pull(reference)
    assert len(record.layers) == 3
    granted = [r for r in token_registry.tokens.requests if r.username == USER]
    assert granted
    assert {r.scope for r in granted} == {f"repository:{WHITEOUT_REPOSITORY}:pull"}
    assert {r.service for r in granted} == {"mesoslite-test-registry"}


async def test_token_auth_anonymous(
    anonymous_token_registry: TokenRegistry, tmp_path: Path
) -> None:
    reference = f"{anonymous_token_registry.server.host}/{WHITEOUT_REPOSITORY}:oci"
    record = await _provisioner(tmp_path).pull(reference)
    assert len(record.layers) == 3
    assert all(r.username is None for r in anonymous_token_registry.tokens.requests)


async def test_tampered_blob_is_detected(
    registry: RegistryServer, tools: Tools, tmp_path: Path
) -> None:
    # An image of its own: the registry stores blobs once for all repositories.
    image = build_layered_image(
        tmp_path / "image", tools.busybox, layer_count=2, layer_size_bytes=4096, tag="tampered"
    )
    push_layout(image, registry.host, "test/tampered:1")
    manifest = image.manifest()
    victim = manifest["layers"][-1]["digest"]
    data_path = registry.blob_data_path(victim)
    original = data_path.read_bytes()
    data_path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    provisioner = _provisioner(tmp_path / "store")
    with pytest.raises(DigestMismatchError, match=victim):
        await provisioner.pull(f"{registry.host}/test/tampered:1")
    store = await provisioner.store()
    assert await store.list_images() == []
    assert list((tmp_path / "store/images/tmp").iterdir()) == []
    unpacked = list((tmp_path / "store/images/layers").glob("*/*/*"))
    assert len(unpacked) <= 1  # at most the intact base layer


async def test_concurrent_pulls_in_tasks_and_processes_share_layers(
    registry: RegistryServer, tools: Tools, tmp_path: Path
) -> None:
    image = build_layered_image(
        tmp_path / "image", tools.busybox, layer_count=4, layer_size_bytes=1 << 20, tag="race"
    )
    push_layout(image, registry.host, "test/race:1")
    reference = f"{registry.host}/test/race:1"
    root = tmp_path / "shared"
    script = (
        "import anyio, sys\n"
        "from pathlib import Path\n"
        "from mesoslite.runtime.provisioner import Provisioner\n"
        "record = anyio.run(lambda: Provisioner(Path(sys.argv[1]), backend='copy')"
        ".pull(sys.argv[2]))\n"
        "print(record.config_digest)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(root), reference],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
        for _ in range(2)
    ]
    try:
        results = []

        async def pull_in_task() -> None:
            results.append(await _provisioner(root).pull(reference))

        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(pull_in_task)
        outputs = [await anyio.to_thread.run_sync(process.communicate) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()
        assert stdout.decode().strip() == str(results[0].config_digest)
    assert results[0] == results[1] or results[0].layers == results[1].layers
    layer_dirs = sorted((root / "images/layers/oci/sha256").iterdir())
    assert [d.name for d in layer_dirs] == sorted(layer.diff_id.hex for layer in results[0].layers)
    assert list((root / "images/tmp").iterdir()) == []


async def test_zstd_layers(registry: RegistryServer, tools: Tools, tmp_path: Path) -> None:
    require(zstd_supported(), "needs a zstd module (pip install backports.zstd)")
    # Layers of their own: skopeo would reuse gzip blobs the registry already has.
    image = build_layered_image(
        tmp_path / "image", tools.busybox, layer_count=2, layer_size_bytes=10_000, tag="zstd"
    )
    copy_image(
        image.oci_ref,
        f"docker://{registry.host}/test/zstd:1",
        "--dest-tls-verify=false",
        "--dest-compress",
        "--dest-compress-format=zstd",
    )
    provisioner = _provisioner(tmp_path / "root")
    record = await provisioner.pull(f"{registry.host}/test/zstd:1")
    assert {layer.media_type for layer in record.layers} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    info = await provisioner.provision("c1", _docker_image(record.name))
    assert (info.rootfs / "data/1.bin").stat().st_size == 10_000
    assert (info.rootfs / "bin/sh").is_symlink()
    await provisioner.destroy("c1")
