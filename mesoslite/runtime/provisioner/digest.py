"""Content digests ("sha256:<hex>"): parsing, hashing, verification."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from mesoslite.runtime.provisioner.errors import DigestMismatchError, ManifestError

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["Digest", "DigestVerifier", "VerifyingReader", "digest_of_bytes"]

# Hex lengths per algorithm (OCI image-spec descriptor.md: sha256 and sha512 are registered).
_HEX_LENGTH_BY_ALGORITHM = {"sha256": 64, "sha512": 128}
_HEX_RE = re.compile(r"^[a-f0-9]+$")


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, hex_part = text.partition(":")
        expected_length = _HEX_LENGTH_BY_ALGORITHM.get(algorithm)
        if (
            not sep
            or expected_length is None
            or len(hex_part) != expected_length
            or not _HEX_RE.match(hex_part)
        ):
            raise ManifestError(f"invalid or unsupported digest {text!r}")
        return cls(algorithm, hex_part)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """The first 12 hex digits, as Docker prints image ids."""
        return self.hex[:12]

    def new_hasher(self) -> _Hash:
        return hashlib.new(self.algorithm)


def digest_of_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


class DigestVerifier:
    """Hashes content as it streams past; `verify()` raises if it is not what was expected."""

    def __init__(self, expected: Digest, what: str) -> None:
        self.expected = expected
        self.what = what
        self.size_bytes = 0
        self._hasher = expected.new_hasher()

    def update(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.size_bytes += len(chunk)

    @property
    def actual(self) -> Digest:
        return Digest(self.expected.algorithm, self._hasher.hexdigest())

    def verify(self) -> None:
        actual = self.actual
        if actual != self.expected:
            raise DigestMismatchError(self.what, str(self.expected), str(actual))


class VerifyingReader(io.RawIOBase):
    """Reads through `source`, hashing; `verifier.verify()` after the last read."""

    def __init__(self, source: IO[bytes], expected: Digest, what: str) -> None:
        self._source = source
        self.verifier = DigestVerifier(expected, what)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read(len(view))
        view[: len(data)] = data
        self.verifier.update(data)
        return len(data)

    def drain_and_verify(self) -> None:
        while self.read(1 << 20):
            pass
        self.verifier.verify()
