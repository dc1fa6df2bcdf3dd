"""Real Redis deployments other than one plain server, for tests: a Sentinel watching a master, and a server that
speaks TLS only, with a certificate authority and a server certificate made by the ``openssl`` command.

As for tests/redis_server.py, a missing ``redis-server`` or ``openssl``, or a ``redis-server`` built without TLS,
fails the test with what to install, never skips it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.redis_server import free_port

__all__ = ["CertificateAuthority", "RedisSentinel", "TlsRedisServer", "make_ca"]

HOST = "127.0.0.1"


def _binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: apt-get install {package} (Debian)")
    return found


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------------------- Sentinel


class RedisSentinel:
    """One ``redis-server --sentinel`` on 127.0.0.1 monitoring ``service`` at ``127.0.0.1:master_port`` (quorum 1,
    ``down-after-milliseconds 1000``), in a temporary folder of its own (a sentinel rewrites its config file).

    Ready once ``SENTINEL get-master-addr-by-name`` answers the master's address; ``port`` is the sentinel's.
    :meth:`stop` stops it and removes the folder.
    """

    def __init__(self, master_port: int, service: str = "mymaster", timeout: float = 10.0) -> None:
        binary = _binary("redis-server", "redis-server")
        self.service = service
        self.master_port = master_port
        self.folder = Path(tempfile.mkdtemp(prefix="noa-redis-sentinel-"))
        self.port = free_port()
        self.log_path = self.folder / "sentinel.log"
        config = self.folder / "sentinel.conf"
        config.write_text(
            f"port {self.port}\n"
            f"bind {HOST}\n"
            f"dir {self.folder}\n"
            f"sentinel monitor {service} {HOST} {master_port} 1\n"
            f"sentinel down-after-milliseconds {service} 1000\n"
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, str(config), "--sentinel"],
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.client = redis.Redis(
            host=HOST, port=self.port, socket_timeout=2, socket_connect_timeout=1, decode_responses=True
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        answer: Any = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server --sentinel exited with {self.process.returncode}:\n{_tail(self.log_path)}"
                )
            with contextlib.suppress(redis.RedisError):
                answer = self.client.sentinel_get_master_addr_by_name(self.service)
                if answer is not None and (answer[0], int(answer[1])) == (HOST, self.master_port):
                    return
            time.sleep(0.02)
        raise RuntimeError(
            f"the sentinel on port {self.port} did not name master {self.service} within {timeout} s "
            f"(last answer {answer!r}):\n{_tail(self.log_path)}"
        )

    def master_address(self) -> tuple[str, int]:
        """The master's ``(host, port)`` as the sentinel names it now."""
        answer: Any = self.client.sentinel_get_master_addr_by_name(self.service)
        return str(answer[0]), int(answer[1])

    def stop(self) -> None:
        """Stop the sentinel (SIGTERM, then SIGKILL) and remove its folder."""
        self.client.close()
        _stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA (``cert``, ``key``: PEM files) and the folder it lives in."""

    folder: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = _binary("openssl", "openssl")
    done = subprocess.run(
        [binary, *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(folder: Path, name: str = "noa-test-ca") -> CertificateAuthority:
    """A self-signed certificate authority named ``name`` in ``folder`` (P-256 key, valid two days)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl(
        "req", "-x509", *_EC_KEY, "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return CertificateAuthority(folder, cert, key)


def make_server_cert(ca: CertificateAuthority, name: str = "server") -> tuple[Path, Path]:
    """A certificate for ``127.0.0.1`` (CN and subjectAltName IP) signed by ``ca``: ``(cert, key)`` in its folder."""
    folder = ca.folder
    cert, key, request = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName=IP:{HOST}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl("req", "-new", *_EC_KEY, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={HOST}", cwd=folder)
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(extensions),
        cwd=folder,
    )  # fmt: skip
    return cert, key


class TlsRedisServer:
    """One ``redis-server`` that speaks TLS only (``--port 0 --tls-port P``) with a certificate for 127.0.0.1 made
    by a CA of its own (``ca``), clients not asked for a certificate (``tls-auth-clients no``), no persistence.

    Fails (never skips) when ``redis-server`` was built without TLS. :meth:`stop` stops it and removes its folder,
    the certificates included.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        binary = _binary("redis-server", "redis-server")
        self.folder = Path(tempfile.mkdtemp(prefix="noa-redis-tls-"))
        self.process: subprocess.Popen[bytes] | None = None
        try:
            self.ca = make_ca(self.folder / "ca")
            self.cert, self.key = make_server_cert(self.ca)
            self.port = free_port()
            self.log_path = self.folder / "redis.log"
            args = [binary, "--port", "0", "--tls-port", str(self.port), "--bind", HOST, "--dir", str(self.folder)]
            args += ["--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key)]
            args += ["--tls-ca-cert-file", str(self.ca.cert), "--tls-auth-clients", "no"]
            args += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    args, cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last: object = None
        with redis.Redis(
            host=HOST, port=self.port, ssl=True, ssl_ca_certs=str(self.ca.cert), socket_timeout=2,
            socket_connect_timeout=1, retry=Retry(NoBackoff(), 0),
        ) as client:  # fmt: skip
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    log = _tail(self.log_path)
                    if "tls-port" in log and ("Bad directive" in log or "not supported" in log.lower()):
                        raise RuntimeError(
                            "this redis-server was built without TLS (it refuses --tls-port): install one built "
                            "with BUILD_TLS=yes, e.g. apt-get install redis-server (Debian's is)\n" + log
                        )
                    raise RuntimeError(f"redis-server (TLS) exited with {self.process.returncode}:\n{log}")
                try:
                    if client.ping():
                        return
                except redis.RedisError as exc:
                    last = exc
                time.sleep(0.02)
        raise RuntimeError(
            f"redis-server (TLS) did not answer on port {self.port} within {timeout} s ({last!r}):\n"
            + _tail(self.log_path)
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its folder."""
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)
