from __future__ import annotations

from pathlib import Path

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.api import ContainerConfig
from mesoslite.runtime.checkpoint import (
    ContainerRecord,
    container_directory,
    read_records,
    remove_record,
    write_record,
)
from mesoslite.runtime.reaper_protocol import (
    decode,
    encode,
    exit_record_path,
    read_exit_record,
    write_exit_record,
)


def _record(tmp_path: Path) -> ContainerRecord:
    info = mesos_pb2.ContainerInfo(type=mesos_pb2.ContainerInfo.MESOS, hostname="h")
    config = ContainerConfig(
        command=mesos_pb2.CommandInfo(shell=False, value="/bin/x", arguments=["x", "y"]),
        sandbox=tmp_path / "sandbox",
        environment={"A": "1"},
        resources=[
            mesos_pb2.Resource(
                name="cpus", type=mesos_pb2.Value.SCALAR, scalar=mesos_pb2.Value.Scalar(value=1.5)
            )
        ],
        container_info=info,
        user="nobody",
        parent_id="parent",
        checkpoint=True,
        rootfs=tmp_path / "rootfs",
    )
    return ContainerRecord("c1", config, pid=1234, start_ticks=99, state="RUNNING")


def test_records_round_trip(tmp_path: Path) -> None:
    record = _record(tmp_path)
    write_record(tmp_path / "runtime", record)
    records, unreadable = read_records(tmp_path / "runtime")
    assert records == [record]
    assert unreadable == []


def test_a_directory_without_a_record_is_reported(tmp_path: Path) -> None:
    container_directory(tmp_path, "half-made").mkdir(parents=True)
    assert read_records(tmp_path) == ([], ["half-made"])


def test_remove_takes_the_exit_record_too(tmp_path: Path) -> None:
    write_record(tmp_path, _record(tmp_path))
    write_exit_record(tmp_path, "c1", 1234, 7 << 8)
    assert read_exit_record(tmp_path, "c1") == (1234, 7 << 8)
    remove_record(tmp_path, "c1")
    assert read_records(tmp_path) == ([], [])
    assert not exit_record_path(tmp_path, "c1").exists()
    assert read_exit_record(tmp_path, "c1") is None


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    write_exit_record(tmp_path, "c1", 1, 0)
    write_exit_record(tmp_path, "c1", 1, 256)
    assert sorted(p.name for p in (tmp_path / "exits").iterdir()) == ["c1"]


def test_messages_round_trip() -> None:
    assert decode(encode(("exited", "c1", 5, 0))) == ("exited", "c1", 5, 0)
