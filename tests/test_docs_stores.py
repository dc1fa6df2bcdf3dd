"""docs/stores.md: its Python blocks run, and what they state holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .docblocks import run_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "stores.md"


def test_the_examples_of_docs_stores_md_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 3
    assert run_blocks(DOC.name, blocks) >= 10
