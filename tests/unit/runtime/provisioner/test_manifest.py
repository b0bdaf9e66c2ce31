from __future__ import annotations

import json

import pytest

from mesoslite.runtime.provisioner import media_types
from mesoslite.runtime.provisioner.digest import Digest, DigestVerifier, digest_of_bytes
from mesoslite.runtime.provisioner.errors import (
    DigestMismatchError,
    ManifestError,
    UnsupportedImageError,
)
from mesoslite.runtime.provisioner.image_config import ImageConfigBlob
from mesoslite.runtime.provisioner.manifest import ImageIndex, ImageManifest, parse_manifest
from mesoslite.runtime.provisioner.platform import Platform

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _manifest(media_type: str | None, layer_type: str) -> bytes:
    document: dict[str, object] = {
        "schemaVersion": 2,
        "config": {"mediaType": media_types.OCI_CONFIG, "digest": D1, "size": 10},
        "layers": [{"mediaType": layer_type, "digest": D2, "size": 20}],
    }
    if media_type is not None:
        document["mediaType"] = media_type
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("media_type", "layer_type"),
    [
        (media_types.DOCKER_MANIFEST_V2, media_types.DOCKER_LAYER_GZIP),
        (media_types.OCI_MANIFEST, media_types.OCI_LAYER_GZIP),
        (None, media_types.OCI_LAYER),
    ],
)
def test_image_manifests_parse(media_type: str | None, layer_type: str) -> None:
    parsed = parse_manifest(_manifest(media_type, layer_type))
    assert isinstance(parsed, ImageManifest)
    assert parsed.config.digest == Digest.parse(D1)
    assert [layer.digest for layer in parsed.layers] == [Digest.parse(D2)]
    assert parsed.layers[0].size_bytes == 20


def _index(entries: list[dict[str, object]], media_type: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()


def _entry(digest: str, architecture: str, variant: str | None = None) -> dict[str, object]:
    platform: dict[str, str] = {"os": "linux", "architecture": architecture}
    if variant:
        platform["variant"] = variant
    return {
        "mediaType": media_types.OCI_MANIFEST,
        "digest": digest,
        "size": 1,
        "platform": platform,
    }


@pytest.mark.parametrize("media_type", [media_types.OCI_INDEX, media_types.DOCKER_MANIFEST_LIST])
def test_index_selects_the_platform(media_type: str) -> None:
    attestation = _entry(D3, "unknown")
    attestation["platform"] = {"os": "unknown", "architecture": "unknown"}
    parsed = parse_manifest(
        _index([attestation, _entry(D1, "amd64"), _entry(D2, "arm64", "v8")], media_type)
    )
    assert isinstance(parsed, ImageIndex)
    assert parsed.select(Platform("linux", "amd64")).digest == Digest.parse(D1)
    # A missing variant means arm64's default, v8.
    assert parsed.select(Platform("linux", "arm64")).digest == Digest.parse(D2)
    with pytest.raises(ManifestError, match="no manifest for platform linux/s390x"):
        parsed.select(Platform("linux", "s390x"))


def test_arm_variants_are_told_apart() -> None:
    parsed = parse_manifest(
        _index([_entry(D1, "arm", "v6"), _entry(D2, "arm", "v7")], media_types.OCI_INDEX)
    )
    assert isinstance(parsed, ImageIndex)
    assert parsed.select(Platform("linux", "arm", "v7")).digest == Digest.parse(D2)
    assert parsed.select(Platform("linux", "arm")).digest == Digest.parse(D2)
    assert parsed.select(Platform("linux", "arm", "v6")).digest == Digest.parse(D1)


def test_schema1_is_refused_with_a_hint() -> None:
    with pytest.raises(UnsupportedImageError, match="schema 1"):
        parse_manifest(json.dumps({"schemaVersion": 1, "fsLayers": []}).encode())


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode()],
)
def test_malformed_manifests_are_refused(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data)


def test_host_platform_is_linux_with_go_architecture_names() -> None:
    host = Platform.host()
    assert host.os == "linux"
    assert host.architecture in {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"}
    assert Platform.parse(str(host)) == host


def test_digest_verification() -> None:
    digest = digest_of_bytes(b"hello")
    verifier = DigestVerifier(digest, "greeting")
    verifier.update(b"hel")
    verifier.update(b"lo")
    verifier.verify()
    tampered = DigestVerifier(digest, "greeting")
    tampered.update(b"hellO")
    with pytest.raises(DigestMismatchError, match="greeting: digest mismatch"):
        tampered.verify()
    with pytest.raises(ManifestError):
        Digest.parse("sha256:XYZ")


def test_config_blob_gives_runtime_defaults_and_diff_ids() -> None:
    blob = ImageConfigBlob.parse(
        json.dumps(
            {
                "architecture": "arm64",
                "os": "linux",
                "variant": "v8",
                "config": {
                    "Entrypoint": ["/bin/app"],
                    "Cmd": None,
                    "Env": ["PATH=/bin", "A=1=2", "BROKEN", "A2="],
                    "WorkingDir": "/srv",
                    "User": "1000:1000",
                    "Labels": {"k": "v"},
                },
                "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
            }
        ).encode()
    )
    assert blob.platform == Platform("linux", "arm64", "v8")
    assert blob.diff_ids == (Digest.parse(D1), Digest.parse(D2))
    assert blob.config.entrypoint == ("/bin/app",)
    assert blob.config.cmd == ()
    assert blob.config.environment() == {"PATH": "/bin", "A": "1=2", "A2": ""}
    assert blob.config.working_dir == "/srv"
    assert blob.config.user == "1000:1000"
    assert blob.config.labels == {"k": "v"}


def test_config_blob_without_diff_ids_is_refused() -> None:
    with pytest.raises(ManifestError, match="diff_ids"):
        ImageConfigBlob.parse(b'{"config": {}}')
