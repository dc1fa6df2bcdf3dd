"""Journal mode with torn lines and forks: a writer killed mid-append never blocks the journal, and no
acknowledged record is lost or counted twice.

- Deterministic: a partial line written by hand (as a killed writer leaves it), garbage in the middle, a record
  glued to a fragment by an older version, a fragment cutting a UTF-8 character in two.
- SIGKILL: writers in subprocesses, with lines of 128 KiB so that a kill can land inside an append, killed at
  random moments while the parent loads and saves (folding and truncating the journal) meanwhile.
- Forks: hundreds of ``os.fork()`` while threads of the parent append; every child must finish in bounded time.

The default run is small (30 kills, 400 forks); ``NOA_STRESS=1`` makes it large (300 kills, 2,000 forks).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.persistence.journal import Journal
from tests.integration.forks import reap

STRESS = bool(os.environ.get("NOA_STRESS"))
KILLS = 300 if STRESS else 30
FORKS = 2000 if STRESS else 400
LOGGER = "noa_ai_provider.persistence"


def _model(model_id: str = "m") -> dict[str, object]:
    return {
        "id": model_id,
        "name": "M",
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": 1, "outputTokens": 2, "per": 1000},
    }


def _open(path: Path, model_id: str = "m") -> tuple[EnhancedModelRegistry, str]:
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal")
    return registry, registry.register_model(_model(model_id))


def _requests(path: Path, key: str) -> int:
    """The requests a fresh process reads back: the snapshot plus the journal's records of dead writers."""
    with EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal") as reader:
        reader.load()
        stats = reader.get_usage_stats(key)
        assert stats is not None
        return stats.request_count


def _journal(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


# --- deterministic -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["m", "modèle-é"])  # the second: the fragment ends inside a character
def test_a_torn_line_is_ended_by_the_next_append_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, model_id: str
) -> None:
    path = tmp_path / "registry.json"
    writer, key = _open(path, model_id)
    writer.save()  # the model is in the snapshot; its usage goes to the journal
    for _ in range(3):
        writer.record_usage(key, 1000, 1000)
    journal = _journal(path)
    record = journal.read_bytes().splitlines()[-1]
    cut = record.index("é".encode()) + 1 if "é" in model_id else len(record) // 2
    with journal.open("ab") as handle:  # a writer killed mid-append: half a line, no newline
        handle.write(record[:cut])
    for _ in range(2):
        writer.record_usage(key, 1000, 1000)  # acknowledged: each on a line of its own
    writer.close()  # gone without saving (auto_save is off): its records are the journal's to replay

    lines = journal.read_bytes().split(b"\n")
    assert lines[3] == record[:cut]  # the fragment was ended, not glued to the next record
    assert lines[-1] == b""
    assert [json.loads(line)["seq"] for n, line in enumerate(lines[:-1]) if n != 3] == [2, 3, 4, 5, 6]

    with caplog.at_level("WARNING", logger=LOGGER):
        fresh, _ = _open(path, model_id)
        assert fresh.load() == 1
    stats = fresh.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.total_cost) == (5, Decimal("15"))  # every acknowledged record, once
    [warning] = _warnings(caplog)
    assert str(journal) in warning
    assert "skipped 1 line(s)" in warning
    assert "line(s) 4" in warning
    reader = Journal(journal)
    assert len(reader.read()) == 5
    assert reader.skipped == (4,)  # the count, as the journal's reader exposes it

    caplog.clear()
    with caplog.at_level("WARNING", logger=LOGGER):
        fresh.save()  # folds the five in and drops the fragment (counted, logged)
    assert journal.read_bytes() == b""
    assert any("dropped 1 line(s)" in w for w in _warnings(caplog))
    fresh.close()
    assert _requests(path, key) == 5


