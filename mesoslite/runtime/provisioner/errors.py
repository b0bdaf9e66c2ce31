"""Errors the provisioner raises: one base class, a subclass per kind of failure."""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "DigestMismatchError",
    "ImageNotFoundError",
    "ImageReferenceError",
    "LayerUnpackError",
    "ManifestError",
    "PathEscapeError",
    "ProvisionerError",
    "RegistryError",
    "UnsupportedImageError",
]


class ProvisionerError(Exception):
    """Base class: anything that stops an image from being pulled, imported or mounted."""


class ImageReferenceError(ProvisionerError, ValueError):
    """An image name that is not a valid Docker reference."""


class UnsupportedImageError(ProvisionerError):
    """An image kind or format we refuse (APPC, schema 1 manifests, foreign layers...)."""


class RegistryError(ProvisionerError):
    """The registry answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class AuthenticationError(RegistryError):
    """The registry wants credentials we do not have, or refused the ones we sent."""


class ImageNotFoundError(ProvisionerError, LookupError):
    """No such image: not in the registry (404) or not in the local store."""


class ManifestError(ProvisionerError):
    """A manifest, index or image config that cannot be used (malformed, no matching platform)."""


class DigestMismatchError(ProvisionerError):
    """Content whose sha256 differs from the digest that names it: tampered or corrupt."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: digest mismatch, expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class LayerUnpackError(ProvisionerError):
    """A layer tar that cannot be unpacked."""


class PathEscapeError(LayerUnpackError):
    """A layer entry whose path or hardlink target would land outside the layer directory."""
