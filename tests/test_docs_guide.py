"""docs/guide.md: its Python blocks run, and its error message and printed output are what the library produces.

The page is run as the pages of ``tests/test_docs_site.py`` are (``tests/docblocks.py``): every ``python`` block,
top to bottom, in one namespace, in a temporary working directory, with its line numbers those of the page; an
expression whose last line ends in ``# -> value`` is checked to equal ``value``. A block preceded by
``<!-- not run: reason -->`` is only compiled (the page has none today).

The page's first block builds its registry from ``./config/models-config.json`` with ``auto_load_config=True``:
the test puts the bundled catalogue there (``bundled_config_path()``), as a project would keep its own file, so
``openai:gpt-4o`` has the catalogue's prices ($2.50 / $10 per million tokens). The registry has autosave on, so
the test closes it after the page (the page tells readers to call ``close()``).
"""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry
from noa_ai_provider.config import bundled_config_path

from .docblocks import Block, blocks_of, run_blocks

PAGE = "guide.md"
DOC = Path(__file__).resolve().parents[1] / "docs" / PAGE


def page_blocks() -> list[Block]:
    return blocks_of(DOC.read_text(), PAGE)


def padded(block: Block) -> str:
    """The block's code at its page lines, so a failure points at the page's line."""
    return "\n" * (block.line - 1) + block.code


def test_every_block_runs_or_says_why_not() -> None:
    """Every block has a language; the Python blocks run (below), and the text block is checked (below)."""
    blocks = page_blocks()
    assert [(block.info, block.runs) for block in blocks] == [
        ("python", True),
        ("text", True),  # a ConfigError's message
        ("python", True),
        ("python", True),
    ]
    for block in blocks:
        if block.info == "python":  # a not-run block would at least compile
            compile(padded(block), f"docs/{PAGE}", "exec")


def test_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(bundled_config_path(), tmp_path / "config" / "models-config.json")
    monkeypatch.chdir(tmp_path)
    blocks = [padded(block) for block in page_blocks() if block.info == "python" and block.runs]
    assert len(blocks) == 3
    try:
        # The test's own last block closes the page's registry (its autosave thread would keep it alive).
        checked = run_blocks(f"docs/{PAGE}", [*blocks, "registry.close()\n"])
    finally:
        for registry in [obj for obj in gc.get_objects() if isinstance(obj, EnhancedModelRegistry)]:
            if registry.config.persistence_path == Path("data/model-registry.json"):
                registry.close()  # the page failed before the test closed it: stop its autosave here
    assert checked == 1
    # The events block: the usage-recorded handler printed the key and the exact cost of record_usage.
    assert capsys.readouterr().out == "openai:gpt-4o 0.0035\n"
    # close() saved what was pending: the acquire's commit and the record_usage.
    saved = json.loads((tmp_path / "data" / "model-registry.json").read_text())
    usage = next(model["usageStats"] for model in saved["models"] if model["id"] == "gpt-4o")
    assert (usage["requestCount"], usage["totalCost"]) == (2, "0.010575")


def test_the_error_message_shown_is_the_librarys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``text`` block is the ConfigError of a models-config file whose second model misspells a rateLimit
    field."""
    [shown] = [block.code.strip() for block in page_blocks() if block.info == "text"]
    opus = {
        "id": "claude-3-opus-20240229",
        "name": "Claude 3 Opus",
        "provider": "claude",
        "version": "1.0.0",
        "cost": {"inputTokens": 15, "outputTokens": 75, "per": 1_000_000},
        "rateLimit": {"requestsPerMinut": 50},
    }
    gpt = {**opus, "id": "gpt-4o", "name": "GPT-4o", "provider": "openai", "rateLimit": {"requestsPerMinute": 5}}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "models-config.json").write_text(json.dumps({"models": [gpt, opus]}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as refused:
        EnhancedModelRegistry(models_config_path="./config/models-config.json", auto_load_config=True, auto_save=False)
    assert str(refused.value) == shown
