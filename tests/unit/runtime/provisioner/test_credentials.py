from __future__ import annotations

import base64
import json

import pytest

from mesoslite.runtime.provisioner.credentials import (
    Credential,
    RegistryCredentials,
    normalize_registry_key,
)
from mesoslite.runtime.provisioner.errors import ProvisionerError
from mesoslite.runtime.provisioner.registry_auth import basic_authorization, parse_challenge
from mesoslite.runtime.provisioner.registry_client import is_insecure_registry


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_docker_config_auths() -> None:
    config = json.dumps(
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _auth("hub", "p:w")},
                "http://127.0.0.1:5000/": {"auth": _auth("local", "secret")},
                "quay.io": {"username": "q", "password": "qq"},
                "empty.example": {},
            },
            "credsStore": "desktop",
        }
    )
    credentials = RegistryCredentials.from_docker_config(config)
    assert credentials.for_registry("docker.io") == Credential("hub", "p:w")
    assert credentials.for_registry("127.0.0.1:5000") == Credential("local", "secret")
    assert credentials.for_registry("quay.io") == Credential("q", "qq")
    assert credentials.for_registry("empty.example") is None
    assert credentials.for_registry("elsewhere:1") is None


def test_default_and_merge() -> None:
    explicit = RegistryCredentials(default=Credential("any", "x"))
    configured = RegistryCredentials({"quay.io": Credential("q", "qq")})
    merged = explicit.merged_over(configured)
    assert merged.for_registry("quay.io") == Credential("q", "qq")
    assert merged.for_registry("other") == Credential("any", "x")


@pytest.mark.parametrize(
    "config",
    [
        "nope",
        '{"auths": []}',
        '{"auths": {"x": {"auth": "!!!"}}}',
        '{"auths": {"x": {"auth": "' + base64.b64encode(b"nocolon").decode() + '"}}}',
    ],
)
def test_broken_docker_configs_are_reported(config: str) -> None:
    with pytest.raises(ProvisionerError):
        RegistryCredentials.from_docker_config(config)


def test_password_is_not_in_repr() -> None:
    assert "hunter2" not in repr(Credential("me", "hunter2"))


@pytest.mark.parametrize(
    ("key", "registry"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://host:5000/v2/", "host:5000"),
        ("host", "host"),
    ],
)
def test_registry_keys(key: str, registry: str) -> None:
    assert normalize_registry_key(key) == registry


def test_challenges() -> None:
    bearer = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert bearer is not None
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None
    assert (basic.scheme, basic.params) == ("basic", {"realm": "Registry Realm"})
    assert parse_challenge("") is None
    assert basic_authorization(Credential("a", "b")) == "Basic " + _auth("a", "b")


@pytest.mark.parametrize(
    ("registry", "listed", "insecure"),
    [
        ("127.0.0.1:5000", (), True),
        ("127.8.9.10", (), True),
        ("localhost:5000", (), True),
        ("[::1]:5000", (), True),
        ("registry.example", (), False),
        ("registry.example:5000", ("registry.example:5000",), True),
        ("registry.example:5000", ("registry.example",), True),
        ("10.1.2.3:5000", ("10.0.0.0/8",), True),
        ("192.168.1.1:5000", ("10.0.0.0/8",), False),
        ("docker.io", (), False),
    ],
)
def test_plain_http_only_for_loopback_and_listed_registries(
    registry: str, listed: tuple[str, ...], insecure: bool
) -> None:
    assert is_insecure_registry(registry, listed) is insecure
