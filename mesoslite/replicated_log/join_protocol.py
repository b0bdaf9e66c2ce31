"""The join exchange: what `mesoslite join ADDR --token T` sends to the cluster and what
the leader answers, on the master port (`POST /master/internal/cluster/join`).

The joining node has no certificate yet, so this runs over the master's plain HTTP
listener, and the token's secret never travels: the request carries an HMAC of its
content keyed with the secret's hash, which the cluster stores (registry
`join_token_sha256`), so any leader can check it. What comes back is checked against
the CA fingerprint the token pins. A joining master also receives the cluster CA's key
(so that it can admit nodes once it leads), sealed with AES-GCM under a key derived
from the same hash: only holders of the token, or members, can open it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mesoslite.replicated_log.join_token import JoinToken, hash_secret

__all__ = [
    "JOIN_PATH",
    "JoinError",
    "JoinRefusedError",
    "open_ca_key",
    "request_join",
    "request_proof",
    "seal_ca_key",
    "verify_request",
]

JOIN_PATH = "/master/internal/cluster/join"
_SEAL_CONTEXT = b"mesoslite ca key seal v1\x00"
_NONCE_BYTES = 12
_MAX_REDIRECTS = 5


class JoinError(Exception):
    """Joining failed; the message says why, in one line."""


class JoinRefusedError(JoinError):
    """The cluster answered with a refusal (`status`: 401 for an invalid token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _canonical(body: dict[str, Any]) -> bytes:
    unsigned = {key: value for key, value in body.items() if key != "proof"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def request_proof(body: dict[str, Any], secret_sha256: str) -> str:
    return hmac.new(secret_sha256.encode("ascii"), _canonical(body), hashlib.sha256).hexdigest()


def verify_request(body: dict[str, Any], stored_sha256: str | None, ca_sha256: str) -> bool:
    """Whether the request proves the current token: it names our CA and its proof is
    keyed with the stored hash. A revoked token (no stored hash) proves nothing."""
    if stored_sha256 is None:
        return False
    names_our_ca = hmac.compare_digest(str(body.get("ca_sha256", "")), ca_sha256)
    proof = str(body.get("proof", ""))
    return names_our_ca and hmac.compare_digest(proof, request_proof(body, stored_sha256))


def _seal_key(secret_sha256: str) -> bytes:
    return hashlib.sha256(_SEAL_CONTEXT + secret_sha256.encode("ascii")).digest()


def seal_ca_key(ca_key_pem: bytes, stored_sha256: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_seal_key(stored_sha256)).encrypt(nonce, ca_key_pem, None)
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_ca_key(sealed: str, token: JoinToken) -> bytes:
    raw = base64.b64decode(sealed)
    key = _seal_key(hash_secret(token.secret))
    return AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)


async def request_join(address: str, token: JoinToken, body: dict[str, Any]) -> dict[str, Any]:
    """Send a join request to the master at `address`, following redirects to the
    leader; returns the leader's answer.

    :raises JoinRefusedError: refused (401: invalid token).
    :raises JoinError: unreachable, no leader, or an answer that fails the CA pin.
    """
    body = dict(body, ca_sha256=token.ca_fingerprint_sha256)
    body["proof"] = request_proof(body, hash_secret(token.secret))
    target = address
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as client:
        for _ in range(_MAX_REDIRECTS):
            try:
                response = await client.post(f"http://{target}{JOIN_PATH}", json=body)
            except httpx.HTTPError as error:
                raise JoinError(f"cannot reach the cluster at {target}: {error}") from None
            if response.status_code == 307:
                location = response.headers.get("location", "")
                netloc = urlsplit(location if "//" in location else f"//{location}").netloc
                if not netloc:
                    raise JoinError(f"{target} redirected to an unusable location {location!r}")
                target = netloc
                continue
            if response.status_code != 200:
                message = response.text.strip().splitlines()[0] if response.text.strip() else ""
                raise JoinRefusedError(
                    response.status_code, message or f"refused with {response.status_code}"
                )
            answer: dict[str, Any] = response.json()
            break
        else:
            raise JoinError(f"too many redirects starting at {address}")
    from mesoslite.replicated_log.tls import certificate_fingerprint_sha256

    ca_pem = str(answer.get("ca_certificate", "")).encode()
    if not ca_pem or not token.pins(certificate_fingerprint_sha256(ca_pem)):
        raise JoinError("the cluster's CA is not the one the token names; check the token")
    return answer
