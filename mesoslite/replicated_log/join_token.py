"""Join tokens: what `mesoslite join ADDR --token T` presents to be let in.

A token reads `K10<ca-sha256>::<secret>` (the shape of k3s' tokens): the SHA-256 of the
cluster CA's certificate, so that the joining node can pin the CA before trusting
anything the cluster sends it, and a random secret that proves the holder was given the
token. The cluster stores only a hash of the secret; the token is shown once, when it is
made. Rotating makes a new secret (the old token stops working); revoking removes it.

The secret carries 192 random bits, so a plain SHA-256 is as hard to invert as any slow
password hash would be; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from mesoslite.replicated_log.durable_files import ensure_directory, write_file_atomically

__all__ = [
    "TOKEN_PREFIX",
    "InvalidJoinTokenError",
    "JoinToken",
    "JoinTokenFile",
    "hash_secret",
    "new_join_token",
    "verify_join_token",
]

TOKEN_PREFIX = "K10"
_SECRET_BYTES = 24
_TOKEN = re.compile(r"^K10([0-9a-f]{64})::([0-9a-f]{16,128})$")
# Domain separation: a hash stored here is never a valid hash of the same bytes elsewhere.
_HASH_CONTEXT = b"mesoslite join token v1\x00"


class InvalidJoinTokenError(ValueError):
    """The text is not a join token."""


@dataclass(frozen=True, slots=True)
class JoinToken:
    ca_fingerprint_sha256: str  # lowercase hex
    secret: str  # lowercase hex

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        match = _TOKEN.match(text.strip())
        if match is None:
            raise InvalidJoinTokenError(
                f"not a join token: one looks like {TOKEN_PREFIX}<64 hex digits>::<secret>, "
                "as `mesoslite up` prints it in its join command"
            )
        return cls(match[1], match[2])

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}{self.ca_fingerprint_sha256}::{self.secret}"

    def pins(self, ca_fingerprint_sha256: str) -> bool:
        """Whether a CA whose certificate has this fingerprint is the one the token
        names (a joining node checks this before trusting the cluster's CA)."""
        return hmac.compare_digest(self.ca_fingerprint_sha256, ca_fingerprint_sha256.lower())


def new_join_token(ca_fingerprint_sha256: str) -> JoinToken:
    return JoinToken(ca_fingerprint_sha256.lower(), secrets.token_hex(_SECRET_BYTES))


def hash_secret(secret: str) -> str:
    """What the cluster keeps instead of the secret (lowercase hex)."""
    return hashlib.sha256(_HASH_CONTEXT + secret.encode("ascii")).hexdigest()


def verify_join_token(token: JoinToken, stored_hash: str, ca_fingerprint_sha256: str) -> bool:
    """Whether `token` is the cluster's current token: it names our CA and its secret
    hashes to `stored_hash`."""
    names_our_ca = token.pins(ca_fingerprint_sha256)
    secret_matches = hmac.compare_digest(hash_secret(token.secret), stored_hash)
    return names_our_ca and secret_matches


class JoinTokenFile:
    """The hash of the current token in `<data-dir>/tls/join-token.sha256` (blocking)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def rotate(self, ca_fingerprint_sha256: str) -> JoinToken:
        """Make a new token, replacing any previous one; the returned token is the only
        place its secret appears."""
        token = new_join_token(ca_fingerprint_sha256)
        ensure_directory(self._path.parent)
        write_file_atomically(self._path, hash_secret(token.secret).encode("ascii") + b"\n")
        return token

    def revoke(self) -> None:
        """No token is valid until the next `rotate`."""
        self._path.unlink(missing_ok=True)

    def stored_hash(self) -> str | None:
        try:
            return self._path.read_text("ascii").strip()
        except FileNotFoundError:
            return None

    def verify(self, token: JoinToken, ca_fingerprint_sha256: str) -> bool:
        stored = self.stored_hash()
        return stored is not None and verify_join_token(token, stored, ca_fingerprint_sha256)
