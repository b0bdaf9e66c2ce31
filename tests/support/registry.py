"""A real OCI distribution registry (Debian's `docker-registry`) for tests, on 127.0.0.1.

Three ways to run it: anonymous, with basic auth (htpasswd, bcrypt) or with bearer-token auth
against `TokenServer`, a small token service on 127.0.0.1 that signs JWTs with a self-signed
RSA key (registry's token auth: x5c header chained to `rootcertbundle`).

Needs: the `docker-registry` binary (Debian package docker-registry); `bcrypt` (PyPI) for
basic auth; `cryptography` (PyPI) for token auth.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from tests.support.processes import free_loopback_port, stop_process, wait_until

__all__ = ["RegistryServer", "TokenServer", "running_registry", "running_token_server"]

TOKEN_SERVICE = "mesoslite-test-registry"
TOKEN_ISSUER = "mesoslite-test-issuer"


@dataclass
class RegistryServer:
    host: str  # "127.0.0.1:PORT", as an image reference names it
    storage_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def blob_data_path(self, digest: str) -> Path:
        """Where the registry's filesystem driver keeps a blob (to tamper with it)."""
        algorithm, hex_digest = digest.split(":", 1)
        return (
            self.storage_dir
            / "docker/registry/v2/blobs"
            / algorithm
            / hex_digest[:2]
            / hex_digest
            / "data"
        )


@dataclass
class TokenRequest:
    scope: str
    service: str
    username: str | None


@dataclass
class TokenServer:
    """Issues registry tokens; `users` maps username -> password (empty: anonymous only)."""

    users: dict[str, str]
    allow_anonymous_pull: bool
    key_pem: bytes = b""
    cert_pem: bytes = b""
    cert_der: bytes = b""
    requests: list[TokenRequest] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/token"

    def issue(self, scope: str, username: str | None) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        access = []
        if scope:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = actions.split(",") if username is not None else ["pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": username or "",
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}".encode()
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_json(document: dict[str, Any]) -> str:
    return _b64url(json.dumps(document, separators=(",", ":")).encode())


def _make_key_and_certificate() -> tuple[bytes, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mesoslite test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        key_pem,
        certificate.public_bytes(serialization.Encoding.PEM),
        certificate.public_bytes(serialization.Encoding.DER),
    )


def _token_handler(token_server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            username = self._authenticated_user()
            if username is False:
                self._answer(401, {"error": "bad credentials"})
                return
            user = username if isinstance(username, str) else None
            scope = query.get("scope", [""])[0]
            token_server.requests.append(
                TokenRequest(scope=scope, service=query.get("service", [""])[0], username=user)
            )
            if user is None and not token_server.allow_anonymous_pull:
                self._answer(401, {"error": "credentials required"})
                return
            token = token_server.issue(scope, user)
            self._answer(200, {"token": token, "access_token": token, "expires_in": 300})

        def _authenticated_user(self) -> str | bool | None:
            header = self.headers.get("Authorization", "")
            if not header:
                return None
            scheme, _, encoded = header.partition(" ")
            if scheme.lower() != "basic":
                return False
            username, _, password = base64.b64decode(encoded).decode().partition(":")
            if token_server.users.get(username) != password:
                return False
            return username

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def running_token_server(
    users: dict[str, str], *, allow_anonymous_pull: bool = False
) -> Iterator[TokenServer]:
    key_pem, cert_pem, cert_der = _make_key_and_certificate()
    token_server = TokenServer(users, allow_anonymous_pull, key_pem, cert_pem, cert_der)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _token_handler(token_server))
    token_server.server = server
    thread = threading.Thread(target=server.serve_forever, name="token-server", daemon=True)
    thread.start()
    try:
        yield token_server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _htpasswd_line(username: str, password: str) -> str:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{username}:{hashed}\n"


@contextlib.contextmanager
def running_registry(
    binary: str,
    workdir: Path,
    *,
    basic_users: dict[str, str] | None = None,
    token_server: TokenServer | None = None,
) -> Iterator[RegistryServer]:
    """Start docker-registry on a free 127.0.0.1 port with storage in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage_dir = workdir / "storage"
    storage_dir.mkdir(exist_ok=True)
    port = free_loopback_port()
    auth = ""
    if basic_users is not None:
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text("".join(_htpasswd_line(u, p) for u, p in basic_users.items()))
        auth = f"auth:\n  htpasswd:\n    realm: mesoslite-test\n    path: {htpasswd}\n"
    elif token_server is not None:
        bundle = workdir / "token-signer.pem"
        bundle.write_bytes(token_server.cert_pem)
        auth = (
            "auth:\n  token:\n"
            f"    realm: {token_server.realm}\n"
            f"    service: {TOKEN_SERVICE}\n"
            f"    issuer: {TOKEN_ISSUER}\n"
            f"    rootcertbundle: {bundle}\n"
        )
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage_dir}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}\n"
        "  draintimeout: 1s\n" + auth
    )
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    server = RegistryServer(f"127.0.0.1:{port}", storage_dir, process, log_path)
    try:

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {log_path.read_text()[-2000:]}")
            try:
                return httpx.get(f"{server.url}/v2/", timeout=1.0).status_code in (200, 401)
            except httpx.HTTPError:
                return False

        wait_until(answers, "docker-registry answering on /v2/")
        yield server
    finally:
        stop_process(process)
