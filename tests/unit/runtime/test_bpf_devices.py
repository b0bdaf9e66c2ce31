"""The eBPF device program's assembler (instruction by instruction), the rules parser,
and the devices isolator and default isolation on a v2 layout."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from mesoslite.runtime.cgroups.bpf_devices import (
    ACCESS_MKNOD,
    ACCESS_READ,
    ACCESS_WRITE,
    DEVICE_BLOCK,
    DEVICE_CHAR,
    DeviceRule,
    assemble,
    device_programs_supported,
    parse_device_rule,
)
from mesoslite.runtime.cgroups.layout import detect_cgroup_layout
from mesoslite.runtime.cgroups.manager import manager_for_layout
from mesoslite.runtime.isolation import (
    LINUX_ISOLATION,
    IsolationContext,
    default_isolation_flag,
    isolation_from_flag,
)
from mesoslite.runtime.isolators.cgroups import DEFAULT_DEVICE_RULES, CgroupsDevicesIsolator
from tests.conftest import require, require_root

# (code, dst, src, off, imm) of the prologue: the context's fields into r2..r5.
_PROLOGUE = [
    (0x61, 2, 1, 0, 0),  # r2 = ctx->access_type
    (0x54, 2, 0, 0, 0xFFFF),  # r2 &= 0xffff: the device type
    (0x61, 3, 1, 0, 0),  # r3 = ctx->access_type
    (0x74, 3, 0, 0, 16),  # r3 >>= 16: the requested access
    (0x61, 4, 1, 4, 0),  # r4 = ctx->major
    (0x61, 5, 1, 8, 0),  # r5 = ctx->minor
]
_ALLOW = [(0xB4, 0, 0, 0, 1), (0x95, 0, 0, 0, 0)]  # r0 = 1; exit
_DENY = [(0xB4, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]  # r0 = 0; exit


def _decoded(program: bytes) -> list[tuple[int, int, int, int, int]]:
    assert len(program) % 8 == 0
    decoded = []
    for offset in range(0, len(program), 8):
        code, registers, off, imm = struct.unpack_from("<BBhi", program, offset)
        decoded.append((code, registers & 0xF, registers >> 4, off, imm))
    return decoded


def test_parses_v1_rules() -> None:
    assert parse_device_rule("c 1:3 rwm") == DeviceRule(
        DEVICE_CHAR, 1, 3, ACCESS_READ | ACCESS_WRITE | ACCESS_MKNOD
    )
    assert parse_device_rule("b *:* m") == DeviceRule(DEVICE_BLOCK, None, None, ACCESS_MKNOD)
    assert parse_device_rule("c 136:* rw") == DeviceRule(
        DEVICE_CHAR, 136, None, ACCESS_READ | ACCESS_WRITE
    )
    assert parse_device_rule("a") == parse_device_rule("a *:* rwm")
    assert parse_device_rule("a") == DeviceRule(None, None, None, 7)
    for bad in ("x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c a:3 r", "c 1:3", "c 1:3 "):
        with pytest.raises(ValueError, match="device rule"):
            parse_device_rule(bad)


def test_empty_rule_set_denies_everything() -> None:
    assert _decoded(assemble([])) == _PROLOGUE + _DENY


def test_instruction_bytes_are_the_kernels_struct_bpf_insn() -> None:
    program = assemble([parse_device_rule("c 1:3 rwm")])
    # code 0x61, dst r2 in the low nibble and src r1 in the high one, off 0, imm 0.
    assert program[:8] == bytes([0x61, 0x12, 0, 0, 0, 0, 0, 0])
    # if r2 != 2 (char) goto +4: code 0x55, dst r2, off 4, imm 2, little-endian.
    assert program[48:56] == bytes([0x55, 0x02, 4, 0, 2, 0, 0, 0])


def test_each_test_jumps_to_the_next_rule() -> None:
    program = assemble([parse_device_rule("c 1:3 rwm"), parse_device_rule("b *:* m")])
    assert _decoded(program) == [
        *_PROLOGUE,
        # c 1:3 rwm: type, major, minor; all access, so no access test.
        (0x55, 2, 0, 4, DEVICE_CHAR),
        (0x55, 4, 0, 3, 1),
        (0x55, 5, 0, 2, 3),
        *_ALLOW,
        # b *:* m: type, then no requested bit outside mknod (r1 = r3 & (r|w)).
        (0x55, 2, 0, 5, DEVICE_BLOCK),
        (0xBC, 1, 3, 0, 0),
        (0x54, 1, 0, 0, ACCESS_READ | ACCESS_WRITE),
        (0x55, 1, 0, 2, 0),
        *_ALLOW,
        *_DENY,
    ]


def test_wildcards_and_type_a_test_nothing() -> None:
    assert _decoded(assemble([parse_device_rule("a")])) == _PROLOGUE + _ALLOW + _DENY
    assert _decoded(assemble([parse_device_rule("c 136:* rwm")])) == [
        *_PROLOGUE,
        (0x55, 2, 0, 3, DEVICE_CHAR),
        (0x55, 4, 0, 2, 136),
        *_ALLOW,
        *_DENY,
    ]


def test_the_default_whitelist_assembles_whole() -> None:
    rules = [parse_device_rule(rule) for rule in DEFAULT_DEVICE_RULES]
    decoded = _decoded(assemble(rules))
    # One "return 1" per rule, one "return 0" at the end, every jump inside.
    assert decoded.count(_ALLOW[0]) == len(DEFAULT_DEVICE_RULES)
    assert decoded[-2:] == _DENY
    for index, (code, _, _, off, _) in enumerate(decoded):
        if code == 0x55:
            assert 0 < index + 1 + off < len(decoded)


def _fake_v2(root: Path) -> Path:
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_devices_isolator_is_built_on_a_v2_layout(tmp_path: Path) -> None:
    require_root()
    require(device_programs_supported(), "needs a kernel that loads eBPF device programs")
    layout = detect_cgroup_layout(_fake_v2(tmp_path))
    assert layout is not None
    isolator = CgroupsDevicesIsolator(manager_for_layout(layout))
    assert isolator.controllers == ["devices"]
    with pytest.raises(ValueError, match="device rule"):
        CgroupsDevicesIsolator(manager_for_layout(layout), allowed=("c 1:3 rwx",))


def test_default_isolation_on_v2_keeps_devices_and_builds(tmp_path: Path) -> None:
    require_root()
    root = _fake_v2(tmp_path)
    flag = default_isolation_flag(root, device_programs=lambda: True)
    assert flag == LINUX_ISOLATION
    context = IsolationContext(runtime_dir=tmp_path, cgroup_root=root)
    names = [isolator.name for isolator in isolation_from_flag(flag, context)]
    assert "cgroups/devices" in names


def test_default_isolation_on_v2_without_bpf_leaves_devices_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_root()
    root = _fake_v2(tmp_path)
    with caplog.at_level(logging.WARNING, logger="mesoslite.runtime.isolation"):
        flag = default_isolation_flag(root, device_programs=lambda: False)
    assert "cgroups/devices" not in flag.split(",")
    assert flag.split(",") == [n for n in LINUX_ISOLATION.split(",") if n != "cgroups/devices"]
    assert "devices are not restricted" in caplog.text
    context = IsolationContext(runtime_dir=tmp_path, cgroup_root=root)
    assert len(isolation_from_flag(flag, context)) == len(flag.split(","))


def test_default_isolation_on_v2_asks_the_kernel(tmp_path: Path) -> None:
    """As root here, with a kernel that loads device programs (CI's), the real probe
    keeps cgroups/devices."""
    require_root()
    require(device_programs_supported(), "needs a kernel that loads eBPF device programs")
    assert default_isolation_flag(_fake_v2(tmp_path)) == LINUX_ISOLATION
