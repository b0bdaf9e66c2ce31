"""Running a node in the foreground or detached, shared by `up`, `master` and `agent`."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import click

from mesoslite.cli.common import CliError, read_running_pid
from mesoslite.config import log_file, pid_file

__all__ = [
    "NodeFactory",
    "ReadyPrinter",
    "configure_logging",
    "detach",
    "ephemeral_data_dir",
    "run_foreground",
    "self_command",
]

# Builds the node for a data directory (import-heavy: called only when running).
NodeFactory = Callable[[Path], "object"]
# Prints the banner once the node is ready: (addresses, seconds since start).
ReadyPrinter = Callable[[dict[str, str | None], float], None]


def self_command() -> list[str]:
    """How to start this same program again (frozen binary or `python -m`)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "mesoslite"]


@contextlib.contextmanager
def ephemeral_data_dir(enabled: bool, data_dir: Path) -> Iterator[Path]:
    """`--ephemeral`: a temporary data directory that is removed on exit."""
    if not enabled:
        yield data_dir
        return
    path = Path(tempfile.mkdtemp(prefix="mesoslite-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_pid_file(data_dir: Path, addresses: dict[str, str | None]) -> None:
    lines = [str(os.getpid())]
    lines += [f"{role} {address}" for role, address in addresses.items() if address]
    tmp = pid_file(data_dir).with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(pid_file(data_dir))


def read_addresses(data_dir: Path) -> dict[str, str]:
    """Addresses a running node recorded in its pid file."""
    try:
        lines = pid_file(data_dir).read_text().splitlines()[1:]
    except OSError:
        return {}
    pairs = (line.split(" ", 1) for line in lines if " " in line)
    return {role: address for role, address in pairs}


_DETACHED = "MESOSLITE_DETACHED"


def configure_logging(data_dir: Path) -> None:
    """Every node logs to `<data-dir>/mesoslite.log` (served as /master/log and
    /slave/log); in the foreground, warnings also reach the console."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if os.environ.get(_DETACHED) == "1":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)  # is the log file
    else:
        handler = logging.FileHandler(log_file(data_dir))
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(formatter)
        root.addHandler(console)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    # Access logs and uvicorn's own chatter stay out of the way.
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def run_foreground(
    build_node: Callable[[Path], object],
    data_dir: Path,
    on_ready: ReadyPrinter,
    *,
    sigterm_keeps_tasks: bool = True,
) -> None:
    """Run the node until SIGINT or SIGTERM. SIGINT (Ctrl-C, `mesoslite down`) stops
    every task it started on the way out. SIGTERM (service managers, upgrades, `down
    --keep-tasks`) stops the process only: tasks of checkpointing frameworks keep
    running for the next start to take over, unless `sigterm_keeps_tasks` is off (a
    data directory that will not outlive the process)."""
    from mesoslite.agent.recovery import RecoveryError
    from mesoslite.node import BindError, Node, NodeAddresses

    started_at = time.monotonic()
    running = read_running_pid(data_dir)
    if running is not None and running != os.getpid():
        raise CliError(
            f"a mesoslite node (pid {running}) already runs from {data_dir}; "
            "stop it with `mesoslite down` or pick another --data-dir"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(data_dir)
    node = build_node(data_dir)
    assert isinstance(node, Node)
    try:
        node.bind()
    except BindError as exc:
        raise CliError(str(exc)) from None

    async def main() -> None:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for received in signals:
                        node.keep_tasks_on_stop = received == signal.SIGTERM and sigterm_keeps_tasks
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(stop_on_signal)
            addresses: NodeAddresses = await tg.start(node.run)
            # What starting made (modules, descriptors, the node) lives as long as the
            # process: out of the collector's way, a full collection scans only what
            # came later (measured: 40 ms pauses of the loop under a task burst, <5 ms
            # after).
            gc.freeze()
            recorded = {
                "master": addresses.master,
                "agent": addresses.agent,
                "peer": addresses.peer,
            }
            _write_pid_file(data_dir, recorded)
            # The join token is shown once, never written to the pid file.
            on_ready(
                {**recorded, "join_token": addresses.join_token}, time.monotonic() - started_at
            )

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        pass
    except BaseException as error:
        refusal = _find(error, RecoveryError)
        if refusal is None:
            raise
        raise CliError(str(refusal)) from None
    finally:
        with contextlib.suppress(OSError):
            if read_running_pid(data_dir) in (os.getpid(), None):
                pid_file(data_dir).unlink()


def _find(error: BaseException, kind: type[Exception]) -> Exception | None:
    """`error` itself or, in a task group's exception group, the first `kind` inside."""
    if isinstance(error, kind):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    return None


def _started_by(pid: int | None, launched_pid: int) -> bool:
    """Whether `pid` is the process we launched or its child: a one-file binary runs
    its Python process as a child of its bootloader."""
    if pid is None:
        return False
    if pid == launched_pid:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == launched_pid


def detach(argv: list[str], data_dir: Path, ready_timeout_s: float = 60.0) -> dict[str, str]:
    """Start this command again in the background (own session, log in the data dir) and
    wait until it is ready. Returns the addresses it recorded."""
    running = read_running_pid(data_dir)
    if running is not None:
        raise CliError(
            f"a mesoslite node (pid {running}) already runs from {data_dir}; "
            "stop it with `mesoslite down`"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        pid_file(data_dir).unlink()
    log_path = log_file(data_dir)
    with open(log_path, "ab") as log_out:
        child = subprocess.Popen(
            [*self_command(), *argv],
            # Its standard streams already go to the log file: it must not open it again.
            env={**os.environ, _DETACHED: "1"},
            stdin=subprocess.DEVNULL,
            stdout=log_out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            detail = ("; ".join(tail)) if tail else f"exit status {child.returncode}"
            raise CliError(f"mesoslite failed to start: {detail} (log: {log_path})")
        if _started_by(read_running_pid(data_dir), child.pid):
            return read_addresses(data_dir)
        time.sleep(0.02)
    child.terminate()
    raise CliError(
        f"mesoslite did not become ready within {ready_timeout_s:.0f} s (log: {log_path})"
    )


def echo_err(message: str) -> None:
    click.echo(message, err=True)
