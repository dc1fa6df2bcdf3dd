#!/usr/bin/env python
"""Benchmark of noa's Redis store: ``acquire`` and ``acquire`` + ``commit`` against a bare ``PING`` loop and against
``limits``' ``RedisStorage`` moving window doing the same job, on the same redis-server (issue 13).

The issue: "`acquire` + `commit` against a bare `PING` loop and against `limits`' `RedisStorage` moving window doing
the same job (a model with a request and a token limit: one hit at cost 1 and one at cost = tokens per request, two
round trips like ours, but neither atomic nor priced), at 1 and 500 tokens, on the same server. Targets: `acquire`
at least 60% of `PING` throughput; `acquire` + `commit` at least 1.0x `limits` at 1 token and at least 10x at 500
tokens (where `limits` stores one entry per unit of cost), flat as the window fills; memory per model reported."

    python bench/bench_redis.py                  # full run: 60k ops per variant, 1 and 500 tokens, 3 repeats
    python bench/bench_redis.py --quick          # smoke run: 5k ops, 1 repeat
    python bench/bench_redis.py --profile        # also cProfile noa's acquire + commit (client side)
    python bench/bench_redis.py --steady 80      # also noa's acquire + commit alone for 80 s: the windows slide
    python bench/bench_redis.py --url redis://host:6379/0   # an existing server instead of starting one
    python bench/bench_redis.py --json out.json  # also dump every run's figures

The variants, each in a fresh subprocess of this interpreter, one after the other on the same server (the order
reversed on every other repeat), each on its own keys:

- ``ping``: ``redis.Redis.from_url(url).ping()`` in a loop: one round trip and nothing else, the same client
  options as the store's.
- ``acquire``: noa's ``registry.acquire(key, tokens)`` alone. Each reservation is committed (``commit(0)``) right
  after it, so the windows fill exactly as in the next variant, but only the ``acquire`` calls are timed (a
  ``perf_counter`` pair around each, about 0.1 µs of a call of tens of µs).
- ``acquire-commit``: ``registry.acquire(key, tokens).commit(0)``: the full admit + record path, two round trips
  (one EVALSHA each), priced (the model has prices; commit computes the cost).
- ``limits``: ``limits``' ``MovingWindowRateLimiter`` on ``RedisStorage(url)``, two ``hit`` calls per operation on
  two ``RateLimitItemPerMinute`` items: the request limit at cost 1, then the token limit at cost = tokens. Two
  round trips too, but not atomic (the first hit stays taken when the second is refused) and nothing priced; the
  moving window stores one list entry per unit of cost, so at 500 tokens each operation pushes 501 entries.

The registry is ``EnhancedModelRegistry(backend=url + "?namespace=...")`` with one model whose limits are one request
and ``tokens`` tokens per operation more than the run needs (nothing is refused; after the run the token window must
hold every token: checked), a fresh namespace per run. The limits items are sized the same way.

All operations of a run fall within one 60 s window (entries never expire during a run: the windows only fill): a
variant still running after ``--budget`` seconds (default 50) of wall time, or whose ``limits`` lists would pass
``--max-entries`` entries, is stopped and reported as capped, with its op count; ratios against it then compare
throughput over the same number of operations, i.e. the same window fill. "Flat as the window fills": the
throughput of the first and of the last tenth of the operations.

Besides wall time, each worker reads the server's ``INFO commandstats`` and ``INFO cpu`` before and after its timed
loop: server-side µs per command (``usec_per_call``), server CPU per operation, and its own CPU per operation; it
counts the commands redis-py sends over 100 more operations (round trips per operation). After a noa run (window
full) it times 2,000 more acquires held open and then their commits, separately: the server-side µs of the acquire
script and of the commit script; then it sums ``MEMORY USAGE <key> SAMPLES 0`` over the namespace's keys
(``SCAN MATCH *{noa:NAME}*``, also by kind of key; and ``RedisStore.memory_usage(key)``).

``--steady SECONDS`` (more than 70) also runs noa's acquire + commit alone that long, past the 60 s window, so the
windows slide (each acquire also drops the entries that left its window): the throughput of the first and of the
last 10 s, the scripts' server µs and the memory at the end.

Needs ``redis`` and ``limits>=5,<6`` (``pip install -e '.[bench,redis]'``) and, unless ``--url`` is given, a
``redis-server`` binary (started on a free loopback port, without persistence, stopped at the end).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import noa_ai_provider
from _common import REPO_ROOT, cpu_model  # also makes the package importable
from noa_ai_provider import EnhancedModelRegistry

try:
    from noa_ai_provider.stores.redis import RedisStore
except ImportError:  # the store not written yet: its variants fail with ConfigError, the others run
    RedisStore = None  # type: ignore[assignment,misc]

try:
    import redis
except ImportError:
    raise SystemExit("error: this benchmark needs redis-py: pip install -e '.[redis]'") from None
try:
    import limits
    from limits import RateLimitItemPerMinute
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter
except ImportError:
    raise SystemExit("error: this benchmark needs the limits library: pip install 'limits[redis]>=5,<6'") from None

STEP = 500  # a timestamp every STEP operations (throughput over any prefix, and the budget check)
WINDOW = 60.0
MODEL_KEY_ID = "bench-model"
SCRIPT_SAMPLE = 2_000  # acquires held open, then committed, after a noa run: the server-side µs of each script
TRIP_SAMPLE = 100  # operations after the run whose round trips are counted on the client
# Commands a client sends; the others INFO commandstats counts were called by these scripts (and their µs are
# already inside the script's).
TOP_LEVEL = frozenset({"ping", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    side: str  # "anchor" or "noa"


VARIANTS = [
    Variant("ping", "redis-py ping()", "anchor"),
    Variant("acquire", "noa acquire (commit untimed)", "noa"),
    Variant("acquire-commit", "noa acquire + commit(0)", "noa"),
    Variant("limits", "limits MovingWindow hit ×2 (RedisStorage)", "anchor"),
]
BY_NAME = {v.name: v for v in VARIANTS}


class BenchError(RuntimeError):
    """A hit that should have passed was refused, or a check after the run failed."""


# --------------------------------------------------------------------------- the worker (one variant, one run)


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def namespace_memory(client: redis.Redis, namespace: str) -> dict[str, Any]:
    """``MEMORY USAGE key SAMPLES 0`` summed over every key of ``namespace``'s hash tag, and by kind of key.

    A kind is the key with its last ``:`` part replaced by ``*`` when several keys share the rest (one key per
    reservation, say), else the key itself. Also the TTL of one key of each kind (-1: none).
    """
    names = list(client.scan_iter(match=f"*{{noa:{namespace}}}*", count=1000))
    sizes: list[int] = []
    for i in range(0, len(names), 1000):
        pipe = client.pipeline(transaction=False)
        for name in names[i : i + 1000]:
            pipe.memory_usage(name, samples=0)
        sizes += [int(size or 0) for size in pipe.execute()]
    texts = [name.decode() if isinstance(name, bytes) else str(name) for name in names]
    stems: dict[str, int] = {}
    for text in texts:
        stem = text.rsplit(":", 1)[0] + ":*"
        stems[stem] = stems.get(stem, 0) + 1
    kinds: dict[str, list[Any]] = {}  # kind -> [keys, bytes, a key]
    for text, size in zip(texts, sizes, strict=True):
        stem = text.rsplit(":", 1)[0] + ":*"
        kind = stem if stems[stem] > 2 else text
        entry = kinds.setdefault(kind, [0, 0, text])
        entry[0] += 1
        entry[1] += size
    for entry in kinds.values():
        entry[2] = int(client.ttl(entry[2]))
    return {"bytes": sum(sizes), "keys": len(names), "kinds": kinds}


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def server_stats(client: redis.Redis) -> dict[str, Any]:
    """The server's command counters and CPU seconds (read twice around a timed loop: the difference is the run)."""
    commands = {
        name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
        for name, v in client.info("commandstats").items()
    }
    cpu = client.info("cpu")
    return {"commands": commands, "cpu": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])}


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    commands = {}
    for name, (calls, usec) in after["commands"].items():
        calls0, usec0 = before["commands"].get(name, (0, 0))
        if calls > calls0 and name not in ("info", "memory", "scan"):
            commands[name] = (calls - calls0, usec - usec0)
    return {"commands": commands, "cpu": after["cpu"] - before["cpu"]}


