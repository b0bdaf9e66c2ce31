"""Master configuration: Mesos-style durations and flag names."""

from __future__ import annotations

import pytest

from mesoslite.master.config import MasterConfig, format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (15.0, "15secs"),
        (1.0, "1secs"),
        (0.5, "500ms"),
        (600.0, "10mins"),
        (7200.0, "2hrs"),
        (86400.0, "1days"),
        (0.0, "0ns"),
        (1.5, "1500ms"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_flags_use_mesos_names() -> None:
    flags = MasterConfig(offer_timeout_s=30.0, roles=frozenset({"b", "a"})).flags()
    assert flags["agent_ping_timeout"] == "15secs"
    assert flags["allocation_interval"] == "1secs"
    assert flags["offer_timeout"] == "30secs"
    assert flags["roles"] == "a,b"
    assert flags["root_submissions"] == "true"


def test_public_ip_replaces_wildcard() -> None:
    assert MasterConfig(ip="0.0.0.0").public_ip == "127.0.0.1"
    assert MasterConfig(ip="0.0.0.0", advertise_ip="10.0.0.5").public_ip == "10.0.0.5"
    assert MasterConfig().agent_unreachable_after_s == 75.0
