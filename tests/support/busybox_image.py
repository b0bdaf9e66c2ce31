"""A runnable busybox image (every applet linked, /etc/passwd, an image config) built with
umoci from the host's busybox-static and pushed to a test registry with skopeo.

Needs: `umoci`, `skopeo` and a static `busybox` (Debian packages umoci, skopeo,
busybox-static).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.images import BuiltImage, push_layout

__all__ = ["BUSYBOX_IMAGE_ENV", "BUSYBOX_IMAGE_HOSTNAME", "build_busybox_image", "push_busybox"]

# What the image's config sets, for tests to look for inside the container.
BUSYBOX_IMAGE_ENV = "IMAGE_GREETING=from-the-image"
BUSYBOX_IMAGE_HOSTNAME = "busybox-image"


def _run(*argv: str) -> None:
    completed = subprocess.run(argv, capture_output=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({completed.returncode}): "
            f"{completed.stderr.decode(errors='replace')}"
        )


def _busybox_tree(target: Path, busybox: str) -> None:
    for directory in ("bin", "etc", "tmp", "root", "data"):
        (target / directory).mkdir(parents=True, exist_ok=True)
    (target / "tmp").chmod(0o1777)
    shutil.copy2(busybox, target / "bin" / "busybox")
    applets = subprocess.run(
        [busybox, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = target / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (target / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
    )
    (target / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (target / "etc" / "hostname").write_text(BUSYBOX_IMAGE_HOSTNAME + "\n")
    (target / "data" / "from-image").write_text("image data\n")


def build_busybox_image(workdir: Path, busybox: str, tag: str = "latest") -> BuiltImage:
    """One layer with busybox and its applets; config: Cmd ["/bin/sh"], Env PATH and
    IMAGE_GREETING, WorkingDir unset (the sandbox), User root."""
    layout = workdir / "layout"
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:{tag}")
    tree = workdir / "tree"
    _busybox_tree(tree, busybox)
    _run("umoci", "insert", "--image", f"{layout}:{tag}", str(tree), "/")
    _run(
        "umoci",
        "config",
        "--image",
        f"{layout}:{tag}",
        "--config.cmd",
        "/bin/sh",
        "--config.env",
        "PATH=/bin",
        "--config.env",
        BUSYBOX_IMAGE_ENV,
        "--config.user",
        "0:0",
    )
    return BuiltImage(layout, tag)


def push_busybox(image: BuiltImage, registry_host: str, repository: str = "busybox") -> str:
    """Push it; returns the reference a task names ("127.0.0.1:PORT/busybox:latest")."""
    push_layout(image, registry_host, f"{repository}:{image.tag}")
    return f"{registry_host}/{repository}:{image.tag}"
