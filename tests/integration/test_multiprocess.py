"""Several processes share one ``persistence_path``: every save merges its unsaved usage into the file under the
sidecar lock, so no increment is lost and none is counted twice; definitions converge (newer ``updated_at`` wins)
and removals survive (tombstones).

Real processes and real files: writers are started with ``multiprocessing`` (fork, from a driver subprocess, so the
fork happens outside pytest's threads) or as fresh interpreters (``subprocess.Popen``), released together through a
``go`` file, and each closes at the end. Two-party scenarios drive long-lived agent subprocesses step by step over
their stdin.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry

from ..samples import GPT4, OPUS, model

GPT4_KEY = "openai:gpt-4-turbo-preview"
OPUS_KEY = "claude:claude-3-opus-20240229"
PROCESSES = 4
RECORDS = 500
INTERVAL = 0.05
_EXACT = Context(prec=60)


def tokens(proc: int, i: int) -> tuple[int, int, bool]:
    """Input tokens, output tokens and success of record ``i`` of writer ``proc`` (deterministic, varied).

    Its source is sent to the writer processes, so they and the test agree on every record."""
    return 1 + (proc * 7919 + i * 131) % 3001, (proc * 104729 + i * 17) % 997, (proc + i) % 7 != 0


WORKER = r"""
import json, os, sys, time
from decimal import Decimal
from pathlib import Path
from noa_ai_provider import EnhancedModelRegistry


def work(path, folder, proc, records, models, saves, interval, durability):
    registry = EnhancedModelRegistry(
        persistence_path=path, auto_save=True, auto_save_interval=interval, durability=durability
    )
    keys = registry.register_models(models)
    folder = Path(folder)
    (folder / f"ready-{proc}").touch()
    deadline = time.monotonic() + 30
    while not (folder / "go").exists():  # released together with the other writers
        if time.monotonic() > deadline:
            raise SystemExit(f"writer {proc} was never released")
        time.sleep(0.001)
    cost = Decimal(0)
    after_saves = []
    for i in range(records):
        inp, out, ok = tokens(proc, i)
        cost += registry.record_usage(keys[i % len(keys)], inp, out, success=ok)
        if i in saves:
            registry.save()
            after_saves.append({k: registry.get_usage_stats(k).request_count for k in keys})
        if i % 5 == 4:
            time.sleep(0.006)  # spread the records over several autosave ticks of every writer
    registry.close()
    views = {k: registry.get_usage_stats(k).request_count for k in keys}
    report = {"pid": os.getpid(), "cost": str(cost), "views": views, "after_saves": after_saves}
    (folder / f"result-{proc}.json").write_text(json.dumps(report))
"""

SPAWN_MAIN = r"""
import json, sys
work(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]),
     set(json.loads(sys.argv[6])), float(sys.argv[7]), sys.argv[8])
