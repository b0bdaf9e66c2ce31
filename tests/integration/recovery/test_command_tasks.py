"""Command tasks of a checkpointing framework survive `kill -9` of `mesoslite up`: the
restarted node takes its agent id back, the running tasks go on (same processes), and
a task that ended while it was down is reported with its real exit status."""

from __future__ import annotations

import signal
from pathlib import Path

from .support import (
    Scheduler,
    command_task,
    executor_pids,
    live_executor_ids,
    master_slaves,
    no_leftovers,
    sandbox,
    up_node,
    wait_until,
)

# Waits for a file in its sandbox, then exits with the given status.
_EXIT_ON_GO = "while [ ! -e go ]; do sleep 0.05; done; exit {status}"


def test_kill_9_of_up_keeps_running_tasks_and_reports_those_that_ended(
    tmp_path: Path, isolation: list[str]
) -> None:
    node = up_node(tmp_path, *isolation)
    scheduler = Scheduler(
        node.master or "",
        {"user": "root", "name": "recovery", "checkpoint": True, "failover_timeout": 3600},
    )
    with no_leftovers(node.data_dir):
        try:
            node.start()
            framework_id = scheduler.subscribe()
            offer = scheduler.offer()
            tasks = {
                "sleeper": "sleep 600",
                "finisher": _EXIT_ON_GO.format(status=0),
                "failer": _EXIT_ON_GO.format(status=3),
            }
            scheduler.launch(
                offer, [command_task(task_id, command) for task_id, command in tasks.items()]
            )
            for task_id in tasks:
                scheduler.wait_for_state(task_id, "TASK_RUNNING")
            [agent] = master_slaves(node.master or "")
            sleeper_pids = executor_pids(node.data_dir, "sleeper")
            assert sleeper_pids

            node.kill_hard()
            scheduler.disconnect()
            # The node is gone; its tasks are not. Two of them end now, unseen.
            assert executor_pids(node.data_dir, "sleeper") == sleeper_pids
            for task_id in ("finisher", "failer"):
                (sandbox(node.data_dir, task_id) / "go").touch()
            for task_id in ("finisher", "failer"):
                wait_until(
                    lambda task_id=task_id: not executor_pids(node.data_dir, task_id),
                    f"the end of {task_id}",
                )

            node.start()
            [again] = master_slaves(node.master or "")
            assert again["id"] == agent["id"]
            assert again["active"]
            assert scheduler.subscribe() == framework_id
            assert scheduler.reconcile(["sleeper"]) == {"sleeper": "TASK_RUNNING"}
            finished = scheduler.wait_for_state("finisher", "TASK_FINISHED")
            failed = scheduler.wait_for_state("failer", "TASK_FAILED")
            assert finished["message"] == "Command exited with status 0"
            assert failed["message"] == "Command exited with status 3"
            assert finished["agent_id"]["value"] == agent["id"]
            # The agent got the acknowledgements: those executors are over.
            wait_until(
                lambda: live_executor_ids(node.agent or "") == {"sleeper"},
                "the acknowledged executors to complete",
            )
            assert executor_pids(node.data_dir, "sleeper") == sleeper_pids
            # Nothing lost, nothing twice: each task's updates, each delivered update once.
            assert scheduler.history("sleeper") == ["TASK_STARTING", "TASK_RUNNING"]
            for task_id, terminal in (("finisher", "TASK_FINISHED"), ("failer", "TASK_FAILED")):
                assert scheduler.history(task_id) == ["TASK_STARTING", "TASK_RUNNING", terminal]

            # Ctrl-C still stops every task.
            assert node.stop(signal.SIGINT) == 0
            assert not executor_pids(node.data_dir, "sleeper")
        finally:
            scheduler.disconnect()
            node.ensure_stopped()
