"""Saving and loading: atomic writes, corrupt files, export/import, autosave thread, close and interpreter exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry, PersistenceError
from noa_ai_provider.persistence import AutoSaver, atomic_write_text
from noa_ai_provider.testing import EventRecorder, FakeClock

from .samples import GPT4, LLAMA, OPUS, model

K_GPT = "openai:gpt-4-turbo-preview"


def make(path: Path, **kwargs: object) -> EnhancedModelRegistry:
    kwargs.setdefault("auto_save", False)
    return EnhancedModelRegistry(persistence_path=path, **kwargs)  # type: ignore[arg-type]


def test_save_creates_folders_and_load_restores_everything(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "deep" / "er" / "registry.json"
    with make(path, clock=clock) as reg:
        events = EventRecorder().attach(reg)
        reg.register_models([GPT4, OPUS])
        reg.record_usage(K_GPT, 1500, 800)
        reg.record_usage(K_GPT, 100, 0, success=False)
        reg.get_model(K_GPT)
        reg.update_performance_metrics(K_GPT, success_rate=0.99, tokens_per_second=45.5)
        reg.save()
        assert events.of("registry-saved") == [{"path": str(path)}]
        expected = reg.list_models()
    with make(path) as fresh:
        events = EventRecorder().attach(fresh)
        assert fresh.load() == 2
        assert fresh.list_models() == expected
        assert events.of("registry-loaded") == [{"path": str(path), "model_count": 2}]
        stats = fresh.get_usage_stats(K_GPT)
        assert stats is not None
        assert stats.total_cost == Decimal("0.040")


def test_file_format_is_camel_case_with_exact_decimal_strings(loaded: EnhancedModelRegistry) -> None:
    loaded.record_usage(K_GPT, 1, 0)
    loaded.save()
    doc = json.loads(loaded.persistence_path.read_text())
    assert doc["format"] == "noa-ai-provider/registry"
    assert doc["formatVersion"] == 1
    first = doc["models"][0]
    assert first["key"] == K_GPT
    assert first["cost"]["inputTokens"] == "0.01"
    assert first["usageStats"]["totalCost"] == "0.00001"
    assert first["contextWindow"] == 128000


def test_load_missing_file_loads_nothing(registry: EnhancedModelRegistry) -> None:
    assert registry.load() == 0
    assert registry.list_models() == []


def test_load_adds_or_replaces_by_key_and_keeps_others(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with make(path) as reg:
        reg.register_model(model(name="saved name"))
        reg.save()
    with make(path) as reg:
        reg.register_models([GPT4, LLAMA])
        assert reg.load() == 1
        assert [(e.key, e.name) for e in reg.list_models()] == [
            (K_GPT, "saved name"),
            ("llama.cpp:llama-3.1-8b-instruct", LLAMA["name"]),
        ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "line 1, column 2"),
        (b'{"models": [}', "invalid JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"models": {}}', "expected a list"),
        (b'{"format": "other", "models": []}', "not a registry snapshot"),
        (b'{"formatVersion": 99, "models": []}', "formatVersion"),
        (b'{"models": [{"id": "x"}]}', r"models\[0\] \(id 'x'\)"),
        (b'{"models": [], "models": []}', "duplicate key"),
        (b'{"models": [{"totalCost": NaN}]}', "NaN"),
    ],
)
def test_corrupt_file_raises_and_changes_nothing(loaded: EnhancedModelRegistry, content: bytes, words: str) -> None:
    path = loaded.persistence_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    before = loaded.list_models()
    with pytest.raises(PersistenceError, match=words) as caught:
        loaded.load()
    assert str(path) in str(caught.value)
    assert loaded.list_models() == before
    assert path.read_bytes() == content  # left untouched


def test_entry_with_inconsistent_key_is_corrupt(loaded: EnhancedModelRegistry) -> None:
    loaded.save()
    doc = json.loads(loaded.persistence_path.read_text())
    doc["models"][0]["key"] = "openai:other"
    loaded.persistence_path.write_text(json.dumps(doc))
    with pytest.raises(PersistenceError, match="should be 'openai:gpt-4-turbo-preview'"):
        loaded.load()


def test_persistence_error_is_an_os_error(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("nope")
    with make(tmp_path / "r.json") as reg, pytest.raises(OSError, match="invalid JSON"):
        reg.load()


def test_save_failure_raises_keeps_the_old_file_and_stays_dirty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    with make(path) as reg:
        reg.register_model(GPT4)
        reg.save()
        old = path.read_bytes()
        reg.record_usage(K_GPT, 1, 1)

        def full_disk(fd: int) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", full_disk)
            with pytest.raises(PersistenceError, match=r"r\.json: cannot write: No space left"):
                reg.save()
        assert path.read_bytes() == old
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.bak", "r.json.lock"]
        assert (tmp_path / "r.json.bak").read_bytes() == old  # no temporary file left, the backup is the old file
        assert reg.dirty
        reg.save()  # the next save writes what the failed one could not
        assert not reg.dirty
    with make(path) as fresh:
        fresh.load()
        assert fresh.get_usage_stats(K_GPT).request_count == 1  # type: ignore[union-attr]


def test_atomic_write_removes_its_temporary_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PersistenceError, match="No space left"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_atomic_write_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o640


def test_save_uses_a_sidecar_lock_file(loaded: EnhancedModelRegistry) -> None:
    loaded.save()
    names = sorted(p.name for p in loaded.persistence_path.parent.iterdir())
    assert names == ["registry.json", "registry.json.lock"]


def test_export_import_round_trip(loaded: EnhancedModelRegistry, tmp_path: Path) -> None:
    loaded.record_usage(K_GPT, 1500, 800)
    loaded.update_performance_metrics(K_GPT, average_latency=250, success_rate=0.99)
    text = loaded.export_to_json()
    with make(tmp_path / "other.json") as other:
        assert other.import_from_json(text) == 3
        assert other.list_models() == loaded.list_models()


def test_import_accepts_a_plain_list_of_models(registry: EnhancedModelRegistry) -> None:
    assert registry.import_from_json(json.dumps([GPT4, OPUS])) == 2
    assert len(registry.list_models()) == 2


@pytest.mark.parametrize("text", ["{", "[1]", '{"models": [{"id": "x"}]}', "NaN", '"text"'])
def test_import_bad_json_raises_config_error_and_changes_nothing(loaded: EnhancedModelRegistry, text: str) -> None:
    before = loaded.list_models()
    with pytest.raises(ConfigError):
        loaded.import_from_json(text)
    assert loaded.list_models() == before


def test_auto_save_false_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    reg = make(path)
    reg.register_model(GPT4)
    reg.record_usage(K_GPT, 1, 1)
    reg.close()
    assert not path.exists()


def test_autosave_thread_saves_only_when_something_changed(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    saves: list[str] = []
    with make(path, auto_save=True, auto_save_interval=0.02) as reg:
        reg.on("registry-saved", lambda sender, path: saves.append(path))
        threads = [t for t in threading.enumerate() if t.name == "noa-registry-autosave"]
        assert threads
        assert all(t.daemon for t in threads)
        time.sleep(0.15)
        assert saves == []  # nothing changed yet
        reg.register_model(GPT4)
        deadline = time.monotonic() + 5
        while not saves and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(saves) == 1
        time.sleep(0.15)
        assert len(saves) == 1  # no change, no save
    assert json.loads(path.read_text())["models"][0]["key"] == K_GPT


def test_close_stops_the_thread_and_saves_pending_changes(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    before = {t.ident for t in threading.enumerate()}
    reg = make(path, auto_save=True, auto_save_interval=3600)
    reg.register_model(GPT4)
    reg.close()
    reg.close()  # idempotent
    assert {t.ident for t in threading.enumerate()} <= before
    assert json.loads(path.read_text())["models"][0]["key"] == K_GPT


def test_many_open_close_cycles_leave_no_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    for i in range(100):
        with make(tmp_path / f"r{i % 3}.json", auto_save=True, auto_save_interval=3600):
            pass
    assert threading.active_count() == before


def test_interpreter_exit_saves_pending_changes(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    script = f"""
from noa_ai_provider import EnhancedModelRegistry
reg = EnhancedModelRegistry(persistence_path={str(path)!r}, auto_save=True, auto_save_interval=3600)
reg.register_model({GPT4!r})
reg.record_usage("{K_GPT}", 1500, 800)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    doc = json.loads(path.read_text())
    assert doc["models"][0]["usageStats"]["totalCost"] == "0.039"


