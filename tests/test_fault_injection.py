"""Fault injection into save(): a full disk, a failed fsync, a failed rename, a failing serialiser.

Real files under ``tmp_path``; only the failing call is patched (by ``tests/faults.py``), and only while the failing
save runs:

- ``os.replace`` of the snapshot over its path (``replace``), or of the hard link over ``<path>.bak`` (``backup``);
- ``os.fsync`` of the temporary file (``fsync-file``), or of the folder once ``os.replace`` succeeded (``fsync-dir``);
- the serialiser: ``noa_ai_provider.persistence.sync.encode_entries`` (``encode``) or ``noa_ai_provider.jsonio.dumps``
  (``dumps``), raising ``OSError(ENOSPC)``.

Every fault but ``fsync-dir`` strikes before ``os.replace``: the old file must stay byte-identical. ``fsync-dir``
strikes after it: the new file is in place (holding this save's batch) although ``save()`` raised, and the next save
must not add that batch a second time. In every case ``save()`` raises ``PersistenceError`` naming the file, no
temporary file is left, the registry stays dirty, and the next successful save writes every request exactly once
(checked as exact counters and ``Decimal`` cost in a fresh registry's ``load()``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, PersistenceError
from noa_ai_provider.persistence import keep_backup, locked
from noa_ai_provider.testing import FakeClock, writer_id

from .faults import K_GPT, K_OPUS, PRICES, inject, shown
from .samples import GPT4, OPUS

BEFORE_REPLACE = ("replace", "backup", "fsync-file", "encode", "dumps")
SERIALIZER_FAULTS = ("encode", "dumps")
ALL_FAULTS = ("replace", "backup", "fsync-file", "fsync-dir", *SERIALIZER_FAULTS)


class Ledger:
    """Every request recorded, per model: requests, successes, input tokens, output tokens, exact cost."""

    def __init__(self) -> None:
        self.totals: dict[str, list[Any]] = {}

    def record(self, reg: EnhancedModelRegistry, key: str, inp: int, out: int, success: bool = True) -> None:
        cost = reg.record_usage(key, inp, out, success)
        pin, pout = PRICES[key]
        assert cost == (inp * pin + out * pout) / 1000  # exact
        row = self.totals.setdefault(key, [0, 0, 0, 0, Decimal(0)])
        row[0] += 1
        row[1] += int(success)
        row[2] += inp
        row[3] += out
        row[4] += cost

    def add(self, other: Ledger) -> None:
        for key, values in other.totals.items():
            row = self.totals.setdefault(key, [0, 0, 0, 0, Decimal(0)])
            for i, value in enumerate(values):
                row[i] += value

    def expected(self, key: str) -> tuple[int, int, int, int, Decimal]:
        row = self.totals.get(key, [0, 0, 0, 0, Decimal(0)])
        return (row[0], row[1], row[2], row[3], row[4])


def make(path: Path, clock: FakeClock, **kwargs: Any) -> EnhancedModelRegistry:
    kwargs.setdefault("auto_save", False)
    return EnhancedModelRegistry(persistence_path=path, clock=clock, **kwargs)


def assert_file_holds(path: Path, clock: FakeClock, ledger: Ledger) -> None:
    """A fresh registry loading ``path`` shows exactly ``ledger`` (counters, cost, and the daily history sums)."""
    fresh = make(path, clock)
    try:
        fresh.load()
        for key in (K_GPT, K_OPUS):
            assert shown(fresh, key) == ledger.expected(key), key
            days = fresh.get_usage_history(key)
            assert sum(d.requests for d in days) == ledger.expected(key)[0]
            assert sum((d.cost for d in days), Decimal(0)) == ledger.expected(key)[4]
    finally:
        fresh.close()


def leftovers(path: Path) -> list[str]:
    """The temporary files (``.<name>.*.tmp``: the snapshot's, and keep_backup()'s hard link) in its folder."""
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*.tmp"))


def folder_names(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "registry.json"


def started(path: Path, clock: FakeClock, ledger: Ledger) -> EnhancedModelRegistry:
    """A registry with GPT4 and OPUS, some usage, saved once."""
    reg = make(path, clock)
    reg.register_models([GPT4, OPUS])
    ledger.record(reg, K_GPT, 1200, 340)
    ledger.record(reg, K_OPUS, 77, 5, success=False)
    reg.save()
    assert not reg.dirty
    return reg


# --------------------------------------------------------------------------- one failing save


@pytest.mark.parametrize("kind", ALL_FAULTS)
def test_a_failed_save_keeps_the_old_file_leaves_no_temp_file_and_loses_nothing(
    path: Path, clock: FakeClock, kind: str
) -> None:
    ledger = Ledger()
    reg = started(path, clock, ledger)
    old = path.read_bytes()
    ledger.record(reg, K_GPT, 10, 20)
    ledger.record(reg, K_OPUS, 3, 4)
    clock.advance(60)

    with inject(kind, path) as fired, pytest.raises(PersistenceError) as raised:
        reg.save()
    assert fired == [kind]
    assert str(path) in str(raised.value)  # the error names the file

    if kind in BEFORE_REPLACE:
        assert path.read_bytes() == old  # byte-identical
    else:
        assert path.read_bytes() != old  # the batch is in the file although save() raised
        assert_file_holds(path, clock, ledger)
        assert writer_id(reg) in json.loads(path.read_text())["writers"]
    assert leftovers(path) == []
    assert folder_names(path) <= {"registry.json", "registry.json.bak", "registry.json.lock"}
    assert reg.dirty
    for key in (K_GPT, K_OPUS):  # nothing recorded was dropped from memory either
        assert shown(reg, key) == ledger.expected(key)

    ledger.record(reg, K_GPT, 5, 6)
    ledger.record(reg, K_OPUS, 7, 8, success=False)
    clock.advance(60)
    reg.save()  # the disk has room again: everything once
    assert not reg.dirty
    assert leftovers(path) == []
    for key in (K_GPT, K_OPUS):
        assert shown(reg, key) == ledger.expected(key)
    assert_file_holds(path, clock, ledger)
    reg.close()


# Was: encode_entries ran outside any OSError -> PersistenceError wrapping (and, for a while, the fast-path check
# holds_save() called jsonio.dumps too), so the OSError escaped as is and the autosave emitted no save-failed.


@pytest.mark.parametrize("kind", SERIALIZER_FAULTS)
def test_a_serializer_failure_raises_persistence_error(path: Path, clock: FakeClock, kind: str) -> None:
    reg = started(path, clock, Ledger())
    reg.record_usage(K_GPT, 1, 1)
    with inject(kind, path), pytest.raises(OSError, match="No space left") as raised:
        reg.save()
    assert isinstance(raised.value, PersistenceError), f"{type(raised.value).__name__}: {raised.value}"
    reg.close()


@pytest.mark.parametrize("kind", ALL_FAULTS)
def test_a_failed_first_save_loses_nothing(path: Path, clock: FakeClock, kind: str) -> None:
    # No file yet: "backup" has nothing to back up, so that fault cannot strike.
    ledger = Ledger()
    reg = make(path, clock)
    reg.register_models([GPT4, OPUS])
    ledger.record(reg, K_GPT, 11, 22)
    with inject(kind, path) as fired:
        if kind == "backup":
            reg.save()
        else:
            with pytest.raises(PersistenceError):
                reg.save()
    if kind == "backup":
        assert fired == []
        assert not reg.dirty
    elif kind in BEFORE_REPLACE:
        assert not path.exists()
        assert reg.dirty
    else:
        assert path.exists()
        assert reg.dirty
    assert leftovers(path) == []
    ledger.record(reg, K_OPUS, 1, 2)
    reg.save()
    assert_file_holds(path, clock, ledger)
    reg.close()


# --------------------------------------------------------------------------- several failing saves


@pytest.mark.parametrize(("first", "second"), list(itertools.product(ALL_FAULTS, repeat=2)))
def test_fail_fail_succeed_writes_everything_once(path: Path, clock: FakeClock, first: str, second: str) -> None:
    ledger = Ledger()
    reg = started(path, clock, ledger)
    for n, kind in enumerate((first, second)):
        ledger.record(reg, K_GPT, 100 + n, 7)
        ledger.record(reg, K_OPUS, 9, 200 + n)
        clock.advance(30)
        before = path.read_bytes()
        with inject(kind, path) as fired:
            try:
                reg.save()
            except PersistenceError:
                failed = True
            else:
                failed = False
        assert leftovers(path) == []
        if not failed:
            # Only possible when <path>.bak already is the current file (the previous save failed after keeping
            # it): there is nothing to back up, so the failing rename never happens.
            assert (kind, fired) == ("backup", [])
            assert not reg.dirty
            continue
        if kind in BEFORE_REPLACE:
            assert path.read_bytes() == before
        assert reg.dirty
    ledger.record(reg, K_GPT, 1, 1)
    reg.save()
    assert not reg.dirty
    assert leftovers(path) == []
    assert_file_holds(path, clock, ledger)
    for key in (K_GPT, K_OPUS):
        assert shown(reg, key) == ledger.expected(key)
    reg.save()  # nothing pending: a save without changes adds nothing
    assert_file_holds(path, clock, ledger)
    reg.close()


def test_many_failures_after_replace_then_success(path: Path, clock: FakeClock) -> None:
    ledger = Ledger()
    reg = started(path, clock, ledger)
    for n in range(5):
        ledger.record(reg, K_GPT, n, n + 1)
        with inject("fsync-dir", path), pytest.raises(PersistenceError):
            reg.save()
        assert_file_holds(path, clock, ledger)  # each landed once, never twice
    reg.save()
    assert_file_holds(path, clock, ledger)
    reg.close()


# --------------------------------------------------------------------------- another writer in between


@pytest.mark.parametrize("other_loads", [True, False], ids=["other-loads", "other-registers"])
@pytest.mark.parametrize("kind", ALL_FAULTS)
def test_another_writer_saves_between_the_failure_and_the_retry(
    path: Path, clock: FakeClock, kind: str, other_loads: bool
) -> None:
    ledger = Ledger()
    a = started(path, clock, ledger)
    ledger.record(a, K_GPT, 40, 2)
    clock.advance(10)
    with inject(kind, path), pytest.raises(PersistenceError):
        a.save()

    b = make(path, clock)  # another writer on the same path
    if other_loads:
        b.load()
    else:
        b.register_models([GPT4, OPUS])
    theirs = Ledger()
    theirs.record(b, K_GPT, 1000, 1000)
    theirs.record(b, K_OPUS, 1, 1)
    clock.advance(10)
    b.save()
    ledger.record(a, K_OPUS, 2, 3)
    clock.advance(10)
    a.save()  # the retry: its failed batch once, whether it landed or not
    ledger.add(theirs)
    assert_file_holds(path, clock, ledger)
    for key in (K_GPT, K_OPUS):
        assert shown(a, key) == ledger.expected(key)  # a took the merged totals
    b.save()
    assert_file_holds(path, clock, ledger)
    a.close()
    b.close()


def test_both_writers_fail_after_replace_then_both_retry(path: Path, clock: FakeClock) -> None:
    ledger = Ledger()
    a = started(path, clock, ledger)
    b = make(path, clock)
    b.load()
    ledger.record(a, K_GPT, 1, 2)
    ledger.record(b, K_GPT, 3, 4)
    with inject("fsync-dir", path):
        with pytest.raises(PersistenceError):
            a.save()
        with pytest.raises(PersistenceError):
            b.save()
    ledger.record(a, K_OPUS, 5, 6)
    ledger.record(b, K_OPUS, 7, 8)
    b.save()
    a.save()
    assert_file_holds(path, clock, ledger)
    a.close()
    b.close()


@pytest.mark.parametrize("kind", ALL_FAULTS)
def test_load_between_the_failure_and_the_retry_counts_everything_once(path: Path, clock: FakeClock, kind: str) -> None:
    ledger = Ledger()
    reg = started(path, clock, ledger)
    ledger.record(reg, K_GPT, 13, 17)
    with inject(kind, path), pytest.raises(PersistenceError):
        reg.save()
    ledger.record(reg, K_GPT, 19, 23)
    reg.load()  # the failed batch: from the file when it landed, still this process's otherwise
    for key in (K_GPT, K_OPUS):
        assert shown(reg, key) == ledger.expected(key)
    reg.save()
    assert_file_holds(path, clock, ledger)
    reg.close()


def test_a_writer_that_dies_after_a_failure_after_replace_keeps_that_batch(path: Path, clock: FakeClock) -> None:
    ledger = Ledger()
    reg = started(path, clock, ledger)
    ledger.record(reg, K_GPT, 8, 9)
    with inject("fsync-dir", path), pytest.raises(PersistenceError):
        reg.save()
    reg.record_usage(K_GPT, 500, 500)  # never saved: lost with the process
    reg.close()  # auto_save=False: close writes nothing, as a crash
    del reg
    assert_file_holds(path, clock, ledger)


# --------------------------------------------------------------------------- autosave


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.mark.parametrize("kind", ALL_FAULTS)
def test_a_failing_autosave_emits_save_failed_and_retries_losing_nothing(
    path: Path, clock: FakeClock, kind: str
) -> None:
    ledger = Ledger()
    seed = started(path, clock, ledger)
    seed.close()
    reg = make(path, clock, auto_save=True, auto_save_interval=0.02)
    reg.load()
    failures: list[dict[str, Any]] = []
    saved = threading.Event()
    lock = threading.Lock()

    def on_failed(sender: object, **payload: Any) -> None:
        with lock:
            failures.append(payload)

    reg.on("save-failed", on_failed)
    reg.on("registry-saved", lambda sender, **payload: saved.set())
    assert _wait(lambda: not reg.dirty)  # the load made it dirty; the autosave catches up
    old = path.read_bytes()
    saved.clear()
    with inject(kind, path) as fired:
        for n in range(3):
            ledger.record(reg, K_GPT, 10 + n, 1)
            assert _wait(lambda: len(failures) > n)  # noqa: B023 - called before n changes
        ledger.record(reg, K_OPUS, 4, 4)
        assert _wait(lambda: len(failures) >= 4)  # and it keeps trying
        assert reg.dirty
        with lock:
            first = failures[0]
        assert first["path"] == str(path)
        assert isinstance(first["error"], PersistenceError)
        assert len(fired) >= 4
        with locked(path):  # no save in flight: a failed one left nothing behind
            if kind in BEFORE_REPLACE:
                assert path.read_bytes() == old
            assert leftovers(path) == []
        assert not saved.is_set()
    assert _wait(saved.is_set)  # the disk has room again: the next tick writes everything
    assert _wait(lambda: not reg.dirty)
    reg.close()
    assert leftovers(path) == []
    assert_file_holds(path, clock, ledger)


# --------------------------------------------------------------------------- keep_backup's temporary hard link

# Found by the tests above: renaming the hard link over a <path>.bak that already is a link to <path> (after a save
# that failed between keep_backup and os.replace) is a no-op under POSIX rename(2), which left the link behind.


def test_keep_backup_twice_leaves_no_backup_link(tmp_path: Path) -> None:
    # keep_backup() twice with no replace in between.
    path = tmp_path / "r.json"
    path.write_text("{}")
    keep_backup(path)
    keep_backup(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.bak"]


@pytest.mark.parametrize("kind", ["replace", "fsync-file"])
def test_a_second_failed_save_leaves_no_backup_link(path: Path, clock: FakeClock, kind: str) -> None:
    reg = started(path, clock, Ledger())
    for _ in range(2):
        reg.record_usage(K_GPT, 1, 1)
        with inject(kind, path), pytest.raises(PersistenceError):
            reg.save()
        assert leftovers(path) == []
    reg.close()


@pytest.mark.parametrize("kind", ["replace", "fsync-file"])
def test_a_save_after_a_failed_save_leaves_no_backup_link(path: Path, clock: FakeClock, kind: str) -> None:
    reg = started(path, clock, Ledger())
    reg.record_usage(K_GPT, 1, 1)
    with inject(kind, path), pytest.raises(PersistenceError):
        reg.save()
    assert leftovers(path) == []  # the failed save itself cleans up
    reg.save()
    assert leftovers(path) == []
    reg.close()
