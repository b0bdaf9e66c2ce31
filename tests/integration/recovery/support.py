"""What the recovery tests share: `mesoslite up` / `mesoslite agent` / `mesoslite
master` as real processes started the way a user starts them, a synchronous v1 HTTP
scheduler, and the leak check every test ends with.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mesoslite.agent.config import AgentConfig
from mesoslite.node import cgroups_root_name
from mesoslite.runtime.cgroups.layout import DEFAULT_CGROUP_ROOT
from mesoslite.wire.recordio import RecordIODecoder
from tests.support.ports import free_port

__all__ = [
    "MESOSLITE",
    "PATIENCE_S",
    "Node",
    "Scheduler",
    "agent_state",
    "command_task",
    "executor_pids",
    "free_port",
    "kill_leftovers",
    "leftovers",
    "live_executor_ids",
    "master_slaves",
    "no_leftovers",
    "sandbox",
    "up_node",
    "wait_for_no_leftovers",
    "wait_until",
]

MESOSLITE = [sys.executable, "-m", "mesoslite"]
# A generous bound for things that normally take milliseconds (a slow CI machine).
PATIENCE_S = 60.0

Event = dict[str, Any]


def wait_until(condition: Callable[[], object], what: str, limit_s: float = PATIENCE_S) -> Any:
    """Poll until `condition()` is truthy and return it (a bound, not an assertion)."""
    deadline = time.monotonic() + limit_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit_s:.0f} s")
        time.sleep(0.02)


# ---------------------------------------------------------------------------- nodes


@dataclass
class Node:
    """One `mesoslite` process (up, agent or master) and how it was started."""

    arguments: list[str]
    data_dir: Path
    log_path: Path
    master: str | None = None
    agent: str | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, *extra: str, ready: str = "started") -> None:
        """Start (or restart) it; returns once it says it is up (its banner)."""
        assert self.process is None or self.process.poll() is not None
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n----- start {self.starts} -----\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*MESOSLITE, *self.arguments, *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: signals to the test runner's group do not reach it.
                start_new_session=True,
            )
        marker = f"----- start {self.starts} -----"
        wait_until(
            lambda: self._started_since(marker),
            f"start {self.starts} of `mesoslite {' '.join(self.arguments)}`",
        )

    def _started_since(self, marker: str) -> bool:
        assert self.process is not None
        text = self.log().rpartition(marker)[2]
        if self.process.poll() is not None:
            raise AssertionError(f"mesoslite exited with {self.process.returncode}:\n{text}")
        return " is up" in text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill_hard(self) -> None:
        """kill -9: nothing of it runs any more, nothing was cleaned up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self, sig: int = signal.SIGINT, limit_s: float = PATIENCE_S) -> int:
        """Stop it with `sig` (SIGINT: as Ctrl-C) and return its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(limit_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"mesoslite did not stop on signal {sig}") from None
        return self.process.returncode

    def ensure_stopped(self) -> None:
        """Cleanup path: stop it as Ctrl-C does (its tasks too), kill it if it hangs."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(AssertionError):
                self.stop(signal.SIGINT)


def up_node(tmp_path: Path, *extra: str, name: str = "node") -> Node:
    """`mesoslite up` on free ports in its own data directory (not started yet)."""
    master_port, agent_port = free_port(), free_port()
    data_dir = tmp_path / name
    arguments = [
        "up",
        "--data-dir",
        str(data_dir),
        "--port",
        str(master_port),
        "--agent-port",
        str(agent_port),
        "--peer-port",
        str(free_port()),
        *extra,
    ]
    return Node(
        arguments,
        data_dir,
        tmp_path / f"{name}.log",
        master=f"127.0.0.1:{master_port}",
        agent=f"127.0.0.1:{agent_port}",
    )


# ---------------------------------------------------------------------------- scheduler


