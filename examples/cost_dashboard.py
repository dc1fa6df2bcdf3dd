"""The seed's "Cost Monitoring Dashboard": load a saved registry and print its cost report.

Offline and deterministic: a first registry records a few requests on the bundled catalogue's seed models and
saves them to a temporary file; a second one loads that file and prints the report. Run it with
``python examples/cost_dashboard.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from noa_ai_provider import EnhancedModelRegistry

CONFIG = Path(__file__).resolve().parents[1] / "config" / "models-config.json"


def record_some_usage(path: Path) -> None:
    """What a day of an application leaves in its registry file."""
    with EnhancedModelRegistry(persistence_path=path, models_config_path=CONFIG, auto_save=False) as registry:
        registry.load_from_config()
        registry.record_usage("openai:gpt-4-turbo-preview", 1500, 800, True)  # $0.039
        registry.record_usage("openai:gpt-4-turbo-preview", 100, 0, False)  # $0.001: a failed request is billed
        registry.record_usage("claude:claude-3-opus-20240229", 1000, 200, True)  # $0.030
        registry.record_usage("llama.cpp:llama-3.1-8b-instruct", 5000, 1000, True)  # self-hosted: $0
        registry.save()


def generate_cost_report(registry: EnhancedModelRegistry) -> None:
    stats = registry.get_statistics()
    print("=== Cost Report ===")
    print(f"Total Cost: ${stats.total_cost:.2f}")
    print(f"Total Input Tokens: {stats.total_input_tokens:,}")
    print(f"Total Output Tokens: {stats.total_output_tokens:,}")

    print("\n=== Cost by Model ===")
    models = sorted(registry.list_models(), key=lambda m: m.usage_stats.total_cost, reverse=True)
    for model in models:
        usage = model.usage_stats
        if usage.total_cost > 0:
            print(f"{model.name}: ${usage.total_cost:.4f} ({usage.request_count} requests)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model-registry.json"
        record_some_usage(path)
        with EnhancedModelRegistry(persistence_path=path, auto_save=False) as registry:
            registry.load()  # the saved registry: definitions and usage
            generate_cost_report(registry)


if __name__ == "__main__":
    main()
