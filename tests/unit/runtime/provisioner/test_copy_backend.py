from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from mesoslite.runtime.provisioner.copy_backend import CopyBackend, apply_layer
from mesoslite.runtime.provisioner.layer_unpack import LayerFormat, unpack_layer
from tests.support.layer_tars import LayerTar


def _layers(tmp_path: Path, *tars: LayerTar) -> list[Path]:
    paths = []
    for index, layer in enumerate(tars):
        path = tmp_path / f"layer-{index}"
        path.mkdir()
        unpack_layer(io.BytesIO(layer.data()), path, LayerFormat.OCI)
        paths.append(path)
    return paths


def _tree(root: Path) -> dict[str, str]:
    found = {}
    for directory, subdirectories, files in os.walk(root):
        for name in [*subdirectories, *files]:
            path = Path(directory) / name
            relative = str(path.relative_to(root))
            if path.is_symlink():
                found[relative] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[relative] = "dir"
            else:
                found[relative] = path.read_text()
    return found


def test_whiteouts_and_opaque_dirs_are_applied(tmp_path: Path) -> None:
    layers = _layers(
        tmp_path,
        LayerTar()
        .file("data/keep", "keep")
        .file("data/gone", "gone")
        .file("data/subdir/gone-too", "x")
        .file("opq/old", "old")
        .file("opq/sub/deep", "old"),
        LayerTar().whiteout("data/gone").whiteout("data/subdir").whiteout("data/never-there"),
        LayerTar().opaque("opq").file("opq/new", "new"),
    )
    backend = CopyBackend()
    rootfs = backend.create(layers, tmp_path / "container")
    assert _tree(rootfs) == {
        "data": "dir",
        "data/keep": "keep",
        "opq": "dir",
        "opq/new": "new",
    }


def test_whiteout_hides_only_lower_layers(tmp_path: Path) -> None:
    layers = _layers(
        tmp_path,
        LayerTar().file("a/x", "lower"),
        LayerTar().whiteout("a/x").file("a/x", "same layer").opaque("a").file("a/y", "y"),
    )
    rootfs = CopyBackend().create(layers, tmp_path / "container")
    assert _tree(rootfs) == {"a": "dir", "a/x": "same layer", "a/y": "y"}


def test_directory_replaces_lower_symlink_without_following_it(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "precious").write_text("host file")
    layers = _layers(
        tmp_path,
        LayerTar().symlink("lib", str(outside)).symlink("rel", "../../host"),
        LayerTar().file("lib/new", "inside").whiteout("lib/precious").whiteout("rel/precious"),
    )
    rootfs = CopyBackend().create(layers, tmp_path / "container")
    assert (outside / "precious").read_text() == "host file"
    assert not (outside / "new").exists()
    # The layer has directories lib/ and rel/ (parents of its entries): they replace the links.
    assert _tree(rootfs) == {"lib": "dir", "lib/new": "inside", "rel": "dir"}


def test_metadata_and_hardlinks_survive_the_copy(tmp_path: Path) -> None:
    layers = _layers(
        tmp_path,
        LayerTar()
        .directory("etc", mode=0o751)
        .file("etc/secret", "s", mode=0o4710)
        .hardlink("etc/secret-link", "etc/secret")
        .symlink("etc/link", "secret"),
    )
    rootfs = CopyBackend().create(layers, tmp_path / "container")
    assert stat.S_IMODE((rootfs / "etc").stat().st_mode) == 0o751
    assert stat.S_IMODE((rootfs / "etc/secret").stat().st_mode) == 0o4710
    assert (rootfs / "etc/secret").stat().st_ino == (rootfs / "etc/secret-link").stat().st_ino
    assert (rootfs / "etc/secret").stat().st_ino != (layers[0] / "etc/secret").stat().st_ino
    assert os.readlink(rootfs / "etc/link") == "secret"
    assert int((rootfs / "etc").stat().st_mtime) == 1_600_000_000


def test_replacing_kinds_across_layers(tmp_path: Path) -> None:
    layers = _layers(
        tmp_path,
        LayerTar().file("x/inner", "i").file("y", "file").symlink("z", "somewhere"),
        LayerTar().file("x", "now a file").file("y/inner", "now a dir").file("z", "plain"),
    )
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for layer in layers:
        apply_layer(layer, rootfs)
    assert _tree(rootfs) == {"x": "now a file", "y": "dir", "y/inner": "now a dir", "z": "plain"}


def test_recover_redoes_an_unfinished_copy_and_destroy_removes_it(tmp_path: Path) -> None:
    layers = _layers(tmp_path, LayerTar().file("a", "1"))
    backend = CopyBackend()
    container = tmp_path / "container"
    (container / "rootfs").mkdir(parents=True)
    (container / "rootfs" / "partial").write_text("half done")
    rootfs = backend.recover(layers, container)
    assert _tree(rootfs) == {"a": "1"}
    assert backend.recover(layers, container) == rootfs
    backend.destroy(container)
    assert not container.exists()
    backend.destroy(container)  # idempotent
