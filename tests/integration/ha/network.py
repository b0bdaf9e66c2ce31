"""A private test network: one namespace per node, joined by a bridge in a namespace of
its own, plus one link into the test's namespace so that the test can reach the nodes.
Addresses are from a private /24 that exists only on this bridge. `isolate` cuts a node
off (its bridge port goes down); `close` removes every namespace and link, also after
a failure."""

from __future__ import annotations

import secrets
import subprocess

__all__ = ["BridgeNetwork"]


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "-n", netns, *args]
    subprocess.run(command, check=True, capture_output=True)


class BridgeNetwork:
    def __init__(self, nodes: int) -> None:
        tag = secrets.token_hex(2)
        self.subnet = f"10.213.{int(tag, 16) % 200 + 20}"
        self.bridge_ns = f"mlha-{tag}-br"
        self.node_ns = [f"mlha-{tag}-n{i}" for i in range(nodes)]
        self.node_ips = [f"{self.subnet}.{i + 1}" for i in range(nodes)]
        self.host_ip = f"{self.subnet}.254"
        self._tag = tag
        self._host_link = f"mlh{tag}h"
        self._created: list[str] = []

    def _port(self, index: int) -> str:
        return f"mlh{self._tag}b{index}"

    def create(self) -> None:
        _ip("netns", "add", self.bridge_ns)
        self._created.append(self.bridge_ns)
        _ip("link", "add", "br0", "type", "bridge", netns=self.bridge_ns)
        _ip("link", "set", "br0", "up", netns=self.bridge_ns)
        for index, (namespace, address) in enumerate(zip(self.node_ns, self.node_ips, strict=True)):
            _ip("netns", "add", namespace)
            self._created.append(namespace)
            _ip("link", "set", "lo", "up", netns=namespace)
            port = self._port(index)
            _ip(
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                namespace,
                netns=self.bridge_ns,
            )
            _ip("link", "set", port, "master", "br0", "up", netns=self.bridge_ns)
            _ip("addr", "add", f"{address}/24", "dev", "eth0", netns=namespace)
            _ip("link", "set", "eth0", "up", netns=namespace)
        _ip(
            "link",
            "add",
            self._host_link,
            "type",
            "veth",
            "peer",
            "name",
            "host",
            "netns",
            self.bridge_ns,
        )
        _ip("link", "set", "host", "master", "br0", "up", netns=self.bridge_ns)
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self._host_link)
        _ip("link", "set", self._host_link, "up")

    def isolate(self, index: int) -> None:
        _ip("link", "set", self._port(index), "down", netns=self.bridge_ns)

    def heal(self, index: int) -> None:
        _ip("link", "set", self._port(index), "up", netns=self.bridge_ns)

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self._host_link], capture_output=True)
        for namespace in reversed(self._created):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        self._created.clear()
