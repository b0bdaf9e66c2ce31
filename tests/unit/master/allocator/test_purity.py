"""The allocator and the Resources algebra stay pure: no I/O, clock or event loop."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mesoslite

_PACKAGE_ROOT = Path(mesoslite.__file__).parent
_PURE_MODULES = [
    _PACKAGE_ROOT / "resources.py",
    *sorted((_PACKAGE_ROOT / "master" / "allocator").glob("*.py")),
]
_BANNED = {"anyio", "starlette", "httpx", "textual", "socket", "time", "os", "asyncio"}


@pytest.mark.parametrize("path", _PURE_MODULES, ids=lambda path: path.name)
def test_pure_modules_import_nothing_banned(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    assert not imported & _BANNED


def test_importing_them_pulls_in_no_io_libraries() -> None:
    probe = (
        "import sys, mesoslite.resources, mesoslite.master.allocator\n"
        "print(sorted({name.split('.')[0] for name in sys.modules}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    for library in ("anyio", "starlette", "httpx", "textual", "socket", "asyncio"):
        assert f"'{library}'" not in loaded
