from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.runtime.cgroups import (
    CgroupMode,
    CgroupsV1Manager,
    CgroupsV2Manager,
    detect_cgroup_layout,
    manager_for_layout,
)
from mesoslite.runtime.cgroups.naming import container_cgroup
from mesoslite.runtime.isolators.cgroups import (
    cpu_shares_for,
    cpu_weight_for_shares,
    parse_flat_keyed,
)


def _v1_hierarchy(root: Path, name: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "cgroup.procs").write_text("")
    return directory


def _fake_v1(root: Path, with_unified: bool) -> None:
    for name in ("cpu,cpuacct", "memory", "pids", "freezer", "devices"):
        _v1_hierarchy(root, name)
    (root / "cpu").symlink_to("cpu,cpuacct")
    (root / "cpuacct").symlink_to("cpu,cpuacct")
    _v1_hierarchy(root, "systemd")
    if with_unified:
        (root / "unified").mkdir()
        (root / "unified" / "cgroup.controllers").write_text("")


def test_detects_v2(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    layout = detect_cgroup_layout(tmp_path)
    assert layout is not None
    assert layout.mode is CgroupMode.V2
    assert layout.controllers == {"cpu", "io", "memory", "pids"}
    assert isinstance(manager_for_layout(layout), CgroupsV2Manager)


def test_detects_hybrid(tmp_path: Path) -> None:
    _fake_v1(tmp_path, with_unified=True)
    layout = detect_cgroup_layout(tmp_path)
    assert layout is not None
    assert layout.mode is CgroupMode.HYBRID
    assert layout.unified == tmp_path / "unified"
    assert layout.v1_hierarchies["cpuacct"] == tmp_path / "cpu,cpuacct"
    assert "systemd" not in layout.controllers
    assert isinstance(manager_for_layout(layout), CgroupsV1Manager)


def test_detects_v1(tmp_path: Path) -> None:
    _fake_v1(tmp_path, with_unified=False)
    layout = detect_cgroup_layout(tmp_path)
    assert layout is not None
    assert layout.mode is CgroupMode.V1
    assert {"cpu", "cpuacct", "memory", "pids", "freezer", "devices"} <= layout.controllers


def test_no_cgroups_at_all(tmp_path: Path) -> None:
    assert detect_cgroup_layout(tmp_path / "missing") is None
    assert detect_cgroup_layout(tmp_path) is None


def test_v1_manager_creates_co_mounted_directories_once(tmp_path: Path) -> None:
    _fake_v1(tmp_path, with_unified=True)
    layout = detect_cgroup_layout(tmp_path)
    assert layout is not None
    manager = CgroupsV1Manager(layout)
    manager.create("mesoslite/c1", ["cpu", "cpuacct", "memory"])
    assert (tmp_path / "cpu,cpuacct" / "mesoslite" / "c1").is_dir()
    files = manager.join_files("mesoslite/c1", ["cpu", "cpuacct", "memory"])
    assert files == [
        tmp_path / "cpu,cpuacct" / "mesoslite" / "c1" / "tasks",
        tmp_path / "memory" / "mesoslite" / "c1" / "tasks",
    ]
    # cgroupfs makes the control files; writes never create one.
    (tmp_path / "memory" / "mesoslite" / "c1" / "memory.limit_in_bytes").write_text("max")
    manager.write("mesoslite/c1", "memory", "memory.limit_in_bytes", "1024")
    assert manager.read("mesoslite/c1", "memory", "memory.limit_in_bytes") == "1024"
    (tmp_path / "memory" / "mesoslite" / "c1" / "memory.limit_in_bytes").unlink()
    manager.remove("mesoslite/c1", ["cpu", "cpuacct", "memory"])
    assert not (tmp_path / "memory" / "mesoslite" / "c1").exists()
    manager.remove("mesoslite/c1", ["memory"])  # already gone: fine
    assert manager.pids("mesoslite/c1", "memory") == []


def test_v2_manager_enables_controllers_down_the_tree(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    layout = detect_cgroup_layout(tmp_path)
    assert layout is not None
    manager = CgroupsV2Manager(layout)
    # A real cgroupfs makes these files itself; the fake needs them present.
    (tmp_path / "mesoslite").mkdir()
    (tmp_path / "mesoslite" / "cgroup.subtree_control").write_text("")
    manager.create("mesoslite/c1", ["memory", "pids", "cpuacct"])
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (tmp_path / "mesoslite" / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (tmp_path / "mesoslite" / "c1").is_dir()
    assert manager.join_files("mesoslite/c1", ["memory"]) == [
        tmp_path / "mesoslite" / "c1" / "cgroup.procs"
    ]


def test_container_cgroup_names() -> None:
    assert container_cgroup("abc") == "mesoslite/abc"
    assert container_cgroup("abc", "mesos") == "mesos/abc"
    for bad in ("", "a/b", ".."):
        with pytest.raises(ValueError):
            container_cgroup(bad)


def test_cpu_conversions() -> None:
    assert cpu_shares_for(1) == 1024
    assert cpu_shares_for(0.001) == 2
    assert cpu_weight_for_shares(2) == 1
    assert cpu_weight_for_shares(262144) == 10000
    assert cpu_weight_for_shares(1024) == 39


def test_flat_keyed_files() -> None:
    text = "nr_periods 10\nnr_throttled 2\nthrottled_time 12345\nbad line x\n"
    assert parse_flat_keyed(text) == {"nr_periods": 10, "nr_throttled": 2, "throttled_time": 12345}
