"""The Raft core stays sans-I/O: it imports nothing that reads a clock, touches a file or
socket, spawns threads or reaches the OS, and it does not call such builtins either."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import mesoslite.raft

RAFT_DIR = Path(mesoslite.raft.__file__).parent

# Standard-library modules the core may use: pure data structures and typing.
ALLOWED_STDLIB = {
    "__future__",
    "collections",
    "collections.abc",
    "contextlib",
    "dataclasses",
    "enum",
    "random",  # for the type of the injected generator only
    "struct",
    "typing",
}
FORBIDDEN_BUILTIN_CALLS = {"open", "__import__", "exec", "eval", "compile", "input", "print"}


def _imported_modules(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("mesoslite.raft")  # relative: stays inside the package
            elif node.module is not None:
                names.append(node.module)
    return names


def _raft_sources() -> list[Path]:
    sources = sorted(RAFT_DIR.glob("*.py"))
    assert len(sources) > 5
    return sources


def test_raft_imports_only_pure_modules() -> None:
    offenders: list[str] = []
    for path in _raft_sources():
        for module in _imported_modules(ast.parse(path.read_text(), str(path))):
            if module == "mesoslite.raft" or module.startswith("mesoslite.raft."):
                continue
            if module not in ALLOWED_STDLIB:
                offenders.append(f"{path.name}: import {module}")
    assert offenders == [], "mesoslite/raft must stay sans-I/O:\n" + "\n".join(offenders)


def test_raft_calls_no_io_builtins() -> None:
    offenders: list[str] = []
    for path in _raft_sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_BUILTIN_CALLS
            ):
                offenders.append(f"{path.name}:{node.lineno}: {node.func.id}()")
    assert offenders == []


def test_raft_uses_no_module_level_randomness() -> None:
    # Randomness comes from the injected random.Random only, never the global generator.
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in _raft_sources()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "random"
        and node.attr != "Random"
    ]
    assert offenders == []


def test_scanner_catches_a_forbidden_import() -> None:
    tree = ast.parse("import time\nfrom os import path\nfrom . import log\n")
    assert _imported_modules(tree) == ["time", "os", "mesoslite.raft"]


def test_public_surface_is_sorted_and_importable() -> None:
    exported = mesoslite.raft.__all__

    def isort_key(name: str) -> tuple[int, str]:
        # CONSTANTS, then Classes, then functions (ruff's RUF022 order).
        kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
        return kind, name

    assert exported == sorted(exported, key=isort_key)
    for name in exported:
        assert hasattr(mesoslite.raft, name), name


def test_every_module_declares_all() -> None:
    for module_info in pkgutil.iter_modules([str(RAFT_DIR)]):
        module = importlib.import_module(f"mesoslite.raft.{module_info.name}")
        assert isinstance(getattr(module, "__all__", None), list), module_info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{module_info.name}.{name}"
