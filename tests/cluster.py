"""A 3-node NATS cluster with JetStream on 127.0.0.1, for tests that lose a node.

Each node is a real ``nats-server`` process with its own config file, store directory, client
port, cluster (route) port and monitoring port. Readiness is read from the monitoring endpoints
rather than guessed: ``/healthz`` answers 200 only once a node's JetStream is current with the meta
leader (and, after a restart, with every stream and consumer it hosts), and ``/jsz`` names the meta
leader, so :meth:`NatsCluster.wait_healthy` returns only when the cluster can serve JetStream.

A node can be SIGKILLed (as a crash would) and started again on the same ports and store. Every
process is stopped by :meth:`NatsCluster.stop`, by the context manager, and as a last resort by a
finalizer when the object is collected or the interpreter exits, so no nats-server outlives a test.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import nats
from nats.aio.client import Client as NATS

from naq.server import find_nats_server, free_port

HOST = "127.0.0.1"
CLUSTER_NAME = "naq-test"


class ClusterError(RuntimeError):
    """The cluster did not start, or did not become healthy, in time."""


def _http_json(port: int, path: str, timeout: float = 1.0) -> tuple[int, Any]:
    """GET ``http://127.0.0.1:port/path``; (status, decoded JSON) or (0, None) if unreachable.

    ``/healthz`` answers 503 with a JSON body while unhealthy, so error statuses are read too.
    """
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            return exc.code, json.loads(exc.read() or b"null")
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def _kill_all(procs: list[subprocess.Popen[bytes]]) -> None:
    # Finalizer: must not reference the cluster object, only the live process list.
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


@dataclass
class Node:
    """One nats-server of the cluster; ports and store survive a kill and restart."""

    name: str
    port: int
    cluster_port: int
    http_port: int
    store_dir: Path
    config_file: Path
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The client URL of this node."""
        return f"nats://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the node's process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def healthz(self) -> tuple[int, Any]:
        """The node's ``/healthz`` answer (status, body)."""
        return _http_json(self.http_port, "/healthz")

    def jsz(self) -> Any:
        """The node's ``/jsz`` answer, or None while it is unreachable."""
        status, body = _http_json(self.http_port, "/jsz")
        return body if status == 200 else None

    def connection_names(self) -> list[str]:
        """Names of the client connections open on this node right now (from ``/connz``)."""
        status, body = _http_json(self.http_port, "/connz?limit=1024")
        if status != 200 or not body:
            return []
        return [conn.get("name", "") for conn in body.get("connections") or []]