"""

FORK_MAIN = r"""
import json, multiprocessing, sys
ctx = multiprocessing.get_context("fork")
path, folder, count, records = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
models, saves, interval, durability = json.loads(sys.argv[5]), json.loads(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
procs = [
    ctx.Process(
        target=work, args=(path, folder, p, records, models, set(saves.get(str(p), [])), interval, durability)
    )
    for p in range(count)
]
for p in procs:
    p.start()
for p in procs:
    p.join(60)
print(json.dumps([p.exitcode for p in procs]), flush=True)
sys.exit(0 if all(p.exitcode == 0 for p in procs) else 1)
"""


def _script(main: str) -> str:
    return inspect.getsource(tokens) + WORKER + main


def _spawn(main: str, args: list[str]) -> subprocess.Popen[str]:
    """A fresh interpreter running the worker script with ``main``, its output captured as text."""
    return subprocess.Popen(
        [sys.executable, "-c", _script(main), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _unit_prices(definition: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    cost = definition["cost"]
    return Decimal(repr(cost["inputTokens"])), Decimal(repr(cost["outputTokens"])), Decimal(cost["per"])


def _expected(models: list[dict[str, Any]], keys: list[str], count: int, records: int) -> dict[str, dict[str, Any]]:
    """Exact totals per key, computed here from the prices (Decimal) and the deterministic records."""
    out: dict[str, dict[str, Any]] = {
        k: {"requests": 0, "ok": 0, "failed": 0, "input": 0, "output": 0, "cost": Decimal(0)} for k in keys
    }
    prices = dict(zip(keys, (_unit_prices(m) for m in models), strict=True))
    for proc in range(count):
        for i in range(records):
            inp, outp, ok = tokens(proc, i)
            key = keys[i % len(keys)]
            pin, pout, per = prices[key]
            row = out[key]
            row["requests"] += 1
            row["ok" if ok else "failed"] += 1
            row["input"] += inp
            row["output"] += outp
            row["cost"] = _EXACT.add(row["cost"], _EXACT.divide(_EXACT.add(inp * pin, outp * pout), per))
    return out


def _release(folder: Path, count: int, procs: list[subprocess.Popen[str]]) -> None:
    """Wait until every writer is ready, then let them all start at once."""
    deadline = time.monotonic() + 45
    while sum(1 for _ in folder.glob("ready-*")) < count:
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"a launcher exited before the start (rc {proc.returncode}): {out}\n{err}")
        assert time.monotonic() < deadline, "writers never became ready"
        time.sleep(0.005)
    (folder / "go").touch()


def _run_writers(
    tmp_path: Path,
    launcher: str,
    models: list[dict[str, Any]],
    saves: dict[int, list[int]] | None = None,
    count: int = PROCESSES,
    records: int = RECORDS,
    durability: str = "snapshot",
) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path / "data" / "registry.json"
    folder = tmp_path / "sync"
    folder.mkdir()
    saves = saves or {}
    common = [str(path), str(folder)]
    tail = [json.dumps(models)]
    procs: list[subprocess.Popen[str]] = []
    try:
        if launcher == "fork":
            saves_arg = json.dumps({str(p): s for p, s in saves.items()})
            args = [*common, str(count), str(records), *tail, saves_arg, str(INTERVAL), durability]
            procs.append(_spawn(FORK_MAIN, args))
        else:
            for writer in range(count):
                args = [
                    *common,
                    str(writer),
                    str(records),
                    *tail,
                    json.dumps(saves.get(writer, [])),
                    str(INTERVAL),
                    durability,
                ]
                procs.append(_spawn(SPAWN_MAIN, args))
        _release(folder, count, procs)
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, f"writer failed (rc {proc.returncode}): {out}\n{err}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    results = [json.loads((folder / f"result-{p}.json").read_text()) for p in range(count)]
    return path, results


def _check_totals(
    path: Path,
    results: list[dict[str, Any]],
    models: list[dict[str, Any]],
    keys: list[str],
    count: int = PROCESSES,
    records: int = RECORDS,
    durability: str = "snapshot",
) -> None:
    expected = _expected(models, keys, count, records)
    # The cost each writer got back from record_usage is the exact cost computed here.
    returned = sum((Decimal(r["cost"]) for r in results), Decimal(0))
    assert returned == sum((e["cost"] for e in expected.values()), Decimal(0))

    with EnhancedModelRegistry(persistence_path=path, auto_save=False, durability=durability) as fresh:
        assert fresh.load() == len(keys)
        for key in keys:
            want = expected[key]
            stats = fresh.get_usage_stats(key)
            assert stats is not None
            got = {
                "requests": stats.request_count,
                "ok": stats.successful_requests,
                "failed": stats.failed_requests,
                "input": stats.total_input_tokens,
                "output": stats.total_output_tokens,
                "cost": stats.total_cost,
            }
            assert got == want, key
            assert isinstance(stats.total_cost, Decimal)
            history = fresh.get_usage_history(key)
            assert history, key
            assert sum(h.requests for h in history) == want["requests"]
            assert sum(h.input_tokens for h in history) == want["input"]
            assert sum(h.output_tokens for h in history) == want["output"]
            assert sum((h.cost for h in history), Decimal(0)) == want["cost"]
        assert sum(s.request_count for k in keys if (s := fresh.get_usage_stats(k))) == count * records

    doc = json.loads(path.read_text())
    writers = doc["writers"]
    assert len(writers) == count
    assert {w.split("-")[0] for w in writers} == {str(r["pid"]) for r in results}
    assert all(mark["seq"] >= 1 for mark in writers.values())
    # The writers saved while the others were recording (autosave ticks), not only when they closed.
    assert max(mark["seq"] for mark in writers.values()) >= 3
    assert "removed" not in doc
    assert sorted(p.name for p in path.parent.glob(".*.tmp")) == []

    # After its saves each writer saw at least its own records; the last one to save saw everybody's.
    for proc, result in enumerate(results):
        for index, key in enumerate(keys):
            own = len(range(index, records, len(keys)))
            assert own <= result["views"][key] <= expected[key]["requests"], (proc, key)
    assert any(all(r["views"][k] == expected[k]["requests"] for k in keys) for r in results)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("durability", ["snapshot", "journal"])
def test_four_forked_writers_lose_no_increment(tmp_path: Path, durability: str) -> None:
    path, results = _run_writers(tmp_path, "fork", [GPT4], durability=durability)
    _check_totals(path, results, [GPT4], [GPT4_KEY], durability=durability)
    if durability == "journal":  # every record is folded into the snapshot, none is left to replay
        journal = path.with_name(path.name + ".journal")
        assert not journal.exists() or journal.read_text() == ""


@pytest.mark.timeout(90)
def test_four_spawned_writers_lose_no_increment(tmp_path: Path) -> None:
    path, results = _run_writers(tmp_path, "spawn", [GPT4])
    _check_totals(path, results, [GPT4], [GPT4_KEY])


@pytest.mark.timeout(90)
@pytest.mark.parametrize("launcher", ["fork", "spawn"])
def test_two_models_and_explicit_saves_between_autosaves(tmp_path: Path, launcher: str) -> None:
    saves = [99, 100, 250, 401]  # writer 0 also saves by hand, twice in a row once
    path, results = _run_writers(tmp_path, launcher, [GPT4, OPUS], saves={0: saves})
    _check_totals(path, results, [GPT4, OPUS], [GPT4_KEY, OPUS_KEY])
    # Right after each explicit save writer 0 saw at least everything it had recorded so far.
    after = results[0]["after_saves"]
    assert len(after) == len(saves)
    for i, view in zip(saves, after, strict=True):
        assert view[GPT4_KEY] >= len(range(0, i + 1, 2))
        assert view[OPUS_KEY] >= len(range(1, i + 1, 2))


# ---------------------------------------------------------------- step-by-step scenarios with agent processes

AGENT = r"""
import json, sys, traceback
from noa_ai_provider import EnhancedModelRegistry

registry = EnhancedModelRegistry(persistence_path=sys.argv[1], auto_save=False, durability=sys.argv[2])


def view():
    out = {}
    for entry in registry.list_models():
        s = entry.usage_stats
        out[entry.key] = {"name": entry.name, "requests": s.request_count, "input": s.total_input_tokens,
                          "output": s.total_output_tokens, "cost": str(s.total_cost)}
    return out


for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    try:
        if op == "register":
            result = registry.register_models(cmd["models"])
        elif op == "record":
            result = [str(registry.record_usage(cmd["key"], i, o)) for i, o in cmd["usage"]]
        elif op == "save":
            registry.save()
            result = None
        elif op == "load":
            result = registry.load()
        elif op == "unregister":
            result = registry.unregister_model(cmd["key"])
        elif op == "update":
            registry.update_model(cmd["key"], cmd["updates"])
            result = None
        elif op == "view":
            result = view()
        elif op == "exit":
            registry.close()
            result = None
        else:
            raise ValueError(op)
        reply = {"ok": True, "result": result}
    except Exception:
        reply = {"ok": False, "error": traceback.format_exc()}
    print(json.dumps(reply), flush=True)
    if op == "exit":
        break
"""


class Agent:
    """A registry in a process of its own (``auto_save=False``), driven one operation at a time."""

    def __init__(self, path: Path, durability: str = "snapshot") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", AGENT, str(path), durability],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            _, err = self.proc.communicate(timeout=10)
            pytest.fail(f"agent died during {op}: {err}")
        reply = json.loads(line)
        assert reply["ok"], f"{op} failed in the agent:\n{reply['error']}"
        return reply["result"]

    def exit(self) -> None:
        self("exit")
        self.proc.communicate(timeout=10)
        assert self.proc.returncode == 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


StartAgent = Callable[..., Agent]


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[StartAgent]:
    started: list[Agent] = []

    def start(durability: str = "snapshot") -> Agent:
        agent = Agent(tmp_path / "registry.json", durability)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()


def _cost(definition: dict[str, Any], usage: list[tuple[int, int]]) -> Decimal:
    pin, pout, per = _unit_prices(definition)
    return sum((_EXACT.divide(_EXACT.add(i * pin, o * pout), per) for i, o in usage), Decimal(0))


def _file(tmp_path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((tmp_path / "registry.json").read_text())
    return doc


def _file_models(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {m["key"]: m for m in _file(tmp_path)["models"]}


@pytest.mark.timeout(60)
def test_after_its_save_a_writer_sees_what_others_saved(tmp_path: Path, agents: StartAgent) -> None:
    usage_a = [(100 + 7 * n, 20 + n) for n in range(10)]
    usage_b = [(333 + n, 11 * n) for n in range(5)]
    b = agents()
    b("register", models=[GPT4])
    b("record", key=GPT4_KEY, usage=usage_b)  # pending in B while A comes and goes

    a = agents()
    a("register", models=[GPT4, OPUS])
    a("record", key=GPT4_KEY, usage=usage_a)
    a("record", key=OPUS_KEY, usage=[(1000, 1000), (1, 1)])
    a("save")
    a.exit()

    assert set(b("view")) == {GPT4_KEY}  # nothing merged before B saves
    assert b("view")[GPT4_KEY]["requests"] == 5
    b("save")
    views = b("view")
    assert views[OPUS_KEY]["requests"] == 2  # a model another writer added comes with its usage
    assert Decimal(views[OPUS_KEY]["cost"]) == _cost(OPUS, [(1000, 1000), (1, 1)])
    view = views[GPT4_KEY]
    assert view["requests"] == 15
    assert view["input"] == sum(i for i, _ in usage_a + usage_b)
    assert view["output"] == sum(o for _, o in usage_a + usage_b)
    assert Decimal(view["cost"]) == _cost(GPT4, usage_a + usage_b)
    saved = _file_models(tmp_path)[GPT4_KEY]["usageStats"]
    assert saved["requestCount"] == 15
    assert Decimal(saved["totalCost"]) == _cost(GPT4, usage_a + usage_b)

    # Another writer saves 10 more; B's next save (with nothing of its own pending) brings them in, once.
    a2 = agents()
    a2("register", models=[GPT4])
    a2("record", key=GPT4_KEY, usage=usage_a)
    a2("save")
    a2.exit()
    b("save")
    b("save")
    assert b("view")[GPT4_KEY]["requests"] == 25
    assert _file_models(tmp_path)[GPT4_KEY]["usageStats"]["requestCount"] == 25
    assert len(_file(tmp_path)["writers"]) == 3
    b.exit()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("durability", ["snapshot", "journal"])
def test_load_keeps_unsaved_usage_on_top_once(tmp_path: Path, agents: StartAgent, durability: str) -> None:
    usage_a = [(100 + n, 10 + n) for n in range(10)]
    usage_b = [(7, 7)] * 5
    b = agents(durability)
    b("register", models=[GPT4])
    b("save")
    b("record", key=GPT4_KEY, usage=usage_b)  # unsaved (in journal mode: journal lines of a live writer)

    a = agents(durability)
    assert a("load") == 1
    assert a("view")[GPT4_KEY]["requests"] == 0  # B is alive: its records are B's to save, not A's to replay
    a("record", key=GPT4_KEY, usage=usage_a)
    a("save")
    a.exit()

    assert b("load") == 1
    assert b("view")[GPT4_KEY]["requests"] == 15  # A's saved 10, B's unsaved 5 on top
    b("save")
    b("save")
    view = b("view")[GPT4_KEY]
    assert view["requests"] == 15  # B's 5 were added once, not once by load() and once by save()
    assert Decimal(view["cost"]) == _cost(GPT4, usage_a + usage_b)
    saved = _file_models(tmp_path)[GPT4_KEY]["usageStats"]
    assert saved["requestCount"] == 15
    assert Decimal(saved["totalCost"]) == _cost(GPT4, usage_a + usage_b)
    b.exit()
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "registry.json", auto_save=False, durability=durability
    ) as f:
        f.load()
        stats = f.get_usage_stats(GPT4_KEY)
        assert stats is not None
        assert stats.request_count == 15


X = model(GPT4)
Y = model(OPUS)


@pytest.mark.timeout(60)
def test_removal_converges_across_processes(tmp_path: Path, agents: StartAgent) -> None:
    a, b = agents(), agents()
    usage_a1 = [(1000, 100), (1500, 250), (17, 3), (4096, 1)]
    usage_a2 = [(10, 10), (20, 30)]
    usage_b = [(500, 500), (123, 456), (7, 0)]
    a("register", models=[X, Y])
    a("record", key=GPT4_KEY, usage=usage_a1)
    a("save")

    assert b("load") == 2
    assert set(b("view")) == {GPT4_KEY, OPUS_KEY}

    assert a("unregister", key=OPUS_KEY) is True
    a("record", key=GPT4_KEY, usage=usage_a2)
    a("save")
    saved = _file(tmp_path)
    assert {m["key"] for m in saved["models"]} == {GPT4_KEY}
    assert OPUS_KEY in saved["removed"]

    b("record", key=GPT4_KEY, usage=usage_b)
    b("record", key=OPUS_KEY, usage=[(50, 50)])  # B still has Y: that usage goes with it
    b("save")

    saved = _file(tmp_path)
    models = {m["key"]: m for m in saved["models"]}
    assert set(models) == {GPT4_KEY}  # B's save did not bring Y back
    assert OPUS_KEY in saved["removed"]
    everything = usage_a1 + usage_a2 + usage_b
    stats = models[GPT4_KEY]["usageStats"]
    assert stats["requestCount"] == len(everything)
    assert stats["totalInputTokens"] == sum(i for i, _ in everything)
    assert stats["totalOutputTokens"] == sum(o for _, o in everything)
    assert Decimal(stats["totalCost"]) == _cost(X, everything)

    view = b("view")
    assert set(view) == {GPT4_KEY}  # B dropped Y at its save
    assert view[GPT4_KEY]["requests"] == len(everything)
    assert Decimal(view[GPT4_KEY]["cost"]) == _cost(X, everything)

    with EnhancedModelRegistry(persistence_path=tmp_path / "registry.json", auto_save=False) as fresh:
        assert fresh.load() == 1
        assert OPUS_KEY not in fresh
        stats_x = fresh.get_usage_stats(GPT4_KEY)
        assert stats_x is not None
        assert stats_x.request_count == len(everything)
        assert stats_x.total_cost == _cost(X, everything)
    a.exit()
    b.exit()


@pytest.mark.timeout(60)
def test_newer_definition_wins_across_processes(tmp_path: Path, agents: StartAgent) -> None:
    a, b = agents(), agents()
    a("register", models=[X])
    a("record", key=GPT4_KEY, usage=[(10, 5)])
    a("save")
    assert b("load") == 1
    time.sleep(0.01)  # B's change is clearly newer than A's definition
    b("update", key=GPT4_KEY, updates={"name": "GPT-4 Turbo (renamed by B)"})
    b("record", key=GPT4_KEY, usage=[(20, 5)])
    b("save")
    assert _file_models(tmp_path)[GPT4_KEY]["name"] == "GPT-4 Turbo (renamed by B)"

    a("record", key=GPT4_KEY, usage=[(30, 5)])
    a("save")  # A never changed X after B: its older definition must not win
    saved = _file_models(tmp_path)[GPT4_KEY]
    assert saved["name"] == "GPT-4 Turbo (renamed by B)"
    assert saved["usageStats"]["requestCount"] == 3
    assert Decimal(saved["usageStats"]["totalCost"]) == _cost(X, [(10, 5), (20, 5), (30, 5)])
    assert a("view")[GPT4_KEY]["name"] == "GPT-4 Turbo (renamed by B)"  # and A adopted B's definition

    a("save")  # saving again without changes changes nothing
    assert _file_models(tmp_path)[GPT4_KEY]["name"] == "GPT-4 Turbo (renamed by B)"
    assert _file_models(tmp_path)[GPT4_KEY]["usageStats"]["requestCount"] == 3
    a.exit()
    b.exit()


@pytest.mark.timeout(60)
def test_dead_writers_journal_is_replayed_once_by_two_loaders(tmp_path: Path, agents: StartAgent) -> None:
    usage = [(100, 10), (200, 20), (300, 30)]
    dead = agents("journal")
    dead("register", models=[X])
    dead("save")
    dead("record", key=GPT4_KEY, usage=usage)  # journaled, never saved
    dead.kill()  # SIGKILL: its records are only in the journal

    first, second = agents("journal"), agents("journal")
    assert first("load") == 1
    assert second("load") == 1
    assert first("view")[GPT4_KEY]["requests"] == 3  # both replay the dead writer's records
    assert second("view")[GPT4_KEY]["requests"] == 3
    first("save")
    second("save")
    saved = _file_models(tmp_path)[GPT4_KEY]["usageStats"]
    assert saved["requestCount"] == 3
    assert Decimal(saved["totalCost"]) == _cost(X, usage)
    assert second("view")[GPT4_KEY]["requests"] == 3
    first.exit()
    second.exit()
