"""`mesoslite join ADDR --token T [--master] [--agent]`: a new node joins a cluster.

A joining master proves the token, gets a certificate signed by the cluster CA, and
becomes a learner of the Raft group; it catches up from the leader and the leader makes
it a voter. A joining agent proves the token and learns every master's address; it
registers with the leading master. The node's identity goes into its data directory,
so that a restart needs nothing but `mesoslite up --data-dir DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mesoslite.cli.common import CliError, normalize_master
from mesoslite.cli.options import agent_options, data_dir_option
from mesoslite.cli.serve import detach, run_foreground
from mesoslite.cli.up import print_banner
from mesoslite.config import (
    DEFAULT_AGENT_PORT,
    DEFAULT_MASTER_PORT,
    default_data_dir,
    default_hostname,
    default_peer_port,
)

__all__ = ["join"]


@click.command()
@click.argument("address")
@click.option(
    "--token",
    envvar="MESOSLITE_TOKEN",
    default=None,
    help="The join token `mesoslite up` or `mesoslite join-token` printed [env: MESOSLITE_TOKEN].",
)
@click.option("--master", "as_master", is_flag=True, help="Join as a master (a Raft member).")
@click.option("--agent", "as_agent", is_flag=True, help="Join as an agent (the default).")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_MASTER_PORT, show_default=True, help="Master port.")
@click.option("--agent-port", default=DEFAULT_AGENT_PORT, show_default=True, help="Agent port.")
@click.option(
    "--peer-port", type=int, default=None, help="Replica port [default: master port + 1000]."
)
@click.option("--hostname", default=None, help="Name of this node [default: the host name].")
@data_dir_option
@agent_options
@click.option("--detach", is_flag=True, help="Run in the background; stop with `mesoslite down`.")
def join(
    address: str,
    token: str | None,
    as_master: bool,
    as_agent: bool,
    ip: str,
    port: int,
    agent_port: int,
    peer_port: int | None,
    hostname: str | None,
    data_dir: Path | None,
    resources: str | None,
    attributes: str | None,
    isolation: str | None,
    detach: bool,
) -> None:
    """Join the cluster at ADDRESS (any master, HOST:PORT) with a join token."""
    from mesoslite.replicated_log.identity import NodeIdentity

    data_dir = data_dir or default_data_dir()
    address = normalize_master(address)
    identity = NodeIdentity.load(data_dir)
    if identity is None:
        if not token:
            raise CliError("a join token is needed: pass --token or set MESOSLITE_TOKEN")
        if not as_master and not as_agent:
            as_agent = True
        identity = _join(
            address,
            token,
            data_dir,
            as_master=as_master,
            as_agent=as_agent,
            ip=ip,
            port=port,
            agent_port=agent_port,
            peer_port=default_peer_port(port) if peer_port is None else peer_port,
            name=hostname or default_hostname(),
        )
        roles = " and ".join(r for r, on in (("master", as_master), ("agent", as_agent)) if on)
        click.echo(f"joined cluster {identity.cluster_id} as {roles}")
    else:
        click.echo(f"{data_dir} is already a member of cluster {identity.cluster_id}: restarting")
    if detach:
        addresses = detach_node(data_dir)
        print_banner(dict(addresses), data_dir, None)
        click.echo("Running in the background; stop it with `mesoslite down`.")
        return

    def build(path: Path) -> object:
        from mesoslite.cli.builders import node_for_identity

        assert identity is not None
        return node_for_identity(
            identity,
            path,
            hostname=hostname,
            resources=resources,
            attributes=attributes,
            isolation=isolation,
        )

    def ready(addresses: dict[str, str | None], elapsed_s: float) -> None:
        print_banner(addresses, data_dir, elapsed_s)
        click.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()

    run_foreground(build, data_dir, ready)


def detach_node(data_dir: Path) -> dict[str, str]:
    return detach(["up", "--data-dir", str(data_dir)], data_dir)


def _join(
    address: str,
    token_text: str,
    data_dir: Path,
    *,
    as_master: bool,
    as_agent: bool,
    ip: str,
    port: int,
    agent_port: int,
    peer_port: int,
    name: str,
) -> Any:
    import anyio

    from mesoslite.node import BindError, bind_listener
    from mesoslite.replicated_log.durable_files import write_file_atomically
    from mesoslite.replicated_log.identity import NodeIdentity, tls_paths
    from mesoslite.replicated_log.join_protocol import (
        JoinError,
        JoinRefusedError,
        open_ca_key,
        request_join,
    )
    from mesoslite.replicated_log.join_token import InvalidJoinTokenError, JoinToken
    from mesoslite.replicated_log.tls import (
        default_node_sans,
        new_node_key,
        node_csr,
        save_node_identity,
    )

    try:
        token = JoinToken.parse(token_text)
    except InvalidJoinTokenError:
        raise CliError("invalid token: it is not a join token (K10<ca hash>::<secret>)") from None
    # The listeners must be free before the cluster counts on this node.
    ports = [agent_port] if as_agent else []
    ports += [port, peer_port] if as_master else []
    for wanted in ports:
        try:
            bind_listener(ip, wanted).close()
        except BindError as error:
            raise CliError(str(error)) from None
    advertise_ip = "127.0.0.1" if ip in ("0.0.0.0", "") else ip
    body: dict[str, Any] = {
        "name": name,
        "roles": [role for role, on in (("master", as_master), ("agent", as_agent)) if on],
    }
    key = None
    if as_master:
        key = new_node_key()
        sans = list(dict.fromkeys([*default_node_sans(), advertise_ip]))
        body["csr"] = node_csr(key, name, sans).decode()
        body["peer_address"] = f"{advertise_ip}:{peer_port}"
        body["master_address"] = f"{advertise_ip}:{port}"
    try:
        answer = anyio.run(request_join, address, token, body)
    except JoinRefusedError as error:
        raise CliError(f"{error} (HTTP {error.status})") from None
    except JoinError as error:
        raise CliError(str(error)) from None
    paths = tls_paths(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    identity = NodeIdentity(
        cluster_id=str(answer["cluster_id"]),
        name=name,
        agent=as_agent,
        listen_ip=ip,
        agent_port=agent_port if as_agent else 0,
        masters=[str(m) for m in answer.get("masters", [])],
    )
    if as_master:
        assert key is not None
        save_node_identity(
            paths, key, str(answer["certificate"]).encode(), str(answer["ca_certificate"]).encode()
        )
        ca_key = open_ca_key(str(answer["ca_key_sealed"]), token)
        write_file_atomically(paths.ca_key, ca_key)
        identity.node_id = int(answer["node_id"])
        identity.master_address = body["master_address"]
        identity.peer_address = body["peer_address"]
        identity.masters = list(dict.fromkeys([*identity.masters, body["master_address"]]))
        identity.seed_peers = {
            str(member["id"]): str(member["peer_address"]) for member in answer["members"]
        }
    identity.save(data_dir)
    return identity
