"""Client for the OCI distribution API (registry v2): manifests and blobs, verified.

HTTPS by default. Registries on loopback, and those named in `insecure_registries`, may also
be reached over plain HTTP, as Docker allows: HTTPS is tried first (without certificate
checks), then HTTP; the scheme that answered is remembered.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import anyio
import anyio.to_thread
import httpx

from mesoslite.runtime.provisioner import media_types
from mesoslite.runtime.provisioner.credentials import Credential, RegistryCredentials
from mesoslite.runtime.provisioner.digest import Digest, DigestVerifier, digest_of_bytes
from mesoslite.runtime.provisioner.errors import (
    AuthenticationError,
    DigestMismatchError,
    ImageNotFoundError,
    RegistryError,
)
from mesoslite.runtime.provisioner.reference import ImageReference
from mesoslite.runtime.provisioner.registry_auth import (
    BearerTokenCache,
    Challenge,
    basic_authorization,
    parse_challenge,
)

__all__ = ["FetchedManifest", "RegistryClient", "RegistryOptions", "is_insecure_registry"]

_USER_AGENT = "mesoslite"
_MAX_MANIFEST_BYTES = 4 << 20
_MAX_CONFIG_BYTES = 8 << 20
# Bytes handed to a worker thread per write: large enough that the thread hop is cheap.
_WRITE_BATCH_BYTES = 1 << 20
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class RegistryOptions:
    # host[:port] or CIDR ranges that may be reached over plain HTTP / unverified TLS.
    insecure_registries: tuple[str, ...] = ()
    credentials: RegistryCredentials = field(default_factory=RegistryCredentials)
    connect_timeout_s: float = 10.0
    # Time allowed between two reads of a response; a stalled download fails after it.
    read_timeout_s: float = 60.0
    max_concurrent_downloads: int = 3
    # Extra attempts after a dropped connection during a blob download.
    download_retries: int = 2


@dataclass(frozen=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: Digest


def is_insecure_registry(registry: str, insecure_registries: tuple[str, ...] = ()) -> bool:
    """Loopback registries are always allowed plain HTTP; others only when listed."""
    host = _host_of(registry)
    if host in _LOOPBACK_NAMES:
        return True
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
    if address is not None and address.is_loopback:
        return True
    for entry in insecure_registries:
        if entry in (registry, host):
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _host_of(registry: str) -> str:
    if registry.startswith("["):
        return registry[1 : registry.index("]")]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


@dataclass
class _Endpoint:
    base_url: str
    http: httpx.AsyncClient
    challenge: Challenge | None


class RegistryClient:
    """Use as `async with RegistryClient(options) as client:`; it owns its HTTP clients."""

    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        timeout = httpx.Timeout(self.options.read_timeout_s, connect=self.options.connect_timeout_s)
        common = {
            "timeout": timeout,
            "follow_redirects": True,
            "headers": {"User-Agent": _USER_AGENT},
        }
        self._verified_http = httpx.AsyncClient(verify=True, **common)  # type: ignore[arg-type]
        self._unverified_http = httpx.AsyncClient(verify=False, **common)  # type: ignore[arg-type]
        self._tokens = BearerTokenCache(self._verified_http)
        self._endpoints: dict[str, _Endpoint] = {}
        self._endpoint_lock = anyio.Lock()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._verified_http.aclose()
        await self._unverified_http.aclose()

    async def fetch_manifest(self, reference: ImageReference, selector: str) -> FetchedManifest:
        """GET a manifest or index by tag or digest; verified against the digest we asked for
        (or the Docker-Content-Digest the registry sent)."""
        path = f"/v2/{reference.repository}/manifests/{selector}"
        headers = {"Accept": ", ".join(media_types.ACCEPTED_MANIFEST_TYPES)}
        async with self._stream(reference, "GET", path, headers) as response:
            data = await _read_limited(response, _MAX_MANIFEST_BYTES, "manifest")
            content_type = response.headers.get("Content-Type", "")
            header_digest = response.headers.get("Docker-Content-Digest")
        if ":" in selector:  # tags cannot contain ":"; digests always do
            expected = Digest.parse(selector)
        elif header_digest:
            expected = Digest.parse(header_digest)
        else:
            expected = digest_of_bytes(data)
        actual = digest_of_bytes(data, expected.algorithm)
        if actual != expected:
            raise DigestMismatchError(
                f"manifest {reference.name}:{selector}", str(expected), str(actual)
            )
        return FetchedManifest(data, content_type.split(";")[0].strip(), actual)

    async def fetch_blob_bytes(self, reference: ImageReference, digest: Digest) -> bytes:
        """A small blob (an image config) in memory, verified."""
        path = f"/v2/{reference.repository}/blobs/{digest}"
        async with self._stream(reference, "GET", path, {}) as response:
            data = await _read_limited(response, _MAX_CONFIG_BYTES, "config blob")
        verifier = DigestVerifier(digest, f"blob {digest}")
        verifier.update(data)
        verifier.verify()
        return data

    async def download_blob(
        self,
        reference: ImageReference,
        digest: Digest,
        size_bytes: int,
        destination: Path,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        """Stream a blob into `destination` (created or truncated), verifying its digest and
        size as it arrives; on a mismatch the file is removed and DigestMismatchError raised."""
        attempts = 1 + self.options.download_retries
        for attempt in range(attempts):
            try:
                await self._download_once(reference, digest, size_bytes, destination, on_progress)
                return
            except (httpx.TransportError, RegistryError) as error:
                await _remove_shielded(destination)
                retryable = isinstance(error, httpx.TransportError) or (
                    isinstance(error, RegistryError)
                    and (error.status_code is None or error.status_code >= 500)
                )
                if not retryable or attempt == attempts - 1:
                    if isinstance(error, httpx.TransportError):
                        raise RegistryError(f"downloading {digest}: {error}") from error
                    raise
            except BaseException:
                await _remove_shielded(destination)
                raise

    async def _download_once(
        self,
        reference: ImageReference,
        digest: Digest,
        size_bytes: int,
        destination: Path,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        path = f"/v2/{reference.repository}/blobs/{digest}"
        verifier = DigestVerifier(digest, f"layer {digest}")
        target: IO[bytes] = await anyio.to_thread.run_sync(destination.open, "wb")
        try:
            async with self._stream(reference, "GET", path, {}) as response:
                batch = bytearray()
                async for chunk in response.aiter_bytes():
                    batch += chunk
                    if verifier.size_bytes + len(batch) > size_bytes:
                        raise DigestMismatchError(
                            f"layer {digest}", f"{size_bytes} bytes", "more bytes"
                        )
                    if len(batch) >= _WRITE_BATCH_BYTES:
                        await anyio.to_thread.run_sync(
                            _write_and_hash, target, verifier, bytes(batch)
                        )
                        batch.clear()
                        if on_progress is not None:
                            on_progress(verifier.size_bytes)
                if batch:
                    await anyio.to_thread.run_sync(_write_and_hash, target, verifier, bytes(batch))
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(target.close)
        if on_progress is not None:
            on_progress(verifier.size_bytes)
        verifier.verify()
        if verifier.size_bytes != size_bytes:
            raise DigestMismatchError(
                f"layer {digest}", f"{size_bytes} bytes", f"{verifier.size_bytes} bytes"
            )

    def _stream(
        self, reference: ImageReference, method: str, path: str, headers: dict[str, str]
    ) -> _AuthenticatedStream:
        return _AuthenticatedStream(self, reference, method, path, headers)

    async def endpoint(self, registry: str) -> _Endpoint:
        """Find how to reach a registry (scheme, TLS) and what auth it wants: GET /v2/."""
        async with self._endpoint_lock:
            known = self._endpoints.get(registry)
            if known is not None:
                return known
            endpoint = await self._probe(registry)
            self._endpoints[registry] = endpoint
            return endpoint

    async def _probe(self, registry: str) -> _Endpoint:
        api_host = ImageReference(registry, "x").api_host
        insecure = is_insecure_registry(registry, self.options.insecure_registries)
        candidates = [("https", self._verified_http)]
        if insecure:
            candidates = [("https", self._unverified_http), ("http", self._unverified_http)]
        last_error: Exception | None = None
        for scheme, http in candidates:
            base_url = f"{scheme}://{api_host}"
            try:
                response = await http.get(f"{base_url}/v2/")
            except httpx.HTTPError as error:
                last_error = error
                continue
            if response.status_code == 401:
                challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                return _Endpoint(base_url, http, challenge)
            if response.status_code == 200:
                return _Endpoint(base_url, http, None)
            last_error = RegistryError(
                f"{base_url}/v2/ answered {response.status_code}", status_code=response.status_code
            )
            # An HTTP server answers a TLS hello with 400: try the next scheme.
        hint = "" if insecure else f" (add {registry!r} to insecure_registries for plain HTTP)"
        raise RegistryError(f"cannot reach registry {registry}: {last_error}{hint}")

    async def authorization(
        self, registry: str, repository: str, challenge: Challenge | None
    ) -> str | None:
        if challenge is None:
            return None
        credential = self.options.credentials.for_registry(registry)
        if challenge.scheme == "basic":
            if credential is None:
                raise AuthenticationError(f"registry {registry} wants credentials (basic auth)")
            return basic_authorization(credential)
        if challenge.scheme == "bearer":
            scope = f"repository:{repository}:pull"
            token = await self._tokens.token(challenge, scope, credential)
            return f"Bearer {token}"
        raise AuthenticationError(
            f"registry {registry}: unsupported auth scheme {challenge.scheme!r}"
        )

    def forget_token(self, challenge: Challenge, repository: str) -> None:
        self._tokens.forget(challenge, f"repository:{repository}:pull")

    def credential_for(self, registry: str) -> Credential | None:
        return self.options.credentials.for_registry(registry)


class _AuthenticatedStream:
    """`async with`: a streamed response to an authorised request, errors mapped to ours.

    On a 401 with a fresh challenge (expired token, other realm) it authenticates once more."""

    def __init__(
        self,
        client: RegistryClient,
        reference: ImageReference,
        method: str,
        path: str,
        headers: dict[str, str],
    ) -> None:
        self._client = client
        self._reference = reference
        self._method = method
        self._path = path
        self._headers = headers
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        registry = self._reference.registry
        repository = self._reference.repository
        endpoint = await self._client.endpoint(registry)
        challenge = endpoint.challenge
        for attempt in range(2):
            headers = dict(self._headers)
            authorization = await self._client.authorization(registry, repository, challenge)
            if authorization is not None:
                headers["Authorization"] = authorization
            request = endpoint.http.build_request(
                self._method, endpoint.base_url + self._path, headers=headers
            )
            try:
                response = await endpoint.http.send(request, stream=True)
            except httpx.HTTPError as error:
                raise RegistryError(f"{registry}: {error}") from error
            if response.status_code == 401 and attempt == 0:
                await response.aclose()
                fresh = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                if challenge is not None and challenge.scheme == "bearer":
                    self._client.forget_token(challenge, repository)
                if fresh is None:
                    break
                challenge = fresh
                endpoint.challenge = fresh
                continue
            if response.status_code >= 400:
                await response.aread()
                await response.aclose()
                raise _error_for(response, self._reference, self._path)
            self._response = response
            return response
        raise AuthenticationError(
            f"registry {registry} refused access to {repository}"
            + ("" if self._client.credential_for(registry) else " (no credentials configured)"),
            status_code=401,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._response is not None:
            await self._response.aclose()


def _error_for(response: httpx.Response, reference: ImageReference, path: str) -> Exception:
    detail = _registry_error_message(response)
    where = f"{reference.registry}{path}"
    if response.status_code in (401, 403):
        return AuthenticationError(
            f"{where}: access denied ({response.status_code}{detail})",
            status_code=response.status_code,
        )
    if response.status_code == 404:
        return ImageNotFoundError(f"{reference}: not found in registry ({where}{detail})")
    return RegistryError(
        f"{where}: registry answered {response.status_code}{detail}",
        status_code=response.status_code,
    )


def _registry_error_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors")
        first = errors[0]
        return f": {first.get('code')} {first.get('message')}"
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        return ""


async def _read_limited(response: httpx.Response, limit_bytes: int, what: str) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit_bytes:
            raise RegistryError(f"{what} larger than {limit_bytes} bytes")
    return bytes(data)


def _write_and_hash(target: IO[bytes], verifier: DigestVerifier, data: bytes) -> None:
    target.write(data)
    verifier.update(data)


def _remove_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _remove_shielded(path: Path) -> None:
    # Shielded: the cleanup must run even when the download was cancelled.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_remove_quietly, path)
