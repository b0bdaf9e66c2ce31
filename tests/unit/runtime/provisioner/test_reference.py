from __future__ import annotations

import pytest

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ImageReferenceError
from mesoslite.runtime.provisioner.reference import ImageReference

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("library/busybox:latest", "docker.io", "library/busybox", "latest", None),
        ("docker.io/busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
        ("someone/tool", "docker.io", "someone/tool", "latest", None),
        ("localhost/tool:v1", "localhost", "tool", "v1", None),
        ("localhost:5000/a/b/c", "localhost:5000", "a/b/c", "latest", None),
        ("127.0.0.1:5000/repo/img@sha256:" + HEX, "127.0.0.1:5000", "repo/img", None, HEX),
        ("quay.io/org/app:1.0@sha256:" + HEX, "quay.io", "org/app", "1.0", HEX),
        ("[::1]:5000/img", "[::1]:5000", "img", "latest", None),
        ("my_org/some-app__x.y", "docker.io", "my_org/some-app__x.y", "latest", None),
    ],
)
def test_parse_normalises_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    reference = ImageReference.parse(text)
    assert reference.registry == registry
    assert reference.repository == repository
    assert reference.tag == tag
    assert reference.digest == (Digest("sha256", digest) if digest else None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " busybox",
        "BusyBox",
        "busybox:",
        "busybox@sha256:short",
        "busybox@md5:" + HEX,
        "a//b",
        "-lead",
        "busybox:" + "t" * 129,
        "x" * 256,
    ],
)
def test_parse_rejects_invalid_references(text: str) -> None:
    with pytest.raises(ImageReferenceError):
        ImageReference.parse(text)


def test_uppercase_first_component_is_a_registry_host() -> None:
    # Docker treats a first component with capitals as a host name, never as a repository.
    reference = ImageReference.parse("MyRegistry/app")
    assert reference.registry == "MyRegistry"
    assert reference.repository == "app"


def test_string_forms() -> None:
    reference = ImageReference.parse("busybox")
    assert str(reference) == "docker.io/library/busybox:latest"
    assert reference.familiar == "busybox:latest"
    assert reference.api_host == "registry-1.docker.io"
    assert reference.manifest_selector == "latest"
    pinned = ImageReference.parse("host:5000/app:1@sha256:" + HEX)
    assert pinned.manifest_selector == "sha256:" + HEX
    assert pinned.familiar == str(pinned) == "host:5000/app:1@sha256:" + HEX
    assert pinned.api_host == "host:5000"


def test_parse_is_idempotent_on_canonical_form() -> None:
    for text in ("busybox", "someone/tool:2", "localhost:5000/a@sha256:" + HEX):
        reference = ImageReference.parse(text)
        assert ImageReference.parse(str(reference)) == reference
