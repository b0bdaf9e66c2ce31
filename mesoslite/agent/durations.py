"""Durations as Mesos' stout library prints them (`500ms`, `5secs`, `15mins`).

Executors read these from their environment (pymesos parses
MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD), and GET_FLAGS shows them.
"""

from __future__ import annotations

__all__ = ["format_duration"]

# (unit length in seconds, suffix), largest first: stout picks the largest unit that
# the value reaches.
_UNITS: tuple[tuple[float, str], ...] = (
    (7 * 86400.0, "weeks"),
    (86400.0, "days"),
    (3600.0, "hrs"),
    (60.0, "mins"),
    (1.0, "secs"),
    (1e-3, "ms"),
    (1e-6, "us"),
)


def format_duration(seconds: float) -> str:
    magnitude = abs(seconds)
    for unit_s, suffix in _UNITS:
        if magnitude >= unit_s:
            return f"{seconds / unit_s:g}{suffix}"
    return f"{seconds * 1e9:g}ns"