class TripCounter:
    """Counts the commands redis-py sends (``send_packed_command`` calls: one per round trip), while active."""

    def __init__(self) -> None:
        self.sent = 0
        self.original = redis.connection.AbstractConnection.send_packed_command

    def __enter__(self) -> TripCounter:
        original = self.original

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            self.sent += 1
            original(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        redis.connection.AbstractConnection.send_packed_command = self.original  # type: ignore[method-assign]


Body = Callable[[int], float]  # performs n operations, returns the seconds timed


@dataclass
class Prepared:
    body: Body
    verify: Callable[[int], str]  # after `done` operations (warm-up included): what was checked
    memory: Callable[[], dict[str, Any]] = lambda: {}
    extra: Callable[[], dict[str, Any]] = lambda: {}  # after the timed loop and the memory reading
    cleanup: Callable[[], None] = lambda: None


def noa_model(requests: int, tokens: int) -> dict[str, Any]:
    return {
        "id": MODEL_KEY_ID,
        "name": MODEL_KEY_ID,
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": "2.5", "outputTokens": "10", "currency": "USD", "per": 1_000_000},
        "rateLimit": {"requestsPerMinute": requests + 1, "tokensPerMinute": requests * tokens + 1},
    }


def prepare(variant: str, url: str, tag: str, ops: int, tokens: int, tmpdir: Path, steady: bool = False) -> Prepared:
    """Build what ``variant`` needs for up to ``ops`` operations of ``tokens`` (plus warm-up and extras) that pass."""
    capacity = ops + 1 + TRIP_SAMPLE + SCRIPT_SAMPLE  # the warm-up and the samples after the run
    if variant == "ping":
        client = redis.Redis.from_url(url)
        ping = client.ping

        def ping_body(n: int) -> float:
            perf = time.perf_counter
            start = perf()
            for _ in range(n):
                if not ping():
                    raise BenchError("PING did not answer PONG")
            return perf() - start

        return Prepared(ping_body, lambda done: f"all {done:,} PINGs answered", cleanup=client.close)

    if variant == "limits":
        storage = RedisStorage(url, key_prefix=f"LIMITS-{tag}")
        limiter = MovingWindowRateLimiter(storage)
        per_request = RateLimitItemPerMinute(capacity + 1)
        per_token = RateLimitItemPerMinute(capacity * tokens + 1)
        hit = limiter.hit
        ident = "bench"  # and "requests" / "tokens": two lists even when both items have the same amount
        lists = [per_request.key_for(ident, "requests"), per_token.key_for(ident, "tokens")]
        raw = storage.storage

        def limits_body(n: int) -> float:
            perf = time.perf_counter
            start = perf()
            for _ in range(n):
                if not (hit(per_request, ident, "requests", cost=1) and hit(per_token, ident, "tokens", cost=tokens)):
                    raise BenchError("limits refused a hit that fits")
            return perf() - start

        def full_keys() -> list[str]:
            return [storage.prefixed_key(k) for k in lists]

        def limits_verify(done: int) -> str:
            held = [int(raw.llen(k)) for k in full_keys()]
            if held != [done, done * tokens]:
                raise BenchError(f"limits' lists hold {held} entries, expected {[done, done * tokens]}")
            return f"all {done:,} double hits True; the lists hold {held[0]:,} + {held[1]:,} entries"

        def limits_memory() -> dict[str, Any]:
            used = sum(int(raw.memory_usage(k, samples=0) or 0) for k in full_keys())
            entries = sum(int(raw.llen(k)) for k in full_keys())
            return {"bytes": used, "keys": len(lists), "entries": entries, "used_memory": used_memory(raw)}

        def limits_cleanup() -> None:
            raw.unlink(*full_keys())
            raw.close()

        return Prepared(limits_body, limits_verify, limits_memory, cleanup=limits_cleanup)

    if variant not in ("acquire", "acquire-commit"):
        raise SystemExit(f"error: unknown variant {variant!r}")
    namespace = tag
    registry = EnhancedModelRegistry(
        persistence_path=tmpdir / "registry.json",
        auto_save=False,
        auto_load_config=False,
        backend=with_query(url, namespace=namespace),
    )
    key = registry.register_model(noa_model(capacity, tokens))
    acquire = registry.acquire
    client = redis.Redis.from_url(url)

    if variant == "acquire":

        def body(n: int) -> float:
            perf = time.perf_counter
            spent = 0.0
            for _ in range(n):
                start = perf()
                reservation = acquire(key, tokens)
                spent += perf() - start
                reservation.commit(0)
            return spent

    else:

        def body(n: int) -> float:
            perf = time.perf_counter
            start = perf()
            for _ in range(n):
                acquire(key, tokens).commit(0)  # raises RateLimitExceeded when refused
            return perf() - start

    def noa_verify(done: int) -> str:
        stats = registry.get_usage_stats(key)
        if stats is None or stats.request_count != done:
            raise BenchError(f"usage counts {stats and stats.request_count} requests, expected {done}")
        if steady:  # the first entries have left the window: only the count can be checked
            return f"all {done:,} acquires admitted and committed (the windows slid: not checked)"
        limit = capacity * tokens + 1
        held = done * tokens
        if not registry.check_rate_limit(key, limit - held).allowed or (
            registry.check_rate_limit(key, limit - held + 1).allowed
        ):
            raise BenchError(f"the token window does not hold {held:,} tokens: entries expired or leaked")
        return f"all {done:,} acquires admitted and committed; the token window holds all {held:,} tokens"

    def noa_memory() -> dict[str, Any]:
        info = namespace_memory(client, namespace)
        info["used_memory"] = used_memory(client)
        if RedisStore is not None:  # its own view: the model's keys (<ns>:m:<model>:*)
            info["store_memory_usage"] = int(RedisStore(client, namespace=namespace).memory_usage(key))
        return info

    def noa_extra() -> dict[str, Any]:
        # The server-side µs of the acquire script and of the commit script, apart: SCRIPT_SAMPLE acquires held
        # open, then their commits, each batch between two readings of INFO commandstats (window full).
        before = server_stats(client)
        with TripCounter() as trips:
            held = [acquire(key, tokens) for _ in range(SCRIPT_SAMPLE)]
        middle = server_stats(client)
        with TripCounter() as trips2:
            for reservation in held:
                reservation.commit(0)
        after = server_stats(client)
        return {
            "acquire_script": {**stats_delta(before, middle), "trips": trips.sent},
            "commit_script": {**stats_delta(middle, after), "trips": trips2.sent},
        }

    def noa_cleanup() -> None:
        registry.close()
        doomed = list(client.scan_iter(match=f"*{{noa:{namespace}}}*", count=1000))
        for i in range(0, len(doomed), 1000):
            client.unlink(*doomed[i : i + 1000])
        client.close()

    return Prepared(body, noa_verify, noa_memory, noa_extra, noa_cleanup)


def worker(
    variant: str, url: str, tag: str, ops: int, tokens: int, step: int, budget: float, max_entries: int
) -> dict[str, Any]:
    """Run ``ops`` operations (fewer when past ``budget`` seconds or ``max_entries``) and return the figures.

    Variant ``steady`` is ``acquire-commit`` for ``budget`` seconds, past the 60 s window: the windows slide.
    """
    client = redis.Redis.from_url(url)
    steady = variant == "steady"
    with tempfile.TemporaryDirectory(prefix="noa-bench-redis-") as tmp:
        prepared = prepare("acquire-commit" if steady else variant, url, tag, ops, tokens, Path(tmp), steady)
        body = prepared.body
        body(1)  # warm-up: connects and loads the scripts (counted in the checks, not timed)
        memory_before = prepared.memory()
        perf = time.perf_counter
        marks = [0.0]  # timed seconds after i * step operations
        walls = [0.0]  # wall seconds after i * step operations
        done = 0
        entries_per_op = 1 + tokens if variant == "limits" else 0
        stats0 = server_stats(client)
        cpu0 = time.process_time()
        start = perf()
        timed = 0.0
        while done < ops:
            timed += body(step)
            done += step
            marks.append(timed)
            walls.append(perf() - start)
            if done < ops and (walls[-1] > budget or (done + step) * entries_per_op > max_entries):
                break
        client_cpu = time.process_time() - cpu0
        stats = stats_delta(stats0, server_stats(client))
        verified = prepared.verify(done + 1)  # at once: before the first entries leave the 60 s window
        # The samples next, without a pause: after --steady, a pause would let many entries leave the window at
        # once (the store's expiry then fails past ~8,000 entries: "too many results to unpack").
        with TripCounter() as trips:
            body(TRIP_SAMPLE)
        extra = prepared.extra()
        requests = done + 1 + TRIP_SAMPLE + (SCRIPT_SAMPLE if extra else 0)
        memory_after = prepared.memory()  # every request of the run still in the window (unless --steady)
        prepared.cleanup()
    client.close()
    return {
        "variant": variant,
        "tokens": tokens,
        "ops": ops,
        "done": done,
        "step": step,
        "marks": marks,
        "walls": walls,
        "client_cpu": client_cpu,
        "server": stats,
        "trips_per_op": trips.sent / TRIP_SAMPLE,
        "memory_before": memory_before,  # after the warm-up request
        "memory_after": memory_after,
        "requests": requests,  # when memory_after was read
        "extra": extra,
        "verified": verified,
        "noa_file": str(Path(noa_ai_provider.__file__ or "?").resolve()),
    }


# --------------------------------------------------------------------------- aggregation


@dataclass
class Run:
    data: dict[str, Any]

    @property
    def done(self) -> int:
        return int(self.data["done"])

    @property
    def step(self) -> int:
        return int(self.data["step"])

    def seconds(self, n: int) -> float:
        """Timed seconds of the first ``n`` operations (``n`` a multiple of ``step``)."""
        return float(self.data["marks"][n // self.step])

    def rate(self, lo: int, hi: int) -> float:
        return (hi - lo) / (self.seconds(hi) - self.seconds(lo))

    @property
    def wall(self) -> float:
        return float(self.data["walls"][-1])

    def per_op(self, value: float) -> float:
        return value / self.done


@dataclass
class Summary:
    variant: Variant
    tokens: int
    ops: int  # operations compared (the minimum over repeats)
    requested: int
    runs: list[Run] = field(default_factory=list)

    @property
    def capped(self) -> bool:
        return self.ops < self.requested

    @property
    def chunk(self) -> int:
        step = self.runs[0].step
        return max(step, self.ops // 10 // step * step)

    def rate_at(self, n: int) -> float:
        """Median over repeats of the throughput of the first ``n`` operations."""
        return statistics.median(n / run.seconds(n) for run in self.runs)

    @property
    def overall(self) -> float:
        return self.rate_at(self.ops)

    @property
    def first(self) -> float:
        return statistics.median(run.rate(0, self.chunk) for run in self.runs)

    @property
    def last(self) -> float:
        return statistics.median(run.rate(self.ops - self.chunk, self.ops) for run in self.runs)

    def median(self, get: Callable[[Run], float]) -> float:
        return statistics.median(get(run) for run in self.runs)

    def commands(self) -> dict[str, tuple[float, float]]:
        """Per command: median calls per operation and median server µs per call."""
        names = sorted({name for run in self.runs for name in run.data["server"]["commands"]})
        out = {}
        for name in names:
            calls, usec = [], []
            for run in self.runs:
                c, u = run.data["server"]["commands"].get(name, (0, 0))
                calls.append(c / run.done)
                usec.append(u / c if c else 0.0)
            out[name] = (statistics.median(calls), statistics.median(usec))
        return out

    def server_usec_per_op(self) -> float:
        """Median server µs per operation: the commands clients send (scripts include the commands they call)."""
        return self.median(
            lambda r: sum(u for name, (_, u) in r.data["server"]["commands"].items() if name in TOP_LEVEL) / r.done
        )


# --------------------------------------------------------------------------- the parent


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ops(n: int) -> str:
    return f"{n // 1000:,}k" if n % 1000 == 0 else f"{n:,}"


def run_worker(
    args: argparse.Namespace, url: str, variant: str, tag: str, ops: int, tokens: int, step: int, budget: float = 0.0
) -> Run:
    budget = budget or args.budget
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        variant,
        "--url",
        url,
        "--tag",
        tag,
        "--ops",
        str(ops),
        "--tokens",
        str(tokens),
        "--step",
        str(step),
        "--budget",
        str(budget),
        "--max-entries",
        str(args.max_entries),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"error: worker {variant} at {tokens} tokens failed:\n{proc.stderr}")
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    return Run(json.loads(proc.stdout))


def machine_lines(client: redis.Redis, own: bool) -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    server = client.info("server")
    where = "started by the benchmark on 127.0.0.1, no persistence" if own else "given with --url"
    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable); client and server share them",
        f"- redis-server {server.get('redis_version')} ({where}), redis-py {redis.__version__} "
        f"(hiredis parser: {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}), limits {limits.__version__}, "
        f"noa-ai-provider {getattr(noa_ai_provider, '__version__', '?')}",
        f"- the store: {store_version()}",
        f"- load average at the start: {load()} (the machine should be otherwise idle: client and server need a "
        "core each)",
    ]


def load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def store_version() -> str:
    """HEAD, and a digest of the Redis store's source files as this run read them (they may be uncommitted)."""
    folder = Path(noa_ai_provider.__file__ or ".").parent / "stores"
    files = sorted([*folder.glob("redis/*.py"), *folder.glob("lua/*.lua")])
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "--no-optional-locks", "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
    except OSError:
        head, dirty = "?", []
    changed = f" + {len(dirty)} changed or new file(s) in src" if dirty else ""
    return f"HEAD {head or '?'}{changed}; stores/redis/*.py + lua/*.lua sha256 {digest.hexdigest()[:12]}"


def profile_noa(url: str, tokens_list: list[int], ops: int, top: int) -> list[str]:
    """cProfile of ``acquire(key, tokens).commit(0)`` in this process, against the server."""
    out = []
    for tokens in tokens_list:
        tag = f"bench-profile-{os.getpid()}-{tokens}"
        with tempfile.TemporaryDirectory(prefix="noa-bench-redis-") as tmp:
            prepared = prepare("acquire-commit", url, tag, ops, tokens, Path(tmp))
            prepared.body(1)
            prof = cProfile.Profile()
            prof.enable()
            prepared.body(ops)
            prof.disable()
            prepared.cleanup()
        stats = pstats.Stats(prof)
        total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
        socket_time = sum(
            row[2]
            for (_, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
            if name
            in ("<method 'recv_into' of '_socket.socket' objects>", "<method 'sendall' of '_socket.socket' objects>")
        )
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
        out.append(f"### noa acquire + commit(0), {tokens} tokens, {ops:,} ops (cProfile, by own time)\n")
        out.append(
            f"Total {total:.2f} s profiled, {total / ops * 1e6:.0f} µs/op; in the socket (sendall + recv_into: the "
            f"server and the loopback) {socket_time:.2f} s ({socket_time / total:.0%}); the rest, "
            f"{(total - socket_time) / ops * 1e6:.0f} µs/op, is Python on the client (inflated by the profiler).\n"
        )
        out.append("```\n" + buf.getvalue().strip() + "\n```\n")
    return out


def run(args: argparse.Namespace) -> int:
    own = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(REPO_ROOT))
        from tests.redis_server import RedisServer

        own = RedisServer()
        url = own.url
    try:
        return run_on(args, url, own is not None)
    finally:
        if own is not None:
            own.stop()


def run_on(args: argparse.Namespace, url: str, own: bool) -> int:
    ops: int = args.ops
    tokens_list: list[int] = args.tokens
    step = math.gcd(STEP, ops)
    variants = [BY_NAME[name] for name in args.variants]
    client = redis.Redis.from_url(url)
    out: list[str] = []

    def emit(*lines: str) -> None:
        print(*lines, sep="\n", flush=True)

    emit("## Machine\n", *machine_lines(client, own))
    emit(
        f"- {fmt_ops(ops)} operations per variant and token count, tokens {', '.join(map(str, tokens_list))}; median "
        f"of {args.repeats} repeat(s), each variant in a fresh subprocess; budget {args.budget:g} s per run, "
        f"limits' lists capped at {args.max_entries:,} entries",
    )
    summaries: dict[tuple[str, int], Summary] = {}
    per_repeat: dict[tuple[str, int], list[Run]] = {}
    for rep in range(args.repeats):
        order = variants if rep % 2 == 0 else variants[::-1]
        for tokens in tokens_list:
            for variant in order:
                key = (variant.name, tokens)
                summary = summaries.get(key)
                want = ops if summary is None else summary.ops  # a capped variant reruns its first count
                print(
                    f"[{rep + 1}/{args.repeats}] {tokens} tokens: {variant.label} ({want:,} ops) ...",
                    file=sys.stderr,
                    flush=True,
                )
                if own:
                    client.flushall()
                tag = f"bench-{os.getpid()}-{rep}-{tokens}-{variant.name}"
                result = run_worker(args, url, variant.name, tag, want, tokens, step)
                result.data["load"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
                if summary is None:
                    summary = summaries[key] = Summary(variant, tokens, result.done, ops)
                summary.runs.append(result)
                summary.ops = min(summary.ops, result.done)
                per_repeat.setdefault(key, []).append(result)
                dump_json(args.json, summaries)  # after every run: a run that fails later keeps what was measured
    if own:
        client.flushall()

    # ---- throughput
    out.append(f"\n## Throughput ({fmt_ops(ops)} operations, one model / one key, nothing refused)\n")
    out.append(
        "| tokens | variant | ops | timed s | ops/s | first 10% ops/s | last 10% ops/s | last/first "
        "| round trips/op | server µs/op (commands) | server CPU µs/op | client CPU µs/op |"
    )
    out.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    notes: list[str] = []
    for tokens in tokens_list:
        for variant in variants:
            s = summaries[(variant.name, tokens)]
            trips = s.median(lambda r: float(r.data["trips_per_op"]))
            ops_cell = fmt_ops(s.ops) + (" (capped)" if s.capped else "")
            out.append(
                f"| {tokens} | {s.variant.label} | {ops_cell} | {s.median(lambda r, n=s.ops: r.seconds(n)):.2f} "
                f"| {fmt_rate(s.overall)} | {fmt_rate(s.first)} | {fmt_rate(s.last)} | {s.last / s.first:.2f} "
                f"| {trips:.2f} | {s.server_usec_per_op():.1f} "
                f"| {s.median(lambda r: r.per_op(r.data['server']['cpu']) * 1e6):.1f} "
                f"| {s.median(lambda r: r.per_op(r.data['client_cpu']) * 1e6):.1f} |"
            )
            if s.capped:
                notes.append(
                    f"- {variant.label} at {tokens} tokens was stopped after {s.ops:,} of {ops:,} operations "
                    f"(wall {max(r.wall for r in s.runs):.1f} s; budget {args.budget:g} s, at most "
                    f"{args.max_entries:,} list entries). Ratios against it compare the same number of operations."
                )
    out.append(
        "\nops/s is over the timed seconds: for `acquire`, the `acquire` calls only (each followed by an untimed "
        f"`commit(0)`). Round trips per operation: the commands redis-py sent over {TRIP_SAMPLE} operations after the "
        "run (counted on the client; the `acquire` variant's include its commits). Server µs and server CPU come "
        "from the server's INFO commandstats and INFO cpu read before and after the timed loop (server µs: the "
        "own time of the commands clients send, a script's including the commands it calls, per operation; the "
        "`acquire` variant's include the untimed commits); client CPU is the worker's process time over the loop, "
        "per operation (the `acquire` variant's include the commits)."
    )
    out.extend(notes)

    # ---- server side, per command
    out.append("\n## Server side, per command (INFO commandstats over the timed loop, median over repeats)\n")
    out.append("| tokens | variant | command | calls/op | usec_per_call |")
    out.append("|--:|---|---|--:|--:|")
    for tokens in tokens_list:
        for variant in variants:
            s = summaries[(variant.name, tokens)]
            for name, (calls, usec) in s.commands().items():
                name = name if name in TOP_LEVEL else f"{name} (inside the script)"
                out.append(f"| {tokens} | {variant.label} | {name} | {calls:.2f} | {usec:.2f} |")
    scripts = []
    for tokens in tokens_list:
        for name in ("acquire", "acquire-commit"):
            s = summaries.get((name, tokens))
            if s is None:
                continue
            for run in s.runs:
                for what in ("acquire_script", "commit_script"):
                    part = run.data["extra"].get(what)
                    if part:
                        top = {k: v for k, v in part["commands"].items() if k in TOP_LEVEL}
                        calls = sum(c for c, _ in top.values())
                        usec = sum(u for _, u in top.values())
                        inner = sum(c for k, (c, _) in part["commands"].items() if k not in TOP_LEVEL)
                        cmds = ", ".join(top) + (f" (+{inner / SCRIPT_SAMPLE:.1f} commands inside)" if inner else "")
                        scripts.append((tokens, what, calls, usec, cmds, part["trips"]))
    if scripts:
        out.append(
            f"\nThe acquire and the commit script apart: after each noa run (window full), {SCRIPT_SAMPLE:,} "
            "acquires held open, then their commits, each batch between two readings of INFO commandstats "
            "(median over the noa runs):\n"
        )
        out.append("| tokens | call | commands sent (server) | round trips (client) | server µs per call |")
        out.append("|--:|---|---|--:|--:|")
        for tokens in tokens_list:
            for what in ("acquire_script", "commit_script"):
                rows = [r for r in scripts if r[0] == tokens and r[1] == what]
                if rows:
                    out.append(
                        f"| {tokens} | {what.replace('_script', '')} | {rows[0][4]} "
                        f"| {statistics.median(r[5] / SCRIPT_SAMPLE for r in rows):.2f} "
                        f"| {statistics.median(r[3] / SCRIPT_SAMPLE for r in rows):.1f} |"
                    )

    # ---- memory
    out.append("\n## Memory in Redis with a full window (after the run: every request of the run in the last minute)\n")
    out.append(
        "| tokens | variant | requests | keys | bytes (MEMORY USAGE) | bytes per request | bytes per window entry "
        "| used_memory growth per request | RedisStore.memory_usage(key) |"
    )
    out.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    breakdown: list[str] = []
    for tokens in tokens_list:
        for variant in variants:
            if variant.name == "ping":
                continue
            run = summaries[(variant.name, tokens)].runs[-1]
            after, before = run.data["memory_after"], run.data["memory_before"]
            requests = int(run.data["requests"])
            added = requests - 1  # memory_before was read after the warm-up request
            grown = (after["used_memory"] - before["used_memory"]) / added
            if variant.name == "limits":
                entries = after["entries"]
                out.append(
                    f"| {tokens} | {variant.label} | {requests:,} | {after['keys']} | {after['bytes']:,} "
                    f"| {after['bytes'] / requests:,.1f} | {after['bytes'] / entries:.1f} ({entries:,} list entries) "
                    f"| {grown:,.1f} | |"
                )
                continue
            per_request = (after["bytes"] - before["bytes"]) / added
            store = after.get("store_memory_usage")
            store_cell = (
                "" if store is None else f"{store:,} ({(store - before['store_memory_usage']) / added:.1f}/req)"
            )
            out.append(
                f"| {tokens} | {variant.label} | {requests:,} | {after['keys']:,} | {after['bytes']:,} "
                f"| {per_request:,.1f} | {per_request / 2:,.1f} (two windows) | {grown:,.1f} | {store_cell} |"
            )
            if variant.name == "acquire-commit":
                breakdown.append(f"\n{tokens} tokens, {variant.label}, {requests:,} requests:\n")
                breakdown.append("| key (kind) | keys | bytes | bytes per key | bytes per request | TTL of one (s) |")
                breakdown.append("|---|--:|--:|--:|--:|--:|")
                kinds = sorted(after["kinds"].items(), key=lambda kv: -kv[1][1])
                for kind, (count, size, ttl) in kinds:
                    breakdown.append(
                        f"| `{kind}` | {count:,} | {size:,} | {size / count:,.0f} | {size / requests:,.1f} | {ttl} |"
                    )
    out.append(
        "\nbytes: `MEMORY USAGE key SAMPLES 0` summed over the namespace's keys (`SCAN MATCH *{noa:NAME}*`; for "
        "limits its two lists); per request: for noa the growth from one request to the end of the run, over the "
        "run's requests; used_memory growth: the server's INFO used_memory over the same span (allocator and "
        "keyspace overhead included; other clients' keys too with --url). A noa request is one entry in each of "
        "the model's two windows (requests and tokens); a limits request is 1 + tokens list entries."
    )
    if breakdown:
        out.append("\nBy kind of key (noa acquire + commit, the last repeat):")
        out.extend(breakdown)

    # ---- ratios and targets
    out.append("\n## Ratios (median throughput over the same number of operations; per repeat in brackets)\n")

    def ratio(a: str, b: str, tokens: int) -> tuple[float, str, int] | None:
        sa, sb = summaries.get((a, tokens)), summaries.get((b, tokens))
        if sa is None or sb is None:
            return None
        n = min(sa.ops, sb.ops)
        pairs = zip(per_repeat[(a, tokens)], per_repeat[(b, tokens)], strict=True)
        each = ", ".join(f"{rb.seconds(n) / ra.seconds(n):.2f}" for ra, rb in pairs)
        return sa.rate_at(n) / sb.rate_at(n), each, n

    targets: list[str] = []
    out.append("| tokens | ratio | value | per repeat | over | target | met |")
    out.append("|--:|---|--:|---|--:|--:|---|")
    for tokens in tokens_list:
        rows = [
            ("acquire", "ping", "noa acquire / PING", 0.6),
            ("acquire-commit", "ping", "noa acquire + commit / PING", None),
            ("acquire-commit", "limits", "noa acquire + commit / limits", 1.0 if tokens == 1 else 10.0),
            ("acquire", "limits", "noa acquire / limits", None),
        ]
        for a, b, label, want in rows:
            got = ratio(a, b, tokens)
            if got is None:
                continue
            value, each, n = got
            met = "" if want is None else ("**met**" if value >= want else "**NOT met**")
            out.append(
                f"| {tokens} | {label} | {value:.2f}× | {each} | {fmt_ops(n)} | "
                f"{'' if want is None else f'≥ {want:g}×'} | {met} |"
            )
            if want is not None:
                targets.append(f"- {tokens} tokens: {label} ≥ {want:g}×: {met.strip('*')} ({value:.2f}×)")
        for name in ("acquire", "acquire-commit"):
            s = summaries.get((name, tokens))
            if s is not None:
                flat = s.last / s.first
                out.append(
                    f"| {tokens} | {s.variant.label}: last 10% / first 10% | {flat:.2f} "
                    f"| {', '.join(f'{r.rate(s.ops - s.chunk, s.ops) / r.rate(0, s.chunk):.2f}' for r in s.runs)} "
                    f"| {fmt_ops(s.ops)} | ≥ 0.8 | {'**met**' if flat >= 0.8 else '**NOT met**'} |"
                )
                if name == "acquire-commit":
                    targets.append(
                        f"- {tokens} tokens: flat as the window fills (last/first ≥ 0.8): "
                        f"{'met' if flat >= 0.8 else 'NOT met'} ({flat:.2f})"
                    )
    out.append("\n## Targets\n")
    if ops < 60_000 or args.repeats < 3:
        out.append(f"This run did {fmt_ops(ops)} operations × {args.repeats} repeat(s): read it as a smoke test.\n")
    out.extend(targets)
    out.append("\n## Per repeat\n")
    out.append("| tokens | variant | ops/s per repeat | client CPU µs/op per repeat | server CPU µs/op per repeat |")
    out.append("|--:|---|---|---|---|")
    for tokens in tokens_list:
        for variant in variants:
            s = summaries[(variant.name, tokens)]
            rates = ", ".join(fmt_rate(s.ops / r.seconds(s.ops)) for r in s.runs)
            client_cpu = ", ".join(f"{r.per_op(r.data['client_cpu']) * 1e6:.0f}" for r in s.runs)
            server_cpu = ", ".join(f"{r.per_op(r.data['server']['cpu']) * 1e6:.0f}" for r in s.runs)
            out.append(f"| {tokens} | {variant.label} | {rates} | {client_cpu} | {server_cpu} |")
    out.append(
        "\nThe same work costs more CPU per operation in some repeats than in others (a busier host, or other "
        f"processes on the two cores): compare neighbours. Load average at the end: {load()}."
    )
    out.append("\nChecked after each run (the last repeat):")
    for tokens in tokens_list:
        for variant in variants:
            out.append(
                f"- {tokens} tokens, {variant.label}: {summaries[(variant.name, tokens)].runs[-1].data['verified']}"
            )

    if args.steady:
        lines, steady_runs = steady_section(args, url, own, tokens_list, step)
        out.extend(lines)
        dump_json(args.json, summaries, steady_runs)

    if args.profile and any(v.side == "noa" for v in variants):
        out.append("\n## cProfile of noa's acquire + commit (client side)\n")
        out.extend(profile_noa(url, tokens_list, args.profile_ops, args.profile_top))
    emit(*out)
    dump_json(args.json, summaries)
    client.close()
    return 0


def dump_json(
    path: Path | None, summaries: dict[tuple[str, int], Summary], steady: dict[str, Any] | None = None
) -> None:
    if path is not None:
        dump = {f"{name}@{tokens}": [r.data for r in s.runs] for (name, tokens), s in summaries.items()}
        path.write_text(json.dumps({**dump, **(steady or {})}, indent=1))


def ops_at(run: Run, t: float) -> int:
    """The first operation count (a multiple of the step) reached at ``t`` timed seconds or later."""
    marks = run.data["marks"]
    return next((i for i, m in enumerate(marks) if m >= t), len(marks) - 1) * run.step


def script_us(extra: dict[str, Any], what: str) -> float:
    """Server µs per call of one script, from a worker's script sample."""
    commands = extra[what]["commands"]
    return sum(u for name, (_, u) in commands.items() if name in TOP_LEVEL) / SCRIPT_SAMPLE


def steady_section(
    args: argparse.Namespace, url: str, own: bool, tokens_list: list[int], step: int
) -> tuple[list[str], dict[str, Any]]:
    """noa's acquire + commit alone for ``--steady`` seconds: the first 10 s (windows filling) against the last 10 s
    (windows full and sliding: each call also drops the entries that left the window)."""
    out = [f"\n## Steady state: noa acquire + commit(0) for {args.steady:g} s (the windows slide after 60 s)\n"]
    out.append(
        "| tokens | ops | ops/s first 10 s | ops/s last 10 s | last/first | acquire script µs | commit script µs "
        "| keys | bytes (MEMORY USAGE) | used_memory growth |"
    )
    out.append("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    data: dict[str, Any] = {}
    for tokens in tokens_list:
        print(
            f"[steady] {tokens} tokens: noa acquire + commit(0) for {args.steady:g} s ...", file=sys.stderr, flush=True
        )
        if own:
            redis.Redis.from_url(url).flushall()
        try:
            run = run_worker(
                args, url, "steady", f"bench-{os.getpid()}-steady-{tokens}", 10**7, tokens, step, args.steady
            )
        except SystemExit as exc:
            last_line = str(exc).strip().splitlines()[-1]
            out.append(f"| {tokens} | failed: {last_line} | | | | | | | | |")
            continue
        data[f"steady@{tokens}"] = [run.data]
        first_hi, last_lo = ops_at(run, 10.0), ops_at(run, run.seconds(run.done) - 10.0)
        first, last = run.rate(0, first_hi), run.rate(last_lo, run.done)
        extra = run.data["extra"]
        after, before = run.data["memory_after"], run.data["memory_before"]
        out.append(
            f"| {tokens} | {run.done:,} | {fmt_rate(first)} | {fmt_rate(last)} | {last / first:.2f} "
            f"| {script_us(extra, 'acquire_script'):.1f} | {script_us(extra, 'commit_script'):.1f} | {after['keys']:,} "
            f"| {after['bytes']:,} | {after['used_memory'] - before['used_memory']:,} |"
        )
    out.append(
        "\nThe script µs are the server's, over the 2,000 acquires held open and their commits after the run "
        "(windows full and sliding). Keys and bytes: the namespace after the run, every request of the last minute "
        "in the windows and one `done:<id>` key per request of the whole run."
    )
    return out, data


def parse_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("token counts must be positive integers")
    return values


def parse_variants(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown}; choose from {', '.join(BY_NAME)}")
    return [v.name for v in VARIANTS if v.name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", help="an existing Redis server (default: start a redis-server for the run)")
    parser.add_argument("--ops", type=int, default=None, help="operations per variant and token count (default 60000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5000 operations, 1 repeat")
    parser.add_argument(
        "--tokens", type=parse_ints, default=[1, 500], help="comma-separated tokens per request (default: 1,500)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="runs per variant, median taken (default: 3)")
    parser.add_argument(
        "--variants",
        type=parse_variants,
        default=[v.name for v in VARIANTS],
        help=f"comma-separated subset of {', '.join(BY_NAME)} (default: all)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a variant after this long, so every run stays within one 60 s window (default: 50, quick: 10)",
    )
    parser.add_argument(
        "--max-entries",
        type=int,
        default=40_000_000,
        metavar="N",
        help="stop the limits variant before its lists pass N entries (about 20 bytes each; default 40M)",
    )
    parser.add_argument("--profile", action="store_true", help="also print cProfile hotspots of acquire + commit")
    parser.add_argument("--profile-ops", type=int, default=20_000, metavar="N", help="ops profiled (default: 20000)")
    parser.add_argument("--profile-top", type=int, default=25, metavar="N", help="rows per profile (default: 25)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every run's figures to PATH as JSON")
    parser.add_argument(
        "--steady",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also run noa's acquire + commit alone for SECONDS (more than 70: the windows slide) per token count",
    )
    parser.add_argument("--worker", choices=[*sorted(BY_NAME), "steady"], help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, default=STEP, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ops is None:
        args.ops = 5_000 if args.quick else 60_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.budget is None:
        args.budget = 10.0 if args.quick else 50.0
    if args.worker is None and (args.ops < 10 or args.repeats < 1 or args.budget <= 0 or args.budget >= WINDOW):
        parser.error("--ops must be >= 10, --repeats >= 1 and 0 < --budget < 60")
    if args.steady and args.steady <= WINDOW + 10:
        parser.error("--steady must be more than 70 seconds (the window is 60 s)")
    if args.worker is not None:
        if args.url is None or args.tag is None:
            parser.error("--worker needs --url and --tag")
        result = worker(
            args.worker, args.url, args.tag, args.ops, args.tokens[0], args.step, args.budget, args.max_entries
        )
        json.dump(result, sys.stdout)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
