"""The installed ``noa-registry`` console script, run in subprocesses: every command, --json, exit codes, pipes,
colours, help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import FakeClock

SCRIPT = Path(sys.executable).parent / "noa-registry"

GPT: dict[str, Any] = {
    "id": "gpt-4o",
    "name": "GPT-4o",
    "provider": "openai",
    "version": "4.0.0",
    "contextWindow": 128000,
    "maxTokens": 16384,
    "capabilities": ["chat_completion", "function_calling", "vision"],
    "aliases": ["gpt-4o-2024-08-06"],
    "cost": {
        "inputTokens": "2.5",
        "outputTokens": "10",
        "cachedInputTokens": "1.25",
        "per": 1_000_000,
        "serviceTiers": {"priority": {"inputTokens": "4.25", "outputTokens": "17"}},
    },
    "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 30000},
}
SONNET: dict[str, Any] = {
    "id": "claude-sonnet-4-5",
    "name": "Claude Sonnet 4.5",
    "provider": "anthropic",
    "version": "4.5.0",
    "contextWindow": 200000,
    "capabilities": ["chat_completion"],
    "cost": {
        "inputTokens": "3",
        "outputTokens": "15",
        "cacheWriteTokens": "3.75",
        "per": 1_000_000,
        "tiers": [{"aboveInputTokens": 200000, "inputTokens": "6", "outputTokens": "22.5"}],
    },
}
LITELLM: dict[str, Any] = {
    "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers", "input_cost_per_token": 0},
    "gpt-4o": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
    },
    "claude-sonnet-4-5": {
        "litellm_provider": "anthropic",
        "mode": "chat",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "max_input_tokens": 200000,
    },
    "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.04},
}


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=60, check=False
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "models-config.json"
    path.write_text(json.dumps({"models": [GPT, SONNET]}))
    return path


@pytest.fixture
def saved(tmp_path: Path, config: Path) -> Path:
    """A saved registry: two days of usage on both models."""
    path = tmp_path / "registry.json"
    clock = FakeClock(1_749_038_400)  # 2025-06-04 12:00 UTC
    with EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock) as registry:
        registry.load_from_config(config)
        registry.record_usage("openai:gpt-4o", 10_000, 500, cached_input_tokens=8_000)
        registry.record_usage("openai:gpt-4o", 100, 0, success=False)
        clock.advance(86_400)
        registry.record_usage("claude:claude-sonnet-4-5", 20_000, 1_000, cache_write_tokens=4_000)
        registry.save()
    return path


def test_models_search_and_show_as_json(config: Path) -> None:
    models = run("models", "--config", str(config), "--json")
    assert models.returncode == 0, models.stderr
    assert [m["key"] for m in json.loads(models.stdout)] == ["openai:gpt-4o", "claude:claude-sonnet-4-5"]
    found = run("search", "--config", str(config), "--capability", "vision", "--json")
    assert [m["key"] for m in json.loads(found.stdout)] == ["openai:gpt-4o"]
    none = run("search", "--config", str(config), "--provider", "openai", "--min-context", "150000")
    assert (none.returncode, none.stdout.strip()) == (1, "no model matches")
    shown = run("show", "gpt-4o-2024-08-06", "--config", str(config), "--json")
    data = json.loads(shown.stdout)
    assert data["key"] == "openai:gpt-4o"
    assert data["cost"]["serviceTiers"]["priority"]["inputTokens"] == "4.25"
    assert data["effectiveRateLimit"]["requestsPerMinute"] == 500
    assert data["effectiveRateLimit"]["tokensPerMinute"] == 30000


def test_show_prints_every_price_kind_tier_and_limit(config: Path) -> None:
    out = run("show", "claude-sonnet-4-5", "--config", str(config), env={"NO_COLOR": "1"}).stdout
    assert "cache write 5m" in out
    assert "input > 200,000" in out  # the long-context tier
    assert "22.5" in out
    out = run("show", "gpt-4o", "--config", str(config)).stdout
    assert "tier priority" in out
    assert "500" in out


def test_estimate_and_report_json_are_exact(config: Path, saved: Path) -> None:
    estimate = run("estimate", "gpt-4o", "10000", "500", "--cached", "8000", "--config", str(config), "--json")
    assert json.loads(estimate.stdout) == {"key": "openai:gpt-4o", "cost": "0.02", "currency": "USD"}
    report = json.loads(run("report", "--persistence", str(saved), "--json").stdout)
    gpt = 2000 * Decimal("2.5") + 8000 * Decimal("1.25") + 500 * Decimal(10)
    failed = 100 * Decimal("2.5")
    sonnet = 16000 * Decimal(3) + 4000 * Decimal("3.75") + 1000 * Decimal(15)
    total = (gpt + failed + sonnet) / 1_000_000
    assert Decimal(report["totalCost"]) == total
    assert [m["key"] for m in report["models"]] == ["claude:claude-sonnet-4-5", "openai:gpt-4o"]
    assert report["models"][1]["failedRequests"] == 1
    assert report["models"][1]["cachedInputTokens"] == 8000
    assert [d["date"] for d in report["days"]] == ["2025-06-04", "2025-06-05"]
    assert sum(Decimal(d["cost"]) for d in report["days"]) == total
    since = json.loads(run("report", "--persistence", str(saved), "--since", "2025-06-05", "--json").stdout)
    assert [d["date"] for d in since["days"]] == ["2025-06-05"]
    text = run("report", "--persistence", str(saved), "--since", "2025-06-05").stdout
    assert "Cost by day (UTC) since 2025-06-05" in text


def test_budgets_watch_once_and_missing_files(saved: Path, tmp_path: Path) -> None:
    assert json.loads(run("budgets", "--persistence", str(saved), "--json").stdout) == []
    frame = run("watch", "--persistence", str(saved), "--once")
    assert frame.returncode == 0, frame.stderr
    assert "claude:claude-sonnet-4-5" in frame.stdout
    usage = json.loads(run("watch", "--persistence", str(saved), "--once", "--json").stdout)
    assert {u["key"]: u["requestCount"] for u in usage} == {"openai:gpt-4o": 2, "claude:claude-sonnet-4-5": 1}
    missing = run("report", "--persistence", str(tmp_path / "none.json"))
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "no saved registry" in missing.stderr


def test_exit_codes_and_bounded_errors(config: Path) -> None:
    assert run("estimate", "nope", "1", "1", "--config", str(config)).returncode == 2
    assert run("estimate", "gpt-4o", "-1", "1").returncode == 2
    assert run("frobnicate").returncode == 2
    version = run("--version")
    assert (version.returncode, version.stdout.startswith("noa-registry ")) == (0, True)


def test_validate_reports_every_error_and_recognises_litellm(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    broken_gpt = {**GPT, "cost": {**GPT["cost"], "inputTokens": "-1"}}
    broken_sonnet = {**SONNET, "contextWindow": "lots", "extra": 1}
    bad.write_text(json.dumps({"models": [broken_gpt, SONNET, broken_sonnet]}))
    result = run("validate", str(bad), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [(e["index"], e["id"]) for e in report["errors"]] == [(0, "gpt-4o"), (2, "claude-sonnet-4-5")]
    assert "inputTokens" in report["errors"][0]["message"]
    text = run("validate", str(bad))
    assert (text.returncode, text.stderr.splitlines()[-1]) == (1, "2 error(s)")
    litellm = tmp_path / "prices.json"
    litellm.write_text(json.dumps(LITELLM | {f"model-{i}": {"litellm_provider": "openai"} for i in range(3000)}))
    seen = run("validate", str(litellm))
    assert seen.returncode == 1
    assert "noa-registry import litellm" in seen.stderr
    assert len(seen.stderr) < 1000  # was a 176,595-character error
    broken = tmp_path / "broken.json"
    broken.write_text('{"models": [')
    assert "line 1, column" in run("validate", str(broken)).stderr


def test_import_litellm_writes_a_config_that_loads_and_validates(tmp_path: Path) -> None:
    source = tmp_path / "prices.json"
    source.write_text(json.dumps(LITELLM))
    out = tmp_path / "models-config.json"
    result = run("import", "litellm", str(source), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["skipped"]) == (3, 1)  # sample_spec is not a model
    assert run("validate", str(out)).returncode == 0
    registry = EnhancedModelRegistry(auto_save=False, models_config_path=out)
    assert registry.load_from_config() == 3
    assert registry.estimate_cost("openai:gpt-4o", 100_000, 0) == Decimal("0.25")
    again = run("import", "litellm", str(source), "--out", str(out))
    assert again.returncode == 1
    assert "--force" in again.stderr
    only = run("import", "litellm", str(source), "--out", str(out), "--force", "--provider", "openai", "--json")
    assert json.loads(only.stdout)["imported"] == 2


def test_import_genai_prices(tmp_path: Path) -> None:
    out = tmp_path / "genai.json"
    result = run("import", "genai-prices", "--out", str(out), "--provider", "openai", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imported"] > 10
    assert run("validate", str(out)).returncode == 0


@pytest.mark.parametrize("json_output", [False, True])
def test_a_closed_pipe_ends_quietly(json_output: bool) -> None:
    # The bundled catalogue: long enough that the output does not fit in the pipe's buffer at once.
    producer = subprocess.Popen(
        [str(SCRIPT), "models", *(["--json"] if json_output else [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert producer.stdout is not None
    producer.stdout.readline()
    producer.stdout.close()  # what `head -1` does
    _, err = producer.communicate(timeout=60)
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
    assert producer.returncode == 0


def test_no_colour_when_piped_or_no_color_and_help_has_examples(config: Path) -> None:
    for env in ({}, {"NO_COLOR": "1", "FORCE_COLOR": ""}):
        out = run("models", "--config", str(config), env=env).stdout
        assert "\x1b[" not in out
    for args in ((), ("models",), ("report",), ("validate",), ("import",)):
        help_text = run(*args, "--help").stdout
        assert "examples:" in help_text, args
