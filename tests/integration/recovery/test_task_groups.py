"""A task group (default executor) across `kill -9` of `mesoslite up`: the executor
lived in the agent and is gone, its task containers are not. The restarted agent
supervises them again by the default executor's rules."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from .support import (
    Scheduler,
    command_task,
    executor_pids,
    no_leftovers,
    up_node,
    wait_until,
)


def _default_executor() -> dict[str, Any]:
    return {
        "type": "DEFAULT",
        "executor_id": {"value": "group-executor"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 16}},
        ],
    }


def test_a_task_group_is_supervised_again_after_kill_9(
    tmp_path: Path, isolation: list[str]
) -> None:
    node = up_node(tmp_path, *isolation)
    scheduler = Scheduler(
        node.master or "",
        {"user": "root", "name": "groups", "checkpoint": True, "failover_timeout": 3600},
    )
    with no_leftovers(node.data_dir):
        try:
            node.start()
            scheduler.subscribe()
            scheduler.launch_group(
                scheduler.offer(),
                _default_executor(),
                [
                    command_task("steady", "sleep 600"),
                    command_task("done", "while [ ! -e go ]; do sleep 0.05; done; exit 0"),
                ],
            )
            for task_id in ("steady", "done"):
                scheduler.wait_for_state(task_id, "TASK_RUNNING")
            [done_sandbox] = node.data_dir.glob(
                "agent/slaves/*/frameworks/*/executors/group-executor/runs/latest/tasks/done"
            )
            done_sandbox = done_sandbox.resolve()

            node.kill_hard()
            scheduler.disconnect()
            (done_sandbox / "go").touch()
            node.start()
            scheduler.subscribe()
            finished = scheduler.wait_for_state("done", "TASK_FINISHED")
            assert finished["message"] == "Command exited with status 0"
            assert scheduler.reconcile(["steady"]) == {"steady": "TASK_RUNNING"}

            # A kill still reaches the recovered task.
            scheduler.call({"type": "KILL", "kill": {"task_id": {"value": "steady"}}})
            scheduler.wait_for_state("steady", "TASK_KILLED")
            assert scheduler.history("steady") == [
                "TASK_STARTING",
                "TASK_RUNNING",
                "TASK_KILLED",
            ]
            wait_until(
                lambda: not executor_pids(node.data_dir, "group-executor"), "the group's end"
            )
            assert node.stop(signal.SIGINT) == 0
        finally:
            scheduler.disconnect()
            node.ensure_stopped()
