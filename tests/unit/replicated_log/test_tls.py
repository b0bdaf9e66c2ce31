"""The cluster CA, node certificates, and mutual TLS between members on 127.0.0.1."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream
from anyio.streams.tls import TLSStream
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesoslite.replicated_log.tls import (
    ClusterCa,
    TlsPaths,
    certificate_fingerprint_sha256,
    client_ssl_context,
    default_node_sans,
    ensure_cluster_tls,
    new_node_key,
    node_csr,
    save_node_identity,
    server_ssl_context,
)

pytestmark = pytest.mark.anyio

LOOPBACK_SANS = ["localhost", "127.0.0.1"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> TlsPaths:
    return ensure_cluster_tls(tmp_path_factory.mktemp("tls") / "tls", "node-1", LOOPBACK_SANS)


def test_up_creates_a_ca_and_a_node_certificate_it_signed(cluster: TlsPaths) -> None:
    ca = x509.load_pem_x509_certificate(cluster.ca_cert.read_bytes())
    node = x509.load_pem_x509_certificate(cluster.node_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    node.verify_directly_issued_by(ca)
    assert node.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node-1"
    sans = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = node.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not node.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_private_keys_are_owner_only(cluster: TlsPaths) -> None:
    for key in (cluster.ca_key, cluster.node_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_second_up_keeps_the_existing_material(cluster: TlsPaths) -> None:
    before = {path: path.read_bytes() for path in (cluster.ca_cert, cluster.node_cert)}
    ensure_cluster_tls(cluster.directory, "node-1", LOOPBACK_SANS)
    assert {path: path.read_bytes() for path in before} == before


def test_default_sans_include_loopback_and_the_host_name() -> None:
    sans = default_node_sans()
    assert {"localhost", "127.0.0.1"} <= set(sans)
    assert len(sans) == len(set(sans))


def test_a_joining_node_gets_its_csr_signed(cluster: TlsPaths, tmp_path: Path) -> None:
    key = new_node_key()
    csr = node_csr(key, "node-2", ["10.0.0.2", "node-2.example"])
    certificate_pem = ClusterCa.load(cluster).sign_csr(csr)
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    certificate.verify_directly_issued_by(
        x509.load_pem_x509_certificate(cluster.ca_cert.read_bytes())
    )
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.2"]
    assert sans.get_values_for_type(x509.DNSName) == ["node-2.example"]

    joined = TlsPaths(tmp_path / "tls")
    save_node_identity(joined, key, certificate_pem, cluster.ca_cert.read_bytes())
    assert certificate_fingerprint_sha256(
        joined.ca_cert.read_bytes()
    ) == certificate_fingerprint_sha256(cluster.ca_cert.read_bytes())
    assert stat.S_IMODE(joined.node_key.stat().st_mode) == 0o600


def test_a_csr_without_addresses_is_refused(cluster: TlsPaths) -> None:
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node-3")]))
        .sign(new_node_key(), hashes.SHA256())
    )
    with pytest.raises(ValueError, match="addresses"):
        ClusterCa.load(cluster).sign_csr(request.public_bytes(serialization.Encoding.PEM))


async def _handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> tuple[str, bytes | None]:
    """Run one TLS connection on 127.0.0.1; returns (server outcome, echoed bytes)."""
    outcome = "no connection"
    served = anyio.Event()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: SocketStream) -> None:
        nonlocal outcome
        try:
            tls = await TLSStream.wrap(
                stream, server_side=True, ssl_context=server_context, standard_compatible=False
            )
            peer = tls.extra(anyio.streams.tls.TLSAttribute.peer_certificate)
            assert peer is not None
            outcome = f"accepted {dict(item[0] for item in peer['subject'])['commonName']}"
            await tls.send(await tls.receive())
            await tls.aclose()
        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream) as error:
            outcome = f"refused: {error}"
            await stream.aclose()
        finally:
            served.set()

    echoed: bytes | None = None
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        try:
            async with await anyio.connect_tcp(
                "127.0.0.1",
                port,
                ssl_context=client_context,
                tls_standard_compatible=False,
            ) as client:
                await client.send(b"ping")
                echoed = await client.receive()
        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            echoed = None
        with anyio.fail_after(10):  # a guard against hanging, not a timing check
            await served.wait()
        group.cancel_scope.cancel()
    return outcome, echoed


async def test_members_complete_a_mutual_tls_handshake(cluster: TlsPaths, tmp_path: Path) -> None:
    member = TlsPaths(tmp_path / "member")
    key = new_node_key()
    ca = ClusterCa.load(cluster)
    save_node_identity(
        member, key, ca.sign_csr(node_csr(key, "node-2", LOOPBACK_SANS)), ca.certificate_pem
    )

    outcome, echoed = await _handshake(server_ssl_context(cluster), client_ssl_context(member))
    assert outcome == "accepted node-2"
    assert echoed == b"ping"


async def test_a_node_of_another_cluster_is_refused(cluster: TlsPaths, tmp_path: Path) -> None:
    stranger = ensure_cluster_tls(tmp_path / "other", "intruder", LOOPBACK_SANS)

    outcome, echoed = await _handshake(server_ssl_context(cluster), client_ssl_context(stranger))
    assert outcome.startswith("refused")
    assert echoed is None

    outcome, echoed = await _handshake(server_ssl_context(stranger), client_ssl_context(cluster))
    assert not outcome.startswith("accepted")
    assert echoed is None


async def test_a_client_without_a_certificate_is_refused(cluster: TlsPaths) -> None:
    anonymous = ssl.create_default_context(cafile=cluster.ca_cert)
    outcome, echoed = await _handshake(server_ssl_context(cluster), anonymous)
    assert outcome.startswith("refused")
    assert echoed is None


async def test_a_certificate_for_another_address_is_refused(
    cluster: TlsPaths, tmp_path: Path
) -> None:
    elsewhere = TlsPaths(tmp_path / "elsewhere")
    key = new_node_key()
    ca = ClusterCa.load(cluster)
    certificate = ca.sign_csr(node_csr(key, "node-9", ["10.9.9.9"]))
    save_node_identity(elsewhere, key, certificate, ca.certificate_pem)

    outcome, echoed = await _handshake(server_ssl_context(elsewhere), client_ssl_context(cluster))
    assert not outcome.startswith("accepted")
    assert echoed is None
