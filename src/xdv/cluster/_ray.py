"""The Ray backend: cluster nodes as Ray actors.

:func:`start_ray` joins the Ray cluster at an address (``ray start --head`` on one machine,
``ray start --address HEAD:6379`` on the others) or starts a local one. :class:`RayBackend`
creates one actor per node (``ray.remote(ClusterNode)``), spread over Ray's nodes, each with
this process's ``xdv`` on its import path, and carries the coordinator's calls to them; a call
whose actor died raises :class:`~xdv.cluster.NodeLost`. Only plain data crosses Ray: job
records, result records, trace bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xdv.cluster._coordinator import ClusterRun, Coordinator, NodeLost
from xdv.cluster._jobs import JobSpec
from xdv.cluster._node import ClusterNode
from xdv.cluster._placement import PlacementPolicy
from xdv.errors import ErrorCode, XdvError
from xdv.security import HybridKeyPair

__all__ = ["RayBackend", "run_on_ray", "start_ray", "worker_env"]

_OBJECT_STORE_BYTES = 200 * 1024 * 1024


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise XdvError(
            "the cluster needs Ray: pip install 'xdv[cluster]'",
            code=ErrorCode.CLUSTER_UNAVAILABLE,
            where="cluster",
        ) from None
    return ray


def worker_env() -> dict[str, str]:
    """The environment Ray workers get: this process's ``xdv`` first on PYTHONPATH (so the
    actors run the same code as the coordinator), quiet Ray logs."""
    source = str(Path(__file__).resolve().parents[2])
    paths = [source] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        "RAY_DEDUP_LOGS": "0",
        "XDV_HOME": os.environ.get("XDV_HOME", ""),
    }


def start_ray(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at ``address`` (``"auto"``, ``HOST:PORT``, ``ray://...``) or,
    without one, start a local Ray instance of ``num_cpus`` CPUs. Returns whether this call
    started or joined Ray (False when Ray was already initialized in this process)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    env = {key: value for key, value in worker_env().items() if value}
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": env},
        "logging_level": "ERROR",
    }
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                object_store_memory=_OBJECT_STORE_BYTES,
                **options,
            )
    except Exception as error:  # Ray's own errors: a wrong address, a failed start
        raise XdvError(
            f"cannot start or join Ray: {type(error).__name__}: {error}",
            code=ErrorCode.CLUSTER_UNAVAILABLE,
            where=address or "local Ray",
        ) from None
    return True


class RayBackend:
    """``count`` nodes (``node-1`` ... ``node-N``) as Ray actors. ``key_seeds`` gives them
    fixed keys (tests); ``actor_options`` per node adds Ray options (for example
    ``{"resources": {"slot-1": 1}}`` to pin a node to one Ray node); ``env_extra`` adds environment
    variables of the node processes (``OMP_NUM_THREADS``, say)."""

    def __init__(
        self,
        count: int,
        *,
        key_seeds: Sequence[bytes] | None = None,
        actor_options: Sequence[Mapping[str, Any]] | None = None,
        env_extra: Mapping[str, str] | None = None,
    ) -> None:
        if count < 1:
            raise XdvError(
                f"a cluster has at least one node, got {count}",
                code=ErrorCode.INVALID_ARGUMENT,
                where="--nodes",
            )
        ray = _ray()
        self._ray = ray
        remote = ray.remote(ClusterNode)
        env = {key: value for key, value in worker_env().items() if value}
        env.update(env_extra or {})
        self._actors: dict[str, Any] = {}
        width = len(str(count))
        for number in range(1, count + 1):
            name = f"node-{number:0{width}d}"
            options: dict[str, Any] = {
                "num_cpus": 0,
                "max_restarts": 0,
                "runtime_env": {"env_vars": env},
            }
            if actor_options is not None:
                options.update(actor_options[number - 1])
            else:
                options["scheduling_strategy"] = "SPREAD"
            seed = None if key_seeds is None else key_seeds[number - 1]
            self._actors[name] = remote.options(**options).remote(name, key_seed=seed)

    @property
    def nodes(self) -> list[str]:
        return sorted(self._actors)

    def actor(self, node: str) -> Any:
        """The Ray actor handle of ``node``."""
        return self._actors[node]

    def submit(self, node: str, method: str, *args: Any) -> Any:
        return getattr(self._actors[node], method).remote(*args)

    def result(self, node: str, handle: Any) -> Any:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(handle)
        except (exceptions.RayActorError, exceptions.ActorUnavailableError) as error:
            raise NodeLost(node, type(error).__name__) from None
        except exceptions.RayTaskError as error:  # the node refused (a handshake, a frame)
            raise NodeLost(
                node, str(error.cause) if error.cause else type(error).__name__
            ) from None

    def ready(self) -> None:
        """Wait until every actor has started (a ping answered)."""
        handles = {node: self.submit(node, "ping") for node in self.nodes}
        for node in self.nodes:
            self.result(node, handles[node])

    def kill(self, node: str) -> None:
        """Kill ``node``'s actor (it is not restarted)."""
        self._ray.kill(self._actors[node], no_restart=True)

    def shutdown(self) -> None:
        """Remove the nodes' working directories and end their actors."""
        handles = []
        for node in self.nodes:
            try:
                handles.append(self.submit(node, "shutdown"))
            except Exception:  # an actor already gone has nothing to remove
                continue
        with contextlib.suppress(Exception):  # a node that is gone answers nothing
            self._ray.wait(handles, num_returns=len(handles), timeout=10)
        for actor in self._actors.values():
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:
                continue


def run_on_ray(
    jobs: Sequence[JobSpec],
    *,
    nodes: int,
    keys: HybridKeyPair,
    policy: PlacementPolicy | None = None,
    address: str | None = None,
) -> ClusterRun:
    """Run ``jobs`` on ``nodes`` Ray actors (Ray started or joined as :func:`start_ray` does,
    and shut down again if this call started it); the coordinator's trace signed by ``keys``."""
    started = start_ray(address)
    try:
        backend = RayBackend(nodes)
        try:
            return Coordinator(backend, keys, policy=policy).run(jobs)
        finally:
            backend.shutdown()
    finally:
        if started:
            _ray().shutdown()
