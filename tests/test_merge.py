"""Merging several writers into one snapshot: noa_ai_provider.merge on its own, then two registries on one path.

Unit tests build :class:`Row`, :class:`Delta`, :class:`Batch` and :class:`Definition` values by hand and check
:func:`merge` and :func:`merge_meta`: usage adds up, a batch at or below its writer's watermark is skipped, the newer
``updated_at`` wins, tombstones remove older copies and block older definitions, and watermarks and tombstones
older than :data:`KEEP_FOR` are dropped.

Registry tests run two ``EnhancedModelRegistry`` objects (two writers) on one file with one :class:`FakeClock`.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, PersistenceError
from noa_ai_provider.cost import UsageCounters, UsageHistory
from noa_ai_provider.persistence.merge import (
    KEEP_FOR,
    Batch,
    Definition,
    Delta,
    Replayed,
    Row,
    Snapshot,
    merge,
    merge_meta,
    newer_metrics,
)
from noa_ai_provider.schemas import ExtendedModelInfo, ModelPerformanceMetrics, validate_or_raise
from noa_ai_provider.testing import FakeClock, writer_id

from .samples import GPT4, OPUS, model

K_GPT = "openai:gpt-4-turbo-preview"
K_OPUS = "claude:claude-3-opus-20240229"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
DAY1 = date(2024, 3, 1)
DAY2 = date(2024, 3, 2)
W = "1-aaaaaaaaaaaa"  # this writer
OTHER = "2-bbbbbbbbbbbb"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def info(base: dict[str, Any] | None = None, **changes: Any) -> ExtendedModelInfo:
    return validate_or_raise(ExtendedModelInfo, model(base, **changes), "test model")


def delta(
    inp: int = 0,
    out: int = 0,
    cost: str = "0",
    requests: int = 1,
    day: date = DAY1,
    accesses: int = 0,
    absolute: bool = False,
    absolute_history: bool = False,
) -> Delta:
    d = Delta()
    for _ in range(requests):
        d.usage.add(inp, out, Decimal(cost), True)
        d.history.add(day, inp, out, 0, 0, Decimal(cost))
    d.accesses = accesses
    d.absolute = absolute  # a reset: the usage counters replace the file's
    d.absolute_history = absolute_history  # an import: the daily history does too
    return d


def row(m: ExtendedModelInfo | None = None, updated: float = 0, usage: Delta | None = None) -> Row:
    r = Row(m if m is not None else info(), at(0), at(updated))
    if usage is not None:
        r.apply(usage)
    return r


def definition(m: ExtendedModelInfo | None = None, updated: float = 0, registered: float = 0) -> Definition:
    return Definition(m if m is not None else info(), at(registered), at(updated), None)


def counts(u: UsageCounters) -> tuple[int, int, int, Decimal]:
    return (u.request_count, u.total_input_tokens, u.total_output_tokens, u.total_cost)


def days(h: UsageHistory, key: str = K_GPT) -> list[tuple[date, int, int, Decimal]]:
    return [(e.date, e.requests, e.input_tokens, e.cost) for e in h.entries(key)]


# =========================================================================== Delta and Row


def test_row_apply_adds_or_puts() -> None:
    r = row(usage=delta(100, 50, "1.5", requests=2, accesses=3))
    assert counts(r.usage) == (2, 200, 100, Decimal("3.0"))
    assert r.access_count == 3
    d = delta(1, 1, "0.04", day=DAY2, accesses=1)
    d.last_accessed = at(9)
    r.apply(d)
    assert counts(r.usage) == (3, 201, 101, Decimal("3.04"))
    assert days(r.history) == [(DAY1, 2, 200, Decimal("3.0")), (DAY2, 1, 1, Decimal("0.04"))]
    assert (r.access_count, r.last_accessed) == (4, at(9))
    r.apply(delta(5, 5, "0.2", accesses=1, absolute=True))  # a reset: counters put, history added
    assert counts(r.usage) == (1, 5, 5, Decimal("0.2"))
    assert days(r.history) == [(DAY1, 3, 205, Decimal("3.2")), (DAY2, 1, 1, Decimal("0.04"))]
    assert r.access_count == 5  # accesses always add
    r.apply(delta(6, 6, "0.3", day=DAY2, absolute=True, absolute_history=True))  # an import: both put
    assert counts(r.usage) == (1, 6, 6, Decimal("0.3"))
    assert days(r.history) == [(DAY2, 1, 6, Decimal("0.3"))]


def test_row_entry_round_trip() -> None:
    r = row(updated=10, usage=delta(3, 4, "0.125", requests=3, accesses=2))
    r.metrics = ModelPerformanceMetrics(success_rate=0.5, last_updated=at(7))
    entry = r.entry(K_GPT)
    assert entry.key == K_GPT
    assert entry.usage_stats.total_cost == Decimal("0.375")
    back = Row.from_entry(entry, r.history.entries(K_GPT))
    assert counts(back.usage) == counts(r.usage)
    assert days(back.history) == days(r.history)
    assert (back.registered_at, back.updated_at, back.access_count) == (at(0), at(10), 2)
    assert back.metrics == r.metrics
    assert back.model == r.model


def test_newer_metrics() -> None:
    old = ModelPerformanceMetrics(success_rate=0.1, last_updated=at(1))
    new = ModelPerformanceMetrics(success_rate=0.9, last_updated=at(2))
    undated = ModelPerformanceMetrics(success_rate=0.5)
    assert newer_metrics(None, None) is None
    assert newer_metrics(old, None) is old
    assert newer_metrics(None, new) is new
    assert newer_metrics(old, new) is new
    assert newer_metrics(new, old) is new
    assert newer_metrics(undated, old) is old
    assert newer_metrics(old, undated) is old


# =========================================================================== merge()


def test_merge_applies_only_the_batches_above_the_watermark() -> None:
    disk = Snapshot({K_GPT: row(usage=delta(10, 10, "0.4"))}, writers={W: (2, at(0))})
    batches = [Batch(seq, {K_GPT: delta(seq, 0, "0.01")}) for seq in (1, 2, 3, 4)]
    out = merge(disk, {K_GPT: definition()}, batches, W, at(60))
    r = out.rows[K_GPT]
    assert counts(r.usage) == (3, 10 + 3 + 4, 10, Decimal("0.42"))  # 1 and 2 were in the file already
    assert out.writers == {W: (4, at(60))}


def test_merge_applies_every_batch_of_a_writer_the_file_does_not_know() -> None:
    disk = Snapshot({K_GPT: row(usage=delta(10, 10, "0.4"))}, writers={OTHER: (7, at(0))})
    batches = [Batch(1, {K_GPT: delta(1, 0, "0.01")}), Batch(2, {K_GPT: delta(2, 0, "0.02")})]
    out = merge(disk, {K_GPT: definition()}, batches, W, at(60))
    assert counts(out.rows[K_GPT].usage) == (3, 13, 10, Decimal("0.43"))
    assert out.writers == {OTHER: (7, at(0)), W: (2, at(60))}


def test_merge_applies_absolute_then_additive_batches_in_order() -> None:
    disk = Snapshot({K_GPT: row(usage=delta(10, 10, "0.4", requests=5))})
    batches = [
        Batch(1, {K_GPT: delta(1, 0, "0.01")}),
        Batch(2, {K_GPT: delta(2, 0, "0.02", absolute=True)}),
        Batch(3, {K_GPT: delta(3, 0, "0.03")}),
    ]
    out = merge(disk, {K_GPT: definition()}, batches, W, at(60))
    assert counts(out.rows[K_GPT].usage) == (2, 5, 0, Decimal("0.05"))


def test_merge_keeps_rows_only_the_file_has_and_adds_keys_only_local_has() -> None:
    opus = info(OPUS)
    disk = Snapshot({K_OPUS: row(opus, usage=delta(1, 1, "0.09"))})
    batches = [Batch(1, {K_GPT: delta(5, 5, "0.2")})]
    out = merge(disk, {K_GPT: definition(updated=5)}, batches, W, at(60))
    assert set(out.rows) == {K_OPUS, K_GPT}
    assert counts(out.rows[K_OPUS].usage) == (1, 1, 1, Decimal("0.09"))
    assert counts(out.rows[K_GPT].usage) == (1, 5, 5, Decimal("0.2"))  # from zero, plus its batch
    assert out.rows[K_GPT].updated_at == at(5)


def test_merge_deltas_of_keys_nobody_defines_are_dropped() -> None:
    out = merge(Snapshot(), {}, [Batch(1, {K_GPT: delta(5, 5, "0.2")})], W, at(60))
    assert out.rows == {}
    assert out.writers == {W: (1, at(60))}


@pytest.mark.parametrize(("mine", "disk_at", "winner"), [(20, 10, "mine"), (10, 20, "disk"), (10, 10, "disk")])
def test_merge_newer_definition_wins(mine: float, disk_at: float, winner: str) -> None:
    disk_row = row(info(name="On disk"), updated=disk_at, usage=delta(1, 1, "0.04"))
    disk_row.registered_at = at(-100)
    local = definition(info(name="Mine"), updated=mine, registered=-50)
    out = merge(Snapshot({K_GPT: disk_row}), {K_GPT: local}, [], W, at(60))
    r = out.rows[K_GPT]
    assert r.model.name == ("Mine" if winner == "mine" else "On disk")
    assert r.updated_at == at(max(mine, disk_at))
    assert r.registered_at == at(-100)  # the earlier registration
    assert counts(r.usage) == (1, 1, 1, Decimal("0.04"))  # a definition carries no usage


def test_merge_keeps_the_newer_metrics() -> None:
    disk_row = row()
    disk_row.metrics = ModelPerformanceMetrics(success_rate=0.2, last_updated=at(30))
    mine = ModelPerformanceMetrics(success_rate=0.8, last_updated=at(40))
    local = Definition(info(), at(0), at(0), mine)
    assert merge(Snapshot({K_GPT: disk_row}), {K_GPT: local}, [], W, at(60)).rows[K_GPT].metrics == mine
    older = ModelPerformanceMetrics(success_rate=0.8, last_updated=at(20))
    disk_row = row()
    disk_row.metrics = ModelPerformanceMetrics(success_rate=0.2, last_updated=at(30))
    local = Definition(info(), at(0), at(0), older)
    assert merge(Snapshot({K_GPT: disk_row}), {K_GPT: local}, [], W, at(60)).rows[K_GPT].metrics == disk_row.metrics


def test_merge_a_removal_drops_a_copy_defined_before_it() -> None:
    disk = Snapshot({K_GPT: row(updated=10, usage=delta(1, 1, "0.04")), K_OPUS: row(info(OPUS))})
    batches = [Batch(1, removed={K_GPT: at(20)})]
    out = merge(disk, {K_OPUS: definition(info(OPUS))}, batches, W, at(60))
    assert set(out.rows) == {K_OPUS}
    assert out.removed == {K_GPT: at(20)}


def test_merge_a_removal_keeps_a_copy_defined_after_it() -> None:
    disk = Snapshot({K_GPT: row(updated=30, usage=delta(1, 1, "0.04"))})
    out = merge(disk, {}, [Batch(1, removed={K_GPT: at(20)})], W, at(60))
    assert set(out.rows) == {K_GPT}
    assert counts(out.rows[K_GPT].usage) == (1, 1, 1, Decimal("0.04"))
    assert set(out.removed) == {K_GPT}  # the tombstone outlives the new definition (stale copies elsewhere)


def test_merge_a_tombstone_blocks_an_older_local_definition() -> None:
    disk = Snapshot(removed={K_GPT: at(20)})
    out = merge(disk, {K_GPT: definition(updated=10)}, [Batch(1, {K_GPT: delta(1, 1, "0.04")})], W, at(60))
    assert out.rows == {}
    assert out.removed == {K_GPT: at(20)}


def test_merge_a_newer_local_definition_revives_a_removed_model_from_zero() -> None:
    disk = Snapshot(removed={K_GPT: at(20)})
    out = merge(disk, {K_GPT: definition(updated=30)}, [Batch(1, {K_GPT: delta(1, 1, "0.04")})], W, at(60))
    assert set(out.rows) == {K_GPT}
    assert counts(out.rows[K_GPT].usage) == (1, 1, 1, Decimal("0.04"))
    assert set(out.removed) == {K_GPT}  # the tombstone outlives the new definition (stale copies elsewhere)


def test_merge_skips_the_tombstones_of_landed_batches_with_their_usage() -> None:
    # A batch whose save failed after os.replace is retried: it is in the file already, tombstones included, so a
    # model registered again since (by anybody, even at the removal's instant) is not dropped by the retry.
    for updated in (20, 30):
        disk = Snapshot({K_GPT: row(updated=updated)}, writers={W: (1, at(0))})
        out = merge(disk, {}, [Batch(1, {K_GPT: delta(9, 9, "1")}, removed={K_GPT: at(20)})], W, at(60))
        assert set(out.rows) == {K_GPT}
        assert counts(out.rows[K_GPT].usage) == (0, 0, 0, Decimal(0))
        assert out.writers == {W: (1, at(60))}


def test_merge_usage_sealed_before_a_removal_does_not_reach_the_model_registered_again() -> None:
    # Batches 1-3 of one writer, none in the file: usage of the old model, its removal, the new model's usage.
    disk = Snapshot({K_GPT: row(updated=0, usage=delta(50, 50, "2"))})
    batches = [
        Batch(1, {K_GPT: delta(100, 100, "4")}),
        Batch(2, removed={K_GPT: at(20)}),
        Batch(3, {K_GPT: delta(1, 1, "0.04")}),
    ]
    out = merge(disk, {K_GPT: definition(updated=30)}, batches, W, at(60))
    assert counts(out.rows[K_GPT].usage) == (1, 1, 1, Decimal("0.04"))
    assert set(out.removed) == {K_GPT}  # the tombstone outlives the new definition (stale copies elsewhere)


def test_merge_the_later_of_two_tombstones_is_kept() -> None:
    disk = Snapshot(removed={K_GPT: at(30)})
    out = merge(disk, {}, [Batch(1, removed={K_GPT: at(20)})], W, at(60))
    assert out.removed == {K_GPT: at(30)}
    out = merge(Snapshot(removed={K_GPT: at(10)}), {}, [Batch(1, removed={K_GPT: at(20)})], W, at(60))
    assert out.removed == {K_GPT: at(20)}


# =========================================================================== merge_meta()


def test_merge_meta_sets_this_writers_mark_to_its_newest_batch() -> None:
    now = at(100)
    writers, removed = merge_meta({OTHER: (5, at(0))}, {}, [Batch(3), Batch(4)], W, now)
    assert writers == {OTHER: (5, at(0)), W: (4, now)}
    assert removed == {}
    # A mark never goes back (a batch list older than the file's mark).
    writers, _ = merge_meta({W: (9, at(0))}, {}, [Batch(4)], W, now)
    assert writers == {W: (9, now)}


def test_merge_meta_without_batches_leaves_this_writer_out() -> None:
    writers, _ = merge_meta({OTHER: (5, at(0))}, {}, [], W, at(100))
    assert writers == {OTHER: (5, at(0))}


def test_merge_meta_replayed_records_raise_their_writers_marks() -> None:
    now = at(100)
    third = "3-cccccccccccc"
    batches = [
        Batch(1, replayed=[Replayed(OTHER, 7, K_GPT, delta(1, 1, "0.04"))]),
        Batch(2, replayed=[Replayed(OTHER, 5, K_GPT, Delta()), Replayed(third, 2, K_GPT, Delta())]),
    ]
    writers, _ = merge_meta({OTHER: (6, at(0))}, {}, batches, W, now)
    assert writers == {OTHER: (7, now), third: (2, now), W: (2, now)}


def test_merge_applies_a_replayed_record_only_when_the_file_does_not_hold_it() -> None:
    # A dead writer's journal record, replayed by this writer: added unless the file's watermark of the dead
    # writer already covers it (another writer replayed and saved it first).
    disk = Snapshot({K_GPT: row(usage=delta(10, 10, "0.4"))}, writers={OTHER: (3, at(0))})
    batch = Batch(
        1,
        replayed=[
            Replayed(OTHER, 3, K_GPT, delta(100, 0, "1")),  # held
            Replayed(OTHER, 4, K_GPT, delta(1, 0, "0.01")),  # not yet
        ],
    )
    out = merge(disk, {K_GPT: definition()}, [batch], W, at(60))
    assert counts(out.rows[K_GPT].usage) == (2, 11, 10, Decimal("0.41"))
    assert out.writers == {OTHER: (4, at(60)), W: (1, at(60))}


def test_merge_meta_prunes_watermarks_older_than_keep_for() -> None:
    now = at(0) + KEEP_FOR + timedelta(days=10)
    old = now - KEEP_FOR - timedelta(seconds=1)
    edge = now - KEEP_FOR
    writers, _ = merge_meta({OTHER: (5, old), "3-cccccccccccc": (6, edge)}, {}, [], W, now)
    assert writers == {"3-cccccccccccc": (6, edge)}  # exactly KEEP_FOR old is still kept


def test_merge_meta_prunes_old_tombstones_only() -> None:
    now = at(0) + KEEP_FOR + timedelta(days=10)
    old = now - KEEP_FOR - timedelta(seconds=1)
    edge = now - KEEP_FOR
    recent = now - timedelta(days=1)
    tombs = {"a:old": old, "a:edge": edge, "a:recent": recent}
    batches = [Batch(1, removed={"a:batch": recent, "a:stale": old})]
    _, removed = merge_meta({}, tombs, batches, W, now)
    # Exactly KEEP_FOR old is still kept; a model registered again keeps its tombstone (merge() reads it).
    assert removed == {"a:edge": edge, "a:recent": recent, "a:batch": recent}


# =========================================================================== two registries on one path


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "shared" / "registry.json"


@pytest.fixture
def writers(path: Path, clock: FakeClock) -> Iterator[Callable[..., EnhancedModelRegistry]]:
    opened: list[EnhancedModelRegistry] = []

    def open_writer(load: bool = True) -> EnhancedModelRegistry:
        reg = EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock)
        opened.append(reg)
        if load:
            reg.load()
        return reg

    yield open_writer
    for reg in opened:
        reg.close()


def seeded(path: Path, clock: FakeClock, *models: dict[str, Any]) -> None:
    with EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock) as seed:
        seed.register_models(list(models) or [GPT4, OPUS])
        seed.save()
    clock.advance(1)


def on_disk(path: Path, clock: FakeClock) -> EnhancedModelRegistry:
    fresh = EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock)
    fresh.load()
    return fresh


def requests(reg: EnhancedModelRegistry, key: str) -> tuple[int, int, int, Decimal]:
    stats = reg.get_usage_stats(key)
    assert stats is not None
    return (stats.request_count, stats.total_input_tokens, stats.total_output_tokens, stats.total_cost)


def document(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def gpt_cost(inp: int, out: int) -> Decimal:
    return (inp * Decimal("0.01") + out * Decimal("0.03")) / 1000


@pytest.mark.parametrize("newer_saves_last", [True, False])
def test_definitions_converge_by_updated_at(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry], newer_saves_last: bool
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    clock.advance(10)
    a.update_model(K_GPT, {"name": "Older edit"})
    clock.advance(10)
    newer = datetime.fromtimestamp(clock(), UTC)
    b.update_model(K_GPT, {"name": "Newer edit", "maxTokens": 8192})
    clock.advance(10)
    first, last = (a, b) if newer_saves_last else (b, a)
    first.save()
    last.save()
    first.save()
    for reg in (a, b, on_disk(path, clock)):
        entry = reg.get_model(K_GPT)
        assert entry is not None
        assert (entry.name, entry.max_tokens, entry.updated_at) == ("Newer edit", 8192, newer)


def test_definitions_converge_keeping_usage(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    a.record_usage(K_GPT, 100, 10)
    clock.advance(5)
    b.update_model(K_GPT, {"name": "Renamed"})
    b.record_usage(K_GPT, 1, 1)
    b.save()
    a.save()
    fresh = on_disk(path, clock)
    entry = fresh.get_model(K_GPT)
    assert entry is not None
    assert entry.name == "Renamed"
    assert requests(fresh, K_GPT) == (2, 101, 11, gpt_cost(100, 10) + gpt_cost(1, 1))


def test_a_removal_survives_another_writers_save(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    b.record_usage(K_GPT, 5, 5)
    b.record_usage(K_OPUS, 7, 7)
    clock.advance(10)
    assert a.unregister_model(K_GPT)
    a.save()
    assert K_GPT in document(path)["removed"]
    clock.advance(10)
    b.save()  # b still has the model (defined before the removal): its copy and its usage of it are dropped
    assert K_GPT not in b
    data = document(path)
    assert [m["key"] for m in data["models"]] == [K_OPUS]
    assert K_GPT in data["removed"]
    fresh = on_disk(path, clock)
    assert K_GPT not in fresh
    assert requests(fresh, K_OPUS)[0] == 1
    b.load()
    assert K_GPT not in b


def test_a_removal_reaches_a_writer_that_loads(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    clock.advance(10)
    a.unregister_model(K_OPUS)
    a.save()
    b.load()
    assert K_OPUS not in b
    assert K_GPT in b


def test_registering_again_after_a_removal_revives_the_model_from_zero(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    a.record_usage(K_GPT, 1000, 1000)
    a.save()
    clock.advance(10)
    a.unregister_model(K_GPT)
    a.save()
    b.save()
    assert K_GPT not in b
    clock.advance(10)
    b.register_model(GPT4)  # after the removal
    b.record_usage(K_GPT, 3, 4)
    b.save()
    data = document(path)
    assert K_GPT in [m["key"] for m in data["models"]]
    assert K_GPT in data["removed"]  # kept: it still drops copies from before the removal
    clock.advance(10)
    a.save()  # a's tombstone is older than the new definition
    a.load()
    for reg in (a, b, on_disk(path, clock)):
        assert requests(reg, K_GPT) == (1, 3, 4, gpt_cost(3, 4))  # nothing from before the removal


def test_reset_usage_stats_propagates_as_a_replacement(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    a.record_usage(K_GPT, 10, 0)
    a.save()
    b.record_usage(K_GPT, 20, 0)
    b.save()
    b.record_usage(K_GPT, 40, 0)  # pending in b across a's reset: added on top
    clock.advance(10)
    a.reset_usage_stats(K_GPT)
    a.record_usage(K_GPT, 1, 0)
    a.save()
    assert requests(on_disk(path, clock), K_GPT) == (1, 1, 0, gpt_cost(1, 0))  # replaced, not added to
    assert requests(on_disk(path, clock), K_OPUS)[0] == 0
    b.save()
    assert requests(on_disk(path, clock), K_GPT) == (2, 41, 0, gpt_cost(1, 0) + gpt_cost(40, 0))
    assert requests(b, K_GPT) == (2, 41, 0, gpt_cost(1, 0) + gpt_cost(40, 0))
    a.save()  # nothing new: the reset is not applied again
    assert requests(on_disk(path, clock), K_GPT) == (2, 41, 0, gpt_cost(1, 0) + gpt_cost(40, 0))


def test_import_from_json_replaces_usage_on_disk(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry], tmp_path: Path
) -> None:
    with EnhancedModelRegistry(persistence_path=tmp_path / "other.json", auto_save=False, clock=clock) as src:
        src.register_model(GPT4)
        for _ in range(3):
            src.record_usage(K_GPT, 100, 100)
        exported = src.export_to_json()
    seeded(path, clock)
    a, b = writers(), writers()
    b.record_usage(K_GPT, 7, 7)
    b.save()
    clock.advance(10)
    assert a.import_from_json(exported) == 1
    a.save()
    imported = (3, 300, 300, 3 * gpt_cost(100, 100))
    assert requests(on_disk(path, clock), K_GPT) == imported  # b's 7 were replaced by the import
    assert [(h.date, h.requests) for h in on_disk(path, clock).get_usage_history(K_GPT)] == [
        (h.date, h.requests) for h in a.get_usage_history(K_GPT)
    ]
    b.record_usage(K_GPT, 1, 1)
    b.save()
    assert requests(on_disk(path, clock), K_GPT) == (4, 301, 301, 3 * gpt_cost(100, 100) + gpt_cost(1, 1))
    a.save()
    assert requests(on_disk(path, clock), K_GPT)[0] == 4  # the import replaced once, not at every save


def _fail_folder_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_watermarks_skip_batches_already_applied(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    a.record_usage(K_GPT, 10, 10)
    with monkeypatch.context() as patch:
        _fail_folder_fsync(patch)
        with pytest.raises(PersistenceError):
            a.save()  # the file was replaced: the batch landed, but a does not know it
    marks = document(path)["writers"]
    assert marks[writer_id(a)]["seq"] >= 1
    assert requests(on_disk(path, clock), K_GPT)[0] == 1
    b.record_usage(K_GPT, 1, 1)
    b.save()
    a.record_usage(K_GPT, 2, 2)
    a.save()  # retries the landed batch: skipped by its watermark
    fresh = on_disk(path, clock)
    assert requests(fresh, K_GPT) == (3, 13, 13, gpt_cost(10, 10) + gpt_cost(1, 1) + gpt_cost(2, 2))
    marks = document(path)["writers"]
    assert {writer_id(a), writer_id(b)} <= set(marks)
    assert marks[writer_id(a)]["seq"] > 1
    assert datetime.fromisoformat(marks[writer_id(a)]["savedAt"]) == datetime.fromtimestamp(clock(), UTC)


def test_old_tombstones_and_watermarks_are_pruned(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    a.unregister_model(K_OPUS)
    a.save()
    data = document(path)
    assert writer_id(a) in data["writers"]
    assert K_OPUS in data["removed"]
    clock.advance(KEEP_FOR.total_seconds())  # exactly KEEP_FOR later: still kept
    b.record_usage(K_GPT, 1, 1)
    b.save()
    data = document(path)
    assert writer_id(a) in data["writers"]
    assert K_OPUS in data["removed"]
    clock.advance(1)  # just older than KEEP_FOR: pruned by the next save of anybody
    b.record_usage(K_GPT, 1, 1)
    b.save()
    data = document(path)
    assert set(data["writers"]) == {writer_id(b)}
    assert "removed" not in data
    assert requests(on_disk(path, clock), K_GPT)[0] == 2


def test_usage_history_merges_per_day(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    day1 = datetime.fromtimestamp(clock(), UTC).date()
    a.record_usage(K_GPT, 10, 1)
    a.record_usage(K_GPT, 20, 2)
    b.record_usage(K_GPT, 30, 3)
    b.record_usage(K_OPUS, 5, 5)
    clock.advance(86_400)
    day2 = day1 + timedelta(days=1)
    b.record_usage(K_GPT, 40, 4)
    a.save()
    b.save()
    a.save()
    expected = [
        (day1, 3, 60, 6, gpt_cost(10, 1) + gpt_cost(20, 2) + gpt_cost(30, 3)),
        (day2, 1, 40, 4, gpt_cost(40, 4)),
    ]
    for reg in (a, b, on_disk(path, clock)):
        history = reg.get_usage_history(K_GPT)
        assert [(h.date, h.requests, h.input_tokens, h.output_tokens, h.cost) for h in history] == expected
        assert [(h.date, h.requests) for h in reg.get_usage_history(K_OPUS)] == [(day1, 1)]
        assert [h.key for h in reg.get_usage_history(since=day2)] == [K_GPT]


def test_accesses_add_up(path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    for _ in range(2):
        a.get_model(K_GPT)
    for _ in range(3):
        b.get_model(K_GPT)
    a.save()
    b.save()
    entry = on_disk(path, clock).list_models()[0]
    assert (entry.key, entry.access_count) == (K_GPT, 5)


def test_a_writer_that_never_loaded_merges_instead_of_overwriting(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    seeded(path, clock)
    a = writers()
    a.record_usage(K_GPT, 10, 10)
    a.save()
    b = writers(load=False)
    b.register_model(GPT4)  # its own definition, zero usage of its own
    b.record_usage(K_GPT, 1, 1)
    b.save()
    assert requests(on_disk(path, clock), K_GPT) == (2, 11, 11, gpt_cost(10, 10) + gpt_cost(1, 1))
    assert requests(b, K_GPT) == (2, 11, 11, gpt_cost(10, 10) + gpt_cost(1, 1))
    assert K_OPUS in b  # it adopted the rows only the file had


# =========================================================================== regressions
# Each of these failed on the first version of the merge (see the notes).


def test_reset_keeps_history_saved_by_another_writer(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry]
) -> None:
    # Was: the reset's absolute delta also replaced the file's history with a's copy, erasing b's day.
    seeded(path, clock)
    a, b = writers(), writers()
    clock.advance(86_400)
    b.record_usage(K_GPT, 2, 2)
    b.save()
    a.reset_usage_stats(K_GPT)  # a never saw b's request
    a.save()
    fresh = on_disk(path, clock)
    assert requests(fresh, K_GPT)[0] == 0  # the counters are reset...
    assert sum(h.requests for h in fresh.get_usage_history(K_GPT)) == 1  # ...but the history is not (as in memory)


@pytest.mark.parametrize("other_writes", [False, True], ids=["fast-path", "slow-path"])
def test_a_model_registered_again_does_not_inherit_unsaved_usage_from_before_its_removal(
    path: Path,
    clock: FakeClock,
    writers: Callable[..., EnhancedModelRegistry],
    monkeypatch: pytest.MonkeyPatch,
    other_writes: bool,
) -> None:
    # Was: the slow path (merge) added the unacked batch's usage of the removed model to the new one.
    seeded(path, clock)
    a = writers()
    a.record_usage(K_GPT, 100, 100)
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any) -> None:
        if os.fspath(dst) == os.fspath(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", failing_replace)
        with pytest.raises(PersistenceError):
            a.save()  # the batch holding the 100/100 request stays unacked
    clock.advance(10)
    a.unregister_model(K_GPT)
    clock.advance(10)
    a.register_model(GPT4)
    assert requests(a, K_GPT)[0] == 0
    if other_writes:  # another writer saved meanwhile: a's next save reads and merges the file
        b = writers()
        b.save()
    a.save()
    assert requests(on_disk(path, clock), K_GPT)[0] == 0
    assert requests(a, K_GPT)[0] == 0


def test_a_retried_removal_keeps_a_model_registered_again_at_the_same_instant(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: merge() kept a definition made at the removal's instant, but a retried landed batch's tombstone
    # (updated_at <= removal) then deleted it.
    seeded(path, clock)
    a = writers()
    a.unregister_model(K_GPT)
    with monkeypatch.context() as patch:
        _fail_folder_fsync(patch)
        with pytest.raises(PersistenceError):
            a.save()  # landed: the file has the tombstone
    b = writers()
    assert K_GPT not in b  # b saw the removal...
    b.register_model(GPT4)  # ...and registers the model again (same clock reading)
    b.record_usage(K_GPT, 3, 3)
    b.save()
    assert K_GPT in on_disk(path, clock)
    a.save()  # a retries its landed batch
    assert K_GPT in on_disk(path, clock)


@pytest.mark.parametrize(
    "other_saves_first",
    [
        pytest.param(True, id="saved-before-the-new-registration"),
        pytest.param(False, id="saved-after-the-new-registration"),
    ],
)
def test_usage_recorded_on_a_removed_model_never_reaches_the_model_registered_again(
    path: Path, clock: FakeClock, writers: Callable[..., EnhancedModelRegistry], other_saves_first: bool
) -> None:
    seeded(path, clock)
    a, b = writers(), writers()
    b.record_usage(K_GPT, 5, 5)  # on the model as it is now
    clock.advance(10)
    a.unregister_model(K_GPT)
    a.save()
    clock.advance(10)
    if other_saves_first:
        b.save()
    registered_again = datetime.fromtimestamp(clock(), UTC)
    a.register_model(GPT4)
    a.save()
    clock.advance(10)
    b.save()
    fresh = on_disk(path, clock)
    assert requests(fresh, K_GPT)[0] == 0
    entry = fresh.get_model(K_GPT)
    assert entry is not None
    assert entry.registered_at == registered_again


def test_merge_meta_keeps_at_most_max_writers_and_max_tombstones_the_newest() -> None:
    from noa_ai_provider.persistence.merge import MAX_TOMBSTONES, MAX_WRITERS

    now = at(0) + timedelta(days=1)
    writers = {f"{i}-w": (i, at(0) + timedelta(seconds=i)) for i in range(MAX_WRITERS + 5)}
    tombs = {f"p:{i}": at(0) + timedelta(seconds=i) for i in range(MAX_TOMBSTONES + 5)}
    out, removed = merge_meta(writers, tombs, [Batch(1)], W, now)
    assert len(out) == MAX_WRITERS
    assert out[W] == (1, now)  # this writer, just saved, is the newest
    assert "0-w" not in out
    assert f"{MAX_WRITERS + 4}-w" in out
    assert len(removed) == MAX_TOMBSTONES
    assert "p:4" not in removed
    assert "p:5" in removed


def test_a_corrupt_file_is_not_overwritten_by_a_merging_save(path: Path, clock: FakeClock) -> None:
    first = EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock)
    first.register_model(GPT4)
    first.save()
    first.save()  # a .bak exists
    other = EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock)
    other.register_model(GPT4)
    path.write_text('{"models": [')
    with pytest.raises(PersistenceError, match="not overwritten"):
        other.save()
    assert path.read_text() == '{"models": ['
    assert other.load(recover=True) == 1
    other.save()  # replaces the corrupt file
    assert EnhancedModelRegistry(persistence_path=path, auto_save=False).load() == 1
