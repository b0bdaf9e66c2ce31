"""Test images built on the fly with umoci from busybox-static, moved around with skopeo.

Needs: `umoci`, `skopeo` and a static `busybox` (Debian packages umoci, skopeo,
busybox-static).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BuiltImage",
    "build_layered_image",
    "build_platform_index",
    "build_whiteout_image",
    "copy_image",
    "push_layout",
]

# Files the whiteout image leaves in its final tree, and what it removes.
WHITEOUT_IMAGE_KEPT = {"data/keep": b"keep\n", "opq/new": b"new\n"}
WHITEOUT_IMAGE_GONE = ("data/gone", "opq/old", "opq/sub/old-deep")


@dataclass(frozen=True)
class BuiltImage:
    layout: Path
    tag: str

    @property
    def oci_ref(self) -> str:
        return f"oci:{self.layout}:{self.tag}"

    def manifest(self) -> dict[str, Any]:
        index = json.loads((self.layout / "index.json").read_text())
        for entry in index["manifests"]:
            if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == self.tag:
                return json.loads(self.blob(entry["digest"]))  # type: ignore[no-any-return]
        raise KeyError(self.tag)

    def blob(self, digest: str) -> bytes:
        algorithm, hex_digest = digest.split(":", 1)
        return (self.layout / "blobs" / algorithm / hex_digest).read_bytes()


def _run(*argv: str) -> None:
    completed = subprocess.run(argv, capture_output=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({completed.returncode}): "
            f"{completed.stderr.decode(errors='replace')}"
        )


def _umoci(*argv: str) -> None:
    rootless = ("--rootless",) if os.geteuid() != 0 and argv[0] in ("insert",) else ()
    _run("umoci", *argv[:1], *rootless, *argv[1:])


def _new_image(layout: Path, tag: str) -> BuiltImage:
    if not layout.exists():
        _umoci("init", "--layout", str(layout))
    _umoci("new", "--image", f"{layout}:{tag}")
    return BuiltImage(layout, tag)


def _base_tree(staging: Path, busybox: str) -> None:
    (staging / "bin").mkdir(parents=True)
    shutil.copy2(busybox, staging / "bin" / "busybox")
    (staging / "bin" / "sh").symlink_to("busybox")
    (staging / "bin" / "cat").symlink_to("busybox")
    (staging / "etc").mkdir()
    (staging / "etc" / "hostname").write_text("testimage\n")


def build_whiteout_image(workdir: Path, busybox: str, tag: str = "whiteouts") -> BuiltImage:
    """Three layers: a base (busybox, data/, opq/ with a subdir, a hardlink, a setuid file),
    a layer whiting out data/gone, and one that makes opq/ opaque with new content.
    Config: Entrypoint ["/bin/sh", "-c"], Cmd ["cat /etc/hostname"], Env, WorkingDir /data."""
    image = _new_image(workdir / "layout", tag)
    base = workdir / "base"
    _base_tree(base, busybox)
    (base / "data").mkdir()
    (base / "data" / "keep").write_text("keep\n")
    (base / "data" / "gone").write_text("gone\n")
    os.link(base / "data" / "keep", base / "data" / "keep-hardlink")
    (base / "data" / "setuid").write_text("#!/bin/sh\n")
    os.chmod(base / "data" / "setuid", 0o4755)
    (base / "opq" / "sub").mkdir(parents=True)
    (base / "opq" / "old").write_text("old\n")
    (base / "opq" / "sub" / "old-deep").write_text("old\n")
    _umoci("insert", "--image", f"{image.layout}:{tag}", str(base), "/")
    _umoci("insert", "--image", f"{image.layout}:{tag}", "--whiteout", "/data/gone")
    replacement = workdir / "opq-new"
    replacement.mkdir()
    (replacement / "new").write_text("new\n")
    _umoci("insert", "--image", f"{image.layout}:{tag}", "--opaque", str(replacement), "/opq")
    _umoci(
        "config",
        "--image",
        f"{image.layout}:{tag}",
        "--config.entrypoint",
        "/bin/sh",
        "--config.entrypoint",
        "-c",
        "--config.cmd",
        "cat /etc/hostname",
        "--config.env",
        "IMAGE_VAR=from-image",
        "--config.env",
        "PATH=/bin",
        "--config.workingdir",
        "/data",
        "--config.user",
        "0:0",
    )
    return image


def build_layered_image(
    workdir: Path, busybox: str, *, layer_count: int, layer_size_bytes: int, tag: str = "layered"
) -> BuiltImage:
    """A busybox base layer plus `layer_count - 1` layers of incompressible data."""
    image = _new_image(workdir / "layout", tag)
    base = workdir / "layer-0"
    _base_tree(base, busybox)
    _umoci("insert", "--image", f"{image.layout}:{tag}", str(base), "/")
    for index in range(1, layer_count):
        payload = workdir / f"payload-{index}"
        # Incompressible, distinct per layer: every layer is a real download.
        payload.write_bytes(_pseudo_random_bytes(layer_size_bytes, seed=f"{tag}-{index}"))
        _umoci("insert", "--image", f"{image.layout}:{tag}", str(payload), f"/data/{index}.bin")
    return image


def _pseudo_random_bytes(size_bytes: int, seed: str) -> bytes:
    chunks = []
    counter = 0
    produced = 0
    while produced < size_bytes:
        block = hashlib.sha512(f"{seed}-{counter}".encode()).digest()
        chunks.append(block)
        produced += len(block)
        counter += 1
    return b"".join(chunks)[:size_bytes]


def build_platform_index(
    workdir: Path, busybox: str, architectures: list[str], tag: str = "multi"
) -> BuiltImage:
    """One image per architecture (each with /platform naming it), joined in an OCI index
    tagged `tag`. Only the host's architecture can run; the others are for selection tests."""
    layout = workdir / "layout"
    descriptors = []
    for architecture in architectures:
        arch_tag = f"{tag}-{architecture}"
        _new_image(layout, arch_tag)
        tree = workdir / f"tree-{architecture}"
        _base_tree(tree, busybox)
        (tree / "platform").write_text(f"linux/{architecture}\n")
        _umoci("insert", "--image", f"{layout}:{arch_tag}", str(tree), "/")
        _umoci("config", "--image", f"{layout}:{arch_tag}", "--architecture", architecture)
        index = json.loads((layout / "index.json").read_text())
        entry = next(
            e
            for e in index["manifests"]
            if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == arch_tag
        )
        descriptors.append(
            {
                "mediaType": entry["mediaType"],
                "digest": entry["digest"],
                "size": entry["size"],
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    nested = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": descriptors,
        }
    ).encode()
    digest = hashlib.sha256(nested).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(nested)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"].append(
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": f"sha256:{digest}",
            "size": len(nested),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
    )
    (layout / "index.json").write_text(json.dumps(index))
    return BuiltImage(layout, tag)


def copy_image(source: str, destination: str, *extra: str) -> None:
    """skopeo copy with no signature policy (test images are unsigned)."""
    _run("skopeo", "--insecure-policy", "copy", "--quiet", *extra, source, destination)


def push_layout(
    image: BuiltImage,
    registry_host: str,
    repository_tag: str,
    *,
    credentials: tuple[str, str] | None = None,
    docker_format: bool = False,
    all_platforms: bool = False,
) -> None:
    """Push an OCI layout tag to a registry over plain HTTP; `docker_format` converts the
    manifest to Docker schema 2."""
    extra = ["--dest-tls-verify=false"]
    if credentials is not None:
        extra.append(f"--dest-creds={credentials[0]}:{credentials[1]}")
    if docker_format:
        extra += ["--format", "v2s2"]
    if all_platforms:
        extra.append("--all")
    copy_image(image.oci_ref, f"docker://{registry_host}/{repository_tag}", *extra)
