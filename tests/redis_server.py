"""A real ``redis-server`` for tests: started on a free loopback port in a temporary folder, stopped afterwards.

Tests that need Redis use the session fixture ``redis_url`` (tests/conftest.py). A missing ``redis-server`` fails
the test with the command to install it, never skips it: in CI these tests must run (``.ci/run`` installs the
Debian package when it is absent).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from decimal import Decimal
from importlib import resources
from pathlib import Path

__all__ = ["RedisServer", "free_port", "lua", "plain"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process, without persistence, listening on 127.0.0.1 only."""

    def __init__(self, *extra: str, port: int | None = None, folder: Path | None = None) -> None:
        """Start one; ``extra`` arguments override the defaults (``"--appendonly", "yes"`` for a server whose data
        survives a restart). ``port`` and ``folder``: those of a server stopped with ``keep=True``, to restart it."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server (Debian)")
        self.folder = folder or Path(tempfile.mkdtemp(prefix="noa-redis-"))
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.extra = extra
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--save", "", "--appendonly", "no", "--protected-mode", "yes", *extra]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def restart(self) -> RedisServer:
        """A new server on this one's port and folder (stopped before with ``stop(keep=True)``)."""
        return RedisServer(*self.extra, port=self.port, folder=self.folder)

    def stop(self, *, keep: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its folder (with ``keep``, leave it for a restart)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        if not keep:
            shutil.rmtree(self.folder, ignore_errors=True)


def lua(name: str) -> str:
    """The source of the Redis store's Lua library ``name`` (``stores/lua/<name>.lua``)."""
    return resources.files("noa_ai_provider.stores").joinpath(f"lua/{name}.lua").read_text()


def plain(value: Decimal) -> str:
    """How money travels to a script: a plain decimal string, never an exponent."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