@dataclass
class Scheduler:
    """A framework speaking the v1 scheduler API over HTTP (JSON), synchronously. A
    thread reads the event stream: every task status is recorded (`statuses`) and, when
    it carries a uuid, acknowledged at once (as pymesos does); offers are declined
    unless the test asks for one (`offer`), so that other frameworks get them; other
    events queue up."""

    master: str
    framework_info: dict[str, Any]
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    statuses: list[Event] = field(default_factory=list)
    stream_id: str | None = None
    framework_id: str | None = None
    _reader: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _response: httpx.Response | None = None
    # Until the test has taken an offer; guarded so that a DECLINE never lands after
    # the REVIVE of the next `offer()` (it would filter that agent for an hour).
    _wants_offers: bool = True
    _offers_lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self) -> str:
        """SUBSCRIBE (with the framework id once it has one: a re-subscription)."""
        self.disconnect()
        self._stop = threading.Event()
        self.events = queue.Queue()  # offers of an earlier subscription are void
        info = dict(self.framework_info)
        body: dict[str, Any] = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if self.framework_id is not None:
            info["id"] = {"value": self.framework_id}
            body["framework_id"] = {"value": self.framework_id}
        subscribed = threading.Event()
        failure: list[str] = []
        stop = self._stop

        def read() -> None:
            try:
                with (
                    httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client,
                    client.stream(
                        "POST",
                        f"http://{self.master}/api/v1/scheduler",
                        json=body,
                        headers={"Accept": "application/json"},
                    ) as response,
                ):
                    if response.status_code != 200:
                        failure.append(f"HTTP {response.status_code}: {response.read()!r}")
                        return
                    self._response = response
                    self.stream_id = response.headers["Mesos-Stream-Id"]
                    decoder = RecordIODecoder()
                    for chunk in response.iter_raw():
                        for record in decoder.feed(chunk):
                            self._handle(json.loads(record), subscribed)
                        if stop.is_set():
                            return
            except Exception as error:  # the stream ends with the master, or a disconnect
                if not stop.is_set() and not subscribed.is_set():
                    failure.append(repr(error))
            finally:
                subscribed.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not subscribed.wait(PATIENCE_S) or failure or self.stream_id is None:
            raise AssertionError(f"SUBSCRIBE failed: {failure}")
        assert self.framework_id is not None
        return self.framework_id

    def _handle(self, event: Event, subscribed: threading.Event) -> None:
        if event["type"] == "SUBSCRIBED":
            self.framework_id = event["subscribed"]["framework_id"]["value"]
            subscribed.set()
        elif event["type"] == "UPDATE":
            status = event["update"]["status"]
            self.statuses.append(status)
            if "uuid" in status:
                self.acknowledge(status)
            return
        if event["type"] == "OFFERS":
            with self._offers_lock:
                if not self._wants_offers:
                    self._decline([offer["id"] for offer in event["offers"]["offers"]])
                    return
        self.events.put(event)

    def _decline(self, offer_ids: list[Event]) -> None:
        with contextlib.suppress(AssertionError, httpx.HTTPError):
            self.call(
                {
                    "type": "DECLINE",
                    "decline": {"offer_ids": offer_ids, "filters": {"refuse_seconds": 3600}},
                }
            )

    def disconnect(self) -> None:
        self._stop.set()
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
            self._response = None
        if self._reader is not None:
            self._reader.join(10)
            self._reader = None
        self.stream_id = None

    def call(self, call: dict[str, Any]) -> None:
        assert self.framework_id is not None and self.stream_id is not None
        call = {"framework_id": {"value": self.framework_id}, **call}
        response = httpx.post(
            f"http://{self.master}/api/v1/scheduler",
            json=call,
            headers={"Mesos-Stream-Id": self.stream_id},
            timeout=10,
        )
        assert response.status_code == 202, (response.status_code, response.text)

    def next_event(self, kind: str, limit_s: float = PATIENCE_S) -> Event:
        """The next event of `kind` (others are dropped)."""
        deadline = time.monotonic() + limit_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} event within {limit_s:.0f} s")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event["type"] == kind:
                return event

    def offer(self, agent_id: str | None = None) -> Event:
        """An offer (from that agent); offers of other agents are declined."""
        with self._offers_lock:
            if not self._wants_offers:
                self._wants_offers = True
                self.call({"type": "REVIVE"})
        while True:
            offers = self.next_event("OFFERS")["offers"]["offers"]
            chosen = next(
                (o for o in offers if agent_id is None or o["agent_id"]["value"] == agent_id),
                None,
            )
            self._decline([o["id"] for o in offers if o is not chosen])
            if chosen is not None:
                with self._offers_lock:
                    self._wants_offers = False
                return chosen  # type: ignore[no-any-return]

    def launch(self, offer: Event, tasks: list[dict[str, Any]]) -> None:
        self.accept(offer, [{"type": "LAUNCH", "launch": {"task_infos": tasks}}], tasks)

    def launch_group(
        self, offer: Event, executor: dict[str, Any], tasks: list[dict[str, Any]]
    ) -> None:
        operation = {
            "type": "LAUNCH_GROUP",
            "launch_group": {"executor": executor, "task_group": {"tasks": tasks}},
        }
        executor["framework_id"] = {"value": self.framework_id}
        self.accept(offer, [operation], tasks)

    def accept(
        self, offer: Event, operations: list[dict[str, Any]], tasks: list[dict[str, Any]]
    ) -> None:
        for task in tasks:
            task["agent_id"] = offer["agent_id"]
        self.call(
            {
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [offer["id"]],
                    "operations": operations,
                    "filters": {"refuse_seconds": 0.1},
                },
            }
        )

    def acknowledge(self, status: Event) -> None:
        with contextlib.suppress(AssertionError, httpx.HTTPError):
            # Through a master that is going away: the agent resends it, we ack again.
            self.call(
                {
                    "type": "ACKNOWLEDGE",
                    "acknowledge": {
                        "agent_id": status["agent_id"],
                        "task_id": status["task_id"],
                        "uuid": status["uuid"],
                    },
                }
            )

    def message(self, agent_id: str, executor_id: str, data: bytes) -> None:
        self.call(
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": agent_id},
                    "executor_id": {"value": executor_id},
                    "data": base64.b64encode(data).decode(),
                },
            }
        )

    def history(self, task_id: str) -> list[str]:
        """The states of the task's updates, each update once (a resent update has
        the same uuid as the first delivery)."""
        seen: set[str] = set()
        states = []
        for status in list(self.statuses):
            uuid = status.get("uuid")
            if status["task_id"]["value"] != task_id or uuid is None or uuid in seen:
                continue
            seen.add(uuid)
            states.append(status["state"])
        return states

    def wait_for_state(self, task_id: str, state: str, limit_s: float = PATIENCE_S) -> Event:
        """The task's first update to `state` (already received, or the next one), not
        counting answers to reconciliation."""

        def found() -> Event | None:
            for status in list(self.statuses):
                if (
                    status["task_id"]["value"] == task_id
                    and status["state"] == state
                    and status.get("reason") != "REASON_RECONCILIATION"
                ):
                    return status
            return None

        return wait_until(found, f"{state} of task {task_id}", limit_s)  # type: ignore[no-any-return]

    def reconcile(self, task_ids: list[str]) -> dict[str, str]:
        """Explicit reconciliation: each task's state as the master answers it."""
        start = len(self.statuses)
        self.call(
            {
                "type": "RECONCILE",
                "reconcile": {"tasks": [{"task_id": {"value": t}} for t in task_ids]},
            }
        )

        def answers() -> dict[str, str] | None:
            states = {
                status["task_id"]["value"]: status["state"]
                for status in self.statuses[start:]
                if "uuid" not in status and status["task_id"]["value"] in task_ids
            }
            return states if len(states) == len(task_ids) else None

        return wait_until(answers, f"reconciliation of {task_ids}")  # type: ignore[no-any-return]


