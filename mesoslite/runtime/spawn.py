"""Process creation with glibc's posix_spawn through ctypes.

Why not `os.posix_spawn`: it cannot change the working directory, and `subprocess`
costs a Python object, an error pipe and a blocking read per child. glibc's
posix_spawn uses clone(CLONE_VM | CLONE_VFORK), so its cost does not grow with the
agent's heap the way fork does (measured: ~1.2 ms for spawn + exit of /bin/true either
way with a small heap, fork+exec 4.4 ms with a 2M-object heap, posix_spawn unchanged).
glibc >= 2.34 is needed for `addchdir_np` and `addclosefrom_np`.

The call returns once the child has exec'd (vfork): the caller's thread waits until
the child has been given a CPU and has loaded its program. On a busy machine that is
a millisecond or more of waiting (measured: 1.4 ms of wall time for 0.2 ms of the
caller's CPU with the load at 5 on two cores). `posix_spawn_off_loop` therefore makes
the call in a small pool of threads (ctypes releases the GIL during it) and the event
loop goes on meanwhile; the arrays and the file actions are built on the loop's
thread, so that the worker only makes the one call.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mesoslite.runtime.child_steps import TASK_DEFAULT_SIGNALS

if TYPE_CHECKING:
    import asyncio

# asyncio and anyio are imported where they are used: the container reaper imports
# this module for posix_spawn alone, and every container it forks copies its memory.

__all__ = ["SpawnError", "SpawnSpec", "posix_spawn", "posix_spawn_off_loop"]

log = logging.getLogger(__name__)

# Spawns in flight at once (each mostly waits for its child to exec).
_SPAWN_THREADS = 4

# glibc flag values (spawn.h).
_POSIX_SPAWN_SETSIGDEF = 0x04
_POSIX_SPAWN_SETSIGMASK = 0x08
_POSIX_SPAWN_SETSID = 0x80

# Opaque glibc structures: 80 and 336 bytes on x86_64 and aarch64; room to spare.
_FILE_ACTIONS_BYTES = 256
_ATTR_BYTES = 512
_SIGSET_BYTES = 128

# No O_CLOEXEC: when open() returns the target descriptor itself glibc does not dup2,
# so the flag would survive and close the stream at exec.
_STDIO_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND


class SpawnError(OSError):
    """posix_spawn failed (the errno of the failing step, exec included)."""


@dataclass(frozen=True)
class SpawnSpec:
    """A plain process: its own session, `cwd`, stdout/stderr appended to files."""

    executable: str
    argv: list[str]
    environment: dict[str, str]
    cwd: Path
    stdout_path: Path
    stderr_path: Path


class _Libc:
    """The few libc entry points we call, resolved once."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.posix_spawn = lib.posix_spawn
        self.file_actions_init = lib.posix_spawn_file_actions_init
        self.file_actions_destroy = lib.posix_spawn_file_actions_destroy
        self.add_open = lib.posix_spawn_file_actions_addopen
        self.add_chdir = lib.posix_spawn_file_actions_addchdir_np
        self.add_closefrom = lib.posix_spawn_file_actions_addclosefrom_np
        self.attr_init = lib.posix_spawnattr_init
        self.attr_destroy = lib.posix_spawnattr_destroy
        self.attr_setflags = lib.posix_spawnattr_setflags
        self.attr_setsigdefault = lib.posix_spawnattr_setsigdefault
        self.attr_setsigmask = lib.posix_spawnattr_setsigmask
        self.add_open.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_uint,
        ]
        self.add_chdir.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.attr_setflags.argtypes = [ctypes.c_void_p, ctypes.c_short]
        self.sigemptyset = lib.sigemptyset
        self.sigaddset = lib.sigaddset
        # What the agent ignores or handles must be default in the task.
        self.default_signals = ctypes.create_string_buffer(_SIGSET_BYTES)
        self.sigemptyset(self.default_signals)
        for number in TASK_DEFAULT_SIGNALS:
            self.sigaddset(self.default_signals, int(number))
        self.empty_mask = ctypes.create_string_buffer(_SIGSET_BYTES)
        self.sigemptyset(self.empty_mask)
        # The same for every spawn, and only read by posix_spawn: made once, kept.
        self.spawn_attributes = ctypes.create_string_buffer(_ATTR_BYTES)
        self.attr_init(self.spawn_attributes)
        self.attr_setflags(
            self.spawn_attributes,
            _POSIX_SPAWN_SETSID | _POSIX_SPAWN_SETSIGDEF | _POSIX_SPAWN_SETSIGMASK,
        )
        self.attr_setsigdefault(self.spawn_attributes, self.default_signals)
        self.attr_setsigmask(self.spawn_attributes, self.empty_mask)


