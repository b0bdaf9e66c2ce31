"""The cgroup v2 device controller: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup v2 has no devices.allow/devices.deny files. Instead the kernel runs the eBPF
programs attached to a process's cgroup (and, inherited, to its ancestors') whenever it
opens or mknods a device node; the access is allowed only if every program returns 1.
runc, crun and Mesos all build such a program from their device rules; so do we, with
no compiler and no libbpf: the program is a handful of fixed instruction shapes, so it
is assembled here in Python and loaded with the bpf(2) syscall through ctypes.

The rules are v1's ("c 1:3 rwm", "b *:* m", "a"): the same strings the v1 path writes
into devices.allow, so both layouts enforce one whitelist. The program is

    r2 = ctx->access_type & 0xffff      device type: BPF_DEVCG_DEV_BLOCK / _CHAR
    r3 = ctx->access_type >> 16         requested access: MKNOD | READ | WRITE bits
    r4 = ctx->major
    r5 = ctx->minor
    for each rule:                      a failed test jumps to the next rule's block
        if r2 != type: next             (left out for type "a")
        if r3 & ~access: next           (left out for "rwm")
        if r4 != major: next            (left out for "*")
        if r5 != minor: next            (left out for "*")
        return 1                        allowed
    return 0                            not on the whitelist: EPERM

The kernel's context is struct bpf_cgroup_dev_ctx {u32 access_type; u32 major;
u32 minor;} with access_type = (access << 16) | type.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ACCESS_MKNOD",
    "ACCESS_READ",
    "ACCESS_WRITE",
    "DEVICE_BLOCK",
    "DEVICE_CHAR",
    "BpfError",
    "DeviceRule",
    "assemble",
    "attach_device_program",
    "device_programs_supported",
    "load_device_program",
    "parse_device_rule",
]

# struct bpf_cgroup_dev_ctx: the type half and the access half of access_type.
DEVICE_BLOCK = 1  # BPF_DEVCG_DEV_BLOCK
DEVICE_CHAR = 2  # BPF_DEVCG_DEV_CHAR
ACCESS_MKNOD = 1  # BPF_DEVCG_ACC_MKNOD
ACCESS_READ = 2  # BPF_DEVCG_ACC_READ
ACCESS_WRITE = 4  # BPF_DEVCG_ACC_WRITE
_ALL_ACCESS = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE
_CTX_ACCESS_TYPE = 0
_CTX_MAJOR = 4
_CTX_MINOR = 8

# bpf(2) commands, program and attach types, attach flags (include/uapi/linux/bpf.h).
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_SYSCALL_NUMBERS = {"x86_64": 321, "aarch64": 280, "arm64": 280}

# Opcodes: class | operation | source (K: the immediate, X: a register).
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_ALU32_MOV_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
_ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_JMP_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K: if dst != imm: pc += off
_JMP_EXIT = 0x95  # BPF_JMP | BPF_EXIT: return r0
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)


class BpfError(OSError):
    """bpf(2) refused: no BPF in this kernel, not permitted, or the verifier's log."""


@dataclass(frozen=True)
class DeviceRule:
    """One whitelist entry; None stands for "a" (type) and "*" (major, minor)."""

    device_type: int | None
    major: int | None
    minor: int | None
    access: int


