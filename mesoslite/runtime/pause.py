"""The pause program: a process that only holds a container's namespaces and cgroups.

The built-in default executor runs inside the agent, so its container would have no
process of its own for its task containers to join. It gets this one: a static
program of a few hundred bytes that, as PID 1 of the container's pid namespace, reaps
whatever is re-parented to it and otherwise sleeps; SIGTERM makes it exit 0. Execing
it costs a fraction of a millisecond, where a shell or a Python interpreter costs
milliseconds, and it needs nothing from the host (no `sleep` on PATH).

Machine code exists for x86_64 only; elsewhere `pause_program_bytes()` is None and the
default executor runs its tasks without a shared executor container.
"""

from __future__ import annotations

import contextlib
import os
import platform
import struct
from pathlib import Path

__all__ = ["PAUSE_PROGRAM_NAME", "pause_program_bytes", "write_pause_program"]

PAUSE_PROGRAM_NAME = "mesoslite-pause"

_LOAD_ADDRESS = 0x400000
_ELF_HEADER_BYTES = 64
_PROGRAM_HEADER_BYTES = 56
_CODE_OFFSET = _ELF_HEADER_BYTES + _PROGRAM_HEADER_BYTES

# x86_64 Linux system call numbers and constants.
_SYS_RT_SIGACTION = 13
_SYS_NANOSLEEP = 35
_SYS_WAIT4 = 61
_SYS_EXIT_GROUP = 231
_SIGTERM = 15
_SA_RESTORER = 0x04000000


def _x86_64_code() -> bytes:
    """The program, at _LOAD_ADDRESS + _CODE_OFFSET:

    _start: rt_sigaction(SIGTERM, &action, NULL, 8)
    reap:   if wait4(-1, NULL, 0, NULL) >= 0: goto reap     # a child was reaped
            nanosleep(&one_second, NULL)                   # none (ECHILD): doze
            goto reap
    on_term: exit_group(0)
    action: {on_term, SA_RESTORER, on_term, 0}             # struct kernel_sigaction
    one_second: {1, 0}                                     # struct timespec
    """
    start = (
        b"\xb8"
        + struct.pack("<I", _SYS_RT_SIGACTION)  # mov eax, 13
        + b"\xbf"
        + struct.pack("<I", _SIGTERM)  # mov edi, 15
        + b"\x48\x8d\x35"  # lea rsi, [rip + action] (displacement patched below)
    )
    # xor edx, edx; mov r10d, 8 (sizeof sigset_t); syscall
    after_lea = b"\x31\xd2" + b"\x41\xba\x08\x00\x00\x00" + b"\x0f\x05"
    reap = (
        b"\xb8"
        + struct.pack("<I", _SYS_WAIT4)  # mov eax, 61
        + b"\x48\xc7\xc7\xff\xff\xff\xff"  # mov rdi, -1
        + b"\x31\xf6\x31\xd2\x45\x31\xd2"  # xor esi, esi; xor edx, edx; xor r10d, r10d
        + b"\x0f\x05"  # syscall
        + b"\x48\x85\xc0"  # test rax, rax
    )
    # jns reap: back to the start of `reap` (rel8 from the end of this 2-byte jump).
    jns = b"\x79" + struct.pack("<b", -(len(reap) + 2))
    doze = b"\xb8" + struct.pack("<I", _SYS_NANOSLEEP) + b"\x48\x8d\x3d"  # mov eax, 35; lea rdi
    after_doze_lea = b"\x31\xf6\x0f\x05"  # xor esi, esi; syscall
    on_term = b"\xb8" + struct.pack("<I", _SYS_EXIT_GROUP) + b"\x31\xff\x0f\x05"

    # Offsets (relative to the code start) once every piece has its size.
    lea_action_end = len(start) + 4
    reap_at = lea_action_end + len(after_lea)
    doze_at = reap_at + len(reap) + len(jns)
    lea_second_end = doze_at + len(doze) + 4
    jmp_at = lea_second_end + len(after_doze_lea)
    on_term_at = jmp_at + 2
    action_at = on_term_at + len(on_term)
    one_second_at = action_at + 32
    jmp = b"\xeb" + struct.pack("<b", reap_at - (jmp_at + 2))
    on_term_address = _LOAD_ADDRESS + _CODE_OFFSET + on_term_at
    action = struct.pack("<QQQQ", on_term_address, _SA_RESTORER, on_term_address, 0)
    one_second = struct.pack("<qq", 1, 0)
    code = (
        start
        + struct.pack("<i", action_at - lea_action_end)
        + after_lea
        + reap
        + jns
        + doze
        + struct.pack("<i", one_second_at - lea_second_end)
        + after_doze_lea
        + jmp
        + on_term
        + action
        + one_second
    )
    assert len(code) == one_second_at + 16
    return code


def _elf(machine: int, code: bytes) -> bytes:
    """A static ET_EXEC with one read+execute PT_LOAD segment mapping the whole file."""
    size = _CODE_OFFSET + len(code)
    identification = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # 64-bit, LE, v1, SysV
    header = identification + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        machine,
        1,  # EV_CURRENT
        _LOAD_ADDRESS + _CODE_OFFSET,  # entry point
        _ELF_HEADER_BYTES,  # program headers follow the ELF header
        0,  # no section headers
        0,  # flags
        _ELF_HEADER_BYTES,
        _PROGRAM_HEADER_BYTES,
        1,  # one program header
        0,
        0,
        0,
    )
    program_header = struct.pack(
        "<IIQQQQQQ",
        1,  # PT_LOAD
        5,  # PF_R | PF_X
        0,  # from the start of the file
        _LOAD_ADDRESS,
        _LOAD_ADDRESS,
        size,
        size,
        0x1000,
    )
    return header + program_header + code


def pause_program_bytes(machine: str | None = None) -> bytes | None:
    """The program for `machine` (default: this host's), or None where we have none."""
    if (machine or platform.machine()) in ("x86_64", "AMD64"):
        return _elf(0x3E, _x86_64_code())
    return None


def write_pause_program(directory: Path) -> Path | None:
    """Write the program into `directory` (once; atomically) and return its path, or
    None on a machine without one."""
    program = pause_program_bytes()
    if program is None:
        return None
    path = directory / PAUSE_PROGRAM_NAME
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == program:
            return path
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{PAUSE_PROGRAM_NAME}.{os.getpid()}"
    temporary.write_bytes(program)
    temporary.chmod(0o755)
    os.replace(temporary, path)
    return path
