"""The master's pre-v1 JSON endpoints (wire contract 4.4), in their legacy shapes:
flat string ids, `slave*` names, resources as `{"cpus": 1.0, ...}`, agents' `pid` as
`slave(1)@ip:port`. Tools such as the Mesos CLI and the web UI read these.

Each endpoint also answers with the `/master` prefix (the router strips it) and, as an
alias, with `.json`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio
from starlette.requests import Request
from starlette.responses import Response

from mesoslite import MESOS_VERSION
from mesoslite.master import views
from mesoslite.master.files import FileNotFound, file_mode_string
from mesoslite.master.metrics import metrics_snapshot
from mesoslite.master.operator_api import BUILD_DATE, BUILD_TIME, BUILD_USER
from mesoslite.master.state import Agent, Framework
from mesoslite.master.weights import update_weights
from mesoslite.proto import mesos_pb2
from mesoslite.resources import Resources
from mesoslite.wire.http import HttpError, json_response
from mesoslite.wire.json_codec import (
    JsonConversionError,
    JsonParseError,
    from_json,
    to_json_dict,
)
from mesoslite.wire.legacy import (
    attributes_to_legacy,
    labels_to_legacy,
    resources_to_legacy,
    task_to_legacy,
)

if TYPE_CHECKING:
    from mesoslite.master.master import Master

__all__ = ["LegacyEndpoints"]

Endpoint = Callable[[Request], Any]

# What Mesos agents advertise by default; ours are reported as they registered.
_MASTER_CAPABILITIES = ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"]
_TASK_STATE_NAMES = list(mesos_pb2.TaskState.keys())


def _jsonp(request: Request, body: Any, status: int = 200) -> Response:
    """JSON, or `cb(JSON);` when `?jsonp=cb` asks for it."""
    callback = request.query_params.get("jsonp")
    if callback:
        text = f"{callback}({json.dumps(body, separators=(',', ':'))});"
        return Response(text.encode(), status_code=status, media_type="text/javascript")
    return json_response(body, status)


class LegacyEndpoints:
    def __init__(self, master: Master) -> None:
        self._master = master

    def routes(self) -> dict[str, tuple[Endpoint, tuple[str, ...] | None]]:
        """path -> (endpoint, allowed methods)."""
        get = ("GET",)
        post = ("POST",)
        return {
            "/state": (self.state, get),
            "/state-summary": (self.state_summary, get),
            "/slaves": (self.slaves, get),
            "/frameworks": (self.frameworks, get),
            "/tasks": (self.tasks, get),
            "/roles": (self.roles, get),
            "/flags": (self.flags, get),
            "/health": (self.health, get),
            "/version": (self.version, get),
            "/metrics/snapshot": (self.metrics, get),
            "/teardown": (self.teardown, post),
            "/files/browse": (self.files_browse, get),
            "/files/read": (self.files_read, get),
            "/files/download": (self.files_download, get),
            "/files/debug": (self.files_debug, get),
            "/reserve": (self.not_supported("Dynamic reservations"), post),
            "/unreserve": (self.not_supported("Dynamic reservations"), post),
            "/create-volumes": (self.not_supported("Persistent volumes"), post),
            "/destroy-volumes": (self.not_supported("Persistent volumes"), post),
            "/quota": (self.quota, ("GET", "POST", "DELETE")),
            "/weights": (self.weights, ("GET", "PUT")),
            "/maintenance/schedule": (self.maintenance_schedule, ("GET", "POST")),
            "/maintenance/status": (self.maintenance_status, get),
            "/machine/down": (self.not_supported("Maintenance", status=501), post),
            "/machine/up": (self.not_supported("Maintenance", status=501), post),
        }

    # ------------------------------------------------------------------ shapes

    def _recovered_agents_json(self) -> list[dict[str, Any]]:
        """Agents from before this master took over that have not re-registered yet."""
        return [
            {
                "id": agent_id,
                "hostname": info.hostname,
                "port": info.port,
                "attributes": attributes_to_legacy(info.attributes),
            }
            for agent_id, info in self._master.state.recovered_agents.items()
        ]

    def _agent_json(self, agent: Agent) -> dict[str, Any]:
        master = self._master
        total = Resources(agent.info.resources)
        out: dict[str, Any] = {
            "id": agent.id,
            "pid": agent.pid,
            "hostname": agent.info.hostname,
            "port": agent.port,
            "attributes": attributes_to_legacy(agent.info.attributes),
            "registered_time": agent.registered_time,
            "resources": resources_to_legacy(total),
            "used_resources": resources_to_legacy(views.agent_allocated(agent)),
            "offered_resources": resources_to_legacy(views.agent_offered(master, agent)),
            "reserved_resources": {
                role: resources_to_legacy(reserved)
                for role, reserved in sorted(total.reservations_by_role().items())
            },
            "unreserved_resources": resources_to_legacy(total.unreserved()),
            "active": agent.connected and not agent.deactivated,
            "deactivated": agent.deactivated,
            "version": agent.version,
            "capabilities": [
                mesos_pb2.AgentInfo.Capability.Type.Name(c.type) for c in agent.capabilities
            ],
        }
        if agent.reregistered_time is not None:
            out["reregistered_time"] = agent.reregistered_time
        if agent.info.HasField("domain"):
            out["domain"] = to_json_dict(agent.info.domain)
        return out

    def _framework_json(self, framework: Framework) -> dict[str, Any]:
        master = self._master
        info = framework.info
        allocated = views.framework_allocated(framework)
        out: dict[str, Any] = {
            "id": framework.id,
            "name": info.name,
            "used_resources": resources_to_legacy(allocated),
            "offered_resources": resources_to_legacy(views.framework_offered(master, framework)),
            "resources": resources_to_legacy(allocated),
            "capabilities": [
                mesos_pb2.FrameworkInfo.Capability.Type.Name(c.type) for c in info.capabilities
            ],
            "hostname": info.hostname,
            "webui_url": info.webui_url,
            "active": framework.active,
            "connected": framework.connected,
            "recovered": framework.recovered,
            "user": info.user,
            "failover_timeout": info.failover_timeout,
            "checkpoint": info.checkpoint,
            "registered_time": framework.registered_time,
            "unregistered_time": framework.unregistered_time or 0.0,
            "tasks": [task_to_legacy(task) for task in framework.tasks.values()],
            "unreachable_tasks": [
                task_to_legacy(task) for task in framework.unreachable_tasks.values()
            ],
            "completed_tasks": [task_to_legacy(task) for task in framework.completed_tasks],
            "offers": [self._offer_json(offer_id) for offer_id in sorted(framework.offer_ids)],
            "executors": [
                self._executor_json(agent_id, executor)
                for agent_id, executors in framework.executors.items()
                for executor in executors.values()
            ],
            "offer_constraints": (
                to_json_dict(framework.offer_constraints) if framework.offer_constraints else {}
            ),
        }
        if any(c.type == mesos_pb2.FrameworkInfo.Capability.MULTI_ROLE for c in info.capabilities):
            out["roles"] = list(info.roles)
        else:
            out["role"] = info.role
        if info.HasField("principal"):
            out["principal"] = info.principal
        if framework.reregistered_time is not None:
            out["reregistered_time"] = framework.reregistered_time
        if info.HasField("labels"):
            out["labels"] = labels_to_legacy(info.labels)
        return out

    def _offer_json(self, offer_id: str) -> dict[str, Any]:
        record = self._master.state.offers[offer_id]
        return {
            "id": offer_id,
            "framework_id": record.framework_id,
            "slave_id": record.agent_id,
            "allocation_info": {"role": record.role},
            "resources": resources_to_legacy(record.resources),
        }

    @staticmethod
    def _executor_json(agent_id: str, executor: mesos_pb2.ExecutorInfo) -> dict[str, Any]:
        command = executor.command
        out: dict[str, Any] = {
            "executor_id": executor.executor_id.value,
            "name": executor.name,
            "framework_id": executor.framework_id.value,
            "command": {
                "argv": list(command.arguments),
                "uris": [
                    {"value": uri.value, "executable": uri.executable} for uri in command.uris
                ],
            },
            "resources": resources_to_legacy(executor.resources),
            "slave_id": agent_id,
        }
        if command.HasField("shell"):
            out["command"]["shell"] = command.shell
        if command.HasField("value"):
            out["command"]["value"] = command.value
        if command.HasField("environment"):
            out["command"]["environment"] = to_json_dict(command.environment)
        if executor.resources and executor.resources[0].allocation_info.HasField("role"):
            out["role"] = executor.resources[0].allocation_info.role
        if executor.HasField("labels"):
            out["labels"] = labels_to_legacy(executor.labels)
        if executor.HasField("type"):
            out["type"] = mesos_pb2.ExecutorInfo.Type.Name(executor.type)
        return out

    # ------------------------------------------------------------------ endpoints

    async def state(self, request: Request) -> Response:
        master = self._master
        state = master.state
        info = master.info
        agents = list(state.agents.values())
        body: dict[str, Any] = {
            "version": MESOS_VERSION,
            "build_date": BUILD_DATE,
            "build_time": BUILD_TIME,
            "build_user": BUILD_USER,
            "start_time": master.start_time,
            "elected_time": master.elected_time,
            "id": info.id,
            "pid": info.pid,
            "hostname": info.hostname,
            "capabilities": _MASTER_CAPABILITIES,
            "activated_slaves": sum(1 for a in agents if a.connected and not a.deactivated),
            "deactivated_slaves": sum(1 for a in agents if not a.connected or a.deactivated),
            "unreachable_slaves": len(state.unreachable_agents),
            "leader": info.pid,
            "leader_info": {
                "id": info.id,
                "pid": info.pid,
                "port": info.port,
                "hostname": info.hostname,
            },
            "flags": master.config.flags(),
            "slaves": [self._agent_json(agent) for agent in agents],
            "recovered_slaves": self._recovered_agents_json(),
            "frameworks": [self._framework_json(f) for f in state.frameworks.values()],
            "completed_frameworks": [
                self._framework_json(f) for f in state.completed_frameworks.values()
            ],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        }
        if master.config.cluster:
            body["cluster"] = master.config.cluster
        if master.config.log_file is not None:
            body["log_dir"] = str(master.config.log_file.parent)
            body["external_log_file"] = str(master.config.log_file)
        return _jsonp(request, body)

    async def state_summary(self, request: Request) -> Response:
        master = self._master
        state = master.state
        agents = []
        for agent in state.agents.values():
            counts: Counter[str] = Counter()
            for task in agent.all_tasks():
                counts[mesos_pb2.TaskState.Name(task.state)] += 1
            entry = {
                "id": agent.id,
                "pid": agent.pid,
                "hostname": agent.info.hostname,
                "registered_time": agent.registered_time,
                "resources": resources_to_legacy(agent.info.resources),
                "used_resources": resources_to_legacy(views.agent_allocated(agent)),
                "offered_resources": resources_to_legacy(views.agent_offered(master, agent)),
                "attributes": attributes_to_legacy(agent.info.attributes),
                "active": agent.connected and not agent.deactivated,
                "version": agent.version,
                "framework_ids": sorted(agent.tasks.keys() | agent.executors.keys()),
            }
            entry.update({name: counts[name] for name in _TASK_STATE_NAMES})
            agents.append(entry)
        frameworks = []
        for framework in state.frameworks.values():
            counts = Counter(mesos_pb2.TaskState.Name(t.state) for t in framework.tasks.values())
            agent_ids = {t.agent_id.value for t in framework.tasks.values()} | set(
                framework.executors
            )
            entry = {
                "id": framework.id,
                "name": framework.info.name,
                "used_resources": resources_to_legacy(views.framework_allocated(framework)),
                "offered_resources": resources_to_legacy(
                    views.framework_offered(master, framework)
                ),
                "capabilities": [
                    mesos_pb2.FrameworkInfo.Capability.Type.Name(c.type)
                    for c in framework.info.capabilities
                ],
                "hostname": framework.info.hostname,
                "webui_url": framework.info.webui_url,
                "active": framework.active,
                "connected": framework.connected,
                "recovered": framework.recovered,
                "slave_ids": sorted(agent_ids),
            }
            entry.update({name: counts[name] for name in _TASK_STATE_NAMES})
            frameworks.append(entry)
        body: dict[str, Any] = {
            "hostname": master.info.hostname,
            "slaves": agents,
            "frameworks": frameworks,
        }
        if master.config.cluster:
            body["cluster"] = master.config.cluster
        return _jsonp(request, body)

    async def slaves(self, request: Request) -> Response:
        wanted = request.query_params.get("slave_id")
        agents = [
            self._agent_json(agent)
            for agent in self._master.state.agents.values()
            if wanted is None or agent.id == wanted
        ]
        return _jsonp(
            request, {"slaves": agents, "recovered_slaves": self._recovered_agents_json()}
        )

    async def frameworks(self, request: Request) -> Response:
        wanted = request.query_params.get("framework_id")
        state = self._master.state

        def pick(frameworks: Iterable[Framework]) -> list[dict[str, Any]]:
            return [self._framework_json(f) for f in frameworks if wanted is None or f.id == wanted]

        return _jsonp(
            request,
            {
                "frameworks": pick(state.frameworks.values()),
                "completed_frameworks": pick(state.completed_frameworks.values()),
                "unregistered_frameworks": [],
            },
        )

    async def tasks(self, request: Request) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("limit", "100"))
            offset = int(query.get("offset", "0"))
        except ValueError:
            raise HttpError(400, "Failed to parse 'limit' or 'offset': not a number") from None
        framework_id = query.get("framework_id")
        task_id = query.get("task_id")
        state = self._master.state
        tasks: list[mesos_pb2.Task] = []
        for framework in [*state.frameworks.values(), *state.completed_frameworks.values()]:
            if framework_id is not None and framework.id != framework_id:
                continue
            tasks.extend(framework.tasks.values())
            tasks.extend(framework.unreachable_tasks.values())
            tasks.extend(framework.completed_tasks)
        if task_id is not None:
            tasks = [task for task in tasks if task.task_id.value == task_id]

        def first_seen(task: mesos_pb2.Task) -> float:
            return task.statuses[0].timestamp if task.statuses else 0.0

        tasks.sort(key=first_seen, reverse=query.get("order", "des") != "asc")
        tasks = tasks[max(0, offset) :]
        if limit >= 0:
            tasks = tasks[:limit]
        return _jsonp(request, {"tasks": [task_to_legacy(task) for task in tasks]})

    async def roles(self, request: Request) -> Response:
        master = self._master
        allocated_by_role: dict[str, Resources] = {}
        for framework in master.state.frameworks.values():
            for role, resources in views.framework_allocated(framework).allocations().items():
                allocated_by_role[role] = allocated_by_role.get(role, Resources()) + resources
        offered_by_role: dict[str, Resources] = {}
        for record in master.state.offers.values():
            offered_by_role[record.role] = (
                offered_by_role.get(record.role, Resources()) + record.resources
            )
        reserved_by_role: dict[str, Resources] = {}
        for agent in master.state.agents.values():
            for role, reserved in Resources(agent.info.resources).reservations_by_role().items():
                reserved_by_role[role] = reserved_by_role.get(role, Resources()) + reserved
        roles = []
        for role, frameworks in sorted(views.known_roles(master).items()):
            allocated = allocated_by_role.get(role, Resources())
            roles.append(
                {
                    "name": role,
                    "weight": master.weights.get(role, 1.0),
                    "quota": {"role": role, "guarantee": {}, "limit": {}, "consumed": {}},
                    "resources": resources_to_legacy(allocated),
                    "allocated": resources_to_legacy(allocated),
                    "offered": resources_to_legacy(offered_by_role.get(role, Resources())),
                    "reserved": resources_to_legacy(reserved_by_role.get(role, Resources())),
                    "frameworks": [framework.id for framework in frameworks],
                }
            )
        return _jsonp(request, {"roles": roles})

    async def flags(self, request: Request) -> Response:
        return _jsonp(request, {"flags": self._master.config.flags()})

    async def health(self, request: Request) -> Response:
        return Response(b"", status_code=200)

    async def version(self, request: Request) -> Response:
        return _jsonp(
            request,
            {
                "version": MESOS_VERSION,
                "build_date": BUILD_DATE,
                "build_time": BUILD_TIME,
                "build_user": BUILD_USER,
            },
        )

    async def metrics(self, request: Request) -> Response:
        return _jsonp(request, metrics_snapshot(self._master))

    async def teardown(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        framework_ids = form.get("frameworkId") or []
        if not framework_ids:
            raise HttpError(400, "Missing 'frameworkId' query parameter in the request body")
        framework = self._master.state.frameworks.get(framework_ids[0])
        if framework is None:
            raise HttpError(400, "No framework found with specified ID")
        self._master.frameworks.remove(framework)
        return Response(b"", status_code=200)

    # ------------------------------------------------------------------ files

    async def files_browse(self, request: Request) -> Response:
        path = self._required_path(request)
        try:
            infos = await anyio.to_thread.run_sync(self._master.files.browse, path)
        except (FileNotFound, OSError):
            raise HttpError(404, f"Path '{path}' not found") from None
        return _jsonp(
            request,
            [
                {
                    "path": info.path,
                    "nlink": info.nlink,
                    "size": info.size,
                    "mtime": info.mtime.nanoseconds / 1e9,
                    "mode": file_mode_string(info.mode),
                    "uid": info.uid,
                    "gid": info.gid,
                }
                for info in infos
            ],
        )

    async def files_read(self, request: Request) -> Response:
        path = self._required_path(request)
        try:
            offset = int(request.query_params.get("offset", "-1"))
            length_text = request.query_params.get("length")
            length = int(length_text) if length_text is not None else None
        except ValueError:
            raise HttpError(400, "Failed to parse 'offset' or 'length': not a number") from None
        if length is not None and length < 0:
            length = None
        try:
            size, data = await anyio.to_thread.run_sync(
                self._master.files.read, path, offset, length
            )
        except IsADirectoryError:
            raise HttpError(400, f"Cannot read a directory: '{path}'") from None
        except (FileNotFound, OSError):
            raise HttpError(404, f"Path '{path}' not found") from None
        if offset < 0:
            return _jsonp(request, {"offset": size, "data": ""})
        return _jsonp(request, {"offset": offset, "data": data.decode("utf-8", "replace")})

    async def files_download(self, request: Request) -> Response:
        path = self._required_path(request)

        def load() -> bytes:
            real = self._master.files.resolve(path)
            if real.is_dir():
                raise IsADirectoryError(path)
            return real.read_bytes()

        try:
            data = await anyio.to_thread.run_sync(load)
        except IsADirectoryError:
            raise HttpError(400, f"Cannot download a directory: '{path}'") from None
        except (FileNotFound, OSError):
            raise HttpError(404, f"Path '{path}' not found") from None
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def files_debug(self, request: Request) -> Response:
        return _jsonp(request, self._master.files.debug())

    @staticmethod
    def _required_path(request: Request) -> str:
        path = request.query_params.get("path")
        if not path:
            raise HttpError(400, "Expecting 'path' in query string")
        return path

    # ------------------------------------------------------------------ admin (refused)

    def not_supported(self, what: str, status: int = 409) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            raise HttpError(status, f"{what} are not supported by this master yet")

        return endpoint

    async def quota(self, request: Request) -> Response:
        if request.method == "GET":
            return _jsonp(request, {"infos": []})
        raise HttpError(501, "Quota is not supported by this master yet")

    async def weights(self, request: Request) -> Response:
        master = self._master
        if request.method == "GET":
            return _jsonp(
                request,
                [
                    {"weight": weight, "role": role}
                    for role, weight in sorted(master.weights.items())
                ],
            )
        try:
            raw = json.loads(await request.body())
            if not isinstance(raw, list):
                raise JsonConversionError("Expecting a JSON array of weight infos")
            infos = [from_json(item, mesos_pb2.WeightInfo) for item in raw]
        except (ValueError, JsonParseError, JsonConversionError) as error:
            raise HttpError(400, f"Failed to parse update weights request JSON: {error}") from None
        update_weights(master, infos)
        await master.leadership.recorded()
        return Response(b"", status_code=200)

    async def maintenance_schedule(self, request: Request) -> Response:
        if request.method == "GET":
            return _jsonp(request, {})
        raise HttpError(501, "Maintenance is not supported by this master yet")

    async def maintenance_status(self, request: Request) -> Response:
        return _jsonp(request, {})
