"""The registry's constructor settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from .base import BeforeValidator, Field, Strict, _Schema
from .fields import _real_number

__all__ = ["EnhancedModelRegistryConfig"]


class EnhancedModelRegistryConfig(_Schema):
    """Constructor settings of :class:`~noa_ai_provider.EnhancedModelRegistry` (the seed's defaults)."""

    persistence_path: Path = Path("./data/enhanced-model-registry.json")
    auto_save: Annotated[bool, Strict()] = True
    auto_save_interval: Annotated[float, BeforeValidator(_real_number), Field(gt=0)] = 60.0
    models_config_path: Path = Path("./config/models-config.json")
    auto_load_config: Annotated[bool, Strict()] = False
