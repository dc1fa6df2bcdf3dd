"""pytest fixtures for suites that use ``noa_ai_provider`` (registered through the ``pytest11`` entry point).

- ``noa_clock``: a :class:`~noa_ai_provider.testing.FakeClock`;
- ``noa_registry``: an :class:`~noa_ai_provider.EnhancedModelRegistry` persisting under ``tmp_path``, with
  ``auto_save=False`` and ``noa_clock``; closed after the test;
- ``noa_events``: an :class:`~noa_ai_provider.testing.EventRecorder` attached to ``noa_registry``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .registry import EnhancedModelRegistry
from .testing import EventRecorder, FakeClock


@pytest.fixture
def noa_clock() -> FakeClock:
    """A fake clock starting at 2023-11-14T22:13:20Z; move it with ``advance(seconds)``."""
    return FakeClock()


@pytest.fixture
def noa_registry(tmp_path: Path, noa_clock: FakeClock) -> Iterator[EnhancedModelRegistry]:
    """An empty registry saving to ``tmp_path / "registry.json"`` only when ``save()`` is called."""
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / "registry.json",
        models_config_path=tmp_path / "models-config.json",
        auto_save=False,
        clock=noa_clock,
    )
    with registry:
        yield registry


@pytest.fixture
def noa_events(noa_registry: EnhancedModelRegistry) -> Iterator[EventRecorder]:
    """Every event of ``noa_registry``, recorded in order."""
    recorder = EventRecorder().attach(noa_registry)
    yield recorder
    recorder.detach()
