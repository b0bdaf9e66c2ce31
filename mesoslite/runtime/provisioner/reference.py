"""Docker image references ("busybox", "library/busybox:latest", "host:5000/a/b@sha256:...").

Parsed with the grammar of Docker's reference package and normalised the way Docker does:
a name without a registry host lives on docker.io, a one-component docker.io name lives
under "library/", and a reference with neither tag nor digest means the tag "latest".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ImageReferenceError, ManifestError

__all__ = ["DOCKER_HUB", "DOCKER_HUB_API_HOST", "ImageReference"]

DOCKER_HUB = "docker.io"
# Docker Hub's registry API is served from a different host than its name.
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io"})
_DEFAULT_TAG = "latest"
_MAX_NAME_LENGTH = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
)
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class ImageReference:
    """A normalised reference: `registry` is "docker.io" for Docker Hub, never empty."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        if not text or text != text.strip():
            raise ImageReferenceError(f"invalid image reference {text!r}")
        remainder = text
        digest: Digest | None = None
        if "@" in remainder:
            remainder, _, digest_text = remainder.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except ManifestError as error:
                raise ImageReferenceError(f"invalid digest in reference {text!r}") from error
        tag: str | None = None
        last_colon = remainder.rfind(":")
        if last_colon > remainder.rfind("/"):
            remainder, tag = remainder[:last_colon], remainder[last_colon + 1 :]
            if not _TAG_RE.match(tag):
                raise ImageReferenceError(f"invalid tag {tag!r} in reference {text!r}")
        registry, repository = _split_registry(remainder)
        if not _DOMAIN_RE.match(registry):
            raise ImageReferenceError(f"invalid registry host {registry!r} in {text!r}")
        components = repository.split("/")
        if not all(_PATH_COMPONENT_RE.match(component) for component in components):
            raise ImageReferenceError(
                f"invalid repository name {repository!r} in {text!r}"
                " (lowercase letters, digits and . _ - separators only)"
            )
        if len(f"{registry}/{repository}") > _MAX_NAME_LENGTH:
            raise ImageReferenceError(f"image name too long in {text!r}")
        if tag is None and digest is None:
            tag = _DEFAULT_TAG
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """host[:port] that serves the registry API for this reference."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def manifest_selector(self) -> str:
        """What to ask the registry for: the digest when pinned (it wins over a tag)."""
        if self.digest is not None:
            return str(self.digest)
        assert self.tag is not None
        return self.tag

    def with_digest(self, digest: Digest) -> ImageReference:
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short form Docker prints: "busybox:latest" rather than the canonical name."""
        text = str(self)
        if self.registry == DOCKER_HUB:
            text = text.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
        return text


def _split_registry(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    # The first component names a registry only if it looks like a host (Docker's rule).
    looks_like_host = "." in first or ":" in first or first == "localhost" or first != first.lower()
    if not slash or not looks_like_host:
        registry, repository = DOCKER_HUB, name
    else:
        registry, repository = first, rest
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository
