"""pymesos 0.3.15 frameworks against a real `mesoslite up`, unchanged."""

from __future__ import annotations

import base64
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import UpNode
from tests.e2e.pymesos_support import (
    RecordingScheduler,
    command_task,
    framework_info,
    launch_command_once,
    launch_once,
    scalar,
    start_driver,
    stop_driver,
)

EXECUTOR_SCRIPT = Path(__file__).with_name("pymesos_executor.py")


def _state(status: dict[str, Any]) -> str:
    return str(status["state"])


def test_offers_carry_resources_and_allocation_info(cluster: UpNode) -> None:
    scheduler = RecordingScheduler()
    driver = start_driver(scheduler, cluster.master, framework_info("offers"))
    try:
        scheduler.wait_for("registered")
        offers = scheduler.wait_for("offers")
        offer = offers[0]
        names = {r["name"] for r in offer["resources"]}
        assert {"cpus", "mem", "disk", "ports"} <= names
        assert all(r["allocation_info"]["role"] == "*" for r in offer["resources"])
        assert offer["url"]["path"] == "/slave(1)"
        assert offer["url"]["address"]["port"] == int(cluster.agent.split(":")[1])
        assert scalar(offer, "cpus") > 0
    finally:
        stop_driver(driver)


def test_command_tasks_run_to_completion_with_acknowledged_updates(
    cluster: UpNode,
) -> None:
    scheduler = RecordingScheduler()
    scheduler.on_offers = launch_once(
        lambda driver, offer: [
            command_task(offer, "ok-task", "echo hello-from-task"),
            command_task(offer, "fail-task", "echo oops >&2; exit 7"),
        ]
    )
    driver = start_driver(scheduler, cluster.master, framework_info("commands"))
    try:
        final: dict[str, dict[str, Any]] = {}
        seen: dict[str, list[str]] = {}
        deadline = time.monotonic() + 30
        while len(final) < 2 and time.monotonic() < deadline:
            status = scheduler.wait_for("update")
            task_id = status["task_id"]["value"]
            seen.setdefault(task_id, []).append(_state(status))
            assert "agent_id" in status
            assert "uuid" in status  # agent/executor updates must be acknowledged
            assert len(base64.b64decode(status["uuid"])) == 16
            if _state(status) not in ("TASK_STARTING", "TASK_RUNNING"):
                final[task_id] = status
        assert _state(final["ok-task"]) == "TASK_FINISHED"
        assert "TASK_RUNNING" in seen["ok-task"]
        assert _state(final["fail-task"]) == "TASK_FAILED"
        assert "status 7" in final["fail-task"]["message"]
        assert final["ok-task"]["source"] == "SOURCE_EXECUTOR"

        # The master moves acknowledged terminal tasks to completed_tasks.
        with httpx.Client(base_url=f"http://{cluster.master}") as http:
            deadline = time.monotonic() + 10
            completed: set[str] = set()
            while time.monotonic() < deadline and len(completed) < 2:
                frameworks = http.get("/master/frameworks").json()["frameworks"]
                completed = {t["id"] for f in frameworks for t in f.get("completed_tasks", [])}
                time.sleep(0.1)
            assert {"ok-task", "fail-task"} <= completed
    finally:
        stop_driver(driver)


def test_kill_running_task(cluster: UpNode) -> None:
    scheduler = RecordingScheduler()
    scheduler.on_offers = launch_command_once("sleeper", "sleep 600")
    framework = framework_info("killer", capabilities=[{"type": "TASK_KILLING_STATE"}])
    driver = start_driver(scheduler, cluster.master, framework)
    try:
        scheduler.wait_for("update", lambda s: _state(s) == "TASK_RUNNING")
        driver.killTask({"value": "sleeper"})
        scheduler.wait_for("update", lambda s: _state(s) == "TASK_KILLING")
        killed = scheduler.wait_for("update", lambda s: _state(s) == "TASK_KILLED")
        assert killed["task_id"]["value"] == "sleeper"
    finally:
        stop_driver(driver)


def test_implicit_and_explicit_reconciliation(cluster: UpNode) -> None:
    scheduler = RecordingScheduler()
    scheduler.on_offers = launch_command_once("long", "sleep 600")
    driver = start_driver(scheduler, cluster.master, framework_info("reconciler"))
    try:
        scheduler.wait_for("update", lambda s: _state(s) == "TASK_RUNNING")
        driver.reconcileTasks([])
        answer = scheduler.wait_for("update", lambda s: s.get("reason") == "REASON_RECONCILIATION")
        assert answer["task_id"]["value"] == "long"
        assert _state(answer) == "TASK_RUNNING"
        assert answer["source"] == "SOURCE_MASTER"
        assert "uuid" not in answer

        driver.reconcileTasks([{"task_id": {"value": "never-launched"}}])
        unknown = scheduler.wait_for("update", lambda s: s["task_id"]["value"] == "never-launched")
        assert _state(unknown) == "TASK_LOST"
        assert unknown["reason"] == "REASON_RECONCILIATION"
        assert "uuid" not in unknown
    finally:
        stop_driver(driver)


