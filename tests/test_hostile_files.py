"""Paths that are not regular files are refused at once, reading never hangs or writes, and every file the
registry writes gets the same mode."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry, PersistenceError
from noa_ai_provider.testing import FakeClock

from .samples import GPT4


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def _loop(path: Path) -> Path:
    other = path.with_name(path.name + ".other")
    os.symlink(other, path)
    os.symlink(path, other)
    return path


def _dev_zero(path: Path) -> Path:
    os.symlink("/dev/zero", path)
    return path


HOSTILE: dict[str, Callable[[Path], Path]] = {
    "fifo": _fifo,
    "directory": _directory,
    "symlink loop": _loop,
    "/dev/zero": _dev_zero,
}


def bounded(call: Callable[[], object], seconds: float = 10.0) -> BaseException | None:
    """Run ``call`` in a thread; fail the test if it does not return within ``seconds``; its exception."""
    box: list[BaseException | None] = [None]

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            box[0] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call} did not return within {seconds} s"
    return box[0]


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_persistence_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = HOSTILE[kind](tmp_path / "registry.json")
    error = bounded(lambda: EnhancedModelRegistry(persistence_path=path, auto_save=False))
    assert isinstance(error, PersistenceError)
    assert str(path) in str(error)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_load_and_save_of_a_path_that_became_hostile_fail_quickly(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "registry.json"
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    registry.register_model(GPT4)
    HOSTILE[kind](path)
    assert isinstance(bounded(registry.load), PersistenceError)
    assert isinstance(bounded(registry.save), PersistenceError)
    assert len(registry) == 1  # nothing lost


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_config_path_that_is_not_a_regular_file_fails_quickly(tmp_path: Path, kind: str) -> None:
    config = HOSTILE[kind](tmp_path / "models-config.json")
    registry = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False)
    error = bounded(lambda: registry.load_from_config(config))
    assert isinstance(error, PersistenceError), error
    assert len(registry) == 0


def test_a_journal_path_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    _fifo(tmp_path / "registry.json.journal")
    error = bounded(lambda: EnhancedModelRegistry(persistence_path=tmp_path / "registry.json", durability="journal"))
    assert isinstance(error, PersistenceError)


def test_close_returns_while_watching_a_fifo(tmp_path: Path) -> None:
    config = tmp_path / "models-config.json"
    config.write_text('{"models": []}')
    registry = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False)
    registry.watch_config(config, interval=0.01)
    config.unlink()
    _fifo(config)
    time.sleep(0.1)  # the watcher meets the FIFO
    assert bounded(registry.close) is None


def test_snapshot_reads_have_a_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    writer = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    writer.register_model(GPT4)
    writer.save()
    size = path.stat().st_size
    small = EnhancedModelRegistry(persistence_path=path, auto_save=False, max_snapshot_bytes=size - 1)
    with pytest.raises(PersistenceError, match="limit"):
        small.load()
    assert EnhancedModelRegistry(persistence_path=path, auto_save=False, max_snapshot_bytes=size).load() == 1
    with pytest.raises(ConfigError, match="max_snapshot_bytes"):
        EnhancedModelRegistry(persistence_path=path, max_snapshot_bytes=0)


def test_reading_a_saved_file_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    with EnhancedModelRegistry(persistence_path=path, auto_save=True) as writer:
        writer.register_model(GPT4)
        writer.record_usage("openai:gpt-4-turbo-preview", 10, 10)
    writer2 = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    writer2.load()
    writer2.record_usage("openai:gpt-4-turbo-preview", 10, 10)
    writer2.save()  # now there is a .bak too
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes()) for p in tmp_path.iterdir()}
    with EnhancedModelRegistry(persistence_path=path, auto_save=True, auto_save_interval=0.01) as reader:
        reader.load()
        assert not reader.dirty
        time.sleep(0.1)  # autosave ticks
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes()) for p in tmp_path.iterdir()}
    assert after == before


def test_snapshot_backup_and_journal_share_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = tmp_path / "registry.json"
        with EnhancedModelRegistry(
            persistence_path=path, auto_save=False, durability="journal", clock=FakeClock()
        ) as registry:
            registry.register_model(GPT4)
            registry.record_usage("openai:gpt-4-turbo-preview", 10, 10)
            registry.save()
            registry.record_usage("openai:gpt-4-turbo-preview", 10, 10)
            registry.save()
    finally:
        os.umask(old)
    modes = {
        name: stat.S_IMODE((tmp_path / name).stat().st_mode)
        for name in ("registry.json", "registry.json.bak", "registry.json.journal")
    }
    assert modes == dict.fromkeys(modes, 0o640), modes
