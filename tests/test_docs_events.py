"""The guide's events table lists every event the registry emits."""

from __future__ import annotations

from pathlib import Path

from noa_ai_provider.events import EVENTS

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def test_the_guide_lists_every_event() -> None:
    table = GUIDE.read_text().split("## Events", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in EVENTS if f"`{name}`" not in table]
    assert not missing, missing