class NatsCluster:
    """Three (or ``size``) clustered nats-servers with JetStream, configured under ``base``.

    Example::

        with NatsCluster(tmp_path) as cluster:
            os.environ["NAQ_NATS_URL"] = cluster.urls
            cluster.kill(cluster.node("n2"))
            cluster.restart(cluster.node("n2"))
    """

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        self.binary = find_nats_server()
        self.nodes: list[Node] = []
        # Ports are taken while none of the servers runs; a port taken by someone else between
        # here and start() makes that node fail to start, which start() reports with its log.
        taken: set[int] = set()

        def pick() -> int:
            while True:
                port = free_port(HOST)
                if port not in taken:
                    taken.add(port)
                    return port

        for index in range(1, size + 1):
            name = f"n{index}"
            node_dir = base / name
            self.nodes.append(
                Node(
                    name=name,
                    port=pick(),
                    cluster_port=pick(),
                    http_port=pick(),
                    store_dir=node_dir / "store",
                    config_file=node_dir / "nats.conf",
                    log_file=node_dir / "nats-server.log",
                )
            )
        self._procs: list[subprocess.Popen[bytes]] = []
        self._finalizer = weakref.finalize(self, _kill_all, self._procs)

    # -- addressing ---------------------------------------------------------------------------

    @property
    def urls(self) -> str:
        """Every node's client URL, comma separated (the form ``NAQ_NATS_URL`` takes)."""
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> Node:
        """The node whose ``server_name`` is ``name``.

        Raises:
            KeyError: no such node.
        """
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def node_with_connection(self, connection_name: str) -> Node | None:
        """The running node a client connection named ``connection_name`` is attached to."""
        for node in self.nodes:
            if node.running and connection_name in node.connection_names():
                return node
        return None

    def meta_leader(self) -> str | None:
        """The JetStream meta leader's server name, if every running node agrees on one."""
        leaders = set()
        for node in self.nodes:
            if not node.running:
                continue
            jsz = node.jsz()
            leaders.add(((jsz or {}).get("meta_cluster") or {}).get("leader") or None)
        if len(leaders) == 1:
            return leaders.pop()
        return None

    # -- lifecycle ----------------------------------------------------------------------------

    def _write_config(self, node: Node) -> None:
        routes = ", ".join(
            f'"nats-route://{HOST}:{other.cluster_port}"'
            for other in self.nodes
            if other is not node
        )
        node.config_file.parent.mkdir(parents=True, exist_ok=True)
        node.store_dir.mkdir(parents=True, exist_ok=True)
        node.config_file.write_text(
            f"""server_name: "{node.name}"
listen: "{HOST}:{node.port}"
http: "{HOST}:{node.http_port}"
jetstream {{
  store_dir: "{node.store_dir}"
}}
cluster {{
  name: "{CLUSTER_NAME}"
  listen: "{HOST}:{node.cluster_port}"
  routes: [{routes}]
}}
"""
        )

    def _spawn(self, node: Node) -> None:
        if node.running:
            return
        self._reap(node)
        if not node.config_file.exists():
            self._write_config(node)
        # Append: the log of a killed node survives its restart, for post-mortems.
        node._log = open(node.log_file, "ab")  # closed in _reap()
        node.proc = subprocess.Popen(
            [self.binary, "-c", str(node.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=node._log,
            stderr=subprocess.STDOUT,
        )
        self._procs.append(node.proc)

    def start(self, timeout: float = 30.0) -> NatsCluster:
        """Start every node and wait until the cluster is healthy.

        Raises:
            ClusterError: a node exited, or the cluster was not healthy within ``timeout`` s
                (stopped again before raising, so nothing is left behind).
        """
        try:
            for node in self.nodes:
                self._spawn(node)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float = 30.0) -> str:
        """Wait until every running node is healthy and all agree on a meta leader.

        Returns the meta leader's name.

        Raises:
            ClusterError: a node died, or the condition did not hold within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    raise ClusterError(
                        f"nats-server {node.name} exited with code {node.proc.returncode} "
                        f"(see {node.log_file})"
                    )
            running = [node for node in self.nodes if node.running]
            health = {node.name: node.healthz() for node in running}
            leader = self.meta_leader()
            if leader and all(status == 200 for status, _ in health.values()):
                return leader
            last = f"meta leader {leader!r}, health {health}"
            if time.monotonic() > deadline:
                raise ClusterError(f"cluster not healthy after {timeout:g}s: {last}")
            time.sleep(0.1)

    def kill(self, node: Node) -> None:
        """SIGKILL ``node`` (no shutdown, no flush: a crash); its store and ports are kept."""
        if node.proc is not None and node.proc.poll() is None:
            with contextlib.suppress(OSError):
                node.proc.kill()
        self._reap(node)

    def restart(self, node: Node, timeout: float = 30.0) -> None:
        """Start ``node`` again on its store and ports; wait until the cluster is healthy.

        Raises:
            ClusterError: as :meth:`wait_healthy`.
        """
        self._spawn(node)
        self.wait_healthy(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every node: SIGTERM, then SIGKILL whatever is still alive after ``timeout`` s.

        Idempotent; never raises for a node that is already gone.
        """
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(OSError):
                    node.proc.terminate()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):
                        node.proc.kill()
            self._reap(node)

    def _reap(self, node: Node) -> None:
        """Collect the node's exited process (no zombie) and close its log handle."""
        if node.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(timeout=5)
            if node.proc.poll() is not None:
                with contextlib.suppress(ValueError):
                    self._procs.remove(node.proc)
            node.proc = None
        if node._log is not None:
            node._log.close()
            node._log = None

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- JetStream placement, through a plain nats-py connection ------------------------------------


async def connect(cluster: NatsCluster) -> NATS:
    """A nats-py connection to the cluster (any node) that gives up quickly when it is gone."""
    return await nats.connect(
        servers=[node.url for node in cluster.nodes], connect_timeout=2, max_reconnect_attempts=5
    )


async def move_stream_leader(nc: NATS, stream: str, to: str) -> None:
    """Ask ``stream``'s leader to step down in favour of server ``to`` (nats-server 2.11+).

    The caller checks the outcome with ``stream_info``: a step-down is a request, not a promise.
    """
    body = json.dumps({"placement": {"preferred": to}}).encode()
    await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", body, timeout=5)


async def move_consumer_leader(nc: NATS, stream: str, consumer: str, to: str) -> None:
    """Ask a consumer's leader to step down in favour of server ``to`` (nats-server 2.11+)."""
    body = json.dumps({"placement": {"preferred": to}}).encode()
    await nc.request(f"$JS.API.CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}", body, timeout=5)
