"""The image config blob: the runtime defaults (Entrypoint, Cmd, Env...) and the layer diff ids."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mesoslite.runtime.provisioner.digest import Digest
from mesoslite.runtime.provisioner.errors import ManifestError
from mesoslite.runtime.provisioner.platform import Platform

__all__ = ["ImageConfig", "ImageConfigBlob"]


@dataclass(frozen=True)
class ImageConfig:
    """The runtime defaults an image carries (the `config` object of its config blob)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    # "NAME=value" entries in the image's order, as the config stores them.
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    @classmethod
    def from_json(cls, document: Any) -> ImageConfig:
        if document is None:
            return cls()
        if not isinstance(document, dict):
            raise ManifestError("image config: `config` is not an object")
        labels = document.get("Labels") or {}
        return cls(
            entrypoint=_string_list(document.get("Entrypoint"), "Entrypoint"),
            cmd=_string_list(document.get("Cmd"), "Cmd"),
            env=_string_list(document.get("Env"), "Env"),
            working_dir=_string(document.get("WorkingDir"), "WorkingDir"),
            user=_string(document.get("User"), "User"),
            labels={str(key): str(value) for key, value in labels.items()}
            if isinstance(labels, dict)
            else {},
            stop_signal=_string(document.get("StopSignal"), "StopSignal"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "Entrypoint": list(self.entrypoint) or None,
            "Cmd": list(self.cmd) or None,
            "Env": list(self.env) or None,
            "WorkingDir": self.working_dir,
            "User": self.user,
            "Labels": self.labels or None,
            "StopSignal": self.stop_signal,
        }

    def environment(self) -> dict[str, str]:
        """Env as a mapping; later entries win, entries without "=" are skipped (as Mesos does)."""
        variables: dict[str, str] = {}
        for entry in self.env:
            name, separator, value = entry.partition("=")
            if separator and name:
                variables[name] = value
        return variables


@dataclass(frozen=True)
class ImageConfigBlob:
    """What we use of a config blob: runtime defaults, platform, and the layers' diff ids."""

    config: ImageConfig
    platform: Platform
    # sha256 of each uncompressed layer tar, bottom layer first.
    diff_ids: tuple[Digest, ...]

    @classmethod
    def parse(cls, data: bytes) -> ImageConfigBlob:
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ManifestError(f"image config is not JSON: {error}") from error
        if not isinstance(document, dict):
            raise ManifestError("image config is not a JSON object")
        rootfs = document.get("rootfs")
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
            raise ManifestError("image config has no rootfs.diff_ids")
        diff_ids = tuple(Digest.parse(str(item)) for item in rootfs["diff_ids"])
        platform = Platform.from_json(document) or Platform("linux", "unknown")
        return cls(ImageConfig.from_json(document.get("config")), platform, diff_ids)


def _string_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ManifestError(f"image config: {what} is not a list of strings")
    return tuple(value)


def _string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"image config: {what} is not a string")
    return value
