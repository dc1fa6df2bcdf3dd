"""The installed ``noa-registry`` console script, run in subprocesses: every command, --json, exit codes, pipes,
colours, help."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.config import bundled_config_path
from noa_ai_provider.testing import FakeClock

from .redis_server import RedisServer

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


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed script, piped, without the caller's colour settings (plus ``env``)."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    environment = {**inherited, **(env or {})}
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


GPT_DEFINITION = {
    "key": "openai:gpt-4o",
    "id": "gpt-4o",
    "name": "GPT-4o",
    "provider": "openai",
    "version": "4.0.0",
    "aliases": ["gpt-4o-2024-08-06"],
    "contextWindow": 128000,
    "maxTokens": 16384,
    "capabilities": ["chat_completion", "function_calling", "vision"],
    "cost": {
        "inputTokens": "2.5",
        "outputTokens": "10",
        "cachedInputTokens": "1.25",
        "serviceTiers": {"priority": {"inputTokens": "4.25", "outputTokens": "17"}},
        "currency": "USD",
        "per": 1000000,
    },
    "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 30000, "countCacheReads": True},
    "metadata": {},
    "status": "available",
}


def test_models_and_search_as_json_with_every_filter(config: Path) -> None:
    models = run("models", "--config", str(config), "--json")
    assert models.returncode == 0, models.stderr
    listed = json.loads(models.stdout)
    assert [m["key"] for m in listed] == ["openai:gpt-4o", "claude:claude-sonnet-4-5"]
    assert listed[0] == GPT_DEFINITION  # the definition only: money as exact strings, nothing of this run
    # Every filter of EnhancedModelSearchQuery at once; `models` takes them too.
    every = (
        *("--provider", "openai", "--capability", "vision", "--status", "available", "--name", "4O$"),
        *("--tag", "production", "--min-context", "100000", "--max-context", "128000"),
        *("--max-cost-per-token", "0.00000625", "--min-version", "4.0.0", "--max-version", "4.0.0"),
        "--exclude-deprecated",
    )
    tagged = config.parent / "tagged.json"
    tagged.write_text(json.dumps({"models": [GPT | {"metadata": {"tags": ["production"]}}, SONNET]}))
    found = run("search", "--config", str(tagged), *every, "--json")
    assert [m["key"] for m in json.loads(found.stdout)] == ["openai:gpt-4o"]
    filtered = run("models", "--config", str(tagged), "--provider", "claude")
    assert (filtered.returncode, filtered.stdout.splitlines()[-1]) == (0, f"1 model from {tagged}")
    dearer = run("search", "--config", str(tagged), *every[:-5], "--max-cost-per-token", "0.0000062")
    assert (dearer.returncode, dearer.stdout) == (1, "no model matches\n")  # a finding: exit 1
    bad = run("search", "--config", str(config), "--capability", "telepathy")
    assert bad.returncode == 2  # a usage error, one line naming the valid values
    assert bad.stderr.count("\n") == 1
    assert "'chat_completion'" in bad.stderr


def test_show_json_has_prices_as_billed_and_effective_limits(config: Path) -> None:
    shown = run("show", "gpt-4o-2024-08-06", "--config", str(config), "--json")  # an alias resolves
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert {k: data[k] for k in GPT_DEFINITION} == GPT_DEFINITION
    assert data["effectiveRateLimit"] == {"requestsPerMinute": 500, "tokensPerMinute": 30000, "countCacheReads": True}
    assert data["usageStats"]["totalCost"] == "0"
    kinds = ("input", "output", "cachedInput", "cacheWrite", "cacheWrite1h")

    def level(tier: str, above: int | None, *prices: str) -> dict[str, Any]:
        return {"serviceTier": tier, "aboveInputTokens": above, **dict(zip(kinds, prices, strict=True))}

    # Left out of the definition: cache writes bill at the input price, batch at half of every standard price,
    # priority's cached input at the standard cached price.
    assert data["pricesPer1M"] == [
        level("standard", None, "2.5", "10", "1.25", "2.5", "2.5"),
        level("batch", None, "1.25", "5", "0.625", "1.25", "1.25"),
        level("priority", None, "4.25", "17", "1.25", "4.25", "4.25"),
    ]


def test_show_prints_every_price_kind_tier_and_limit(config: Path) -> None:
    out = run("show", "claude-sonnet-4-5", "--config", str(config)).stdout
    lines = out.splitlines()
    header = next(line for line in lines if "cache write 5m" in line)
    assert header.split() == ["input", "output", "cached", "input", "cache", "write", "5m", "cache", "write", "1h"]
    rows = {line.rsplit(maxsplit=5)[0]: line.split()[-5:] for line in lines[lines.index(header) + 1 :][:4]}
    assert rows == {
        "standard": ["3", "15", "3", "3.75", "3.75"],
        "standard > 200,000": ["6", "22.5", "6", "3.75", "3.75"],  # the long-context tier
        "batch": ["1.5", "7.5", "1.5", "1.875", "1.875"],
        "batch > 200,000": ["3", "11.25", "3", "1.875", "1.875"],
    }
    gpt = run("show", "openai:gpt-4o", "--config", str(config)).stdout
    assert ["priority", "4.25", "17", "1.25", "4.25", "4.25"] in [line.split() for line in gpt.splitlines()]
    assert ["rpm", "500", "500"] in [line.split() for line in gpt.splitlines()]  # configured and effective
    assert all(line == line.rstrip() for line in gpt.splitlines())  # piped: no trailing blanks


REPORT = {
    "since": None,
    "totalCost": "0.09825",
    "costByCurrency": {"USD": "0.09825"},
    "totalRequests": 3,
    "failedRequests": 1,
    "totalInputTokens": 30100,
    "cachedInputTokens": 8000,
    "cacheWriteTokens": 4000,
    "totalOutputTokens": 1500,
    "models": [
        {
            "key": "claude:claude-sonnet-4-5",
            "name": "Claude Sonnet 4.5",
            "requests": 1,
            "failedRequests": 0,
            "inputTokens": 20000,
            "cachedInputTokens": 0,
            "cacheWriteTokens": 4000,
            "outputTokens": 1000,
            "cost": "0.078",  # (16,000 * 3 + 4,000 * 3.75 + 1,000 * 15) / 1M
            "currency": "USD",
        },
        {
            "key": "openai:gpt-4o",
            "name": "GPT-4o",
            "requests": 2,
            "failedRequests": 1,
            "inputTokens": 10100,
            "cachedInputTokens": 8000,
            "cacheWriteTokens": 0,
            "outputTokens": 500,
            "cost": "0.02025",  # (2,000 * 2.5 + 8,000 * 1.25 + 500 * 10) / 1M, and the failed 100 * 2.5 / 1M
            "currency": "USD",
        },
    ],
    "days": [
        {
            "date": "2025-06-04",
            "currency": "USD",
            "requests": 2,
            "inputTokens": 10100,
            "cachedInputTokens": 8000,
            "cacheWriteTokens": 0,
            "outputTokens": 500,
            "cost": "0.02025",
        },
        {
            "date": "2025-06-05",
            "currency": "USD",
            "requests": 1,
            "inputTokens": 20000,
            "cachedInputTokens": 0,
            "cacheWriteTokens": 4000,
            "outputTokens": 1000,
            "cost": "0.078",
        },
    ],
}


def test_estimate_and_report_json_are_exact(config: Path, saved: Path) -> None:
    estimate = run("estimate", "gpt-4o", "10000", "500", "--cached", "8000", "--config", str(config), "--json")
    assert json.loads(estimate.stdout) == {
        "key": "openai:gpt-4o",
        "inputTokens": 10000,
        "outputTokens": 500,
        "cachedInputTokens": 8000,
        "cacheWriteTokens": 0,
        "cacheWrite1hTokens": 0,
        "serviceTier": None,
        "cost": "0.02",
        "currency": "USD",
    }
    priority = run("estimate", "gpt-4o", "1000", "1000", "--service-tier", "priority", "--config", str(config))
    assert priority.stdout == "0.02125 USD\n"  # (1,000 * 4.25 + 1,000 * 17) / 1M
    report = run("report", "--persistence", str(saved), "--json")
    data = json.loads(report.stdout)
    assert data == REPORT
    assert list(data) == list(REPORT)  # the documented key order
    assert sum(Decimal(d["cost"]) for d in data["days"]) == Decimal(data["totalCost"])
    since = json.loads(run("report", "--persistence", str(saved), "--since", "2025-06-05", "--json").stdout)
    assert since == REPORT | {"since": "2025-06-05", "days": REPORT["days"][1:]}
    text = run("report", "--persistence", str(saved), "--since", "2025-06-05").stdout.splitlines()
    assert text[1:10] == [
        "=== Cost Report ===",
        "Total Cost: $0.10 (0.09825 exactly)",
        "Total Input Tokens: 30,100",
        "Total Output Tokens: 1,500",
        "Total Requests: 3",
        "Failed Requests: 1",
        "Cached Input Tokens: 8,000 (read from a cache; part of the input)",
        "Cache Write Tokens: 4,000 (written to a cache; part of the input)",
        "",
    ]
    by_model = text.index("Cost by model")
    sonnet = ["claude:claude-sonnet-4-5", "Claude", "Sonnet", "4.5", "1", "0", "20,000", "0", "1,000", "0.078", "USD"]
    assert text[by_model + 2].split() == sonnet
    by_day = text.index("Cost by day (UTC) since 2025-06-05")
    assert [row.split() for row in text[by_day + 2 :]] == [
        ["2025-06-05", "1", "20,000", "0", "1,000", "0.078", "USD"],
        ["total", "1", "20,000", "0", "1,000", "0.078", "USD"],
    ]


def test_budgets_watch_once_and_missing_files(saved: Path, tmp_path: Path) -> None:
    assert json.loads(run("budgets", "--persistence", str(saved), "--json").stdout) == []
    frame = run("watch", "--persistence", str(saved), "--once")
    assert frame.returncode == 0, frame.stderr
    assert [row.split() for row in frame.stdout.splitlines()] == [
        ["usage"],
        ["KEY", "REQUESTS", "FAILED", "INPUT", "CACHED", "OUTPUT", "COST"],
        ["claude:claude-sonnet-4-5", "1", "0", "20,000", "0", "1,000", "0.078", "USD"],
        ["openai:gpt-4o", "2", "1", "10,100", "8,000", "500", "0.02025", "USD"],
    ]
    usage = json.loads(run("watch", "--persistence", str(saved), "--once", "--json").stdout)
    assert [(u["key"], u["requestCount"], u["failedRequests"], u["totalCost"]) for u in usage] == [
        ("claude:claude-sonnet-4-5", 1, 0, "0.078"),
        ("openai:gpt-4o", 2, 1, "0.02025"),
    ]
    missing = run("report", "--persistence", str(tmp_path / "none.json"))
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "no saved registry" in missing.stderr


def test_exit_codes_and_bounded_errors(config: Path, saved: Path, tmp_path: Path) -> None:
    unknown = run("estimate", "gpt-4o-min", "1", "1", "--config", str(config))
    assert unknown.returncode == 2  # an unknown model is a usage error
    assert unknown.stderr.startswith("noa-registry: ")
    assert run("estimate", "gpt-4o", "-1", "1").returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("report", "--persistence", str(saved), "--since", "June").returncode == 2
    version = run("--version")
    assert (version.returncode, version.stdout.startswith("noa-registry ")) == (0, True)
    # A file problem is a finding (1), with a bounded one-line message however long the cause.
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"models": [GPT | {"id": "x" * 100_000, "contextWindow": "lots"}]}))
    result = run("models", "--config", str(huge))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr) <= 700
    # Names are printed as they are, never read as rich markup; an unpriced model is never $0.
    odd = tmp_path / "odd.json"
    unpriced = GPT | {"id": "free?", "aliases": [], "cost": None}
    odd.write_text(json.dumps({"models": [GPT | {"id": "x[/]", "name": "[bold]Odd[/bold] [/] model"}, unpriced]}))
    shown = run("show", "x[/]", "--config", str(odd))
    assert shown.returncode == 0, shown.stderr
    assert "[bold]Odd[/bold] [/] model" in shown.stdout
    listed = json.loads(run("models", "--config", str(odd), "--json").stdout)
    assert listed[1]["cost"] is None
    assert run("models", "--config", str(odd)).stdout.splitlines()[-1] == f"2 models from {odd} (? = no price)"
    free = run("estimate", "free?", "1", "1", "--config", str(odd))
    assert (free.returncode, free.stdout) == (2, "")
    assert "has no price" in free.stderr


def test_watch_budgets_show_and_report_of_a_redis_store(config: Path, redis_server: RedisServer) -> None:
    url = f"{redis_server.url}?namespace=cli-{os.getpid()}"
    with EnhancedModelRegistry(backend=url, models_config_path=config, auto_save=False) as app:
        app.load_from_config()
        app.set_budget("10", period="month")
        app.record_usage("openai:gpt-4o", 10_000, 500, cached_input_tokens=8_000)
        app.update_rate_limits_from_headers(
            "claude:claude-sonnet-4-5",
            {
                "anthropic-ratelimit-input-tokens-limit": "40000",
                "anthropic-ratelimit-input-tokens-remaining": "39000",
                "anthropic-ratelimit-input-tokens-reset": "2099-01-01T00:00:00Z",
            },
        )
    store = ("--backend", url, "--config", str(config))
    usage = json.loads(run("watch", *store, "--once", "--json").stdout)
    assert [(u["key"], u["requestCount"], u["totalCost"]) for u in usage] == [
        ("openai:gpt-4o", 1, "0.02"),
        ("claude:claude-sonnet-4-5", 0, "0"),
    ]
    budgets = json.loads(run("budgets", *store, "--json").stdout)
    assert [(b["key"], b["period"], b["limit"], b["spent"], b["remaining"]) for b in budgets] == [
        (None, "month", "10", "0.02", "9.98")
    ]
    table = run("budgets", *store).stdout.splitlines()
    assert table[2].split()[:7] == ["(all", "models)", "month", "10", "0.02", "0", "9.98"]
    shown = json.loads(run("show", "claude-sonnet-4-5", *store, "--json").stdout)
    assert "rateLimit" not in shown  # nothing configured ...
    assert shown["effectiveRateLimit"]["inputTokensPerMinute"] == 40000  # ... but learned from the headers
    report = json.loads(run("report", *store, "--json").stdout)
    assert (report["totalCost"], report["cachedInputTokens"]) == ("0.02", 8000)


@pytest.fixture
def big_config(tmp_path: Path) -> Path:
    """2,000 models: far more output than a pipe's buffer holds, so the writer meets the closed pipe."""
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"models": [GPT | {"id": f"model-{i}", "aliases": []} for i in range(2000)]}))
    return path


