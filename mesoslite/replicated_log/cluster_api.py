"""The cluster's own endpoints, beside the Mesos APIs:

on the master port (plain HTTP, any node may call):
    POST /master/internal/cluster/join     join with a token (`join_protocol`)
    GET  /master/internal/cluster/status   members, leader, term, indexes, agents

on the replica port (mutual TLS: only holders of a member certificate, i.e. an
operator on a member's machine, get through):
    POST /internal/cluster/join-token      {"revoke": false}: a new token (the old one
                                           stops working), or revoke every token
    POST /internal/cluster/remove          {"id": N}: remove a member (`mesoslite leave`)

Changes are made by the leader; other members answer 307 with the leader's address
(or 503 while there is none). `promote_learners` runs beside them on every member and,
while it leads, turns each learner that has caught up into a voter.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from mesoslite.proto import registry_pb2
from mesoslite.raft import ConfChangeError, ConfChangeType
from mesoslite.replicated_log.join_protocol import seal_ca_key, verify_request
from mesoslite.replicated_log.join_token import hash_secret, new_join_token
from mesoslite.replicated_log.service import NotLeaderError, ReplicaService, new_node_id
from mesoslite.replicated_log.tls import ClusterCa, TlsPaths
from mesoslite.wire.http import HttpError
from mesoslite.wire.routing import Router

__all__ = [
    "ADMIN_PATH_PREFIX",
    "ClusterApi",
    "promote_learners",
]

log = logging.getLogger(__name__)

ADMIN_PATH_PREFIX = "/internal/cluster"
_PROMOTE_INTERVAL_S = 0.05


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(
        json.dumps(body, sort_keys=True).encode(), status_code, media_type="application/json"
    )


async def _read_json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as error:
        raise HttpError(400, f"Failed to parse the request body as JSON: {error}") from None
    if not isinstance(body, dict):
        raise HttpError(400, "Expecting a JSON object")
    return body


def member_json(member: registry_pb2.Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "peer_address": member.address,
        "master_address": member.master_address,
        "role": "voter" if member.role == registry_pb2.Member.VOTER else "learner",
    }


class ClusterApi:
    def __init__(self, service: ReplicaService, tls: TlsPaths) -> None:
        self._service = service
        self._tls = tls
        self._ca: ClusterCa | None = None

    def mount_public(self, router: Router) -> None:
        """On the master router (whose `/master` alias also serves these paths)."""
        router.add("/internal/cluster/join", self.join, methods=("POST",))
        router.add("/internal/cluster/status", self.status, methods=("GET",))

    def mount_admin(self, router: Router) -> None:
        """On the replica router (mutual TLS)."""
        router.add(f"{ADMIN_PATH_PREFIX}/join-token", self.join_token, methods=("POST",))
        router.add(f"{ADMIN_PATH_PREFIX}/remove", self.remove, methods=("POST",))
        router.add(f"{ADMIN_PATH_PREFIX}/status", self.status, methods=("GET",))

    async def _cluster_ca(self) -> ClusterCa:
        if self._ca is None:
            self._ca = await anyio.to_thread.run_sync(ClusterCa.load, self._tls)
        return self._ca

    def _require_leader(self, request: Request, *, admin: bool) -> None:
        service = self._service
        if service.is_leader:
            return
        leader = service.leader_member()
        if leader is None:
            raise HttpError(503, "No leader elected")
        if admin:
            location = f"https://{leader.address}{request.url.path}"
        else:
            location = f"//{leader.master_address}/master{ADMIN_PATH_PREFIX}/join"
        raise HttpError(307, "", headers={"Location": location})

    async def _barrier(self) -> None:
        try:
            await self._service.read_barrier()
        except TimeoutError:
            raise HttpError(503, "No leader elected") from None

    # ------------------------------------------------------------------ public

    async def status(self, request: Request) -> Response:
        return _json(self._service.status())

    async def join(self, request: Request) -> Response:
        body = await _read_json(request)
        self._require_leader(request, admin=False)
        await self._barrier()
        service = self._service
        registry = service.registry
        ca = await self._cluster_ca()
        if not verify_request(body, registry.join_token_sha256, ca.fingerprint_sha256):
            raise HttpError(401, "invalid token")
        roles = body.get("roles")
        if not isinstance(roles, list) or not roles or not set(roles) <= {"master", "agent"}:
            raise HttpError(400, "roles must list 'master' and/or 'agent'")
        answer: dict[str, Any] = {
            "cluster_id": registry.cluster_id,
            "ca_certificate": ca.certificate_pem.decode(),
        }
        if "master" in roles:
            answer.update(await self._admit_master(body, ca))
        members = service.registry.members.values()
        answer["members"] = [member_json(member) for member in members]
        answer["masters"] = [m.master_address for m in members if m.master_address]
        return _json(answer)

    async def _admit_master(self, body: dict[str, Any], ca: ClusterCa) -> dict[str, Any]:
        service = self._service
        name = body.get("name")
        csr = body.get("csr")
        peer_address = body.get("peer_address")
        master_address = body.get("master_address")
        fields = (name, csr, peer_address, master_address)
        if not all(isinstance(value, str) and value for value in fields):
            raise HttpError(400, "a joining master names name, csr, peer_address, master_address")
        assert isinstance(csr, str) and isinstance(name, str)
        assert isinstance(peer_address, str) and isinstance(master_address, str)
        for other in service.registry.members.values():
            if other.address == peer_address or other.master_address == master_address:
                raise HttpError(
                    409,
                    f"member {other.name} ({other.id}) already has these addresses; remove "
                    f"it first: mesoslite leave --member {other.id}",
                )
        try:
            certificate = await anyio.to_thread.run_sync(ca.sign_csr, csr.encode())
        except ValueError as error:
            raise HttpError(400, f"invalid certificate request: {error}") from None
        member = registry_pb2.Member(
            id=new_node_id(),
            address=peer_address,
            role=registry_pb2.Member.LEARNER,
            name=name,
            master_address=master_address,
        )
        await self._change(ConfChangeType.ADD_LEARNER, member)
        ca_key = await anyio.to_thread.run_sync(self._tls.ca_key.read_bytes)
        stored = service.registry.join_token_sha256 or ""
        log.info("member %s (%d) joins as a learner from %s", name, member.id, peer_address)
        return {
            "node_id": member.id,
            "certificate": certificate.decode(),
            "ca_key_sealed": seal_ca_key(ca_key, stored),
        }

    async def _change(self, change_type: ConfChangeType, member: registry_pb2.Member) -> None:
        try:
            await self._service.change_membership(change_type, member)
        except NotLeaderError:
            raise HttpError(
                503, "leadership or another membership change is in flight; retry"
            ) from None
        except ConfChangeError as error:
            raise HttpError(409, str(error)) from None
        except TimeoutError:
            raise HttpError(503, "the membership change did not commit in time; retry") from None

    # ------------------------------------------------------------------ admin

    async def join_token(self, request: Request) -> Response:
        body = await _read_json(request)
        self._require_leader(request, admin=True)
        operation = registry_pb2.RegistryOperation()
        token = None
        if body.get("revoke"):
            operation.set_join_token.SetInParent()
        else:
            ca = await self._cluster_ca()
            token = new_join_token(ca.fingerprint_sha256)
            operation.set_join_token.sha256 = hash_secret(token.secret)
        try:
            await self._service.propose(operation)
        except (NotLeaderError, TimeoutError) as error:
            raise HttpError(503, f"the token was not changed: {error}; retry") from None
        return _json({"token": str(token) if token is not None else None})

    async def remove(self, request: Request) -> Response:
        body = await _read_json(request)
        self._require_leader(request, admin=True)
        member_id = body.get("id")
        member = self._service.registry.members.get(member_id) if type(member_id) is int else None
        if member is None:
            raise HttpError(404, f"no member {member_id!r} in the cluster")
        await self._change(ConfChangeType.REMOVE_NODE, member)
        log.info("member %s (%d) removed", member.name, member.id)
        return _json({"removed": member_json(member)})


async def promote_learners(service: ReplicaService) -> None:
    """While this replica leads, make caught-up learners voters (one change at a time)."""
    while True:
        await anyio.sleep(_PROMOTE_INTERVAL_S)
        if not service.is_leader:
            continue
        for member in list(service.registry.members.values()):
            if member.role != registry_pb2.Member.LEARNER:
                continue
            match = service.follower_match(member.id)
            if match is None or match < service.committed_index:
                continue
            try:
                await service.change_membership(ConfChangeType.ADD_VOTER, member)
                log.info("member %s (%d) is a voter now", member.name, member.id)
            except Exception as error:  # retried on the next round
                log.debug("promoting %d failed: %s", member.id, error)
            break
