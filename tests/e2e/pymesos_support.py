"""A recording pymesos scheduler: every callback lands in a queue the test reads."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler

Event = tuple[str, Any]


class RecordingScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.on_offers: Callable[[Any, list[dict[str, Any]]], None] | None = None

    def registered(self, driver: Any, framework_id: dict[str, str], master_info: Any) -> None:
        self.events.put(("registered", framework_id["value"]))

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self.events.put(("reregistered", master_info))

    def disconnected(self, driver: Any) -> None:
        self.events.put(("disconnected", None))

    def resourceOffers(self, driver: Any, offers: list[dict[str, Any]]) -> None:
        if self.on_offers is not None:
            self.on_offers(driver, offers)
        self.events.put(("offers", offers))

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self.events.put(("rescinded", offer_id))

    def statusUpdate(self, driver: Any, status: dict[str, Any]) -> None:
        self.events.put(("update", status))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: str) -> None:
        self.events.put(("message", data))

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: int) -> None:
        self.events.put(("executor_lost", (executor_id, status)))

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self.events.put(("agent_lost", agent_id))

    def error(self, driver: Any, message: str) -> None:
        self.events.put(("error", message))

    def wait_for(
        self, kind: str, predicate: Callable[[Any], bool] = lambda _: True, timeout_s: float = 20
    ) -> Any:
        """The next event of `kind` that satisfies `predicate` (others are skipped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind!r} event within {timeout_s} s")
            try:
                got_kind, payload = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if got_kind == kind and predicate(payload):
                return payload


def framework_info(name: str, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"user": "root", "name": name, "hostname": "localhost"}
    info.update(extra)
    return info


def start_driver(
    scheduler: RecordingScheduler, master: str, framework: dict[str, Any], **kwargs: Any
) -> MesosSchedulerDriver:
    driver = MesosSchedulerDriver(scheduler, framework, master, use_addict=False, **kwargs)
    driver.start()
    return driver


def stop_driver(driver: MesosSchedulerDriver, failover: bool = False) -> None:
    driver.stop(failover=failover)
    thread = threading.Thread(target=driver.join, daemon=True)
    thread.start()
    thread.join(timeout=10)


def scalar(offer: dict[str, Any], name: str) -> float:
    return float(sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name))


def command_task(
    offer: dict[str, Any], task_id: str, command: str, cpus: float = 0.1, mem: float = 32
) -> dict[str, Any]:
    return {
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "name": task_id,
        "command": {"value": command},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ],
    }


OfferCallback = Callable[[Any, list[dict[str, Any]]], None]


def launch_once(
    make_tasks: Callable[[Any, dict[str, Any]], list[dict[str, Any]]],
) -> OfferCallback:
    """An offer callback that launches `make_tasks(driver, offer)` from the first offer
    and declines every other one."""
    launched: list[bool] = []

    def on_offers(driver: Any, offers: list[dict[str, Any]]) -> None:
        for offer in offers:
            if launched:
                driver.declineOffer([offer["id"]])
                continue
            launched.append(True)
            driver.launchTasks([offer["id"]], make_tasks(driver, offer))

    return on_offers


def launch_command_once(task_id: str, command: str) -> OfferCallback:
    return launch_once(lambda driver, offer: [command_task(offer, task_id, command)])
