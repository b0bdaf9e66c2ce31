"""A busybox root filesystem built from the host's busybox-static, for tests and benches."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["build_busybox_rootfs", "find_static_busybox"]


def find_static_busybox() -> Path | None:
    found = shutil.which("busybox")
    if found is None:
        return None
    # Dynamically linked busyboxes would need their libraries in the image.
    described = subprocess.run(["file", "-L", found], capture_output=True, text=True).stdout
    if described and "dynamically linked" in described:
        return None
    return Path(found)


def build_busybox_rootfs(target: Path, busybox: Path) -> Path:
    """bin/busybox plus one symlink per applet; the usual top-level directories."""
    for directory in ("bin", "dev", "etc", "proc", "sys", "tmp", "mnt", "root", "usr/bin"):
        (target / directory).mkdir(parents=True, exist_ok=True)
    (target / "tmp").chmod(0o1777)
    shutil.copy2(busybox, target / "bin" / "busybox")
    applets = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = target / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (target / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
    )
    (target / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return target
