"""Unpacking one layer tar into a directory of its own (blocking: run it in a worker thread).

Two on-disk forms, one per rootfs backend:
- OVERLAY: OCI whiteouts become overlayfs ones: ".wh.NAME" -> a 0:0 character device NAME,
  ".wh..wh..opq" -> the xattr trusted.overlay.opaque="y" on its directory.
- OCI: whiteout files are kept as they are; the copy backend applies them when it merges.

Nothing is ever written through a symlink: every parent directory of an entry must be a real
directory inside the layer, hardlink targets must stay inside it, and files are opened with
O_NOFOLLOW. The sha256 of the uncompressed stream (the layer's diff id) is computed as it is
read, and checked when an expected value is given.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import (
    DigestMismatchError,
    LayerUnpackError,
    PathEscapeError,
    UnsupportedImageError,
)

__all__ = [
    "OPAQUE_MARKER",
    "OVERLAY_OPAQUE_XATTR",
    "WHITEOUT_PREFIX",
    "LayerFormat",
    "UnpackResult",
    "open_decompressed",
    "unpack_layer",
    "zstd_supported",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# Other ".wh..wh." names are AUFS bookkeeping (hardlink dirs) and carry no content.
_AUFS_META_PREFIX = ".wh..wh."
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_PAX_XATTR_PREFIX = "SCHILY.xattr."
_COPY_CHUNK_BYTES = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerFormat(StrEnum):
    OVERLAY = "overlay"
    OCI = "oci"


@dataclass(frozen=True)
class UnpackResult:
    diff_id: Digest
    # Bytes of the uncompressed tar stream.
    size_bytes: int


class _HashingReader(io.RawIOBase):
    """Hashes and counts every byte read through it."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.hasher = hashlib.sha256()
        self.size_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read(len(view))
        count = len(data)
        view[:count] = data
        self.hasher.update(data)
        self.size_bytes += count
        return count

    def drain(self) -> None:
        """Read to the end: tarfile stops at the end-of-archive marker, the digest does not."""
        while self.read(_COPY_CHUNK_BYTES):
            pass


class _EndOfArchivePadding(io.RawIOBase):
    """Completes a tar stream that stops right after its last entry's data (umoci writes such
    layers): zero padding to the block boundary, then the two-block end-of-archive marker.
    Safe because the diff id is computed below this, on the bytes actually received."""

    _BLOCK_BYTES = 512

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._count_bytes = 0
        self._padding_left: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._padding_left is None:
            data = self._source.read(len(view))
            if data:
                view[: len(data)] = data
                self._count_bytes += len(data)
                return len(data)
            partial = self._count_bytes % self._BLOCK_BYTES
            to_boundary = (self._BLOCK_BYTES - partial) % self._BLOCK_BYTES
            self._padding_left = to_boundary + 2 * self._BLOCK_BYTES
        count = min(len(view), self._padding_left)
        view[:count] = bytes(count)
        self._padding_left -= count
        return count


class _CountingReader(io.RawIOBase):
    def __init__(self, source: IO[bytes], on_progress: Callable[[int], None] | None) -> None:
        self._source = source
        self._on_progress = on_progress
        self.count_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read(len(view))
        view[: len(data)] = data
        self.count_bytes += len(data)
        if self._on_progress is not None and data:
            self._on_progress(self.count_bytes)
        return len(data)


def open_decompressed(source: IO[bytes]) -> IO[bytes]:
    """The uncompressed stream of a layer blob: gzip, zstd or plain tar, told by magic bytes
    (media types lie: docker-archive layers are plain tars whatever the manifest says)."""
    buffered = io.BufferedReader(cast("io.RawIOBase", source), _COPY_CHUNK_BYTES)
    magic = buffered.peek(4)[:4]
    if magic.startswith(_GZIP_MAGIC):
        return cast("IO[bytes]", gzip.GzipFile(fileobj=buffered, mode="rb"))
    if magic == _ZSTD_MAGIC:
        return _open_zstd(buffered)
    return buffered


def _zstd_module() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError as error:
            raise UnsupportedImageError(
                "zstd-compressed layer: install the `backports.zstd` package to unpack it"
            ) from error
    return zstd


def zstd_supported() -> bool:
    """zstd layers need Python 3.14's compression.zstd or the backports.zstd package."""
    try:
        _zstd_module()
    except UnsupportedImageError:
        return False
    return True


