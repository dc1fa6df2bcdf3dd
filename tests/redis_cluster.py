"""A real Redis Cluster for tests: three ``redis-server --cluster-enabled yes`` masters on free loopback ports, each
in a temporary folder of its own, joined by ``redis-cli --cluster create``; stopped (and the folders removed)
afterwards.

As for tests/redis_server.py, a missing ``redis-server`` or ``redis-cli`` fails the test with the command to install
it, never skips it.

Each node needs two ports: its client port ``P`` and its cluster bus port ``P + 10000``. Both are probed free before
the nodes start, taken below the kernel's ephemeral range when there is room (so outgoing connections, which take
their local port from that range, cannot grab them in between), and a node that still loses a port to another
process is seen exiting: the start is then tried again on other ports.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

__all__ = ["RedisCluster"]

HOST = "127.0.0.1"
BUS_OFFSET = 10000
"""Redis Cluster's bus port is the client port plus this."""

NODES = 3


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = "redis-server" if name == "redis-server" else "redis-tools"
        raise RuntimeError(f"{name} is not installed: apt-get install {package} (Debian)")
    return found


def _ephemeral_low() -> int:
    # The first port of the kernel's range for outgoing connections (Linux; 32768 elsewhere, a common default).
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _probe(port: int) -> socket.socket | None:
    # A socket bound to `port` on HOST (kept open by the caller while more ports are picked), or None when taken.
    sock = socket.socket()
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        return None
    return sock


def pick_ports(count: int = NODES, rng: random.Random | None = None) -> list[int]:
    """``count`` distinct client ports ``P`` on 127.0.0.1 such that ``P`` and ``P + 10000`` are both free now."""
    rng = rng or random.Random()
    low, high = 10000, _ephemeral_low() - BUS_OFFSET  # P and P + 10000 both below the ephemeral range
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(1000):
            if len(ports) == count:
                return ports
            if high - low >= 1000:
                port = rng.randrange(low, high)
            else:  # no room below the ephemeral range: any port the kernel gives whose bus port exists
                with socket.socket() as sock:
                    sock.bind((HOST, 0))
                    port = int(sock.getsockname()[1])
                if port + BUS_OFFSET > 65535:
                    continue
            if any(abs(port - p) in (0, BUS_OFFSET) for p in ports):
                continue
            client = _probe(port)
            if client is None:
                continue
            bus = _probe(port + BUS_OFFSET)
            if bus is None:
                client.close()
                continue
            held += [client, bus]
            ports.append(port)
        raise RuntimeError(f"found no {count} free port pairs (P, P + {BUS_OFFSET}) on {HOST}")
    finally:
        for sock in held:
            sock.close()


class _NodeExited(RuntimeError):
    """A node exited while starting (most likely a port taken in between): the start is retried on other ports."""


class _Node:
    def __init__(self, binary: str, port: int) -> None:
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix=f"noa-redis-cluster-{port}-"))
        self.log_path = self.folder / "redis.log"
        args = [binary, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        args += ["--cluster-node-timeout", "5000", "--port", str(port), "--bind", HOST, "--dir", str(self.folder)]
        args += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        with self.log_path.open("wb") as log:  # the server logs to stdout; the child keeps its own descriptor
            self.process = subprocess.Popen(
                args, cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.client = redis.Redis(host=HOST, port=port, socket_timeout=2, socket_connect_timeout=1)

    def log(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-20:])

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise _NodeExited(f"node {self.port} exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(redis.RedisError):
                if self.client.ping():
                    return
            time.sleep(0.02)
        raise RuntimeError(f"node {self.port} did not answer within the start timeout:\n{self.log()}")

    def info(self) -> dict[str, str]:
        # redis-py parses the answer into a dict; older versions give the raw text.
        raw = self.client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        if isinstance(raw, dict):
            return {_text(name): _text(value) for name, value in raw.items()}
        return dict(line.split(":", 1) for line in _text(raw).splitlines() if ":" in line)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisCluster:
    """Three Redis Cluster masters (no replicas) on 127.0.0.1, all 16384 slots assigned, ``cluster_state:ok``.

    ``url`` is ``redis+cluster://127.0.0.1:P1`` (the first node), ``nodes`` the ``(host, port)`` of every node;
    :meth:`stop` stops every node and removes its folder. Raises :class:`RuntimeError` (after stopping whatever
    started) when the cluster is not up within ``timeout`` seconds of its creation, with the nodes' logs.
    """

    def __init__(self, timeout: float = 20.0, attempts: int = 5) -> None:
        server, cli = _binary("redis-server"), _binary("redis-cli")
        self._nodes: list[_Node] = []
        for attempt in range(attempts):
            try:
                self._start(server, ports=pick_ports())
                break
            except _NodeExited:  # a port was taken between the probe and the start: other ports
                self.stop()
                if attempt == attempts - 1:
                    raise
        try:
            self._create(cli, timeout)
        except BaseException:
            self.stop()
            raise
        self.nodes: list[tuple[str, int]] = [(HOST, node.port) for node in self._nodes]
        self.url = f"redis+cluster://{HOST}:{self._nodes[0].port}"

    def _start(self, binary: str, ports: list[int]) -> None:
        self._nodes = []
        for port in ports:
            self._nodes.append(_Node(binary, port))
        deadline = time.monotonic() + 10.0
        for node in self._nodes:
            node.wait_ready(deadline)

    def _create(self, cli: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        addresses = [f"{HOST}:{node.port}" for node in self._nodes]
        try:
            created = subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"redis-cli --cluster create took over {timeout} s:\n{_text(exc.stdout or b'')}\n"
                + f"{_text(exc.stderr or b'')}\n"
                + self._logs()
            ) from None
        if created.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create exited with {created.returncode}:\n{created.stdout}\n{created.stderr}\n"
                + self._logs()
            )
        last: dict[int, dict[str, str] | str] = {}
        while time.monotonic() < deadline:
            for node in self._nodes:
                if node.process.poll() is not None:
                    raise RuntimeError(f"node {node.port} exited with {node.process.returncode}\n" + self._logs())
                try:
                    last[node.port] = node.info()
                except redis.RedisError as exc:
                    last[node.port] = repr(exc)
            if all(_up(info) for info in last.values()):
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"the cluster was not up within {timeout} s: {last}\nredis-cli:\n{created.stdout}\n{created.stderr}\n"
            + self._logs()
        )

    def _logs(self) -> str:
        return "\n".join(f"--- node {node.port}:\n{node.log()}" for node in self._nodes)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and remove its folder."""
        nodes, self._nodes = self._nodes, []
        for node in nodes:  # every node is told first, then waited for: they shut down together
            node.client.close()
            if node.process.poll() is None:
                node.process.terminate()
        for node in nodes:
            node.stop()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _up(info: dict[str, str] | str) -> bool:
    # One node's CLUSTER INFO says the cluster is whole: state ok, every slot assigned, every node known.
    return (
        isinstance(info, dict)
        and info.get("cluster_state") == "ok"
        and info.get("cluster_slots_assigned") == "16384"
        and info.get("cluster_known_nodes") == str(NODES)
    )
