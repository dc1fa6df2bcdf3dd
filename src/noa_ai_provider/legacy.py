"""``ModelRegistry``: the legacy in-memory registry of the migration guide (no cost, no rate limits)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from . import jsonio
from .schemas import ModelInfo, item_label, model_key, validate_models, validate_or_raise

__all__ = ["ModelRegistry"]


class ModelRegistry:
    """A thread-safe, in-memory map of :class:`ModelInfo` by key ``provider:id``.

    Kept so that code written against the legacy registry runs unchanged and can migrate:
    ``json.loads(old.export_to_json())`` gives plain camelCase model dicts to which ``version``, ``cost`` and
    ``rateLimit`` can be added before :meth:`EnhancedModelRegistry.register_models`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelInfo] = {}

    def register_model(self, model: ModelInfo | Mapping[str, Any]) -> str:
        """Register (or replace) ``model``; ``id`` and ``provider`` are required, ``name`` defaults to the id.

        Returns the key. Invalid input raises :class:`ConfigError` naming the field.
        """
        label = item_label("model", None, model)
        info = validate_or_raise(ModelInfo, model, label)
        key = model_key(info.provider, info.id)
        with self._lock:
            self._models[key] = info
        return key

    def get_model(self, key: str) -> ModelInfo | None:
        """A copy of the model under ``key``, or ``None``."""
        with self._lock:
            info = self._models.get(key)
        return None if info is None else info.model_copy(deep=True)

    def list_models(self) -> list[ModelInfo]:
        """Copies of every model, in registration order."""
        with self._lock:
            models = list(self._models.values())
        return [m.model_copy(deep=True) for m in models]

    def unregister_model(self, key: str) -> bool:
        """Remove ``key``; ``True`` when something was removed."""
        with self._lock:
            return self._models.pop(key, None) is not None

    def export_to_json(self) -> str:
        """A JSON list of the model definitions, camelCase, without empty (null) fields."""
        with self._lock:
            models = list(self._models.values())
        return jsonio.dumps([m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in models])

    def import_from_json(self, json_text: str) -> int:
        """Register every model of a JSON list (as :meth:`export_to_json` writes), all or nothing.

        Returns the count; bad JSON or an invalid model raises :class:`ConfigError` and changes nothing.
        """
        data = jsonio.loads(json_text, "import_from_json")
        if isinstance(data, dict) and "models" in data:
            data = data["models"]
        models = validate_models(ModelInfo, data, "import_from_json: models")
        with self._lock:
            for info in models:
                self._models[model_key(info.provider, info.id)] = info
        return len(models)
