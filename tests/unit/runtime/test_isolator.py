from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.runtime.isolator import IsolatorBase, IsolatorTable, LaunchInfo, Mount


class _Named(IsolatorBase):
    def __init__(self, name: str) -> None:
        self.name = name


def test_table_keeps_the_given_order_and_reverses_it_for_cleanup() -> None:
    table = IsolatorTable([_Named("filesystem/linux"), _Named("cgroups/mem"), _Named("a/b")])
    assert list(table) == ["filesystem/linux", "cgroups/mem", "a/b"]
    assert [i.name for i in table.in_reverse()] == ["a/b", "cgroups/mem", "filesystem/linux"]
    assert table["cgroups/mem"].name == "cgroups/mem"
    assert len(table) == 3


def test_table_refuses_an_isolator_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        IsolatorTable([_Named("posix/cpu"), _Named("posix/cpu")])


def test_launch_infos_merge_in_order() -> None:
    merged = LaunchInfo(environment={"A": "1", "B": "1"}, namespaces=1)
    merged.merge(
        LaunchInfo(
            environment={"B": "2"},
            namespaces=4,
            rootfs=Path("/r"),
            cgroup_join_files=[Path("/c")],
            mounts=[Mount("/x")],
        )
    )
    merged.merge(LaunchInfo(hostname="h", working_directory="/w"))
    assert merged.environment == {"A": "1", "B": "2"}
    assert merged.namespaces == 5
    assert merged.rootfs == Path("/r")
    assert merged.cgroup_join_files == [Path("/c")]
    assert merged.mounts == [Mount("/x")]
    assert (merged.hostname, merged.working_directory) == ("h", "/w")