_libc: _Libc | None = None


def _get_libc() -> _Libc:
    global _libc
    if _libc is None:
        _libc = _Libc()
    return _libc


def _c_strings(items: list[bytes]) -> ctypes.Array[ctypes.c_char_p]:
    array = (ctypes.c_char_p * (len(items) + 1))(*items)
    return array


class _Prepared:
    """One spawn's C arguments, built and freed on the caller's thread."""

    __slots__ = ("actions", "argv", "attributes", "envp", "executable", "pid")

    def __init__(self, spec: SpawnSpec) -> None:
        libc = _get_libc()
        self.actions = ctypes.create_string_buffer(_FILE_ACTIONS_BYTES)
        self.attributes = libc.spawn_attributes
        libc.file_actions_init(self.actions)
        try:
            # The sandbox paths are absolute: opened before the chdir, then chdir, then
            # stdin from /dev/null and every other descriptor closed.
            actions = self.actions
            libc.add_open(actions, 0, b"/dev/null", os.O_RDONLY, 0)
            libc.add_open(actions, 1, os.fsencode(spec.stdout_path), _STDIO_FLAGS, 0o644)
            libc.add_open(actions, 2, os.fsencode(spec.stderr_path), _STDIO_FLAGS, 0o644)
            libc.add_chdir(actions, os.fsencode(spec.cwd))
            libc.add_closefrom(actions, 3)
            self.argv = _c_strings([os.fsencode(arg) for arg in spec.argv])
            self.envp = _c_strings(
                [
                    f"{name}={value}".encode("utf-8", "surrogateescape")
                    for name, value in spec.environment.items()
                ]
            )
            self.executable = os.fsencode(spec.executable)
            self.pid = ctypes.c_int(0)
        except BaseException:
            self.free()
            raise

    def call(self) -> int:
        """The spawn itself (any thread): 0 or the error number."""
        return int(
            _get_libc().posix_spawn(
                ctypes.byref(self.pid),
                self.executable,
                self.actions,
                self.attributes,
                self.argv,
                self.envp,
            )
        )

    def free(self) -> None:
        libc = _get_libc()
        libc.file_actions_destroy(self.actions)


def _result(prepared: _Prepared, error: int, spec: SpawnSpec) -> int:
    if error != 0:
        raise SpawnError(error, f"{os.strerror(error)}: {spec.executable}")
    return prepared.pid.value


def posix_spawn(spec: SpawnSpec) -> int:
    """Start the process; returns its pid (once it has exec'd)."""
    prepared = _Prepared(spec)
    try:
        return _result(prepared, prepared.call(), spec)
    finally:
        prepared.free()


class _SpawnThreads:
    """A few daemon threads taking spawn calls from a queue; each answer goes back to
    the asking loop with call_soon_threadsafe. (Leaner than an executor: the workers
    hold the GIL for a handful of bytecodes per spawn.)"""

    def __init__(self, count: int) -> None:
        self._requests: queue.SimpleQueue[
            tuple[_Prepared, asyncio.AbstractEventLoop, asyncio.Future[int]]
        ] = queue.SimpleQueue()
        for index in range(count):
            threading.Thread(
                target=self._work, name=f"mesoslite-spawn-{index}", daemon=True
            ).start()

    def _work(self) -> None:
        while True:
            prepared, loop, future = self._requests.get()
            try:
                error = prepared.call()
            except BaseException as exception:  # ctypes argument errors: never expected
                error = errno.EINVAL
                log.error("posix_spawn call failed: %s", exception)
            # A closed loop raises RuntimeError: nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_answer, future, error)

    async def spawn(self, prepared: _Prepared) -> int:
        import asyncio

        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._requests.put((prepared, loop, future))
        return await future


def _answer(future: asyncio.Future[int], error: int) -> None:
    if not future.done():
        future.set_result(error)


_threads: _SpawnThreads | None = None


async def posix_spawn_off_loop(spec: SpawnSpec) -> int:
    """posix_spawn with the wait for the child's exec in a worker thread. Not
    cancellable: once the call is made the child exists, and its pid must reach the
    caller (who reaps it)."""
    import anyio

    global _threads
    if _threads is None:
        _threads = _SpawnThreads(_SPAWN_THREADS)
    prepared = _Prepared(spec)
    try:
        with anyio.CancelScope(shield=True):
            error = await _threads.spawn(prepared)
        return _result(prepared, error, spec)
    finally:
        prepared.free()
