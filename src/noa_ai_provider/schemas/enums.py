"""The enumerations of the schemas: providers, capabilities, statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ModelCapability", "ModelStatus", "ProviderType"]


class ProviderType(StrEnum):
    """Known providers. A model's ``provider`` may also be any other non-empty string without ``:``."""

    OPENAI = "openai"
    CLAUDE = "claude"
    LLAMA_CPP = "llama.cpp"
    CUSTOM = "custom"


class ModelCapability(StrEnum):
    """What a model can do. An unknown capability in input is an error listing these values."""

    CHAT_COMPLETION = "chat_completion"
    TEXT_GENERATION = "text_generation"
    FUNCTION_CALLING = "function_calling"
    JSON_MODE = "json_mode"
    VISION = "vision"
    EMBEDDINGS = "embeddings"
    STREAMING = "streaming"


class ModelStatus(StrEnum):
    """Availability of a model."""

    AVAILABLE = "available"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"
    UNLOADED = "unloaded"
    DEPRECATED = "deprecated"
