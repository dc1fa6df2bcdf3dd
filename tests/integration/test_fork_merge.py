"""A forked child is a writer of its own on the parent's ``persistence_path``: it drops the parent's unsaved usage
from its totals, gets a new writer id and its own autosave thread, and its saves merge with the parent's, so both
sides' usage lands in the file exactly once.

The fork happens in a subprocess (as in test_fork.py), so that it happens outside pytest's threads; the child
reports failures through its exit code (it leaves with ``os._exit``) and writes what it saw to a JSON file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry

from ..samples import GPT4

KEY = "openai:gpt-4-turbo-preview"
PARENT_BEFORE = [(1200, 300), (77, 1), (4096, 4095), (1, 0), (555, 444)]
CHILD = [(999, 111), (3, 2), (2048, 1024)]
PARENT_AFTER = [(10, 20), (30, 40)]
_EXACT = Context(prec=60)


def _cost(usage: list[tuple[int, int]]) -> Decimal:
    cost = GPT4["cost"]
    pin, pout, per = Decimal(repr(cost["inputTokens"])), Decimal(repr(cost["outputTokens"])), Decimal(cost["per"])
    return sum((_EXACT.divide(_EXACT.add(i * pin, o * pout), per) for i, o in usage), Decimal(0))


COMMON = r"""
import json, os, sys, threading, time, traceback
from decimal import Decimal
from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import writer_id

KEY = "openai:gpt-4-turbo-preview"


def stats(registry):
    s = registry.get_usage_stats(KEY)
    return {"requests": s.request_count, "input": s.total_input_tokens, "output": s.total_output_tokens,
            "cost": str(s.total_cost)}


def saved(path):
    try:
        with open(path) as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return None
    return {"requests": doc["models"][0]["usageStats"]["requestCount"], "writers": doc.get("writers", {})}


def run_child(out, body):
    # Never returns: a child that raised or failed a check leaves with a non-zero code, pytest never runs here.
    code = 0
    report = {}
    try:
        body(report)
    except BaseException:
        report["error"] = traceback.format_exc()
        code = 3
    try:
        with open(out + ".child", "w") as handle:
            json.dump(report, handle)
    finally:
        os._exit(code)
"""

MANUAL = (
    COMMON
    + r"""
path, durability, presave, out = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
model, before, child, after = (json.loads(a) for a in sys.argv[5:9])
registry = EnhancedModelRegistry(persistence_path=path, auto_save=False, durability=durability)
registry.register_model(model)
if presave:
    registry.save()
parent_costs = [str(registry.record_usage(KEY, i, o)) for i, o in before]  # unsaved at the fork
writer = writer_id(registry)
report = {"before_fork": stats(registry), "file_at_fork": saved(path) is not None, "costs": parent_costs}
pid = os.fork()
if pid == 0:
    def body(rep):
        rep["writer_changed"] = writer_id(registry) != writer
        rep["at_fork"] = stats(registry)  # the parent's pending usage is not the child's
        rep["costs"] = [str(registry.record_usage(KEY, i, o)) for i, o in child]
        rep["before_save"] = stats(registry)
        registry.save()
        rep["after_save"] = stats(registry)
        registry.close()
        rep["file"] = saved(path)
        rep["pid"] = os.getpid()

    run_child(out, body)
_, status = os.waitpid(pid, 0)
report["child_exit"] = os.waitstatus_to_exitcode(status)
report["after_child"] = stats(registry)  # the child's save changes nothing here until the parent saves
registry.save()
report["after_save"] = stats(registry)
parent_costs += [str(registry.record_usage(KEY, i, o)) for i, o in after]
registry.save()
report["final"] = stats(registry)
report["costs"] = parent_costs
registry.close()
report["pid"] = os.getpid()
with open(out + ".parent", "w") as handle:
    json.dump(report, handle)
