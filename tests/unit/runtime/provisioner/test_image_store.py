from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ImageNotFoundError
from mesoslite.runtime.provisioner.image_config import ImageConfig
from mesoslite.runtime.provisioner.image_record import ImageRecord, ImageSource, LayerRecord
from mesoslite.runtime.provisioner.image_store import ImageInUseError, ImageStore
from mesoslite.runtime.provisioner.layer_unpack import LayerFormat
from mesoslite.runtime.provisioner.platform import Platform

pytestmark = pytest.mark.anyio


def _digest(character: str) -> Digest:
    return Digest("sha256", character * 64)


def _record(name: str, config: str, *layers: str) -> ImageRecord:
    return ImageRecord(
        name=name,
        source=ImageSource.REGISTRY,
        config_digest=_digest(config),
        manifest_digest=_digest("f"),
        config=ImageConfig(cmd=("/bin/sh",), env=("A=1",)),
        platform=Platform("linux", "amd64"),
        layers=tuple(
            LayerRecord(_digest(layer), _digest(layer), 100, "application/x") for layer in layers
        ),
        stored_at_s=time.time(),
    )


async def _add_layer(store: ImageStore, character: str, content: str = "x") -> bool:
    async def produce(staging: Path) -> None:
        (staging / "file").write_text(content)

    return await store.add_layer(_digest(character), produce)


async def test_concurrent_add_layer_produces_once(tmp_path: Path) -> None:
    first = ImageStore(tmp_path / "images", LayerFormat.OCI)
    second = ImageStore(tmp_path / "images", LayerFormat.OCI)
    produced: list[str] = []
    inside = anyio.Event()
    release = anyio.Event()

    async def slow(staging: Path) -> None:
        produced.append("slow")
        inside.set()
        await release.wait()
        (staging / "file").write_text("slow")

    async def fast(staging: Path) -> None:
        produced.append("fast")
        (staging / "file").write_text("fast")

    results: dict[str, bool] = {}

    async def run(name: str, store: ImageStore, produce: object) -> None:
        results[name] = await store.add_layer(_digest("a"), produce)  # type: ignore[arg-type]

    async with anyio.create_task_group() as group:
        group.start_soon(run, "slow", first, slow)
        await inside.wait()
        group.start_soon(run, "fast", second, fast)
        await anyio.sleep(0.05)
        release.set()
    assert produced == ["slow"]
    assert results == {"slow": True, "fast": False}
    assert (first.layer_path(_digest("a")) / "file").read_text() == "slow"


async def test_failed_produce_leaves_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", LayerFormat.OCI)

    async def broken(staging: Path) -> None:
        (staging / "half").write_text("x")
        raise RuntimeError("network went away")

    with pytest.raises(RuntimeError):
        await store.add_layer(_digest("a"), broken)
    assert not store.has_layer(_digest("a"))
    assert list((tmp_path / "images" / "tmp").iterdir()) == []


async def test_records_roundtrip_and_lookup(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", LayerFormat.OCI)
    record = _record("docker.io/library/busybox:latest", "c", "a", "b")
    await store.save_record(record)
    assert await store.get(record.name) == record
    assert await store.find("busybox") == record
    assert await store.find("busybox:latest") == record
    assert await store.find("cccccc") == record
    assert await store.find("sha256:" + "c" * 64) == record
    assert await store.find("other") is None
    assert [r.name for r in await store.list_images()] == [record.name]


async def test_remove_collects_unshared_layers(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", LayerFormat.OCI)
    for layer in "abc":
        await _add_layer(store, layer)
    await store.save_record(_record("docker.io/library/one:1", "1", "a", "b"))
    await store.save_record(_record("docker.io/library/two:1", "2", "a", "c"))
    await store.remove("one:1")
    assert store.has_layer(_digest("a"))
    assert not store.has_layer(_digest("b"))
    assert store.has_layer(_digest("c"))
    with pytest.raises(ImageNotFoundError):
        await store.remove("one:1")


async def test_leases_protect_images_and_layers(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", LayerFormat.OCI)
    for layer in "ab":
        await _add_layer(store, layer)
    used = _record("docker.io/library/used:1", "1", "a")
    unused = _record("docker.io/library/unused:1", "2", "b")
    await store.save_record(used)
    await store.save_record(unused)
    await store.lease("container-1", used)
    with pytest.raises(ImageInUseError, match="container-1"):
        await store.remove("used:1")
    result = await store.prune(remove_unused_images=True)
    assert result.removed_images == ("docker.io/library/unused:1",)
    assert result.removed_layers == 1
    assert result.freed_bytes > 0
    assert store.has_layer(_digest("a"))
    # The lease keeps the layers even once the image itself is forced out.
    await store.remove("used:1", force=True)
    assert store.has_layer(_digest("a"))
    await store.release("container-1")
    assert (await store.prune()).removed_layers == 1
    assert not store.has_layer(_digest("a"))


async def test_prune_keeps_named_images(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", LayerFormat.OCI)
    await _add_layer(store, "a")
    await store.save_record(_record("docker.io/library/keep:1", "1", "a"))
    await store.save_record(_record("docker.io/library/drop:1", "2", "a"))
    result = await store.prune(remove_unused_images=True, keep=["keep:1"])
    assert result.removed_images == ("docker.io/library/drop:1",)
    assert result.removed_layers == 0
    assert [r.name for r in await store.list_images()] == ["docker.io/library/keep:1"]