def test_garbage_anywhere_is_skipped_and_a_glued_record_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "registry.json"
    writer, key = _open(path)
    writer.save()
    for _ in range(4):
        writer.record_usage(key, 10, 10)
    writer.close()
    journal = _journal(path)
    first, second, third, fourth = journal.read_bytes().splitlines()
    # Line 2 is garbage, line 3 JSON that is not a record, line 4 a record with a field of the wrong type; line 6 is
    # a fragment with a whole record glued to its end (what appends wrote before they ended a torn line first).
    journal.write_bytes(
        b"\n".join(
            [
                first,
                b"\x00\xffgarbage",
                b"[1, 2, 3]",
                second.replace(b'"inputTokens": 10', b'"inputTokens": "10"'),
                third,
                fourth[: len(fourth) // 3] + second,
                b"",
            ]
        )
    )
    with caplog.at_level("WARNING", logger=LOGGER):
        appender, _ = _open(path)
        appender.record_usage(key, 10, 10)  # appends after the garbage (the file ends with a newline)
        appender.close()
        # The first, the second (its copy glued to the fragment; the mangled copy is skipped), the third and the new
        # one; the fourth is lost as any torn line is (its append never returned).
        assert _requests(path, key) == 4
    assert "line(s) 2, 3, 4, 6" in _warnings(caplog)[0]

    saver, _ = _open(path)
    saver.load()
    saver.save()
    saver.close()
    assert journal.read_bytes() == b""  # the journal is clean again
    assert Journal(journal).read() == []
    assert _requests(path, key) == 4


def test_an_unterminated_tail_is_left_alone_by_a_load_and_dropped_by_a_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "registry.json"
    writer, key = _open(path)
    writer.save()
    writer.record_usage(key, 10, 10)
    writer.close()
    journal = _journal(path)
    with journal.open("ab") as handle:
        handle.write(b'{"writer": "1-dead", "seq": 7, "key": "open')  # torn, and nobody appended since
    with caplog.at_level("WARNING", logger=LOGGER):
        fresh, _ = _open(path)
        fresh.load()  # a load cannot tell a torn tail from an append in flight: ignored, silently
        assert _warnings(caplog) == []
        assert Journal(journal).scan().unterminated
        fresh.save()  # the save holds the append lock: the tail is torn, and is dropped
        fresh.close()
    assert journal.read_bytes() == b""
    assert "dropped 1 line(s)" in _warnings(caplog)[0]
    assert _requests(path, key) == 1


# --- SIGKILL -------------------------------------------------------------------------------------------------------

WRITER = r"""
import sys
from noa_ai_provider import EnhancedModelRegistry

path, model_id = sys.argv[1], "x" * int(sys.argv[2])
registry = EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal")
key = registry.register_model(
    {"id": model_id, "name": "M", "provider": "openai", "version": "1.0.0",
     "cost": {"inputTokens": 1, "outputTokens": 2, "per": 1000}}
)
n = 0
while True:
    registry.record_usage(key, 1, 1)
    n += 1
    sys.stdout.write(f"{n}\n")  # acknowledged: record_usage has returned
    sys.stdout.flush()
"""

# Lines of 128 KiB: the kernel copies them page by page, so a kill can cut one. (Passed by length: one argument of
# a command line may not be that long.)
LONG_ID = "x" * (128 * 1024)


def _kill_cycles(path: Path, cycles: int, seed: int, out: list[int]) -> None:
    """Start a writer, let it acknowledge a random number of records, kill it a random moment later; repeat.
    Appends to ``out`` how many records each writer acknowledged."""
    rng = random.Random(seed)
    for _ in range(cycles):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(len(LONG_ID))],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert child.stdout is not None
        target = rng.randint(1, 12)
        acked = 0
        try:
            for line in child.stdout:
                acked = int(line)
                if acked >= target:
                    break
            time.sleep(rng.uniform(0, 0.004))  # inside one of the next appends, or between two
            child.kill()
        finally:
            child.wait(30)
            rest = child.stdout.read()
            child.stdout.close()
        # Acknowledgements are numbered from 1; only whole lines count (a kill may cut the last one).
        out.append(max([acked, *(int(n) for n in rest.split(b"\n")[:-1])]))


@pytest.mark.timeout(600)
def test_writers_killed_mid_append_lose_no_acknowledged_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "registry.json"
    owner, key = _open(path, LONG_ID)
    owner.save()
    results: list[int] = []
    started = time.monotonic()
    workers = [
        threading.Thread(target=_kill_cycles, args=(path, KILLS // 2, seed, results), daemon=True) for seed in (1, 2)
    ]
    with caplog.at_level("WARNING", logger=LOGGER):
        for worker in workers:
            worker.start()
        folds = 0
        while any(worker.is_alive() for worker in workers):
            # Meanwhile, what an autosaving process does: replay the dead writers' records, fold them into the
            # snapshot and truncate the journal, dropping torn lines, while the live writer appends.
            time.sleep(0.2)
            owner.load()
            owner.save()
            folds += 1
        for worker in workers:
            worker.join()
        owner.load()
        owner.save()
        owner.close()
    elapsed = time.monotonic() - started
    assert len(results) == KILLS
    acknowledged = sum(results)
    torn = sum(int(m.group(1)) for w in _warnings(caplog) if (m := re.search(r"dropped (\d+) line", w)))
    total = _requests(path, key)
    print(
        f"\n{KILLS} kills, {acknowledged} acknowledged, {total} counted, {torn} torn lines dropped, "
        f"{folds} folds, {elapsed:.1f} s"
    )
    # Every acknowledged record once; at most the one in flight at each kill on top.
    assert acknowledged <= total <= acknowledged + KILLS
    assert _journal(path).read_bytes() == b""  # every writer is dead and saved: nothing left, nothing unreadable


# --- forks ---------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_forks_while_threads_append_never_hang_and_count_every_record_once(tmp_path: Path) -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: forks land inside appends
    try:
        _fork_run(tmp_path)
    finally:
        sys.setswitchinterval(previous)


def _fork_run(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    registry, key = _open(path, "m" * 20_000)  # longer lines: more time inside the write, where forks can land
    registry.save()
    stop = threading.Event()
    recorded = [0, 0, 0]

    def record(slot: int) -> None:
        while not stop.is_set():
            registry.record_usage(key, 1, 1)
            recorded[slot] += 1

    threads = [threading.Thread(target=record, args=(n,), daemon=True) for n in range(len(recorded))]
    for thread in threads:
        thread.start()
    pids: dict[int, float] = {}
    started = time.monotonic()
    try:
        for n in range(FORKS):
            pid = os.fork()
            if pid == 0:  # the child: one record of its own, in the journal only, then out (never saved)
                code = 1
                try:
                    registry.record_usage(key, 1, 1)
                    code = 0
                finally:
                    os._exit(code)
            pids[pid] = time.monotonic()
            if len(pids) >= 8:  # a few children at a time: the machine may have two cores
                problems = reap(pids)
                assert not problems, problems
            if n % 50 == 25:
                registry.save()  # a truncation now and then, racing the appends of threads and children
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    problems = reap(pids)
    assert not problems, problems
    registry.save()  # the parent's records into the snapshot; the children's stay in the journal
    registry.close()
    total = _requests(path, key)
    print(f"\n{FORKS} forks, {sum(recorded)} parent records, {time.monotonic() - started:.1f} s")
    assert total == sum(recorded) + FORKS
