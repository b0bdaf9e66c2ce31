"""The virtual file namespace: only attached sandboxes, never anything outside them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mesoslite.agent.files import MAX_READ_BYTES, FileRoots, FilesError, browse, read, resolve


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    root = tmp_path / "work" / "runs" / "c1"
    (root / "sub").mkdir(parents=True)
    (root / "stdout").write_bytes(b"hello\n")
    (root / "sub" / "file").write_bytes(b"x" * (MAX_READ_BYTES * 2))
    (tmp_path / "secret").write_text("do not serve")
    (root / "escape").symlink_to(tmp_path / "secret")
    (root / "inside").symlink_to("stdout")
    (root.parent / "latest").symlink_to("c1")
    return root


@pytest.fixture
def roots(sandbox: Path) -> FileRoots:
    return FileRoots(
        [
            (str(sandbox), sandbox),
            ("/frameworks/f/executors/e/runs/latest", sandbox.parent / "latest"),
        ]
    )


def _status(error: pytest.ExceptionInfo[FilesError]) -> int:
    return error.value.status


def test_reaches_a_sandbox_by_real_and_virtual_path(roots: FileRoots, sandbox: Path) -> None:
    _, real = resolve(roots, f"{sandbox}/stdout")
    assert real == (sandbox / "stdout").resolve()
    _, real = resolve(roots, "/frameworks/f/executors/e/runs/latest/stdout")
    assert real == (sandbox / "stdout").resolve()


def test_dot_dot_is_refused(roots: FileRoots, sandbox: Path) -> None:
    with pytest.raises(FilesError) as error:
        resolve(roots, f"{sandbox}/../../secret")
    assert _status(error) == 404
    with pytest.raises(FilesError) as error:
        resolve(roots, "/frameworks/f/executors/e/runs/latest/sub/../../c1/stdout")
    assert _status(error) == 404


def test_symlink_out_of_the_sandbox_is_forbidden(roots: FileRoots, sandbox: Path) -> None:
    with pytest.raises(FilesError) as error:
        resolve(roots, f"{sandbox}/escape")
    assert _status(error) == 403
    with pytest.raises(FilesError) as error:
        read(roots, "/frameworks/f/executors/e/runs/latest/escape", 0, None)
    assert _status(error) == 403


def test_paths_outside_every_root_are_not_found(roots: FileRoots, tmp_path: Path) -> None:
    for path in (str(tmp_path / "secret"), "/etc/passwd", "/", "/frameworks"):
        with pytest.raises(FilesError) as error:
            resolve(roots, path)
        assert _status(error) == 404


def test_missing_path_is_a_bad_request(roots: FileRoots) -> None:
    with pytest.raises(FilesError) as error:
        resolve(roots, "")
    assert _status(error) == 400


def test_browse_lists_entries_but_not_escaping_links(roots: FileRoots, sandbox: Path) -> None:
    entries = browse(roots, "/frameworks/f/executors/e/runs/latest")
    names = [entry.path for entry in entries]
    prefix = "/frameworks/f/executors/e/runs/latest"
    assert names == [f"{prefix}/inside", f"{prefix}/stdout", f"{prefix}/sub"]
    by_name = {entry.path.rsplit("/", 1)[1]: entry for entry in entries}
    assert by_name["stdout"].size == 6
    assert stat.S_ISDIR(by_name["sub"].mode)
    assert by_name["sub"].to_legacy()["mode"] == stat.filemode(os.stat(sandbox / "sub").st_mode)
    assert by_name["stdout"].to_file_info().mtime.nanoseconds > 0


def test_read_offsets_and_the_page_limit(roots: FileRoots, sandbox: Path) -> None:
    path = f"{sandbox}/stdout"
    assert read(roots, path, 0, None) == (6, b"hello\n")
    assert read(roots, path, 2, 2) == (6, b"ll")
    assert read(roots, path, -1, None) == (6, b"")
    assert read(roots, path, 100, None) == (6, b"")
    size, data = read(roots, f"{sandbox}/sub/file", 0, None)
    assert size == MAX_READ_BYTES * 2
    assert len(data) == MAX_READ_BYTES
    with pytest.raises(FilesError) as error:
        read(roots, path, -2, None)
    assert _status(error) == 400
    with pytest.raises(FilesError) as error:
        read(roots, str(sandbox), 0, None)
    assert _status(error) == 400
