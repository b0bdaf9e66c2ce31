"""Platforms (os/architecture/variant) in OCI terms, and the one this machine runs."""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass
from typing import Any

__all__ = ["Platform"]

# uname machine names -> (GOARCH, variant), the names OCI indexes use.
_ARCHITECTURE_BY_MACHINE: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}
# A missing variant means the default one (containerd's platform normaliser agrees).
_DEFAULT_VARIANT_BY_ARCHITECTURE = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def host(cls) -> Platform:
        machine = host_platform.machine().lower()
        architecture, variant = _ARCHITECTURE_BY_MACHINE.get(machine, (machine, ""))
        return cls("linux", architecture, variant)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """ "linux/arm64/v8" or "linux/amd64"."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"invalid platform {text!r} (expected os/arch[/variant])")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def from_json(cls, document: Any) -> Platform | None:
        if not isinstance(document, dict):
            return None
        os_name = document.get("os")
        architecture = document.get("architecture")
        if not isinstance(os_name, str) or not isinstance(architecture, str):
            return None
        variant = document.get("variant")
        return cls(os_name, architecture, variant if isinstance(variant, str) else "")

    def matches(self, other: Platform) -> bool:
        if self.os != other.os or self.architecture != other.architecture:
            return False
        default_variant = _DEFAULT_VARIANT_BY_ARCHITECTURE.get(self.architecture, "")
        return (self.variant or default_variant) == (other.variant or default_variant)

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text
