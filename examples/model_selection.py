"""The seed's "Model Selection Based on Cost and Performance": the best-scoring model among those that have a
capability, cost at most so much per token and have a large enough context window.

Offline and deterministic: ``python examples/model_selection.py``.
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from noa_ai_provider import EnhancedModelRegistry, EnhancedModelRegistryEntry, ModelCapability, ModelStatus


def model(provider: str, model_id: str, input_price: str, output_price: str, context: int) -> dict[str, object]:
    return {
        "id": model_id,
        "name": model_id,
        "provider": provider,
        "version": "1.0.0",
        "contextWindow": context,
        "capabilities": ["chat_completion", "function_calling"],
        "cost": {"inputTokens": input_price, "outputTokens": output_price, "currency": "USD", "per": 1000},
    }


def calculate_score(entry: EnhancedModelRegistryEntry) -> float:
    metrics = entry.performance_metrics
    assert metrics is not None
    success_score = metrics.success_rate * 0.4
    speed_score = min(metrics.tokens_per_second / 100, 1) * 0.3
    usage_score = min(metrics.total_inferences / 1000, 1) * 0.3
    return success_score + speed_score + usage_score


def average_price(entry: EnhancedModelRegistryEntry) -> Decimal:
    return (entry.cost.input_tokens + entry.cost.output_tokens) / (2 * entry.cost.per)


def select_optimal_model(
    registry: EnhancedModelRegistry, capability: ModelCapability, max_cost_per_token: Decimal, min_context: int
) -> EnhancedModelRegistryEntry:
    candidates = registry.search_models(
        capability=capability,
        max_cost_per_token=max_cost_per_token,
        min_context_window=min_context,
        exclude_deprecated=True,
        status=ModelStatus.AVAILABLE,
    )
    if not candidates:
        raise LookupError("No suitable models found")
    measured = [c for c in candidates if c.performance_metrics is not None]
    if measured:  # the best score wins; without metrics, the cheapest
        return max(measured, key=calculate_score)
    return min(candidates, key=average_price)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        EnhancedModelRegistry(persistence_path=Path(tmp) / "registry.json", auto_save=False) as registry,
    ):
        registry.register_models(
            [
                model("openai", "gpt-4o-mini", "0.00015", "0.0006", 128000),
                model("claude", "claude-3-haiku", "0.00025", "0.00125", 200000),
                model("claude", "claude-3-opus", "0.015", "0.075", 200000),
                model("openai", "gpt-3.5-turbo", "0.0005", "0.0015", 16385),
            ]
        )
        registry.update_performance_metrics(
            "openai:gpt-4o-mini", success_rate=0.95, tokens_per_second=45, total_inferences=1000
        )
        registry.update_performance_metrics(
            "claude:claude-3-haiku", success_rate=0.99, tokens_per_second=120, total_inferences=5000
        )
        registry.update_model_status("openai:gpt-3.5-turbo", ModelStatus.DEPRECATED)

        for entry in registry.search_models(capability=ModelCapability.FUNCTION_CALLING):
            score = "-" if entry.performance_metrics is None else f"{calculate_score(entry):.3f}"
            print(f"{entry.key}: ${average_price(entry) * 1000:.5f} per 1K tokens, score {score}")

        best = select_optimal_model(registry, ModelCapability.FUNCTION_CALLING, Decimal("0.00005"), 100000)
        print(f"best under $0.05 per 1K tokens with 100K context: {best.key}")
        try:
            select_optimal_model(registry, ModelCapability.FUNCTION_CALLING, Decimal("0.00001"), 300000)
        except LookupError as exc:
            print(f"300K context: {exc}")


if __name__ == "__main__":
    main()
