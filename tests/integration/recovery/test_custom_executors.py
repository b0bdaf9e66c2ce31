"""Custom executors across `kill -9` of `mesoslite up`: a checkpointing pymesos
executor reconnects (with its own backoff) and subscribes again to the restarted
agent; one that does not come back within the re-registration timeout is destroyed
and its task fails with REASON_EXECUTOR_REREGISTRATION_TIMEOUT."""

from __future__ import annotations

import base64
import queue
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from .support import (
    PATIENCE_S,
    Scheduler,
    command_task,
    executor_pids,
    no_leftovers,
    up_node,
    wait_until,
)

_TESTS = Path(__file__).resolve().parents[2]
_PYMESOS_EXECUTOR = _TESTS / "e2e" / "pymesos_executor.py"
_ONE_SHOT_EXECUTOR = Path(__file__).with_name("one_shot_executor.py")


def _executor_task(task_id: str, executor_id: str, script: Path) -> dict[str, Any]:
    task = command_task(task_id, "unused")
    del task["command"]
    task["executor"] = {
        "executor_id": {"value": executor_id},
        "command": {"value": f"{sys.executable} {script}"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
        ],
    }
    return task


def _echo(scheduler: Scheduler, agent_id: str, executor_id: str) -> str | None:
    """Send a framework message; the executor's echo, or None if none came back soon
    (a message to an executor that is not subscribed is dropped)."""
    token = uuid.uuid4().hex
    scheduler.message(agent_id, executor_id, token.encode())
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            event = scheduler.events.get(timeout=0.1)
        except queue.Empty:
            continue
        if event["type"] == "MESSAGE":
            reply = base64.b64decode(event["message"]["data"]).decode()
            if reply == f"echo:{token}":
                return reply
    return None


def _framework(node_master: str | None) -> Scheduler:
    return Scheduler(
        node_master or "",
        {"user": "root", "name": "executors", "checkpoint": True, "failover_timeout": 3600},
    )


def test_a_pymesos_executor_subscribes_again_after_kill_9(
    tmp_path: Path, isolation: list[str]
) -> None:
    # pymesos retries after 2 s, then 4 s, ...: give it Mesos' longest window.
    node = up_node(tmp_path, *isolation, "--executor-reregistration-timeout", "15")
    scheduler = _framework(node.master)
    with no_leftovers(node.data_dir):
        try:
            node.start()
            scheduler.subscribe()
            offer = scheduler.offer()
            agent_id = offer["agent_id"]["value"]
            scheduler.launch(offer, [_executor_task("echo-task", "echo", _PYMESOS_EXECUTOR)])
            scheduler.wait_for_state("echo-task", "TASK_RUNNING")
            assert _echo(scheduler, agent_id, "echo") is not None
            executor_processes = executor_pids(node.data_dir, "echo")
            assert executor_processes

            node.kill_hard()
            scheduler.disconnect()
            node.start()
            scheduler.subscribe()
            # The same executor process, subscribed to the new agent: it answers again.
            wait_until(lambda: _echo(scheduler, agent_id, "echo"), "the executor's echo")
            assert executor_pids(node.data_dir, "echo") == executor_processes
            assert scheduler.reconcile(["echo-task"]) == {"echo-task": "TASK_RUNNING"}

            scheduler.message(agent_id, "echo", b"finish")
            scheduler.wait_for_state("echo-task", "TASK_FINISHED")
            assert scheduler.history("echo-task") == ["TASK_RUNNING", "TASK_FINISHED"]
            assert node.stop(signal.SIGINT) == 0
        finally:
            scheduler.disconnect()
            node.ensure_stopped()


def test_an_executor_that_does_not_come_back_is_destroyed(
    tmp_path: Path, isolation: list[str]
) -> None:
    node = up_node(tmp_path, *isolation, "--executor-reregistration-timeout", "0.5")
    scheduler = _framework(node.master)
    with no_leftovers(node.data_dir):
        try:
            node.start()
            scheduler.subscribe()
            offer = scheduler.offer()
            scheduler.launch(offer, [_executor_task("mute-task", "mute", _ONE_SHOT_EXECUTOR)])
            scheduler.wait_for_state("mute-task", "TASK_RUNNING")
            assert executor_pids(node.data_dir, "mute")

            node.kill_hard()
            scheduler.disconnect()
            node.start()
            scheduler.subscribe()
            failed = scheduler.wait_for_state("mute-task", "TASK_FAILED", limit_s=PATIENCE_S)
            assert failed["reason"] == "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
            assert failed["source"] == "SOURCE_AGENT"
            wait_until(lambda: not executor_pids(node.data_dir, "mute"), "the executor's end")
            assert node.stop(signal.SIGINT) == 0
        finally:
            scheduler.disconnect()
            node.ensure_stopped()
