"""`task exec` and attach: LAUNCH_NESTED_CONTAINER_SESSION, ATTACH_CONTAINER_INPUT and
ATTACH_CONTAINER_OUTPUT through the containers' I/O switchboards, as a Mesos CLI
client uses them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.up_node import UpNode

from .agent_api import JSON, RECORDIO, AgentApi, container_id, killed_by_sigkill, stdin_record

pytestmark = pytest.mark.anyio

SLEEP = {"value": "sleep 600"}
TTY = {"tty_info": {"window_size": {"rows": 24, "columns": 80}}}


def _session(
    identifier: dict[str, Any], command: dict[str, Any], **container: Any
) -> dict[str, Any]:
    call: dict[str, Any] = {
        "type": "LAUNCH_NESTED_CONTAINER_SESSION",
        "launch_nested_container_session": {"container_id": identifier, "command": command},
    }
    if container:
        call["launch_nested_container_session"]["container"] = {"type": "MESOS", **container}
    return call


def _attach_output(identifier: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "ATTACH_CONTAINER_OUTPUT",
        "attach_container_output": {"container_id": identifier},
    }


def _window_size(rows: int, columns: int) -> dict[str, Any]:
    return {
        "type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {
            "type": "PROCESS_IO",
            "process_io": {
                "type": "CONTROL",
                "control": {
                    "type": "TTY_INFO",
                    "tty_info": {"window_size": {"rows": rows, "columns": columns}},
                },
            },
        },
    }


async def test_session_runs_cat_with_input_and_output(agent: AgentApi) -> None:
    parent = container_id("io-parent")
    await agent.launch(parent, SLEEP)
    session = container_id("cat-session", parent)
    command = {"shell": False, "value": "cat", "arguments": ["cat"]}
    async with agent.output(_session(session, command)) as output:
        assert output.response.status_code == 200
        assert output.response.headers["content-type"] == RECORDIO
        assert output.response.headers["message-content-type"] == JSON
        async with agent.input(session) as stdin:
            await stdin.send(stdin_record(b"hello from stdin\n"))
            await output.read_until(b"hello from stdin\n")
            await stdin.send(stdin_record(b""))  # EOF: cat ends
        await output.read_to_end()
    assert stdin.answer[0].status_code == 200
    assert bytes(output.stdout) == b"hello from stdin\n"
    assert output.ended
    assert (await agent.wait(session))["exit_status"] == 0
    await agent.remove(session)
    await agent.end(parent)


async def test_session_joins_its_parent_container(agent: AgentApi) -> None:
    parent = container_id("joined-parent")
    await agent.launch(parent, SLEEP)
    session = container_id("look-around", parent)
    # PID 1 of the namespace it sees is its parent's shell running `sleep 600`.
    command = {"value": "tr '\\0' ' ' < /proc/1/cmdline; echo; echo to-stderr >&2"}
    async with agent.output(_session(session, command)) as output:
        await output.read_to_end()
    assert b"sleep 600" in output.stdout
    assert bytes(output.stderr) == b"to-stderr\n"
    assert (await agent.wait(session))["exit_status"] == 0
    await agent.remove(session)
    await agent.end(parent)


async def test_session_ends_when_its_connection_closes(agent: AgentApi) -> None:
    parent = container_id("closing-parent")
    await agent.launch(parent, SLEEP)
    session = container_id("long-session", parent)
    async with agent.output(_session(session, SLEEP)) as output:
        assert output.response.status_code == 200
    # The client went away: the agent killed the session's container.
    waited = await agent.wait(session)
    assert killed_by_sigkill(waited["exit_status"])
    await agent.remove(session)
    await agent.end(parent)


async def test_tty_session_with_resize(agent: AgentApi) -> None:
    parent = container_id("tty-parent")
    await agent.launch(parent, SLEEP)
    session = container_id("tty-session", parent)
    async with (
        agent.output(_session(session, {"value": "sh"}, **TTY)) as output,
        agent.input(session) as stdin,
    ):
        await stdin.send(stdin_record(b"echo $((6 * 7))\n"))
        await output.read_until(b"42\r\n")
        await stdin.send(_window_size(33, 77))
        await stdin.send(stdin_record(b"stty size\n"))
        await output.read_until(b"33 77")
        await stdin.send(stdin_record(b"exit\n"))
        await output.read_to_end()
    assert output.stderr == b""  # a terminal has one output
    assert (await agent.wait(session))["exit_status"] == 0
    await agent.remove(session)
    await agent.end(parent)


async def test_attach_to_a_running_tty_container(agent: AgentApi, node: UpNode) -> None:
    attached = container_id("tty-task")
    await agent.launch(attached, {"shell": False, "value": "cat", "arguments": ["cat"]}, **TTY)
    async with agent.output(_attach_output(attached)) as output:
        assert output.response.status_code == 200
        async with agent.input(attached) as stdin:
            await stdin.send(stdin_record(b"ping\n"))
            # The terminal echoes the line, then cat prints it again.
            await output.read_until(b"ping\r\nping\r\n")
        await agent.kill(attached)
        await output.read_to_end()
    sandbox = node.data_dir / "agent" / "containers" / "tty-task"
    # Without a client the output still goes to the sandbox, as for any container.
    assert b"ping" in (sandbox / "stdout").read_bytes()
    await agent.wait(attached)
    await agent.remove(attached)


async def test_one_input_connection_at_a_time(agent: AgentApi) -> None:
    attached = container_id("single-input")
    await agent.launch(attached, {"value": "cat"}, **TTY)
    async with agent.input(attached) as first:
        await first.send(stdin_record(b"x"))
        async with agent.input(attached) as second:
            pass
        assert (second.answer[0].status_code, second.answer[0].text) == (
            409,
            "Multiple input connections are not allowed",
        )
    assert first.answer[0].status_code == 200
    await agent.end(attached)


async def test_containers_without_a_switchboard(agent: AgentApi) -> None:
    plain = container_id("no-switchboard")
    await agent.launch(plain, SLEEP)
    answer = await agent.post(_attach_output(plain))
    assert (answer.status_code, answer.text) == (
        500,
        "I/O switchboard server was disabled for this container",
    )
    async with agent.input(plain) as stdin:
        pass
    assert stdin.answer[0].status_code == 500
    missing = await agent.post(_attach_output(container_id("nowhere")))
    assert (missing.status_code, missing.text) == (404, "Container nowhere cannot be found")
    await agent.end(plain)


async def test_header_rules_of_the_streaming_calls(agent: AgentApi) -> None:
    health = {"type": "GET_HEALTH"}
    answer = await agent.post(health, Accept=RECORDIO)
    assert (answer.status_code, answer.text) == (
        406,
        "Streaming response is not supported for GET_HEALTH call",
    )
    answer = await agent.post(health, **{"Message-Accept": JSON})
    assert answer.status_code == 406
    input_call = {
        "type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {"type": "CONTAINER_ID", "container_id": {"value": "x"}},
    }
    answer = await agent.post(input_call)
    assert (answer.status_code, answer.text) == (
        415,
        "Expecting 'Content-Type' to be application/recordio for ATTACH_CONTAINER_INPUT call",
    )
    answer = await agent.client.post(
        "/api/v1", content=b"", headers={"Content-Type": RECORDIO, "Accept": JSON}
    )
    assert (answer.status_code, answer.text) == (
        400,
        "Expecting 'Message-Content-Type' to be set for streaming requests",
    )
