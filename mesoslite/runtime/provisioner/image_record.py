"""What the store keeps about one image: where it came from, its config, its layers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ManifestError
from mesoslite.runtime.provisioner.image_config import ImageConfig
from mesoslite.runtime.provisioner.platform import Platform

__all__ = ["ImageRecord", "ImageSource", "LayerRecord"]

_RECORD_VERSION = 1


class ImageSource:
    REGISTRY = "registry"
    DOCKER_ARCHIVE = "docker-archive"
    OCI_LAYOUT = "oci-layout"


@dataclass(frozen=True)
class LayerRecord:
    # Digest of the uncompressed tar: the key of the unpacked layer in the store.
    diff_id: Digest
    # Digest and size of the blob as distributed (compressed); a re-pull fetches it again.
    blob_digest: Digest
    blob_size_bytes: int
    media_type: str


@dataclass(frozen=True)
class ImageRecord:
    # Canonical reference ("docker.io/library/busybox:latest"), or the image id
    # ("sha256:<config digest hex>") for an image imported without a name.
    name: str
    source: str
    config_digest: Digest
    # Digest of the manifest chosen for our platform; None for docker-archive imports.
    manifest_digest: Digest | None
    config: ImageConfig
    platform: Platform
    layers: tuple[LayerRecord, ...]
    stored_at_s: float

    @property
    def image_id(self) -> str:
        return str(self.config_digest)

    @property
    def size_bytes(self) -> int:
        return sum(layer.blob_size_bytes for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _RECORD_VERSION,
            "name": self.name,
            "source": self.source,
            "config_digest": str(self.config_digest),
            "manifest_digest": str(self.manifest_digest) if self.manifest_digest else None,
            "config": self.config.to_json(),
            "platform": str(self.platform),
            "layers": [
                {
                    "diff_id": str(layer.diff_id),
                    "blob_digest": str(layer.blob_digest),
                    "blob_size_bytes": layer.blob_size_bytes,
                    "media_type": layer.media_type,
                }
                for layer in self.layers
            ],
            "stored_at_s": self.stored_at_s,
        }

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), indent=1, sort_keys=True).encode()

    @classmethod
    def loads(cls, data: bytes) -> ImageRecord:
        try:
            document = json.loads(data)
            if document.get("version") != _RECORD_VERSION:
                raise ManifestError(f"image record version {document.get('version')!r}")
            manifest_digest = document.get("manifest_digest")
            return cls(
                name=str(document["name"]),
                source=str(document["source"]),
                config_digest=Digest.parse(document["config_digest"]),
                manifest_digest=Digest.parse(manifest_digest) if manifest_digest else None,
                config=ImageConfig.from_json(document["config"]),
                platform=Platform.parse(document["platform"]),
                layers=tuple(
                    LayerRecord(
                        diff_id=Digest.parse(layer["diff_id"]),
                        blob_digest=Digest.parse(layer["blob_digest"]),
                        blob_size_bytes=int(layer["blob_size_bytes"]),
                        media_type=str(layer["media_type"]),
                    )
                    for layer in document["layers"]
                ),
                stored_at_s=float(document["stored_at_s"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ManifestError(f"corrupt image record: {error}") from error
