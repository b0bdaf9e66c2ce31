from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from mesoslite.runtime.provisioner.cli_support import (
    ProgressPrinter,
    format_layer_line,
    format_size,
    image_group,
)
from mesoslite.runtime.provisioner.progress import LayerPhase, LayerProgress

LAYER = "sha256:" + "ab" * 32


def test_sizes() -> None:
    assert format_size(999) == "999 B"
    assert format_size(1_500) == "1.5 kB"
    assert format_size(2_500_000) == "2.5 MB"
    assert format_size(3_000_000_000) == "3.0 GB"


def test_layer_lines() -> None:
    half = format_layer_line(LayerProgress(LAYER, LayerPhase.DOWNLOADING, 500, 1000))
    assert half.startswith("abababababab  downloading [############            ]")
    assert half.endswith("500 B / 1.0 kB")
    assert format_layer_line(LayerProgress(LAYER, LayerPhase.CACHED, 1, 1)).endswith(
        "already present"
    )
    assert format_layer_line(LayerProgress(LAYER, LayerPhase.DONE, 1, 1)).endswith("done")


def test_printer_prints_phase_changes_when_not_a_terminal() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, interactive=False)
    for done in (0, 10, 20):
        printer(LayerProgress(LAYER, LayerPhase.DOWNLOADING, done, 20))
    printer(LayerProgress(LAYER, LayerPhase.DONE, 20, 20))
    assert len(stream.getvalue().splitlines()) == 2


def test_printer_redraws_in_place_on_a_terminal() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream, interactive=True)
    other = "sha256:" + "cd" * 32
    printer(LayerProgress(LAYER, LayerPhase.DOWNLOADING, 0, 20))
    printer(LayerProgress(other, LayerPhase.DOWNLOADING, 0, 20))
    printer(LayerProgress(LAYER, LayerPhase.DONE, 20, 20))
    output = stream.getvalue()
    assert "\x1b[2F" in output  # moved back over both lines
    assert output.rstrip().endswith(
        "cdcdcdcdcdcd  downloading [                        ] 0 B / 20 B"
    )


def test_ls_prune_and_rm_on_an_empty_store(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path), "--backend", "copy"]
    listed = runner.invoke(image_group, [*base, "ls"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.split() == ["NAME", "IMAGE", "ID", "PLATFORM", "SIZE"]
    as_json = runner.invoke(image_group, [*base, "ls", "--json"])
    assert json.loads(as_json.output) == []
    pruned = runner.invoke(image_group, [*base, "prune"])
    assert pruned.exit_code == 0
    assert "0 layers removed" in pruned.output
    removed = runner.invoke(image_group, [*base, "rm", "busybox"])
    assert removed.exit_code == 1
    assert "no image 'busybox'" in removed.output
    bad_platform = runner.invoke(image_group, [*base, "--platform", "linux", "ls"])
    assert bad_platform.exit_code == 2
