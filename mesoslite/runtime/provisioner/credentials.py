"""Registry credentials: explicit ones and those of a docker config.json ("auths")."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mesoslite.runtime.provisioner.errors import ProvisionerError
from mesoslite.runtime.provisioner.reference import DOCKER_HUB

__all__ = ["Credential", "RegistryCredentials", "normalize_registry_key"]

# Keys docker login writes for Docker Hub; all of them mean docker.io.
_DOCKER_HUB_KEYS = frozenset(
    {"index.docker.io", "docker.io", "registry-1.docker.io", "index.docker.io/v1"}
)


@dataclass(frozen=True)
class Credential:
    username: str
    password: str = field(repr=False)


def normalize_registry_key(key: str) -> str:
    """ "https://index.docker.io/v1/" -> "docker.io"; "http://host:5000/" -> "host:5000"."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    host = host.rstrip("/")
    if host in _DOCKER_HUB_KEYS:
        return DOCKER_HUB
    return host.split("/", 1)[0]


@dataclass(frozen=True)
class RegistryCredentials:
    """Credentials by registry (as ImageReference.registry names it: "docker.io", "host:port")."""

    by_registry: Mapping[str, Credential] = field(default_factory=dict)
    # Used for any registry without an entry of its own (Image.Docker.credential in Mesos).
    default: Credential | None = None

    def for_registry(self, registry: str) -> Credential | None:
        return self.by_registry.get(normalize_registry_key(registry), self.default)

    def merged_over(self, fallback: RegistryCredentials) -> RegistryCredentials:
        """These credentials, with `fallback` filling in registries these do not name."""
        return RegistryCredentials(
            by_registry={**fallback.by_registry, **self.by_registry},
            default=self.default if self.default is not None else fallback.default,
        )

    @classmethod
    def from_docker_config(cls, data: bytes | str) -> RegistryCredentials:
        """Parse a docker config.json; entries need "auth" (base64 user:password) or both
        "username" and "password". Credential helpers (credsStore) are not supported."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ProvisionerError(f"docker config is not JSON: {error}") from error
        auths = document.get("auths") if isinstance(document, dict) else None
        if auths is None:
            return cls()
        if not isinstance(auths, dict):
            raise ProvisionerError("docker config: `auths` is not an object")
        by_registry: dict[str, Credential] = {}
        for key, entry in auths.items():
            credential = _credential_from_entry(str(key), entry)
            if credential is not None:
                by_registry[normalize_registry_key(str(key))] = credential
        return cls(by_registry=by_registry)

    @classmethod
    def from_docker_config_file(cls, path: Path) -> RegistryCredentials:
        return cls.from_docker_config(path.read_bytes())


def _credential_from_entry(key: str, entry: object) -> Credential | None:
    if not isinstance(entry, dict):
        raise ProvisionerError(f"docker config: auths[{key!r}] is not an object")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ProvisionerError(f"docker config: auths[{key!r}].auth is not base64") from error
        username, separator, password = decoded.partition(":")
        if not separator:
            raise ProvisionerError(
                f"docker config: auths[{key!r}].auth is not base64 of user:password"
            )
        return Credential(username, password)
    plain_username, plain_password = entry.get("username"), entry.get("password")
    if isinstance(plain_username, str) and isinstance(plain_password, str):
        return Credential(plain_username, plain_password)
    return None