def test_autosaver_refuses_a_second_start_and_keeps_errors() -> None:
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise OSError("disk full")

    saver = AutoSaver(failing, 0.01)
    saver.start()
    with pytest.raises(RuntimeError):
        saver.start()
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    saver.stop()
    assert len(calls) >= 2  # kept going after a failure
    assert isinstance(saver.last_error, OSError)
    assert not saver.alive


def test_concurrent_saves_and_changes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with make(path) as reg:
        reg.register_model(GPT4)

        def work() -> None:
            for _ in range(200):
                reg.record_usage(K_GPT, 1, 1)

        def save() -> None:
            for _ in range(20):
                reg.save()

        threads = [threading.Thread(target=work) for _ in range(4)] + [threading.Thread(target=save) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        reg.save()
    with make(path) as fresh:
        fresh.load()
        assert fresh.get_usage_stats(K_GPT).request_count == 800  # type: ignore[union-attr]


async def _async_round_trip(path: Path) -> int:
    with make(path) as reg:
        reg.register_model(GPT4)
        await reg.asave()
    with make(path) as fresh:
        return await fresh.aload()


def test_async_twins(tmp_path: Path) -> None:
    import asyncio

    assert asyncio.run(_async_round_trip(tmp_path / "r.json")) == 1


def test_every_save_keeps_the_previous_snapshot_as_bak(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with make(path) as reg:
        reg.register_model(GPT4)
        reg.save()
        first = path.read_bytes()
        assert not (tmp_path / "r.json.bak").exists()
        reg.record_usage(K_GPT, 1, 1)
        reg.save()
        assert (tmp_path / "r.json.bak").read_bytes() == first
        assert path.read_bytes() != first


def test_load_recover_falls_back_to_the_backup(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with make(path) as reg:
        reg.register_model(GPT4)
        reg.record_usage(K_GPT, 1500, 800)
        reg.save()
        reg.record_usage(K_GPT, 1, 1)
        reg.save()
    path.write_text('{"models": [')  # torn or corrupted by something else
    with make(path) as fresh:
        with pytest.raises(PersistenceError, match="invalid JSON"):
            fresh.load()
        assert fresh.list_models() == []
        assert fresh.load(recover=True) == 1  # the snapshot before the last save
        assert fresh.get_usage_stats(K_GPT).request_count == 1  # type: ignore[union-attr]
    (tmp_path / "r.json.bak").write_text("also broken")
    with make(path) as fresh, pytest.raises(PersistenceError, match=r"r\.json\.bak"):
        fresh.load(recover=True)


def test_leftover_temporary_files_are_removed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    leftover = tmp_path / ".r.json.abc123.tmp"
    leftover.write_text("half a snapshot")
    unrelated = tmp_path / ".other.json.abc123.tmp"
    unrelated.write_text("not ours")
    with make(path):
        pass
    assert not leftover.exists()
    assert unrelated.exists()


def test_a_failing_autosave_emits_save_failed_and_keeps_the_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.json"
    failures: list[dict[str, object]] = []
    reg = make(path, auto_save=True, auto_save_interval=0.02)
    reg.on("save-failed", lambda sender, **payload: failures.append(payload))

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full_disk)
        reg.register_model(GPT4)
        deadline = time.monotonic() + 5
        while not failures and time.monotonic() < deadline:
            time.sleep(0.01)
    assert failures
    assert failures[0]["path"] == str(path)
    assert isinstance(failures[0]["error"], PersistenceError)
    assert reg.dirty
    reg.close()  # saves what is pending, now that the disk has room
    assert json.loads(path.read_text())["models"][0]["key"] == K_GPT


def test_a_symlinked_path_is_written_through_to_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real" / "registry.json"
    real.parent.mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with make(link) as reg:
        reg.register_model(GPT4)
        reg.save()
        reg.record_usage(K_GPT, 1, 1)
        reg.save()
    assert link.is_symlink()
    assert json.loads(real.read_text())["models"][0]["usageStats"]["requestCount"] == 1
    assert (real.parent / "registry.json.bak").exists()


def test_opening_a_registry_writes_nothing(tmp_path: Path) -> None:
    with make(tmp_path / "r.json") as reg:
        reg.register_model(GPT4)
    assert list(tmp_path.iterdir()) == []
