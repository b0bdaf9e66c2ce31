"""A custom executor that subscribes once and never again: after an agent restart it
does not come back (the agent must destroy it once its re-registration time is up).

It reports each launched task TASK_RUNNING, then only waits.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import uuid


def _call(host: str, port: int, body: dict[str, object]) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request(
        "POST", "/api/v1/executor", json.dumps(body), {"Content-Type": "application/json"}
    )
    connection.getresponse().read()
    connection.close()


def main() -> None:
    host, port_text = os.environ["MESOS_AGENT_ENDPOINT"].rsplit(":", 1)
    port = int(port_text)
    ids = {
        "framework_id": {"value": os.environ["MESOS_FRAMEWORK_ID"]},
        "executor_id": {"value": os.environ["MESOS_EXECUTOR_ID"]},
    }
    connection = http.client.HTTPConnection(host, port)
    connection.request(
        "POST",
        "/api/v1/executor",
        json.dumps({**ids, "type": "SUBSCRIBE", "subscribe": {}}),
        {"Content-Type": "application/json", "Accept": "application/json"},
    )
    response = connection.getresponse()
    try:
        while True:
            length = response.readline()
            if not length:
                break
            event = json.loads(response.read(int(length)))
            if event["type"] == "LAUNCH":
                status = {
                    "task_id": event["launch"]["task"]["task_id"],
                    "state": "TASK_RUNNING",
                    "source": "SOURCE_EXECUTOR",
                    "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
                }
                _call(host, port, {**ids, "type": "UPDATE", "update": {"status": status}})
    except (OSError, http.client.HTTPException):
        pass
    while True:  # the agent is gone: stay, but never subscribe again
        time.sleep(3600)


if __name__ == "__main__":
    main()
