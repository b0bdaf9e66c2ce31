"""Fixtures: a real docker-registry (anonymous, basic auth, token auth) on 127.0.0.1 with
images built by umoci from busybox-static and pushed by skopeo. Skipped with a reason where
a tool is missing (failed instead under MESOSLITE_REQUIRE_ALL=1)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require, require_binary
from tests.support.images import (
    BuiltImage,
    build_platform_index,
    build_whiteout_image,
    push_layout,
)
from tests.support.registry import (
    RegistryServer,
    TokenServer,
    running_registry,
    running_token_server,
)

USER, PASSWORD = "alice", "wonderland"
WHITEOUT_REPOSITORY = "test/whiteouts"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Tools:
    registry: str
    busybox: str


@pytest.fixture(scope="session")
def tools() -> Tools:
    registry = require_binary("docker-registry")
    require_binary("umoci")
    require_binary("skopeo")
    return Tools(registry=registry, busybox=require_binary("busybox"))


@pytest.fixture(scope="session")
def whiteout_image(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_whiteout_image(tmp_path_factory.mktemp("whiteout-image"), tools.busybox)


@pytest.fixture(scope="session")
def platform_index(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_platform_index(
        tmp_path_factory.mktemp("platform-index"), tools.busybox, ["amd64", "arm64"]
    )


@pytest.fixture(scope="session")
def registry(
    tools: Tools,
    whiteout_image: BuiltImage,
    platform_index: BuiltImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegistryServer]:
    """Anonymous registry holding test/whiteouts:oci (OCI manifest), :docker (Docker schema
    2) and test/multi:1 (an OCI index for linux/amd64 and linux/arm64)."""
    with running_registry(tools.registry, tmp_path_factory.mktemp("registry")) as server:
        push_layout(whiteout_image, server.host, f"{WHITEOUT_REPOSITORY}:oci")
        push_layout(
            whiteout_image, server.host, f"{WHITEOUT_REPOSITORY}:docker", docker_format=True
        )
        push_layout(platform_index, server.host, "test/multi:1", all_platforms=True)
        yield server


@pytest.fixture(scope="module")
def basic_auth_registry(
    tools: Tools, whiteout_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    require(importlib.util.find_spec("bcrypt") is not None, "needs the `bcrypt` package")
    with running_registry(
        tools.registry, tmp_path_factory.mktemp("basic-registry"), basic_users={USER: PASSWORD}
    ) as server:
        push_layout(
            whiteout_image, server.host, f"{WHITEOUT_REPOSITORY}:oci", credentials=(USER, PASSWORD)
        )
        yield server


@dataclass(frozen=True)
class TokenRegistry:
    server: RegistryServer
    tokens: TokenServer


def _token_registry(
    tools: Tools, image: BuiltImage, workdir: Path, *, allow_anonymous_pull: bool
) -> Iterator[TokenRegistry]:
    require(
        importlib.util.find_spec("cryptography") is not None, "needs the `cryptography` package"
    )
    with (
        running_token_server({USER: PASSWORD}, allow_anonymous_pull=allow_anonymous_pull) as tokens,
        running_registry(tools.registry, workdir, token_server=tokens) as server,
    ):
        push_layout(image, server.host, f"{WHITEOUT_REPOSITORY}:oci", credentials=(USER, PASSWORD))
        tokens.requests.clear()
        yield TokenRegistry(server, tokens)


@pytest.fixture(scope="module")
def token_registry(
    tools: Tools, whiteout_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenRegistry]:
    """Bearer-token registry whose token server gives tokens to alice only."""
    yield from _token_registry(
        tools, whiteout_image, tmp_path_factory.mktemp("token-registry"), allow_anonymous_pull=False
    )


@pytest.fixture(scope="module")
def anonymous_token_registry(
    tools: Tools, whiteout_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenRegistry]:
    """Bearer-token registry whose token server also gives anonymous pull tokens."""
    yield from _token_registry(
        tools, whiteout_image, tmp_path_factory.mktemp("anon-token"), allow_anonymous_pull=True
    )
