"""The cluster's TLS material: a private CA, node certificates, mutual-TLS contexts.

`mesoslite up` calls `ensure_cluster_tls(<data-dir>/tls, node_name, sans)`, which creates
(once) a CA and a node certificate the CA signs for the node's addresses, and returns
their paths. A node that joins later makes its own key and CSR (`new_node_key`,
`node_csr`); a member holding the CA signs it (`ClusterCa.sign_csr`) once the join token
checks out. Peers then talk over mutual TLS: each side presents its node certificate and
accepts only certificates this CA signed, so a peer is a member by construction.

Keys are ECDSA P-256 (small, fast handshakes, supported by every TLS stack). Blocking
file and key work: call from a worker thread on the event loop.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesoslite.replicated_log.durable_files import ensure_directory, write_file_atomically

__all__ = [
    "CA_VALIDITY_DAYS",
    "GRACEFUL_SHUTDOWN_S",
    "NODE_VALIDITY_DAYS",
    "ClusterCa",
    "TlsPaths",
    "certificate_fingerprint_sha256",
    "client_ssl_context",
    "default_node_sans",
    "ensure_cluster_tls",
    "new_node_key",
    "node_csr",
    "save_node_identity",
    "server_ssl_context",
    "uvicorn_tls_options",
]

CA_VALIDITY_DAYS = 3650
NODE_VALIDITY_DAYS = 365
GRACEFUL_SHUTDOWN_S = 1
# Certificates start a little in the past so that a peer whose clock is slightly behind
# does not reject a certificate issued a moment ago.
_CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class TlsPaths:
    """Where a node's TLS files live inside `<data-dir>/tls`."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def node_cert(self) -> Path:
        return self.directory / "node.crt"

    @property
    def node_key(self) -> Path:
        return self.directory / "node.key"


def certificate_fingerprint_sha256(certificate_pem: bytes) -> str:
    """The SHA-256 of the certificate's DER encoding, lowercase hex (what tokens pin)."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return certificate.fingerprint(hashes.SHA256()).hex()


def new_node_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def node_csr(key: ec.EllipticCurvePrivateKey, node_name: str, sans: Sequence[str]) -> bytes:
    """A PEM certificate signing request for `node_name` with `sans` (IPs or DNS names)."""
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_name)]))
        .add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


class ClusterCa:
    """The cluster's certificate authority: its certificate and signing key."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self._key = key

    @classmethod
    def create(
        cls, *, common_name: str = "mesoslite cluster CA", valid_days: int = CA_VALIDITY_DAYS
    ) -> ClusterCa:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        public_key = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load(cls, paths: TlsPaths) -> ClusterCa:
        certificate = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{paths.ca_key}: not an EC private key")
        return cls(certificate, key)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint_sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def save(self, paths: TlsPaths) -> None:
        """Write the key (owner-only) and the certificate."""
        write_file_atomically(paths.ca_key, _key_pem(self._key))
        write_file_atomically(paths.ca_cert, self.certificate_pem, mode=0o644)

    def issue(
        self,
        node_name: str,
        sans: Sequence[str],
        public_key: ec.EllipticCurvePublicKey,
        *,
        valid_days: int = NODE_VALIDITY_DAYS,
    ) -> bytes:
        """A PEM node certificate for both ends of mutual TLS (server and client auth)."""
        now = datetime.datetime.now(datetime.UTC)
        ca_public_key = self._key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public_key), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    def sign_csr(self, csr_pem: bytes, *, valid_days: int = NODE_VALIDITY_DAYS) -> bytes:
        """Sign a joining node's CSR (after its join token was verified): its name and
        addresses as requested, everything else as this CA issues node certificates."""
        request = x509.load_pem_x509_csr(csr_pem)
        if not request.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        public_key = request.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("node keys must be EC keys")
        names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(names) != 1:
            raise ValueError("the CSR must name exactly one node (CN)")
        try:
            extension = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            raise ValueError("the CSR carries no addresses (subjectAltName)") from None
        sans = [str(name) for name in extension.value.get_values_for_type(x509.IPAddress)]
        sans += extension.value.get_values_for_type(x509.DNSName)
        return self.issue(str(names[0].value), sans, public_key, valid_days=valid_days)


def default_node_sans() -> list[str]:
    """The names a node is reached by on this machine: its host name, loopback, and the
    addresses its host name resolves to."""
    hostname = socket.gethostname()
    sans = [hostname, "localhost", "127.0.0.1", "::1"]
    try:
        for *_, address in socket.getaddrinfo(hostname, None):
            sans.append(str(address[0]).split("%", 1)[0])
    except OSError:
        pass  # an unresolvable host name still has its loopback names
    return list(dict.fromkeys(sans))


def ensure_cluster_tls(directory: Path, node_name: str, sans: Sequence[str]) -> TlsPaths:
    """Create the CA and this node's key and certificate where they are missing (what
    `mesoslite up` does on a new data directory); existing files are kept."""
    paths = TlsPaths(directory)
    ensure_directory(directory)
    if paths.ca_cert.exists():
        ca = ClusterCa.load(paths)
    else:
        ca = ClusterCa.create()
        ca.save(paths)
    if not (paths.node_cert.exists() and paths.node_key.exists()):
        key = new_node_key()
        write_file_atomically(paths.node_key, _key_pem(key))
        certificate = ca.issue(node_name, sans, key.public_key())
        write_file_atomically(paths.node_cert, certificate, mode=0o644)
    return paths


def save_node_identity(
    paths: TlsPaths,
    key: ec.EllipticCurvePrivateKey,
    certificate_pem: bytes,
    ca_certificate_pem: bytes,
) -> None:
    """Store what a joining node ends up with: its key, the certificate the cluster
    signed for it, and the (pinned) CA certificate."""
    ensure_directory(paths.directory)
    write_file_atomically(paths.node_key, _key_pem(key))
    write_file_atomically(paths.node_cert, certificate_pem, mode=0o644)
    write_file_atomically(paths.ca_cert, ca_certificate_pem, mode=0o644)


def server_ssl_context(paths: TlsPaths) -> ssl.SSLContext:
    """For the listener peers connect to: presents the node certificate and requires a
    client certificate signed by the cluster CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.node_cert, paths.node_key)
    context.load_verify_locations(cafile=paths.ca_cert)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def uvicorn_tls_options(paths: TlsPaths) -> dict[str, Any]:
    """`uvicorn.Config` options for a listener that requires member certificates (the
    same policy as `server_ssl_context`, which uvicorn cannot take as an object)."""
    return {
        "ssl_certfile": str(paths.node_cert),
        "ssl_keyfile": str(paths.node_key),
        "ssl_ca_certs": str(paths.ca_cert),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        # Closing a TLS connection waits for the peer's close_notify, which a client
        # that only writes (a Raft stream) or idles in a pool never sends: without a
        # limit, uvicorn's shutdown waits asyncio's 30 s SSL shutdown timeout.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }


def client_ssl_context(paths: TlsPaths) -> ssl.SSLContext:
    """For connecting to peers: presents the node certificate, trusts only the cluster
    CA, and checks that the peer's certificate names the address dialled."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.node_cert, paths.node_key)
    context.load_verify_locations(cafile=paths.ca_cert)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _general_names(sans: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for san in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    if not names:
        raise ValueError("a node certificate needs at least one address")
    return names
