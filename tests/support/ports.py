"""Ports for the servers that tests start as separate processes.

A port the kernel hands out for port 0 comes from the ephemeral range, which is also
where every outgoing connection takes its local port: between the test picking it and
the server binding it, a connection (often the node's own, to its peers) may take it.
And a master also listens on its port + 1000 (the replica port). So the ports drawn
here lie below the ephemeral range, and port + 1000 is free too.
"""

from __future__ import annotations

import random
import socket

__all__ = ["free_port"]

_REPLICA_OFFSET = 1000
_draw = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free now, below the ephemeral range, whose replica port is free too."""
    high = max(10001, _ephemeral_low() - _REPLICA_OFFSET)
    while True:
        port = _draw.randrange(10000, high)
        if _bindable(port) and _bindable(port + _REPLICA_OFFSET):
            return port
