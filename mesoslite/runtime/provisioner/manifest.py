"""Image manifests and indexes (Docker schema 2, OCI), and choosing a platform from an index."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesoslite.runtime.provisioner import media_types
from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ManifestError, UnsupportedImageError
from mesoslite.runtime.provisioner.platform import Platform

__all__ = ["Descriptor", "ImageIndex", "ImageManifest", "parse_manifest"]


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: its media type, digest and size (OCI descriptor.md)."""

    media_type: str
    digest: Digest
    size_bytes: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: Any, default_media_type: str = "") -> Descriptor:
        if not isinstance(document, dict):
            raise ManifestError("descriptor is not an object")
        media_type = document.get("mediaType", default_media_type)
        size = document.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise ManifestError("descriptor has no mediaType")
        if not isinstance(size, int) or size < 0:
            raise ManifestError("descriptor has no valid size")
        annotations = document.get("annotations") or {}
        return cls(
            media_type=media_type,
            digest=Digest.parse(str(document.get("digest", ""))),
            size_bytes=size,
            platform=Platform.from_json(document.get("platform")),
            annotations={str(k): str(v) for k, v in annotations.items()}
            if isinstance(annotations, dict)
            else {},
        )


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def select(self, platform: Platform) -> Descriptor:
        """The first manifest for `platform` (indexes list the preferred one first)."""
        for descriptor in self.manifests:
            if descriptor.platform is not None and descriptor.platform.matches(platform):
                return descriptor
        offered = ", ".join(
            str(descriptor.platform) for descriptor in self.manifests if descriptor.platform
        )
        raise ManifestError(f"no manifest for platform {platform} (offered: {offered or 'none'})")


def parse_manifest(data: bytes, content_type: str = "") -> ImageManifest | ImageIndex:
    """Parse manifest bytes; the document's own mediaType wins over the HTTP Content-Type."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"manifest is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise ManifestError("manifest is not a JSON object")
    if document.get("schemaVersion") == 1:
        raise UnsupportedImageError(
            "Docker schema 1 manifests are not supported (push the image again with a"
            " current Docker or skopeo to get a schema 2 or OCI manifest)"
        )
    media_type = document.get("mediaType") or content_type.split(";")[0].strip()
    if media_type not in media_types.MANIFEST_TYPES | media_types.INDEX_TYPES:
        # OCI lets mediaType be omitted: tell manifests from indexes by their shape.
        if "manifests" in document:
            media_type = media_types.OCI_INDEX
        elif "layers" in document and "config" in document:
            media_type = media_types.OCI_MANIFEST
        else:
            raise ManifestError(f"unsupported manifest media type {media_type!r}")
    if media_type in media_types.INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("index has no manifests list")
        return ImageIndex(media_type, tuple(Descriptor.from_json(entry) for entry in entries))
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("manifest has no layers list")
    return ImageManifest(
        media_type=media_type,
        config=Descriptor.from_json(document.get("config"), media_types.OCI_CONFIG),
        layers=tuple(Descriptor.from_json(layer) for layer in layers),
    )
