"""Three-member etcd and ZooKeeper clusters on 127.0.0.1 (temporary data directories),
for the failover and registry-write comparisons. Each offers the same small interface:
`start()`, `write(client_index)` (one durable write), `leader()`, `kill_leader()`,
`restart_killed()`, `close()`."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

__all__ = ["EtcdCluster", "ZooKeeperCluster", "free_ports"]

_JARS = Path("/usr/share/java")
_ZK_CLASSPATH = [
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "slf4j-log4j12.jar",
    "log4j-1.2.jar",
    "netty-all.jar",
    "metrics-core.jar",
    "snappy-java.jar",
    "commons-cli.jar",
]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _wait(condition: Any, guard_s: float = 60.0) -> None:
    deadline = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("peer cluster did not get ready")
        time.sleep(0.02)


class _Processes:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mesoslite-bench-peer-"))
        self.processes: list[subprocess.Popen[bytes] | None] = [None, None, None]
        self.commands: list[list[str]] = [[], [], []]
        self.killed: int | None = None

    def spawn(self, index: int) -> None:
        log = open(self.root / f"member{index}.log", "ab")  # noqa: SIM115 - kept by the child
        self.processes[index] = subprocess.Popen(
            self.commands[index], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.killed = index

    def restart_killed(self) -> None:
        if self.killed is not None:
            self.spawn(self.killed)
            self.killed = None

    def close(self) -> None:
        for index in range(3):
            self.kill(index)
        shutil.rmtree(self.root, ignore_errors=True)


class EtcdCluster(_Processes):
    """etcd 3.4 (Debian's etcd-server); `heartbeat_ms`/`election_ms` None: defaults."""

    def __init__(self, heartbeat_ms: int | None = None, election_ms: int | None = None) -> None:
        super().__init__()
        ports = free_ports(6)
        self.client_ports = ports[:3]
        peer_ports = ports[3:]
        initial = ",".join(f"e{i}=http://127.0.0.1:{peer_ports[i]}" for i in range(3))
        for i in range(3):
            command = [
                "etcd", "--name", f"e{i}", "--data-dir", str(self.root / f"e{i}"),
                "--listen-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer_ports[i]}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_ports[i]}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--log-level", "error",
            ]  # fmt: skip
            if heartbeat_ms is not None and election_ms is not None:
                command += ["--heartbeat-interval", str(heartbeat_ms)]
                command += ["--election-timeout", str(election_ms)]
            self.commands[i] = command
        self.http = httpx.Client(timeout=2.0)

    def start(self) -> None:
        for i in range(3):
            self.spawn(i)
        _wait(lambda: self.leader() is not None)

    def _status(self, index: int) -> dict[str, Any] | None:
        try:
            response = self.http.post(
                f"http://127.0.0.1:{self.client_ports[index]}/v3/maintenance/status", json={}
            )
            status: dict[str, Any] = response.json()
            return status
        except (httpx.HTTPError, ValueError):
            return None

    def leader(self) -> int | None:
        for index in range(3):
            status = self._status(index)
            if (
                status
                and status.get("leader")
                and status["leader"] == status["header"].get("member_id")
            ):
                return index
        return None

    def put_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.client_ports[index]}/v3/kv/put"

    @staticmethod
    def put_body(key: str, value: bytes) -> dict[str, str]:
        return {
            "key": base64.b64encode(key.encode()).decode(),
            "value": base64.b64encode(value).decode(),
        }

    def write_once(self, index: int, key: str, value: bytes, timeout_s: float = 0.5) -> bool:
        try:
            response = self.http.post(
                self.put_url(index), json=self.put_body(key, value), timeout=timeout_s
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and "error" not in response.text

    def close(self) -> None:
        self.http.close()
        super().close()


class ZooKeeperCluster(_Processes):
    """ZooKeeper 3.8 (Debian's zookeeper); `tick_ms` None: the sample config's 2000."""

    def __init__(self, tick_ms: int | None = None) -> None:
        super().__init__()
        ports = free_ports(9)
        self.client_ports = ports[:3]
        classpath = ":".join(str(_JARS / jar) for jar in _ZK_CLASSPATH)
        tick = tick_ms if tick_ms is not None else 2000
        servers = "\n".join(
            f"server.{i + 1}=127.0.0.1:{ports[3 + i]}:{ports[6 + i]}" for i in range(3)
        )
        for i in range(3):
            data = self.root / f"z{i}"
            data.mkdir()
            (data / "myid").write_text(f"{i + 1}\n")
            config = data / "zoo.cfg"
            config.write_text(
                f"tickTime={tick}\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
                f"clientPort={self.client_ports[i]}\nclientPortAddress=127.0.0.1\n"
                f"admin.enableServer=false\n4lw.commands.whitelist=srvr\n{servers}\n"
            )
            self.commands[i] = [
                "java", "-Xmx256m", "-cp", classpath,
                "-Dzookeeper.log.dir=" + str(data), "-Dlog4j.configuration=file:/dev/null",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(config),
            ]  # fmt: skip

    def start(self) -> None:
        for i in range(3):
            self.spawn(i)
        _wait(lambda: self.leader() is not None, guard_s=120)

    def mode(self, index: int) -> str | None:
        try:
            with socket.create_connection(("127.0.0.1", self.client_ports[index]), 0.5) as sock:
                sock.sendall(b"srvr")
                sock.settimeout(0.5)
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
        except OSError:
            return None
        match = re.search(rb"Mode: (\w+)", data)
        return match[1].decode() if match else None

    def leader(self) -> int | None:
        for index in range(3):
            if self.mode(index) == "leader":
                return index
        return None

    def hosts(self, indexes: list[int]) -> str:
        return ",".join(f"127.0.0.1:{self.client_ports[i]}" for i in indexes)
