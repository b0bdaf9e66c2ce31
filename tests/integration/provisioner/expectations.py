"""What the whiteout test image must look like once its layers are merged."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.trees import describe_tree

WHITEOUT_IMAGE_PATHS = {
    "bin",
    "bin/busybox",
    "bin/cat",
    "bin/sh",
    "data",
    "data/keep",
    "data/keep-hardlink",
    "data/setuid",
    "etc",
    "etc/hostname",
    "opq",
    "opq/new",
}


def assert_whiteout_image_tree(rootfs: Path) -> None:
    """Whiteouts applied (data/gone gone), opaque dir applied (only opq/new left),
    symlinks, hardlinks and a setuid mode kept."""
    tree = describe_tree(rootfs)
    assert set(tree) == WHITEOUT_IMAGE_PATHS, tree
    assert tree["bin/sh"] == "link -> busybox"
    assert tree["data/keep"] == "file 0644 'keep\\n'"
    assert tree["data/setuid"].startswith("file 4755 ")
    assert tree["opq/new"] == "file 0644 'new\\n'"
    assert tree["etc/hostname"] == "file 0644 'testimage\\n'"
    keep = os.stat(rootfs / "data/keep")
    assert keep.st_ino == os.stat(rootfs / "data/keep-hardlink").st_ino
