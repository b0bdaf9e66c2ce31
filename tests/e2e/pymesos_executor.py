"""A custom executor written with pymesos' MesosExecutorDriver, launched by the e2e tests.

It runs each task until told otherwise: a framework message "finish" ends the task
with TASK_FINISHED; any other message is echoed back as "echo:<text>".
"""

from __future__ import annotations

import base64
import os
import sys
from typing import Any

from pymesos import Executor, MesosExecutorDriver


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EchoExecutor(Executor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []

    def registered(
        self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any
    ) -> None:
        self.agent_id = agent_info["id"]

    def launchTask(self, driver: Any, task: dict[str, Any]) -> None:
        self.tasks.append(task)
        env_report = ",".join(
            f"{k}={os.environ.get(k, '')}"
            for k in ("MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID", "MESOS_AGENT_ENDPOINT")
        )
        driver.sendStatusUpdate(
            {
                "task_id": task["task_id"],
                "agent_id": self.agent_id,
                "state": "TASK_RUNNING",
                "message": env_report,
            }
        )

    def frameworkMessage(self, driver: Any, message: str) -> None:
        text = base64.b64decode(message).decode()
        if text == "finish":
            for task in self.tasks:
                driver.sendStatusUpdate(
                    {
                        "task_id": task["task_id"],
                        "agent_id": self.agent_id,
                        "state": "TASK_FINISHED",
                    }
                )
            return
        driver.sendFrameworkMessage(_b64(f"echo:{text}"))

    def killTask(self, driver: Any, task_id: dict[str, str]) -> None:
        driver.sendStatusUpdate(
            {"task_id": task_id, "agent_id": self.agent_id, "state": "TASK_KILLED"}
        )


if __name__ == "__main__":
    driver = MesosExecutorDriver(EchoExecutor(), use_addict=False)
    status = driver.run()
    sys.exit(0)