"""
)


def _run(script: str, *args: str) -> None:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}"


def _reports(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    parent = json.loads(Path(f"{out}.parent").read_text())
    child = json.loads(Path(f"{out}.child").read_text())
    assert parent["child_exit"] == 0, child.get("error")
    assert "error" not in child, child["error"]
    return parent, child


def _as_stats(usage: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "requests": len(usage),
        "input": sum(i for i, _ in usage),
        "output": sum(o for _, o in usage),
        "cost": str(_cost(usage)),
    }


def _same(view: dict[str, Any], usage: list[tuple[int, int]]) -> None:
    want = _as_stats(usage)
    assert {**view, "cost": Decimal(view["cost"])} == {**want, "cost": Decimal(want["cost"])}


def _check_file(path: Path, usage: list[tuple[int, int]], durability: str) -> None:
    for mode in ("snapshot", durability):  # the journal (if any) holds nothing the snapshot lacks
        with EnhancedModelRegistry(persistence_path=path, auto_save=False, durability=mode) as fresh:
            assert fresh.load() == 1
            stats = fresh.get_usage_stats(KEY)
            assert stats is not None
            assert stats.request_count == len(usage)
            assert stats.total_input_tokens == sum(i for i, _ in usage)
            assert stats.total_output_tokens == sum(o for _, o in usage)
            assert stats.total_cost == _cost(usage)
            history = fresh.get_usage_history(KEY)
            assert sum(h.requests for h in history) == len(usage)
            assert sum((h.cost for h in history), Decimal(0)) == _cost(usage)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("durability", ["snapshot", "journal"])
@pytest.mark.parametrize("presave", [True, False], ids=["saved-before-fork", "file-absent-at-fork"])
def test_fork_child_and_parent_usage_merge_exactly_once(tmp_path: Path, durability: str, presave: bool) -> None:
    path = tmp_path / "data" / "registry.json"
    out = tmp_path / "report"
    args = [str(path), durability, "1" if presave else "0", str(out), json.dumps(GPT4)]
    _run(MANUAL, *args, json.dumps(PARENT_BEFORE), json.dumps(CHILD), json.dumps(PARENT_AFTER))
    parent, child = _reports(out)

    assert parent["file_at_fork"] is presave
    _same(parent["before_fork"], PARENT_BEFORE)
    # The child dropped the parent's pending usage, got a writer id of its own, and its costs are exact.
    assert child["writer_changed"] is True
    _same(child["at_fork"], [])
    _same(child["before_save"], CHILD)
    assert [Decimal(c) for c in child["costs"]] == [_cost([u]) for u in CHILD]
    # After its save the child holds what the file holds: its own usage (the parent had saved none).
    _same(child["after_save"], CHILD)
    assert child["file"]["requests"] == len(CHILD)
    assert any(w.startswith(f"{child['pid']}-") for w in child["file"]["writers"])

    # The parent's view is untouched by the child until it saves; then it holds both sides', exactly once.
    _same(parent["after_child"], PARENT_BEFORE)
    _same(parent["after_save"], PARENT_BEFORE + CHILD)
    _same(parent["final"], PARENT_BEFORE + CHILD + PARENT_AFTER)
    assert [Decimal(c) for c in parent["costs"]] == [_cost([u]) for u in PARENT_BEFORE + PARENT_AFTER]

    _check_file(path, PARENT_BEFORE + CHILD + PARENT_AFTER, durability)
    writers = json.loads(path.read_text())["writers"]
    assert {w.split("-")[0] for w in writers} == {str(parent["pid"]), str(child["pid"])}
    if durability == "journal":  # everything is folded into the snapshot
        journal = path.with_name(path.name + ".journal")
        assert not journal.exists() or journal.read_text() == ""


AUTOSAVE = (
    COMMON
    + r"""
path, durability, out = sys.argv[1], sys.argv[2], sys.argv[3]
model, before, child, after = (json.loads(a) for a in sys.argv[4:8])
registry = EnhancedModelRegistry(persistence_path=path, auto_save=True, auto_save_interval=0.05, durability=durability)
registry.register_model(model)
for i, o in before:
    registry.record_usage(KEY, i, o)
registry.save()  # the parent's first records are in the file at the fork
report = {}
pid = os.fork()
if pid == 0:
    def body(rep):
        rep["threads"] = [t.name for t in threading.enumerate() if t.is_alive()]
        for i, o in child:
            registry.record_usage(KEY, i, o)
        # No save() and no close(): the child's own autosave thread must write its records.
        deadline = time.monotonic() + 20
        while True:
            on_disk = saved(path)
            mine = [w for w in on_disk["writers"] if w.startswith(f"{os.getpid()}-")]
            if mine and not registry.dirty:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the child's records never reached the file: {on_disk}")
            time.sleep(0.01)
        rep["file"] = on_disk
        rep["view"] = stats(registry)
        rep["pid"] = os.getpid()

    run_child(out, body)
report["threads"] = [t.name for t in threading.enumerate() if t.is_alive()]
_, status = os.waitpid(pid, 0)
report["child_exit"] = os.waitstatus_to_exitcode(status)
for i, o in after:
    registry.record_usage(KEY, i, o)
registry.close()
report["final"] = stats(registry)
report["pid"] = os.getpid()
with open(out + ".parent", "w") as handle:
    json.dump(report, handle)
