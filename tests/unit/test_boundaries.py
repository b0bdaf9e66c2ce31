"""The architecture's boundaries, checked on the import graph of the source.

- The pure cores (raft/, resources.py, master/allocator/) import no I/O, clock or
  event-loop modules.
- Nothing outside tui/ imports textual.
- runtime/ does not import master/.
- The container reaper (which every container fork copies) loads no event loop
  library and no protobuf.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mesoslite"

IMPURE = {
    "anyio",
    "asyncio",
    "starlette",
    "uvicorn",
    "httpx",
    "textual",
    "socket",
    "time",
    "os",
    "threading",
    "subprocess",
    "select",
    "selectors",
}


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno


def _sources(*relative: str) -> list[Path]:
    paths: list[Path] = []
    for part in relative:
        target = PACKAGE / part
        paths.extend(sorted(target.rglob("*.py")) if target.is_dir() else [target])
    return paths


@pytest.mark.parametrize(
    "path", _sources("raft", "resources.py", "master/allocator"), ids=lambda p: p.name
)
def test_pure_cores_import_no_io(path: Path) -> None:
    offending = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        for module, line in _imports(path)
        if module.split(".")[0] in IMPURE
    ]
    assert not offending


def test_only_tui_imports_textual() -> None:
    offending = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in _sources(".")
        if "tui" not in path.relative_to(PACKAGE).parts
        for module, line in _imports(path)
        if module.split(".")[0] == "textual"
    ]
    assert not offending


def test_runtime_does_not_import_master() -> None:
    offending = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        for path in _sources("runtime")
        for module, line in _imports(path)
        if module == "mesoslite.master" or module.startswith("mesoslite.master.")
    ]
    assert not offending


def test_the_container_reaper_stays_small() -> None:
    # Loaded for real (the import graph is transitive): in a fresh interpreter.
    script = (
        "import sys, mesoslite.runtime.reaper; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()
    assert "mesoslite" in loaded
    assert not {"anyio", "asyncio", "google", "httpx"} & set(loaded)


def test_the_checks_see_the_source() -> None:
    # Guards the guards: an empty scan would pass everything.
    assert len(_sources("raft")) > 5
    assert any(module == "anyio" for module, _ in _imports(PACKAGE / "node.py"))
