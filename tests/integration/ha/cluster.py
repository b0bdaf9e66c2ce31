"""Real `mesoslite` processes forming an HA cluster, for fault tests and benchmarks.

Masters are `mesoslite master` (the first founds the cluster) and `mesoslite join
--master`; agents are `mesoslite join --agent`; a killed node restarts with `mesoslite
up --data-dir` alone. A node may run inside a network namespace (`netns`), with `ip`
its address there. Every process is stopped by `close()`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HaCluster", "NodeProcess", "free_port_base", "leader_address"]

_REPO = Path(__file__).resolve().parents[3]
_TOKEN = re.compile(r"--token (K10\S+)")


def free_port_base() -> int:
    """A base port such that base .. base+9 and base+1000 .. base+1009 are free now,
    below the kernel's ephemeral range: outgoing connections take their local ports
    from that range, so a base drawn from it was often taken (by a node's own peer
    connections) before the last node listened ("Address already in use")."""
    import random
    import socket

    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            ephemeral_low = int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    draw = random.SystemRandom()
    while True:
        base = draw.randrange(10000, max(10010, ephemeral_low - 1010), 10)
        try:
            for port in [*range(base, base + 10), *range(base + 1000, base + 1010)]:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base


@dataclass
class NodeProcess:
    name: str
    data_dir: Path
    ip: str
    port: int  # master port (0 for an agent-only node)
    agent_port: int = 0
    netns: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.name}.log"

    @property
    def master_address(self) -> str:
        return f"{self.ip}:{self.port}"

    def start(self, args: list[str]) -> None:
        command = [sys.executable, "-m", "mesoslite", *args]
        if self.netns is not None:
            command = ["ip", "netns", "exec", self.netns, *command]
        env = dict(os.environ, PYTHONPATH=str(_REPO))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing gets to clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # As Ctrl-C: the node stops its tasks too (SIGTERM would leave the tasks of
        # checkpointing frameworks running for a restart to take over).
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def http_json(url: str, timeout_s: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


def leader_address(status: dict[str, Any]) -> str | None:
    for member in status.get("members", []):
        if member.get("leader"):
            return str(member["master_address"])
    return None


class HaCluster:
    def __init__(
        self, root: Path, ips: list[str], *, base_port: int, netns: Sequence[str | None]
    ) -> None:
        self.root = root
        self.masters = [
            NodeProcess(f"master{i}", root / f"master{i}", ip, base_port + i, netns=ns)
            for i, (ip, ns) in enumerate(zip(ips, netns, strict=True))
        ]
        self.agents: list[NodeProcess] = []
        self.token = ""
        self._base_port = base_port

    # ---------------------------------------------------------------- formation

    def start(self, *, agent_ip: str | None = None, agent_netns: str | None = None) -> None:
        first = self.masters[0]
        first.start(
            [
                "master",
                "--ip",
                first.ip,
                "--port",
                str(first.port),
                "--data-dir",
                str(first.data_dir),
            ]
        )
        self.token = self._wait_for_token(first)
        for node in self.masters[1:]:
            node.start(
                [
                    "join",
                    first.master_address,
                    "--token",
                    self.token,
                    "--master",
                    "--ip",
                    node.ip,
                    "--port",
                    str(node.port),
                    "--data-dir",
                    str(node.data_dir),
                ]
            )
            self.wait_until(lambda n=node: self._is_voter(n), f"{node.name} to become a voter")
        if agent_ip is not None:
            agent = NodeProcess(
                "agent0",
                self.root / "agent0",
                agent_ip,
                0,
                agent_port=self._base_port + 9,
                netns=agent_netns,
            )
            agent.start(
                [
                    "join",
                    first.master_address,
                    "--token",
                    self.token,
                    "--agent",
                    "--ip",
                    agent.ip,
                    "--agent-port",
                    str(agent.agent_port),
                    "--data-dir",
                    str(agent.data_dir),
                    "--isolation",
                    "posix/cpu,posix/mem",
                    "--resources",
                    "cpus:8;mem:8192",
                ]
            )
            self.agents.append(agent)
            self.wait_until(lambda: self.admitted_agents() >= 1, "the agent to register")

    def _wait_for_token(self, node: NodeProcess) -> str:
        found: list[str] = []

        def token_printed() -> bool:
            match = _TOKEN.search(node.log())
            if match:
                found.append(match[1])
            return bool(match)

        self.wait_until(token_printed, f"{node.name} to print its join token")
        return found[0]

    def _is_voter(self, node: NodeProcess) -> bool:
        status = self.status()
        return status is not None and any(
            m["master_address"] == node.master_address and m["role"] == "voter"
            for m in status["members"]
        )

    # ---------------------------------------------------------------- observation

    def status(self, node: NodeProcess | None = None) -> dict[str, Any] | None:
        """The leader's status if one is known (from `node`'s view when given)."""
        nodes = [node] if node is not None else self.masters
        for candidate in nodes:
            try:
                status: dict[str, Any] = http_json(
                    f"http://{candidate.master_address}/master/internal/cluster/status"
                )
            except (OSError, urllib.error.URLError, ValueError):
                continue
            if node is not None or status.get("leader_id"):
                return status
        return None

    def leader(self) -> NodeProcess | None:
        status = self.status()
        address = leader_address(status) if status else None
        return next((n for n in self.masters if n.master_address == address), None)

    def admitted_agents(self) -> int:
        status = self.status()
        return int(status["agents"]["admitted"]) if status else 0

    def healed(self) -> bool:
        """Every master is up, knows the same leader and all three voters, and has
        applied at least what the leader had applied a moment before (with writes going
        on, indexes read one after another are never all equal)."""
        views = [self.status(node) for node in self.masters]
        if any(view is None for view in views):
            return False
        leaders = {view["leader_id"] for view in views if view}
        voters = {
            len([m for m in view["members"] if m["role"] == "voter"]) for view in views if view
        }
        if len(leaders) != 1 or 0 in leaders or voters != {3}:
            return False
        address = leader_address(views[0]) if views[0] else None
        leader = next((n for n in self.masters if n.master_address == address), None)
        leader_view = self.status(leader) if leader is not None else None
        if leader_view is None:
            return False
        target = int(leader_view["applied_index"])
        for node in self.masters:
            view = self.status(node)
            if view is None or int(view["applied_index"]) < target:
                return False
        return True

    def wait_until(self, condition: Any, what: str, guard_s: float = 60.0) -> None:
        """Poll until `condition()`; the guard only stops a hung test (not a timing
        assertion), and the failure shows the nodes' logs."""
        deadline = time.monotonic() + guard_s
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.name}\n{n.log()[-3000:]}" for n in self.nodes())
                raise AssertionError(f"gave up waiting for {what}\n{logs}")
            time.sleep(0.05)

    def nodes(self) -> list[NodeProcess]:
        return [*self.masters, *self.agents]

    # ---------------------------------------------------------------- faults

    def restart(self, node: NodeProcess) -> None:
        node.start(["up", "--data-dir", str(node.data_dir)])

    def close(self) -> None:
        for node in reversed(self.nodes()):
            node.stop()