def command_task(
    task_id: str, command: str, *, cpus: float = 0.1, mem: float = 16
) -> dict[str, Any]:
    return {
        "task_id": {"value": task_id},
        "name": task_id,
        "command": {"value": command},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ],
    }


def executor_pids(data_dir: Path, executor_id: str) -> set[int]:
    """Live processes working in the executor's sandbox (a command task's executor id
    is its task id)."""
    marker = os.fsencode(f"/executors/{executor_id}/runs/")
    prefix = os.fsencode(data_dir)
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if not stat or stat[stat.rindex(b")") + 2 :][:1] in (b"Z", b"X"):
            continue
        try:
            cwd = os.fsencode(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd.startswith(prefix) and marker in cwd:
            pids.add(int(entry.name))
    return pids


def sandbox(data_dir: Path, executor_id: str) -> Path:
    """The executor's latest sandbox (`runs/latest`)."""
    [found] = data_dir.glob(f"agent/slaves/*/frameworks/*/executors/{executor_id}/runs/latest")
    return found.resolve()


def agent_state(agent: str) -> dict[str, Any]:
    return httpx.get(f"http://{agent}/state", timeout=10).json()  # type: ignore[no-any-return]


def live_executor_ids(agent: str) -> set[str]:
    """Executors the agent runs (not completed ones)."""
    return {
        executor["id"]
        for framework in agent_state(agent)["frameworks"]
        for executor in framework["executors"]
    }


def master_slaves(master: str) -> list[dict[str, Any]]:
    response = httpx.get(f"http://{master}/master/slaves", timeout=10)
    return response.json()["slaves"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- leaks


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _processes_of(data_dir: Path, cgroup_name: str) -> list[str]:
    """Processes whose command line, environment, working directory or cgroup leads to
    the data directory (the node, its reaper, tasks, executors)."""
    needle = os.fsencode(data_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        stat = _read(entry / "stat")
        if not stat or stat[stat.rindex(b")") + 2 :][:1] in (b"Z", b"X"):
            continue  # gone, or a zombie waiting for a parent that is not ours
        try:
            cwd = os.fsencode(os.readlink(entry / "cwd"))
        except OSError:
            cwd = b""
        reasons = [
            name
            for name, text in (
                ("cmdline", _read(entry / "cmdline")),
                ("environ", _read(entry / "environ")),
                ("cwd", cwd),
            )
            if needle in text
        ]
        if cgroup_name.encode() in _read(entry / "cgroup"):
            reasons.append("cgroup")
        if reasons:
            command = _read(entry / "cmdline").replace(b"\0", b" ").decode(errors="replace")
            found.append(f"process {entry.name} ({'/'.join(reasons)}): {command[:120]}")
    return found


def _cgroups_of(cgroup_name: str) -> list[str]:
    found = []
    root = DEFAULT_CGROUP_ROOT
    hierarchies = [root] if (root / "cgroup.controllers").exists() else []
    with contextlib.suppress(OSError):
        hierarchies += [path for path in root.iterdir() if path.is_dir()]
    for hierarchy in hierarchies:
        candidate = hierarchy / cgroup_name
        if candidate.exists():
            found.append(f"cgroup {candidate}")
    return found


def _mounts_under(data_dir: Path) -> list[str]:
    prefix = str(data_dir.resolve())
    found = []
    for line in _read(Path("/proc/self/mountinfo")).decode(errors="replace").splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point == prefix or mount_point.startswith(prefix + "/"):
            found.append(f"mount {mount_point}")
    return found


def leftovers(data_dir: Path) -> list[str]:
    """Everything of ours still around for this data directory: processes, the agent's
    cgroups, mounts. Empty once a node and all it started are gone."""
    cgroup_name = cgroups_root_name(AgentConfig(work_dir=data_dir / "agent"))
    return _processes_of(data_dir, cgroup_name) + _cgroups_of(cgroup_name) + _mounts_under(data_dir)


def wait_for_no_leftovers(data_dir: Path) -> None:
    """Things end asynchronously (a killed process is reaped a moment later)."""
    deadline = time.monotonic() + 10
    while (remaining := leftovers(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert remaining == [], "\n".join(remaining)


def kill_leftovers(data_dir: Path) -> None:
    """Last resort of a failed test: SIGKILL whatever of ours still runs, remove the
    agent's cgroups."""
    cgroup_name = cgroups_root_name(AgentConfig(work_dir=data_dir / "agent"))
    for line in _processes_of(data_dir, cgroup_name):
        pid = int(line.split()[1])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    for line in _cgroups_of(cgroup_name):
        root = Path(line.split(" ", 1)[1])
        for directory, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(directory)


@contextlib.contextmanager
def no_leftovers(*data_dirs: Path) -> Iterator[None]:
    """Around a test: at the end nothing of it may remain. Whatever does fails the test
    and is killed, so that one failure does not spill into the next test (when the
    test failed already, its own failure is the one reported)."""
    try:
        yield
    except BaseException as failure:
        for data_dir in data_dirs:
            remaining = leftovers(data_dir)
            if remaining:
                failure.add_note("left behind:\n" + "\n".join(remaining))
                kill_leftovers(data_dir)
        raise
    failures = []
    for data_dir in data_dirs:
        try:
            wait_for_no_leftovers(data_dir)
        except AssertionError as error:
            failures.append(str(error))
            kill_leftovers(data_dir)
    if failures:
        raise AssertionError("left behind:\n" + "\n".join(failures))