"""
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("durability", ["snapshot", "journal"])
def test_forked_child_autosaves_its_own_records(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "registry.json"
    out = tmp_path / "report"
    _run(
        AUTOSAVE,
        str(path),
        durability,
        str(out),
        json.dumps(GPT4),
        json.dumps(PARENT_BEFORE),
        json.dumps(CHILD),
        json.dumps(PARENT_AFTER),
    )
    parent, child = _reports(out)
    # One autosave thread on each side: the child's is its own (the parent's did not come along with the fork).
    assert child["threads"].count("noa-registry-autosave") == 1
    assert parent["threads"].count("noa-registry-autosave") == 1
    # The child's autosave merged its 3 records into the file, which held the parent's 5: 8, no more, no less.
    assert child["file"]["requests"] == len(PARENT_BEFORE + CHILD)
    _same(child["view"], PARENT_BEFORE + CHILD)
    # The parent's close() adds its last records; nothing is lost or counted twice.
    _same(parent["final"], PARENT_BEFORE + CHILD + PARENT_AFTER)
    _check_file(path, PARENT_BEFORE + CHILD + PARENT_AFTER, durability)
    writers = json.loads(path.read_text())["writers"]
    assert {w.split("-")[0] for w in writers} == {str(parent["pid"]), str(child["pid"])}


FAILED_SAVE = (
    COMMON
    + r"""
import shutil
from noa_ai_provider import PersistenceError

path, out = sys.argv[1], sys.argv[2]
model, before, child, after = (json.loads(a) for a in sys.argv[3:7])
registry = EnhancedModelRegistry(persistence_path=path, auto_save=False)
registry.register_model(model)
registry.save()
for i, o in before:
    registry.record_usage(KEY, i, o)
# A directory where the backup goes makes the next save fail after it sealed the pending usage into a batch.
os.mkdir(path + ".bak")
open(os.path.join(path + ".bak", "in-the-way"), "w").close()
report = {}
try:
    registry.save()
    report["save_failed"] = False
except PersistenceError:
    report["save_failed"] = True
shutil.rmtree(path + ".bak")
report["before_fork"] = stats(registry)
pid = os.fork()
if pid == 0:
    def body(rep):
        rep["at_fork"] = stats(registry)
        for i, o in child:
            registry.record_usage(KEY, i, o)
        rep["before_save"] = stats(registry)
        registry.save()
        rep["after_save"] = stats(registry)
        registry.close()

    run_child(out, body)
_, status = os.waitpid(pid, 0)
report["child_exit"] = os.waitstatus_to_exitcode(status)
registry.save()
report["after_save"] = stats(registry)
registry.close()
with open(out + ".parent", "w") as handle:
    json.dump(report, handle)
"""
)


@pytest.mark.timeout(60)
def test_fork_after_a_failed_save_drops_the_parents_unsaved_batch(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    out = tmp_path / "report"
    args = [json.dumps(GPT4), json.dumps(PARENT_BEFORE), json.dumps(CHILD), json.dumps(PARENT_AFTER)]
    _run(FAILED_SAVE, str(path), str(out), *args)
    parent, child = _reports(out)
    assert parent["save_failed"] is True
    _same(parent["before_fork"], PARENT_BEFORE)
    # What reaches the file is right: the parent's failed batch once, the child's records once.
    _same(parent["after_save"], PARENT_BEFORE + CHILD)
    _same(child["after_save"], CHILD)
    _check_file(path, PARENT_BEFORE + CHILD, "snapshot")
    # The parent's usage was unsaved at the fork: the child must not count it.
    _same(child["at_fork"], [])
    _same(child["before_save"], CHILD)


DEAD_CHILD = (
    COMMON
    + r"""
path, out = sys.argv[1], sys.argv[2]
model, before, child = (json.loads(a) for a in sys.argv[3:6])
registry = EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal")
registry.register_model(model)
registry.save()
for i, o in before:
    registry.record_usage(KEY, i, o)
pid = os.fork()
if pid == 0:
    def body(rep):
        for i, o in child:
            registry.record_usage(KEY, i, o)  # journaled; the child dies without saving
        rep["view"] = stats(registry)

    run_child(out, body)
report = {}
_, status = os.waitpid(pid, 0)  # reaped: no process has the child's pid any more
report["child_exit"] = os.waitstatus_to_exitcode(status)
report["before_load"] = stats(registry)
registry.load()  # replays the dead child's journal records, on top of the parent's unsaved ones
report["after_load"] = stats(registry)
registry.save()
registry.load()  # nothing is replayed twice
report["after_save"] = stats(registry)
registry.close()
with open(out + ".parent", "w") as handle:
    json.dump(report, handle)
"""
)


@pytest.mark.timeout(60)
def test_journal_records_of_a_child_that_died_unsaved_are_replayed_once(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    out = tmp_path / "report"
    _run(DEAD_CHILD, str(path), str(out), json.dumps(GPT4), json.dumps(PARENT_BEFORE), json.dumps(CHILD))
    parent, child = _reports(out)
    _same(child["view"], CHILD)
    _same(parent["before_load"], PARENT_BEFORE)
    _same(parent["after_load"], PARENT_BEFORE + CHILD)
    _same(parent["after_save"], PARENT_BEFORE + CHILD)
    _check_file(path, PARENT_BEFORE + CHILD, "journal")