def _number(text: str, rule: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit():
        raise ValueError(f"device rule {rule!r}: {text!r} is neither a number nor '*'")
    return int(text)


def parse_device_rule(rule: str) -> DeviceRule:
    """A devices.allow line ("c 1:3 rwm", "b *:* m", "a") as a DeviceRule."""
    fields = rule.split()
    if fields == ["a"]:
        # v1's shorthand for "a *:* rwm".
        return DeviceRule(None, None, None, _ALL_ACCESS)
    if len(fields) != 3 or fields[0] not in ("a", "b", "c") or fields[1].count(":") != 1:
        raise ValueError(f"device rule {rule!r} is not '<a|b|c> <major>:<minor> <rwm>'")
    kind, numbers, letters = fields
    major, minor = numbers.split(":")
    if not letters or set(letters) - set("rwm"):
        raise ValueError(f"device rule {rule!r}: access must be letters of 'rwm'")
    access = (
        (ACCESS_READ if "r" in letters else 0)
        | (ACCESS_WRITE if "w" in letters else 0)
        | (ACCESS_MKNOD if "m" in letters else 0)
    )
    device_type = {"a": None, "b": DEVICE_BLOCK, "c": DEVICE_CHAR}[kind]
    return DeviceRule(device_type, _number(major, rule), _number(minor, rule), access)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # struct bpf_insn {u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm;}: on a
    # little-endian host the first bitfield is the byte's low nibble.
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def _rule_block(rule: DeviceRule) -> list[bytes]:
    """The tests of one rule, each a jump past the block's end, then "return 1"."""
    # (instructions before the test, register, value): "if register != value: next".
    tests: list[tuple[list[bytes], int, int]] = []
    if rule.device_type is not None:
        tests.append(([], _R2, rule.device_type))
    if rule.access != _ALL_ACCESS:
        # No requested bit outside the rule's: r1 = r3 & ~access must be 0. (r1, the
        # context pointer, is not needed once the fields are loaded.)
        outside = ~rule.access & _ALL_ACCESS
        tests.append(
            ([_insn(_ALU32_MOV_X, _R1, _R3), _insn(_ALU32_AND_K, _R1, imm=outside)], _R1, 0)
        )
    if rule.major is not None:
        tests.append(([], _R4, rule.major))
    if rule.minor is not None:
        tests.append(([], _R5, rule.minor))
    allow = [_insn(_ALU32_MOV_K, _R0, imm=1), _insn(_JMP_EXIT)]
    block: list[bytes] = []
    # A jump's offset counts instructions from the one after it: to the block's end.
    remaining = sum(len(setup) + 1 for setup, _, _ in tests) + len(allow)
    for setup, register, value in tests:
        remaining -= len(setup) + 1
        block += [*setup, _insn(_JMP_JNE_K, register, off=remaining, imm=value)]
    return block + allow


def assemble(rules: list[DeviceRule]) -> bytes:
    """The program's instructions, 8 bytes each, for the kernel as they are."""
    program = [
        _insn(_LDX_MEM_W, _R2, _R1, _CTX_ACCESS_TYPE),
        _insn(_ALU32_AND_K, _R2, imm=0xFFFF),
        _insn(_LDX_MEM_W, _R3, _R1, _CTX_ACCESS_TYPE),
        _insn(_ALU32_RSH_K, _R3, imm=16),
        _insn(_LDX_MEM_W, _R4, _R1, _CTX_MAJOR),
        _insn(_LDX_MEM_W, _R5, _R1, _CTX_MINOR),
    ]
    for rule in rules:
        program += _rule_block(rule)
    program += [_insn(_ALU32_MOV_K, _R0, imm=0), _insn(_JMP_EXIT)]
    return b"".join(program)


class _ProgLoadAttr(ctypes.Structure):
    # union bpf_attr, the BPF_PROG_LOAD member up to prog_name (kernel 4.15): a
    # newer kernel reads the fields after it as zero.
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
    ]


class _ProgAttachAttr(ctypes.Structure):
    # union bpf_attr, the BPF_PROG_ATTACH member (without 5.6's replace_bpf_fd).
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_LICENSE = ctypes.create_string_buffer(b"Apache-2.0")
_LOG_SIZE = 64 * 1024


def _bpf(command: int, attr: ctypes.Structure) -> int:
    number = _SYSCALL_NUMBERS.get(platform.machine())
    if number is None:
        raise BpfError(errno.ENOSYS, f"bpf(2): no syscall number known for {platform.machine()}")
    result = int(
        _libc.syscall(
            ctypes.c_long(number),
            ctypes.c_int(command),
            ctypes.byref(attr),
            ctypes.c_uint(ctypes.sizeof(attr)),
        )
    )
    if result < 0:
        code = ctypes.get_errno()
        raise BpfError(code, f"bpf(2) command {command}: {os.strerror(code)}")
    return result


def load_device_program(rules: list[DeviceRule], name: str = "mesoslite_dev") -> int:
    """Load the program; its fd (close-on-exec, as bpf(2) makes every fd it returns).

    A failed load is tried again with the verifier's log, which goes into the error."""
    code = assemble(rules)
    instructions = ctypes.create_string_buffer(code, len(code))
    attr = _ProgLoadAttr(
        prog_type=_BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt=len(code) // 8,
        insns=ctypes.addressof(instructions),
        license=ctypes.addressof(_LICENSE),
        prog_name=name.encode()[:15],
    )
    try:
        return _bpf(_BPF_PROG_LOAD, attr)
    except BpfError as error:
        if error.errno != errno.EINVAL:
            raise
        log = ctypes.create_string_buffer(_LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, _LOG_SIZE, ctypes.addressof(log)
        try:
            return _bpf(_BPF_PROG_LOAD, attr)
        except BpfError as retried:
            verifier = log.value.decode(errors="replace").strip()
            raise BpfError(
                retried.errno, f"the device program was refused: {verifier}"
            ) from retried


def attach_device_program(program_fd: int, cgroup_directory: Path) -> None:
    """Attach the program to a v2 cgroup with no flags: exclusive, so it replaces a
    program attached there before (a previous agent's) and cgroups below cannot
    attach their own to widen it; every cgroup below runs it (effective programs are
    inherited down the tree). It stays attached, and loaded, until the cgroup is
    removed, whatever becomes of program_fd."""
    directory_fd = os.open(cgroup_directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _bpf(
            _BPF_PROG_ATTACH,
            _ProgAttachAttr(
                target_fd=directory_fd,
                attach_bpf_fd=program_fd,
                attach_type=_BPF_CGROUP_DEVICE,
                attach_flags=0,
            ),
        )
    finally:
        os.close(directory_fd)


def device_programs_supported() -> bool:
    """Whether this kernel loads a device program for us (root, CONFIG_CGROUP_BPF)."""
    try:
        os.close(load_device_program([]))
    except OSError:
        return False
    return True