def _open_zstd(source: IO[bytes]) -> IO[bytes]:
    return cast("IO[bytes]", _zstd_module().ZstdFile(source, mode="rb"))


def unpack_layer(
    blob: IO[bytes],
    destination: Path,
    layer_format: LayerFormat,
    *,
    expected_diff_id: Digest | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> UnpackResult:
    """Unpack a layer blob (compressed or not) into `destination`, an empty directory.

    `on_progress` receives the count of blob bytes consumed so far."""
    counting = _CountingReader(blob, on_progress)
    hashing = _HashingReader(open_decompressed(cast("IO[bytes]", counting)))
    unpacker = _Unpacker(destination, layer_format)
    try:
        padded = cast("IO[bytes]", _EndOfArchivePadding(cast("IO[bytes]", hashing)))
        with tarfile.open(fileobj=padded, mode="r|") as archive:
            for member in archive:
                unpacker.add(archive, member)
        hashing.drain()
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as error:
        if isinstance(error, LayerUnpackError):
            raise
        raise LayerUnpackError(f"cannot unpack layer: {error}") from error
    unpacker.finish()
    diff_id = Digest("sha256", hashing.hasher.hexdigest())
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise DigestMismatchError("layer diff id", str(expected_diff_id), str(diff_id))
    return UnpackResult(diff_id=diff_id, size_bytes=hashing.size_bytes)


def normalize_member_path(name: str) -> str:
    """The entry's path relative to the layer root ("" for the root itself). A leading "/"
    or "./" is dropped, as Docker does; any ".." component is refused."""
    if ".." in name.split("/"):
        raise PathEscapeError(f"layer entry {name!r} leaves the layer directory")
    return posixpath.normpath("/" + name).lstrip("/")


class _Unpacker:
    def __init__(self, root: Path, layer_format: LayerFormat) -> None:
        self.root = root
        self.layer_format = layer_format
        self.is_root_user = os.geteuid() == 0
        # Directories known to be real directories (not symlinks) inside the layer.
        self._verified_dirs: set[str] = {""}
        # (path, mode, mtime) of directories: applied at the end, as adding children to a
        # directory changes its mtime, and a read-only mode would stop us adding them.
        self._deferred_dirs: dict[str, tuple[int, float]] = {}

    def path_of(self, relative: str) -> str:
        return os.path.join(self.root, relative) if relative else str(self.root)

    def add(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        relative = normalize_member_path(member.name)
        parent, _, base = relative.rpartition("/")
        if relative:
            self._ensure_parent_dirs(parent)
        if base.startswith(WHITEOUT_PREFIX) and self.layer_format is LayerFormat.OVERLAY:
            self._add_overlay_whiteout(parent, base)
            return
        if base.startswith(_AUFS_META_PREFIX) and base != OPAQUE_MARKER:
            return
        path = self.path_of(relative)
        if not relative and not member.isdir():
            # Only a directory can stand for the layer root.
            return
        if member.isdir():
            self._add_directory(relative, path, member)
        elif member.islnk():
            self._add_hardlink(path, member)
        else:
            self._remove_existing(relative, path)
            if member.isreg():
                self._add_file(archive, path, member)
            elif member.issym():
                os.symlink(member.linkname, path)
            elif member.ischr() or member.isblk() or member.isfifo():
                if not self._add_device(path, member):
                    return
            else:
                # Unknown entry types (e.g. GNU volume headers) carry nothing to unpack.
                return
            self._apply_metadata(path, member)

    def finish(self) -> None:
        for relative, (mode, mtime) in sorted(self._deferred_dirs.items(), reverse=True):
            path = self.path_of(relative)
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime), follow_symlinks=False)

    def _ensure_parent_dirs(self, parent: str) -> None:
        if parent in self._verified_dirs:
            return
        current = ""
        for component in parent.split("/"):
            current = f"{current}/{component}" if current else component
            if current in self._verified_dirs:
                continue
            path = self.path_of(current)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                # Parents missing from the tar get Docker's default mode.
                os.mkdir(path, 0o755)
            else:
                if stat.S_ISLNK(mode):
                    raise PathEscapeError(
                        f"layer entry below {current!r} would be written through a symlink"
                    )
                if not stat.S_ISDIR(mode):
                    raise LayerUnpackError(f"layer entry below {current!r}, which is a file")
            self._verified_dirs.add(current)

    def _remove_existing(self, relative: str, path: str) -> None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)
            self._verified_dirs = {
                known
                for known in self._verified_dirs
                if known != relative and not known.startswith(relative + "/")
            }
            self._deferred_dirs = {
                known: value
                for known, value in self._deferred_dirs.items()
                if known != relative and not known.startswith(relative + "/")
            }
        else:
            os.unlink(path)

    def _add_overlay_whiteout(self, parent: str, base: str) -> None:
        parent_path = self.path_of(parent)
        if base == OPAQUE_MARKER:
            os.setxattr(parent_path, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        if base.startswith(_AUFS_META_PREFIX):
            return
        target = os.path.join(parent_path, base[len(WHITEOUT_PREFIX) :])
        # A whiteout hides lower layers only: content of this layer with that name wins.
        if not os.path.lexists(target):
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def _add_directory(self, relative: str, path: str, member: tarfile.TarInfo) -> None:
        try:
            existing_mode = os.lstat(path).st_mode
        except FileNotFoundError:
            existing_mode = None
        if existing_mode is not None and not stat.S_ISDIR(existing_mode):
            self._remove_existing(relative, path)
            existing_mode = None
        if existing_mode is None:
            os.mkdir(path, 0o700)
        self._verified_dirs.add(relative)
        self._apply_ownership(path, member)
        self._apply_xattrs(path, member)
        self._deferred_dirs[relative] = (member.mode & 0o7777, float(member.mtime))

    def _add_file(self, archive: tarfile.TarFile, path: str, member: tarfile.TarInfo) -> None:
        source = archive.extractfile(member)
        if source is None:
            raise LayerUnpackError(f"layer entry {member.name!r} has no data")
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        with os.fdopen(fd, "wb") as target, source:
            shutil.copyfileobj(source, target, _COPY_CHUNK_BYTES)

    def _add_hardlink(self, path: str, member: tarfile.TarInfo) -> None:
        target_relative = normalize_member_path(member.linkname)
        if not target_relative:
            raise PathEscapeError(f"hardlink {member.name!r} to the layer root")
        target_parent = target_relative.rpartition("/")[0]
        if target_parent not in self._verified_dirs:
            # The target must have come through verified directories of this layer.
            raise PathEscapeError(
                f"hardlink {member.name!r} -> {member.linkname!r}: target not in this layer"
            )
        target = self.path_of(target_relative)
        try:
            target_mode = os.lstat(target).st_mode
        except FileNotFoundError as error:
            raise LayerUnpackError(
                f"hardlink {member.name!r} -> {member.linkname!r}: no such entry before it"
            ) from error
        if stat.S_ISDIR(target_mode):
            raise LayerUnpackError(f"hardlink {member.name!r} to a directory")
        relative = normalize_member_path(member.name)
        if relative == target_relative:
            return
        self._remove_existing(relative, path)
        os.link(target, path, follow_symlinks=False)

    def _add_device(self, path: str, member: tarfile.TarInfo) -> bool:
        if member.ischr():
            kind = stat.S_IFCHR
        elif member.isblk():
            kind = stat.S_IFBLK
        else:
            kind = stat.S_IFIFO
        try:
            os.mknod(
                path, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor)
            )
        except PermissionError:
            # Unprivileged unpack: device nodes cannot be created (as umoci --rootless does).
            return False
        return True

    def _apply_metadata(self, path: str, member: tarfile.TarInfo) -> None:
        self._apply_ownership(path, member)
        if not member.issym():
            # After chown: chown clears the setuid and setgid bits.
            os.chmod(path, member.mode & 0o7777)
        self._apply_xattrs(path, member)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def _apply_ownership(self, path: str, member: tarfile.TarInfo) -> None:
        if self.is_root_user:
            os.lchown(path, member.uid, member.gid)

    def _apply_xattrs(self, path: str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(_PAX_XATTR_PREFIX):
                continue
            name = key[len(_PAX_XATTR_PREFIX) :]
            # A layer must not forge overlayfs metadata of its own.
            if name.startswith("trusted.overlay."):
                continue
            try:
                os.setxattr(
                    path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False
                )
            except OSError:
                # Filesystems without xattr support, or namespaces we may not write: the
                # content is still usable, as with Docker's unpacker.
                continue
