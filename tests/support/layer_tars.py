"""Layer tars built in memory, entry by entry, for unpacker and backend tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass, field

__all__ = ["LayerTar"]


@dataclass
class LayerTar:
    """Add entries in order, then take `.data()` (plain) or `.gzipped()`."""

    entries: list[tuple[tarfile.TarInfo, bytes | None]] = field(default_factory=list)

    def directory(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, 1_600_000_000
        self.entries.append((info, None))
        return self

    def file(
        self,
        name: str,
        content: bytes | str = b"",
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        xattrs: dict[str, str] | None = None,
    ) -> LayerTar:
        if isinstance(content, str):
            content = content.encode()
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.uid, info.gid, info.mtime = (
            len(content),
            mode,
            uid,
            gid,
            1_600_000_000,
        )
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
        self.entries.append((info, content))
        return self

    def symlink(self, name: str, target: str) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, 1_600_000_000
        self.entries.append((info, None))
        return self

    def hardlink(self, name: str, target: str) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.LNKTYPE, target, 0o644
        self.entries.append((info, None))
        return self

    def whiteout(self, path: str) -> LayerTar:
        parent, _, base = path.rpartition("/")
        return self.file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")

    def opaque(self, directory: str) -> LayerTar:
        return self.file(f"{directory}/.wh..wh..opq")

    def data(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for info, content in self.entries:
                archive.addfile(info, io.BytesIO(content) if content is not None else None)
        return buffer.getvalue()

    def gzipped(self) -> bytes:
        return gzip.compress(self.data(), mtime=0)

    def diff_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.data()).hexdigest()
