"""The noa-registry command: in-process through main() and as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.cli import main

from .samples import GPT4, LLAMA, OPUS


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "models-config.json"
    path.write_text(json.dumps({"models": [GPT4, OPUS, LLAMA]}))
    return path


def test_models_prints_a_table(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["KEY", "NAME", "VERSION", "CONTEXT", "IN/1M", "OUT/1M", "CUR", "LIMITS", "STATUS"]
    row = next(line for line in out if line.startswith("openai:gpt-4-turbo-preview"))
    assert "128,000" in row
    assert " 10 " in row
    assert " 30 " in row
    assert "500 rpm" in row
    assert out[-1] == f"3 models from {config}"


def test_estimate_prints_the_exact_cost(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "openai:gpt-4-turbo-preview", "2000", "1000", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "0.05 USD\n"


def test_estimate_unknown_key_and_bad_numbers(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "openai:nope", "1", "1", "--config", str(config)]) == 2
    assert "no model registered under key 'openai:nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["estimate", "openai:gpt-4-turbo-preview", "-5", "1", "--config", str(config)])
    assert caught.value.code == 2


def test_bad_config_file_is_one_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "x"}]')
    assert main(["models", "--config", str(bad)]) == 1  # a file problem is a finding; a bad argument would be 2
    err = capsys.readouterr().err
    assert err.startswith(f"noa-registry: {bad}: models[0] (id 'x')")
    assert err.count("\n") == 1
    assert main(["models", "--config", str(tmp_path / "missing.json")]) == 1


def test_report_of_a_saved_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "registry.json"
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as reg:
        reg.register_models([GPT4, OPUS, LLAMA])
        reg.record_usage("openai:gpt-4-turbo-preview", 1500, 800)
        reg.record_usage("openai:gpt-4-turbo-preview", 100, 0, success=False)
        reg.record_usage("claude:claude-3-opus-20240229", 100_000, 20_000)
        reg.save()
    assert main(["report", "--persistence", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        "",
        "=== Cost Report ===",
        "Total Cost: $3.04",
        "Total Input Tokens: 101,600",
        "Total Output Tokens: 20,800",
        "Total Requests: 3",
    ]
    rows = [line.split() for line in out if line.startswith(("openai:", "claude:"))]
    # By model, dearest first, with keys: requests, failed, input, cached, output, exact cost, currency.
    assert rows[0][0] == "claude:claude-3-opus-20240229"
    assert rows[0][-2:] == ["3", "USD"]
    assert rows[1][0] == "openai:gpt-4-turbo-preview"
    assert rows[1][-7:] == ["2", "1", "1,600", "0", "800", "0.04", "USD"]


def test_report_without_a_saved_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--persistence", str(tmp_path / "none.json")]) == 1
    assert "no saved registry" in capsys.readouterr().err


def test_console_script_runs_on_the_bundled_catalogue(tmp_path: Path) -> None:
    script = shutil.which("noa-registry", path=str(Path(sys.executable).parent))
    assert script is not None, "the noa-registry console script is not installed"
    result = subprocess.run([script, "models"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "openai:gpt-4-turbo-preview" in result.stdout
    module = subprocess.run(
        [sys.executable, "-m", "noa_ai_provider", "estimate", "openai:gpt-4-turbo-preview", "1000", "1000"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout == "0.04 USD\n"


def test_estimate_with_cache_and_service_tier(capsys: pytest.CaptureFixture[str]) -> None:
    # Bundled catalogue: gpt-4o at $2.50 / $10 per 1M, cached input $1.25, batch at half price.
    assert main(["estimate", "openai:gpt-4o", "10000", "500", "--cached", "8000"]) == 0
    assert capsys.readouterr().out == "0.02 USD\n"  # (2000 * 2.5 + 8000 * 1.25 + 500 * 10) / 1e6
    assert main(["estimate", "openai:gpt-4o", "1000", "1000", "--service-tier", "batch"]) == 0
    assert capsys.readouterr().out == "0.00625 USD\n"
    assert main(["estimate", "openai:gpt-4o", "100", "0", "--cached", "8000"]) == 2
    assert "exceed input_tokens" in capsys.readouterr().err


def test_estimate_resolves_other_names_and_suggests_keys(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # OPUS is "claude:claude-3-opus-20240229" at $0.015 / $0.075 per 1K.
    for name in ("anthropic:claude-3-opus-20240229", "claude-3-opus-20240229", "anthropic/claude-3-opus-20240229"):
        assert main(["estimate", name, "1000", "1000", "--config", str(config)]) == 0
        assert capsys.readouterr().out == "0.09 USD\n"  # exact, without trailing zeros
    assert main(["estimate", "claude:claude-3-opus-2024022", "1", "1", "--config", str(config)]) == 2
    assert "did you mean claude:claude-3-opus-20240229?" in capsys.readouterr().err


def test_estimate_with_1h_cache_writes_and_reported_tier_names(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GPT4 has no 1-hour write price: 1-hour writes bill at the cache-write price, itself the input price.
    assert (
        main(["estimate", "gpt-4-turbo-preview", "2000", "1000", "--cache-write-1h", "500", "--config", str(config)])
        == 0
    )
    assert capsys.readouterr().out == "0.05 USD\n"
    assert (
        main(["estimate", "gpt-4-turbo-preview", "2000", "1000", "--service-tier", "default", "--config", str(config)])
        == 0
    )
    assert capsys.readouterr().out == "0.05 USD\n"
    # No batch price: half of every standard price.
    assert (
        main(["estimate", "gpt-4-turbo-preview", "2000", "1000", "--service-tier", "batch", "--config", str(config)])
        == 0
    )
    assert capsys.readouterr().out == "0.025 USD\n"


def test_models_shows_every_kind_of_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "models-config.json"
    model = dict(OPUS) | {
        "rateLimit": {"requestsPerMinute": 50, "inputTokensPerMinute": 30_000, "outputTokensPerMinute": 8_000}
    }
    config.write_text(json.dumps({"models": [model]}))
    assert main(["models", "--config", str(config)]) == 0
    assert "50 rpm, 30,000 itpm, 8,000 otpm" in capsys.readouterr().out