def test_decline_filters_until_revive(cluster: UpNode) -> None:
    scheduler = RecordingScheduler()
    declined: list[int] = []

    def decline_all(driver: Any, offers: list[dict[str, Any]]) -> None:
        declined.append(len(offers))
        driver.declineOffer([o["id"] for o in offers], {"refuse_seconds": 3600})

    scheduler.on_offers = decline_all
    driver = start_driver(scheduler, cluster.master, framework_info("decliner"))
    try:
        scheduler.wait_for("offers")
        # Filtered for an hour: no offer comes back on its own.
        time.sleep(1.5)
        assert scheduler.events.empty() or all(
            kind != "offers" for kind, _ in list(scheduler.events.queue)
        )
        driver.reviveOffers()
        scheduler.wait_for("offers", timeout_s=10)
        assert len(declined) >= 2
    finally:
        stop_driver(driver)


def test_framework_failover_within_timeout_keeps_tasks(cluster: UpNode) -> None:
    first = RecordingScheduler()
    first.on_offers = launch_command_once("survivor", "sleep 600")
    framework = framework_info("failover", failover_timeout=60.0)
    driver = start_driver(first, cluster.master, framework)
    framework_id = first.wait_for("registered")
    first.wait_for("update", lambda s: _state(s) == "TASK_RUNNING")
    stop_driver(driver, failover=True)

    second = RecordingScheduler()
    resumed = dict(framework, id={"value": framework_id})
    driver = start_driver(second, cluster.master, resumed)
    try:
        second.wait_for("reregistered")
        driver.reconcileTasks([])
        answer = second.wait_for("update", lambda s: s["task_id"]["value"] == "survivor")
        assert _state(answer) == "TASK_RUNNING"
    finally:
        stop_driver(driver)


def test_framework_removed_when_failover_timeout_expires(cluster: UpNode) -> None:
    first = RecordingScheduler()
    first.on_offers = launch_command_once("orphan", "sleep 600")
    framework = framework_info("short-failover", failover_timeout=1.0)
    driver = start_driver(first, cluster.master, framework)
    framework_id = first.wait_for("registered")
    first.wait_for("update", lambda s: _state(s) == "TASK_RUNNING")
    stop_driver(driver, failover=True)

    with httpx.Client(base_url=f"http://{cluster.master}") as http:
        deadline = time.monotonic() + 15
        completed: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            completed = [
                f
                for f in http.get("/master/frameworks").json()["completed_frameworks"]
                if f["id"] == framework_id
            ]
            if completed:
                break
            time.sleep(0.1)
        assert completed, "framework was not removed after its failover timeout"
        tasks = completed[0]["completed_tasks"] + completed[0]["tasks"]
        assert [t["state"] for t in tasks if t["id"] == "orphan"] == ["TASK_KILLED"]

    second = RecordingScheduler()
    driver = start_driver(second, cluster.master, dict(framework, id={"value": framework_id}))
    try:
        message = second.wait_for("error")
        assert "Framework has been removed" in message
    finally:
        stop_driver(driver)


def test_custom_executor_message_round_trip(cluster: UpNode) -> None:
    scheduler = RecordingScheduler()
    executor = {
        "executor_id": {"value": "echo-executor"},
        "command": {"value": f"{sys.executable} {EXECUTOR_SCRIPT}"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
        ],
    }

    def custom_task(driver: Any, offer: dict[str, Any]) -> list[dict[str, Any]]:
        task = command_task(offer, "custom", "unused")
        del task["command"]
        task["executor"] = dict(executor, framework_id={"value": driver.framework_id})
        return [task]

    scheduler.on_offers = launch_once(custom_task)
    driver = start_driver(scheduler, cluster.master, framework_info("custom-executor"))
    try:
        framework_id = scheduler.wait_for("registered")
        running = scheduler.wait_for("update", lambda s: _state(s) == "TASK_RUNNING")
        env_report = dict(item.split("=", 1) for item in running["message"].split(","))
        assert env_report["MESOS_FRAMEWORK_ID"] == framework_id
        assert env_report["MESOS_EXECUTOR_ID"] == "echo-executor"
        assert env_report["MESOS_AGENT_ENDPOINT"] == cluster.agent
        agent_id = running["agent_id"]

        token = uuid.uuid4().hex
        driver.sendFrameworkMessage(
            {"value": "echo-executor"}, agent_id, base64.b64encode(token.encode()).decode()
        )
        reply = scheduler.wait_for("message")
        assert base64.b64decode(reply).decode() == f"echo:{token}"

        driver.sendFrameworkMessage(
            {"value": "echo-executor"}, agent_id, base64.b64encode(b"finish").decode()
        )
        scheduler.wait_for("update", lambda s: _state(s) == "TASK_FINISHED")
    finally:
        stop_driver(driver)
