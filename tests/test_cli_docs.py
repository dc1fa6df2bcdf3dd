"""docs/cli.md shows real output: each ``$ noa-registry ...`` of its text blocks is run (the installed console
script, piped, in a folder holding the bundled catalogue as ./config/models-config.json, the sample registry the page
describes as ./data/model-registry.json, and the test fixtures) and must print what the page shows. Left out: the
terminal rendering, the Redis store, and LiteLLM's own price map (not in the repository)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.config import bundled_config_path
from noa_ai_provider.testing import FakeClock

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"
SCRIPT = Path(sys.executable).parent / "noa-registry"
NOT_RUN = ("on an 80-column terminal", "--backend", "model_prices_and_context_window.json")


def shown_commands() -> list[tuple[str, list[str]]]:
    """Every ``$ noa-registry ...`` line of the page's text blocks, with the lines it shows printed."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```text\n(.*?)```", PAGE.read_text(), flags=re.DOTALL):
        command: str | None = None
        output: list[str] = []
        for line in [*block.splitlines(), "$ end"]:
            if line.startswith("$ "):
                if command is not None and command.startswith("noa-registry "):
                    found.append((command, output))
                command, output = line[2:], []
            else:
                output.append(line)
    return found


def make_sample_registry(folder: Path) -> None:
    """The registry the page's report, watch and JSON examples read: five requests over two days, one failed."""
    clock = FakeClock(1_749_038_400)  # 2025-06-04 12:00 UTC
    with EnhancedModelRegistry(
        persistence_path=folder / "data" / "model-registry.json",
        auto_save=False,
        clock=clock,
        models_config_path=bundled_config_path(),
    ) as registry:
        registry.load_from_config()
        registry.record_usage("openai:gpt-4o", 12_000, 800, cached_input_tokens=8_000)
        registry.record_usage("openai:gpt-4o", 100, 0, success=False)
        registry.record_usage("openai:gpt-4o-mini", 3_000, 400)
        clock.advance(86_400)
        registry.record_usage("claude-sonnet-4-5", 20_000, 1_000, cache_write_tokens=4_000)
        registry.record_usage("openai:gpt-4o", 2_000, 300)
        registry.save()


def test_every_command_on_the_page_prints_what_it_shows(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(bundled_config_path(), tmp_path / "config" / "models-config.json")
    for fixture in (ROOT / "tests" / "fixtures" / "cli").glob("*.json"):
        shutil.copy(fixture, tmp_path / fixture.name)
    make_sample_registry(tmp_path)
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    commands = [(c, o) for c, o in shown_commands() if not any(marker in c for marker in NOT_RUN)]
    assert len(commands) >= 11, [c for c, _ in commands]
    for command, shown in commands:
        args = shlex.split(command)[1:]
        result = subprocess.run(
            [str(SCRIPT), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=environment | {"NO_COLOR": "1"},
            timeout=60,
            check=False,
        )
        printed = (result.stdout + result.stderr).splitlines()
        if "..." in shown:  # an excerpt: the lines before and after it
            cut = shown.index("...")
            head, tail = shown[:cut], shown[cut + 1 :]
            assert printed[: len(head)] == head, command
            assert printed[len(printed) - len(tail) :] == tail, command
        else:
            assert printed == shown, command


def test_the_page_lists_every_command() -> None:
    from noa_ai_provider.cli import build_parser

    text = PAGE.read_text()
    subcommands = build_parser()._subparsers._group_actions[0].choices  # argparse keeps them there
    for command in subcommands:
        assert f"| `{command}" in text, command
