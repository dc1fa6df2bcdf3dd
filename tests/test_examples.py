"""examples/*.py (the seed's usage examples as scripts) run as a user runs them, in a subprocess from another
directory, offline, in under 3 s each, and print what they say they print."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECTED = {
    "cost_dashboard.py": [
        "=== Cost Report ===",
        "Total Cost: $0.07",
        "Total Input Tokens: 7,600",
        "Total Output Tokens: 2,000",
        "",
        "=== Cost by Model ===",
        "GPT-4 Turbo: $0.0400 (2 requests)",
        "Claude 3 Opus: $0.0300 (1 requests)",
    ],
    "rate_limit_protection.py": [
        "ok: 400 tokens out",
        "failed: upstream timeout",
        "ok: 400 tokens out",
        "ok: 400 tokens out",
        "refused: requests per minute, retry in 60s",
        "ok: 400 tokens out",
        "refused: openai:gpt-4: the day budget (global) of 0.10 would be exceeded: spent 0.088, reserved 0.000, "
        "this request up to 0.06",
        "5 requests (1 failed), $0.088 spent",
    ],
    "model_selection.py": [
        "openai:gpt-4o-mini: $0.00038 per 1K tokens, score 0.815",
        "claude:claude-3-haiku: $0.00075 per 1K tokens, score 0.996",
        "claude:claude-3-opus: $0.04500 per 1K tokens, score -",
        "openai:gpt-3.5-turbo: $0.00100 per 1K tokens, score -",
        "best under $0.05 per 1K tokens with 100K context: claude:claude-3-haiku",
        "300K context: No suitable models found",
    ],
    "hot_reload.py": [
        "config reloaded: added ['openai:gpt-4-turbo-preview', 'claude:claude-3-opus-20240229'], updated [], "
        "removed []",
        "openai:gpt-4-turbo-preview: $0.04 per 1K + 1K tokens",
        "config reloaded: added [], updated ['openai:gpt-4-turbo-preview'], removed ['claude:claude-3-opus-20240229']",
        "openai:gpt-4-turbo-preview: $0.020 per 1K + 1K tokens",
        "usage kept: 1 request, $0.04",
        "models: ['openai:gpt-4-turbo-preview']",
    ],
}


def test_every_example_script_is_checked() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")} - {"make_sample_registry.py"}  # the notebook's data maker
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_and_prints_what_it_says(script: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == EXPECTED[script]
    assert elapsed < 3.0, f"{script} took {elapsed:.2f} s"
    assert list(tmp_path.iterdir()) == []  # nothing left behind where it ran
