"""Fixtures for the wire tests: a test-only .proto compiled on the fly.

The codec is generic over descriptors, so its rules are tested against a small schema
that has one field of every kind (tests/unit/wire/wiretest.proto) rather than only
against the Mesos messages.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import require

HERE = Path(__file__).parent


def _compile(tmp: Path) -> ModuleType:
    require(importlib.util.find_spec("grpc_tools") is not None, "needs grpcio-tools (protoc)")
    from grpc_tools import protoc  # test dependency; imported lazily

    rc = protoc.main(
        ["protoc", f"--proto_path={HERE}", f"--python_out={tmp}", str(HERE / "wiretest.proto")]
    )
    assert rc == 0, "protoc failed on wiretest.proto"
    spec = importlib.util.spec_from_file_location("wiretest_pb2", tmp / "wiretest_pb2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["wiretest_pb2"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pb(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The compiled wiretest_pb2 module (descriptor pool entries live for the session)."""
    existing = sys.modules.get("wiretest_pb2")
    if existing is not None:
        return existing
    return _compile(tmp_path_factory.mktemp("wiretest"))
