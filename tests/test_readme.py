"""The README stays true: its Python tour runs as written, and its quick-start commands are the ones CI uses."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_tour_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    assert blocks, "the README has a Python tour"
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "models-config.json", tmp_path / "config" / "models-config.json")
    printed = ""
    for block in blocks:
        result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        printed += result.stdout
    assert (tmp_path / "data" / "model-registry.json").is_file()  # saved when the with block closed
    assert "openai:gpt-4-turbo-preview: $0.039 (total $0.039)" in printed  # the tour's event handler ran


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    assert len(commands) == 2
    assert "noa-registry models" in commands[0]
    assert commands[1].strip().endswith("python -m pytest")
    assert "-m pytest\n" in (ROOT / ".ci" / "run").read_text()
