"""How a node stops decides what survives it, and how it starts again decides what it
takes over: SIGTERM of an agent-only process and `down --keep-tasks` keep the tasks of
checkpointing frameworks; a restart destroys whatever it cannot take over (containers
of frameworks that do not checkpoint); a reboot, `--recover=cleanup` or a changed
configuration do not take over the old agent."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from .support import (
    MESOSLITE,
    PATIENCE_S,
    Node,
    Scheduler,
    command_task,
    executor_pids,
    free_port,
    master_slaves,
    no_leftovers,
    up_node,
)


def _framework(master: str | None, *, checkpoint: bool, name: str = "restarts") -> Scheduler:
    return Scheduler(
        master or "",
        {"user": "root", "name": name, "checkpoint": checkpoint, "failover_timeout": 3600},
    )


def _agent_node(tmp_path: Path, master: str, *extra: str) -> Node:
    port = free_port()
    data_dir = tmp_path / "agent-node"
    arguments = [
        "agent",
        "--master",
        master,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    return Node(arguments, data_dir, tmp_path / "agent-node.log", agent=f"127.0.0.1:{port}")


def _agent_id_at(master: str, agent: str) -> str:
    port = int(agent.rpartition(":")[2])
    for slave in master_slaves(master):
        if slave["port"] == port:
            return str(slave["id"])
    raise AssertionError(f"no agent at {agent}")


def test_sigterm_of_an_agent_keeps_checkpointed_tasks_and_stops_the_rest(
    tmp_path: Path, isolation: list[str]
) -> None:
    cluster = up_node(tmp_path, *isolation)
    agent = _agent_node(tmp_path, cluster.master or "", *isolation)
    keeper = _framework(cluster.master, checkpoint=True, name="keeper")
    plain = _framework(cluster.master, checkpoint=False, name="plain")
    with no_leftovers(cluster.data_dir, agent.data_dir):
        try:
            cluster.start()
            agent.start()
            agent_id = _agent_id_at(cluster.master or "", agent.agent or "")
            for scheduler, task_id in ((keeper, "kept"), (plain, "dropped")):
                scheduler.subscribe()
                offer = scheduler.offer(agent_id)
                scheduler.launch(offer, [command_task(task_id, "sleep 600")])
                scheduler.wait_for_state(task_id, "TASK_RUNNING")
            kept = executor_pids(agent.data_dir, "kept")

            assert agent.stop(signal.SIGTERM) == 0
            assert executor_pids(agent.data_dir, "kept") == kept
            assert not executor_pids(agent.data_dir, "dropped")

            agent.start()
            assert _agent_id_at(cluster.master or "", agent.agent or "") == agent_id
            assert keeper.reconcile(["kept"]) == {"kept": "TASK_RUNNING"}
            # The master learns the other task is gone (reported as a framework that is
            # not partition-aware understands it).
            lost = plain.wait_for_state("dropped", "TASK_LOST")
            assert lost["reason"] == "REASON_TASK_UNKNOWN"
            assert executor_pids(agent.data_dir, "kept") == kept

            assert agent.stop(signal.SIGINT) == 0
            assert not executor_pids(agent.data_dir, "kept")
            assert cluster.stop(signal.SIGINT) == 0
        finally:
            keeper.disconnect()
            plain.disconnect()
            agent.ensure_stopped()
            cluster.ensure_stopped()


def _down(data_dir: Path, *extra: str) -> None:
    result = subprocess.run(
        [*MESOSLITE, "down", "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert result.returncode == 0, result.stderr


def test_down_keep_tasks_then_up_takes_them_over_and_down_stops_them(
    tmp_path: Path, isolation: list[str]
) -> None:
    node = up_node(tmp_path, *isolation)
    scheduler = _framework(node.master, checkpoint=True)
    with no_leftovers(node.data_dir):
        try:
            node.start()
            scheduler.subscribe()
            scheduler.launch(scheduler.offer(), [command_task("kept", "sleep 600")])
            scheduler.wait_for_state("kept", "TASK_RUNNING")
            kept = executor_pids(node.data_dir, "kept")
            agent_id = master_slaves(node.master or "")[0]["id"]

            _down(node.data_dir, "--keep-tasks")
            assert node.process is not None and node.process.wait(PATIENCE_S) == 0
            scheduler.disconnect()
            assert executor_pids(node.data_dir, "kept") == kept

            node.start()
            assert master_slaves(node.master or "")[0]["id"] == agent_id
            scheduler.subscribe()
            assert scheduler.reconcile(["kept"]) == {"kept": "TASK_RUNNING"}

            _down(node.data_dir)
            assert node.process.wait(PATIENCE_S) == 0
            assert not executor_pids(node.data_dir, "kept")
        finally:
            scheduler.disconnect()
            node.ensure_stopped()


def test_containers_without_a_checkpoint_are_destroyed_by_the_restart(
    tmp_path: Path, isolation: list[str]
) -> None:
    node = up_node(tmp_path, *isolation)
    keeper = _framework(node.master, checkpoint=True, name="keeper")
    plain = _framework(node.master, checkpoint=False, name="plain")
    with no_leftovers(node.data_dir):
        try:
            node.start()
            for scheduler, task_id in ((keeper, "kept"), (plain, "orphan")):
                scheduler.subscribe()
                scheduler.launch(
                    scheduler.offer(),
                    # A shell that stays the parent of its sleep: all of it must go.
                    [command_task(task_id, "sleep 600; true")],
                )
                scheduler.wait_for_state(task_id, "TASK_RUNNING")
            kept = executor_pids(node.data_dir, "kept")

            node.kill_hard()
            keeper.disconnect()
            plain.disconnect()
            assert executor_pids(node.data_dir, "orphan")  # left running by the crash

            node.start()
            assert not executor_pids(node.data_dir, "orphan")
            assert executor_pids(node.data_dir, "kept") == kept
            keeper.subscribe()
            assert keeper.reconcile(["kept"]) == {"kept": "TASK_RUNNING"}
            assert node.stop(signal.SIGINT) == 0
        finally:
            keeper.disconnect()
            plain.disconnect()
            node.ensure_stopped()


def _start_with_a_task_then_crash(node: Node, scheduler: Scheduler) -> tuple[str, set[int]]:
    node.start()
    scheduler.subscribe()
    scheduler.launch(scheduler.offer(), [command_task("old", "sleep 600")])
    scheduler.wait_for_state("old", "TASK_RUNNING")
    agent_id = str(master_slaves(node.master or "")[0]["id"])
    pids = executor_pids(node.data_dir, "old")
    node.kill_hard()
    scheduler.disconnect()
    return agent_id, pids


def test_after_a_reboot_the_agent_starts_anew(tmp_path: Path) -> None:
    node = up_node(tmp_path)
    scheduler = _framework(node.master, checkpoint=True)
    with no_leftovers(node.data_dir):
        try:
            old_agent_id, _ = _start_with_a_task_then_crash(node, scheduler)
            # What a reboot looks like to the agent: another boot id (its tasks would
            # be gone; here the restart must destroy them).
            (node.data_dir / "agent" / "meta" / "boot_id").write_text("a-previous-boot\n")
            node.start()
            assert not executor_pids(node.data_dir, "old")
            agent_ids = {slave["id"] for slave in master_slaves(node.master or "")}
            assert old_agent_id not in agent_ids and len(agent_ids) == 1
            assert "the host rebooted" in (node.data_dir / "mesoslite.log").read_text()
            assert node.stop(signal.SIGINT) == 0
        finally:
            scheduler.disconnect()
            node.ensure_stopped()


def test_recover_cleanup_destroys_what_was_left_and_starts_anew(tmp_path: Path) -> None:
    node = up_node(tmp_path)
    scheduler = _framework(node.master, checkpoint=True)
    with no_leftovers(node.data_dir):
        try:
            old_agent_id, _ = _start_with_a_task_then_crash(node, scheduler)
            node.start("--recover", "cleanup")
            assert not executor_pids(node.data_dir, "old")
            agent_ids = {slave["id"] for slave in master_slaves(node.master or "")}
            assert old_agent_id not in agent_ids and len(agent_ids) == 1
            assert node.stop(signal.SIGINT) == 0
        finally:
            scheduler.disconnect()
            node.ensure_stopped()


def test_a_changed_configuration_is_refused_and_the_tasks_wait(tmp_path: Path) -> None:
    node = up_node(tmp_path, "--resources", "cpus:4;mem:2048")
    scheduler = _framework(node.master, checkpoint=True)
    with no_leftovers(node.data_dir):
        try:
            agent_id, pids = _start_with_a_task_then_crash(node, scheduler)
            # The same node with fewer cpus: its task might no longer fit.
            fewer_cpus = [*node.arguments[:-2], "--resources", "cpus:2;mem:2048"]
            refused = subprocess.run(
                [*MESOSLITE, *fewer_cpus],
                capture_output=True,
                text=True,
                timeout=PATIENCE_S,
            )
            assert refused.returncode == 1
            assert "resources were removed" in refused.stderr
            assert "--recover=cleanup" in refused.stderr
            assert "Traceback" not in refused.stderr
            assert executor_pids(node.data_dir, "old") == pids

            node.start()  # as before: taken over
            assert master_slaves(node.master or "")[0]["id"] == agent_id
            scheduler.subscribe()
            assert scheduler.reconcile(["old"]) == {"old": "TASK_RUNNING"}
            assert node.stop(signal.SIGINT) == 0
        finally:
            scheduler.disconnect()
            node.ensure_stopped()
