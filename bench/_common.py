"""What every benchmark script shares: where things are, and the machine's description.

Importing it also makes ``noa_ai_provider`` importable from a checkout that has not installed the package.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CATALOG = REPO_ROOT.parent / "shared" / "data" / "litellm-model-prices.json"

if importlib.util.find_spec("noa_ai_provider") is None:  # running from a checkout without the package installed
    sys.path.insert(0, str(REPO_ROOT / "src"))


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def require_catalog(path: Path) -> None:
    """Exit with a message saying where to get LiteLLM's catalogue when ``path`` is not a file."""
    if not path.is_file():
        raise SystemExit(
            f"error: the LiteLLM catalogue {path} does not exist. Download model_prices_and_context_window.json "
            "from https://github.com/BerriAI/litellm (or take model_prices_and_context_window_backup.json from the "
            "litellm package) and pass --catalog PATH."
        )


def add_catalog_argument(parser: argparse.ArgumentParser) -> None:
    """``--catalog PATH``: LiteLLM's price map, by default the copy in ``../shared/data``."""
    parser.add_argument(
        "--catalog",
        type=Path,
        default=DEFAULT_CATALOG,
        help=f"LiteLLM's model_prices_and_context_window.json (default: {DEFAULT_CATALOG})",
    )