@pytest.mark.parametrize("json_output", [False, True])
def test_a_closed_pipe_ends_quietly(big_config: Path, json_output: bool) -> None:
    # `noa-registry models | head -1`, a real pipe between two processes.
    command = [str(SCRIPT), "models", "--config", str(big_config), *(["--json"] if json_output else [])]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert producer.stdout is not None
    head = subprocess.Popen(["head", "-1"], stdin=producer.stdout, stdout=subprocess.PIPE)
    producer.stdout.close()  # only head holds the reading end now
    first, _ = head.communicate(timeout=60)
    _, err = producer.communicate(timeout=60)
    assert first.decode().split()[0] == ("[" if json_output else "KEY")
    assert err == b""
    assert producer.returncode == 0


def _on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, bytes]:
    """Run the script with stdout and stderr on a pseudo-terminal; its status and everything it wrote."""
    import pty

    leader, follower = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"}
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TERM_PROGRAM"):
        environment.pop(name, None)
    process = subprocess.Popen([str(SCRIPT), *args], stdout=follower, stderr=follower, env=environment | env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks)


def test_colours_on_a_terminal_only_without_no_color(config: Path) -> None:
    status, styled = _on_a_terminal("show", "gpt-4o", "--config", str(config), env={})
    assert status == 0
    assert b"\x1b[" in styled
    status, plain = _on_a_terminal("show", "gpt-4o", "--config", str(config), env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    assert status == 0
    assert b"\x1b[" not in plain
    assert b"openai:gpt-4o" in plain


def test_no_colour_when_piped_or_no_color_unless_force_color(config: Path) -> None:
    out = run("show", "gpt-4o", "--config", str(config)).stdout  # NO_COLOR with FORCE_COLOR: on a terminal, below
    assert "\x1b[" not in out
    assert "openai:gpt-4o" in out
    forced = run("show", "gpt-4o", "--config", str(config), env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert "\x1b[" in forced.stdout  # rich's convention: FORCE_COLOR styles piped output too


def test_80_columns_terminal_keeps_keys_whole_and_says_what_it_left_out(config: Path) -> None:
    status, out = _on_a_terminal(
        "models", "--config", str(bundled_config_path()), env={"NO_COLOR": "1", "COLUMNS": "80"}
    )
    assert status == 0
    lines = out.decode().replace("\r\n", "\n").splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("llama.cpp:mistral-7b-instruct-v0.3 ") for line in lines)  # 34 characters, whole
    assert "(left out for want of width: NAME, VERSION, CUR, LIMITS; --json has everything)" in lines


def test_help_of_the_program_and_of_every_command_has_examples() -> None:
    from noa_ai_provider.cli import build_parser

    program = run("--help")
    assert program.returncode == 0
    assert "examples:" in program.stdout
    assert "exit status" in program.stdout
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = actions[0].choices
    assert set(commands) == {"models", "search", "show", "estimate", "report", "budgets", "watch", "validate", "import"}
    for name, command in commands.items():
        assert "example" in command.format_help().lower(), name


def test_watch_reads_the_saved_file_again_when_it_changes(saved: Path, config: Path) -> None:
    import pty
    import signal
    import time

    leader, follower = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "NO_COLOR": "1", "TTY_COMPATIBLE": "1"}
    command = [str(SCRIPT), "watch", "--persistence", str(saved), "--interval", "0.1"]
    process = subprocess.Popen(command, stdout=follower, stderr=follower, env=environment)
    os.close(follower)
    os.set_blocking(leader, False)
    seen = b""

    def wait_for(text: bytes) -> bool:
        nonlocal seen
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                seen += os.read(leader, 65536)
            except (BlockingIOError, OSError):
                time.sleep(0.05)
            if text in seen:
                return True
        return False

    try:
        assert wait_for(b"openai:gpt-4o"), seen[-2000:]
        assert b"0.02025 USD" in seen or wait_for(b"0.02025 USD")
        with EnhancedModelRegistry(persistence_path=saved, auto_save=False) as registry:
            registry.load()
            registry.record_usage("openai:gpt-4o", 3_000, 1_000)  # 0.0075 + 0.01 more
            registry.save()
        assert wait_for(b"0.03775 USD"), seen[-2000:]
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=20)
        os.close(leader)
    assert status == 0
