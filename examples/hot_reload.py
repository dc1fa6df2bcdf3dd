"""The seed's "Hot-Reload Configuration", with ``watch_config``: a changed models-config file is applied in one
step (added models registered, changed ones updated, removed ones unregistered) and the models that stay keep
their usage, where the seed's ``clear_registry()`` + ``load_from_config()`` threw it away.

Offline: the file is a temporary copy, rewritten by the script itself. ``python examples/hot_reload.py``.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path
from typing import Any

from noa_ai_provider import EnhancedModelRegistry

BUNDLED = Path(__file__).resolve().parents[1] / "config" / "models-config.json"


def main() -> None:
    seed = json.loads(BUNDLED.read_text())["models"][:2]  # GPT-4 Turbo and Claude 3 Opus
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "models-config.json"
        config.write_text(json.dumps({"models": seed}))
        registry = EnhancedModelRegistry(
            persistence_path=Path(tmp) / "registry.json", models_config_path=config, auto_save=False
        )
        reloaded = threading.Event()

        @registry.on("config-reloaded")
        def report(sender: Any, *, path: str, added: list[str], updated: list[str], removed: list[str]) -> None:
            print(f"config reloaded: added {added}, updated {updated}, removed {removed}")
            reloaded.set()

        with registry, registry.watch_config(interval=0.02, debounce=0.05):  # loads the file first
            reloaded.wait(5)
            reloaded.clear()
            key = "openai:gpt-4-turbo-preview"
            registry.record_usage(key, 1000, 1000, True)
            print(f"{key}: ${registry.estimate_cost(key, 1000, 1000)} per 1K + 1K tokens")

            gpt, _claude = seed  # a new price for GPT-4 Turbo, Claude removed
            cheaper = {**gpt, "cost": {**gpt["cost"], "inputTokens": 0.005, "outputTokens": 0.015}}
            config.write_text(json.dumps({"models": [cheaper]}))
            if not reloaded.wait(5):
                raise SystemExit("the change was not applied within 5 s")

            print(f"{key}: ${registry.estimate_cost(key, 1000, 1000)} per 1K + 1K tokens")
            stats = registry.get_usage_stats(key)
            assert stats is not None
            print(f"usage kept: {stats.request_count} request, ${stats.total_cost}")
            print(f"models: {[m.key for m in registry.list_models()]}")


if __name__ == "__main__":
    main()
