from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import (
    DigestMismatchError,
    LayerUnpackError,
    PathEscapeError,
)
from mesoslite.runtime.provisioner.layer_unpack import (
    OVERLAY_OPAQUE_XATTR,
    LayerFormat,
    _zstd_module,
    unpack_layer,
    zstd_supported,
)
from tests.conftest import require, require_root
from tests.support.layer_tars import LayerTar


def _unpack(
    layer: LayerTar,
    destination: Path,
    layer_format: LayerFormat = LayerFormat.OCI,
    *,
    gzip: bool = False,
) -> Digest:
    destination.mkdir(exist_ok=True)
    data = layer.gzipped() if gzip else layer.data()
    return unpack_layer(io.BytesIO(data), destination, layer_format).diff_id


def _base_layer() -> LayerTar:
    return (
        LayerTar()
        .directory("./")
        .directory("bin")
        .file("bin/tool", b"#!/bin/sh\n", mode=0o4755)
        .symlink("bin/sh", "/bin/busybox")
        .symlink("bin/rel", "../etc/conf")
        .directory("etc", mode=0o750)
        .file("etc/conf", b"x=1\n", mode=0o600)
        .hardlink("etc/conf-link", "etc/conf")
        .file("etc/implicit/parent/file", b"deep")
    )


@pytest.mark.parametrize("gzip", [False, True])
def test_files_links_and_modes(tmp_path: Path, gzip: bool) -> None:
    layer = _base_layer()
    diff_id = _unpack(layer, tmp_path / "out", gzip=gzip)
    out = tmp_path / "out"
    assert str(diff_id) == layer.diff_id()
    assert (out / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE((out / "bin/tool").stat().st_mode) == 0o4755
    assert os.readlink(out / "bin/sh") == "/bin/busybox"
    assert os.readlink(out / "bin/rel") == "../etc/conf"
    assert stat.S_IMODE((out / "etc").stat().st_mode) == 0o750
    assert stat.S_IMODE((out / "etc/conf").stat().st_mode) == 0o600
    assert (out / "etc/conf-link").stat().st_ino == (out / "etc/conf").stat().st_ino
    assert (out / "etc/implicit/parent/file").read_bytes() == b"deep"
    assert stat.S_IMODE((out / "etc/implicit").stat().st_mode) == 0o755
    assert int((out / "etc").stat().st_mtime) == 1_600_000_000


def test_ownership_is_preserved_as_root(tmp_path: Path) -> None:
    require_root()
    layer = (
        LayerTar()
        .directory("home", uid=1000, gid=1000)
        .file("home/owned", b"x", uid=1234, gid=4321)
    )
    _unpack(layer, tmp_path / "out")
    owned = (tmp_path / "out/home/owned").stat()
    assert (owned.st_uid, owned.st_gid) == (1234, 4321)
    assert (tmp_path / "out/home").stat().st_uid == 1000


def test_xattrs_are_applied_but_overlay_ones_are_not(tmp_path: Path) -> None:
    require_root()
    layer = LayerTar().file("f", b"x", xattrs={"user.note": "hello", "trusted.overlay.opaque": "y"})
    _unpack(layer, tmp_path / "out")
    names = os.listxattr(tmp_path / "out/f")
    assert "trusted.overlay.opaque" not in names
    if "user.note" in names:  # tmpfs without user xattrs drops it; that is allowed
        assert os.getxattr(tmp_path / "out/f", "user.note") == b"hello"


def test_oci_form_keeps_whiteout_files(tmp_path: Path) -> None:
    layer = LayerTar().directory("data").whiteout("data/gone").opaque("data").file("data/new", b"n")
    _unpack(layer, tmp_path / "out", LayerFormat.OCI)
    assert sorted(os.listdir(tmp_path / "out/data")) == [".wh..wh..opq", ".wh.gone", "new"]


def test_overlay_form_converts_whiteouts(tmp_path: Path) -> None:
    require_root()
    layer = (
        LayerTar()
        .opaque("opq")  # before its directory entry, as umoci writes it
        .directory("opq")
        .file("opq/new", b"n")
        .directory("data")
        .whiteout("data/gone")
        .whiteout("data/mine")
        .file("data/mine", b"same layer wins")
        .file("data/.wh..wh.plnk")  # AUFS bookkeeping: ignored
    )
    _unpack(layer, tmp_path / "out", LayerFormat.OVERLAY)
    out = tmp_path / "out"
    gone = os.lstat(out / "data/gone")
    assert stat.S_ISCHR(gone.st_mode)
    assert os.major(gone.st_rdev) == 0 and os.minor(gone.st_rdev) == 0
    assert (out / "data/mine").read_bytes() == b"same layer wins"
    assert sorted(os.listdir(out / "data")) == ["gone", "mine"]
    assert os.getxattr(out / "opq", OVERLAY_OPAQUE_XATTR) == b"y"
    assert os.listdir(out / "opq") == ["new"]


@pytest.mark.parametrize(
    "layer",
    [
        LayerTar().file("../escape", b"x"),
        LayerTar().file("a/../../escape", b"x"),
        LayerTar().hardlink("link", "../outside"),
        LayerTar().symlink("evil", "/etc").file("evil/passwd", b"owned"),
        LayerTar().symlink("evil", "..").file("evil/escape", b"x"),
        LayerTar().symlink("dir", "/tmp").hardlink("dir/x", "dir/y"),
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "hardlink-out",
        "through-abs-symlink",
        "through-rel-symlink",
        "hardlink-below-symlink",
    ],
)
def test_escapes_are_refused(tmp_path: Path, layer: LayerTar) -> None:
    outside = tmp_path / "escape"
    with pytest.raises(PathEscapeError):
        _unpack(layer, tmp_path / "out")
    assert not outside.exists()


def test_absolute_entry_names_stay_inside(tmp_path: Path) -> None:
    _unpack(LayerTar().file("/etc/abs", b"inside"), tmp_path / "out")
    assert (tmp_path / "out/etc/abs").read_bytes() == b"inside"


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    layer = (
        LayerTar()
        .file("x", b"file first")
        .directory("x")
        .file("x/inner", b"i")
        .directory("y")
        .file("y/child", b"c")
        .file("y", b"now a file")
        .symlink("z", "target")
        .file("z", b"replaced link")
    )
    _unpack(layer, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "x/inner").read_bytes() == b"i"
    assert (out / "y").read_bytes() == b"now a file"
    assert not (out / "z").is_symlink()


def test_diff_id_mismatch_is_detected(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    wrong = Digest("sha256", "0" * 64)
    with pytest.raises(DigestMismatchError, match="diff id"):
        unpack_layer(
            io.BytesIO(LayerTar().file("a", b"1").data()),
            tmp_path / "out",
            LayerFormat.OCI,
            expected_diff_id=wrong,
        )


def test_tar_without_end_marker_is_accepted(tmp_path: Path) -> None:
    # umoci writes layers that stop right after the last entry's data.
    data = LayerTar().file("last", b"new\n").data()
    truncated = data[: 512 + 4 + 512]  # pax header + header + unpadded data
    truncated = data[: data.index(b"new\n") + 4]
    (tmp_path / "out").mkdir()
    result = unpack_layer(io.BytesIO(truncated), tmp_path / "out", LayerFormat.OCI)
    assert (tmp_path / "out/last").read_bytes() == b"new\n"
    assert result.size_bytes == len(truncated)


def test_truncated_file_data_fails(tmp_path: Path) -> None:
    data = LayerTar().file("big", b"x" * 5000).data()
    (tmp_path / "out").mkdir()
    cut = data[: data.index(b"x" * 100) + 1000]
    expected = Digest("sha256", "1" * 64)
    with pytest.raises((LayerUnpackError, DigestMismatchError)):
        unpack_layer(io.BytesIO(cut), tmp_path / "out", LayerFormat.OCI, expected_diff_id=expected)


def test_garbage_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(LayerUnpackError):
        unpack_layer(io.BytesIO(b"\x1f\x8bnot really gzip" * 40), tmp_path / "out", LayerFormat.OCI)


def test_zstd_layers_when_a_zstd_module_is_installed(tmp_path: Path) -> None:
    # zstd support is optional at run time (backports.zstd before Python 3.14); the
    # test dependencies include it, so CI checks it.
    require(zstd_supported(), "needs a zstd module (pip install backports.zstd)")
    layer = LayerTar().file("z/file", b"zstd content")
    (tmp_path / "out").mkdir()
    compressed = _zstd_module().compress(layer.data())
    result = unpack_layer(io.BytesIO(compressed), tmp_path / "out", LayerFormat.OCI)
    assert str(result.diff_id) == layer.diff_id()
    assert (tmp_path / "out/z/file").read_bytes() == b"zstd content"
