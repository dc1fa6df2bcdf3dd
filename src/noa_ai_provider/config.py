"""Reading models-config files: a JSON list of models, or ``{"models": [...]}``.

Nothing here knows the registry: it turns a file into validated :class:`ExtendedModelInfo` objects, all or
nothing, with errors that name the file, the model's index and id, and the field path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import jsonio
from .errors import ConfigError, PersistenceError
from .schemas import ExtendedModelInfo, validate_models

__all__ = ["MAX_CONFIG_BYTES", "bundled_config_path", "parse_models_config", "read_models_config"]

MAX_CONFIG_BYTES = 32 * 1024 * 1024
"""Config files larger than this are refused (a catalogue of every model known today is ~4 MB)."""

_TOP_LEVEL = frozenset({"models", "$schema", "description"})


def parse_models_config(data: Any, source: str) -> list[ExtendedModelInfo]:
    """Validate parsed models-config JSON; raise :class:`ConfigError` naming ``source`` and the field."""
    if isinstance(data, dict):
        unknown = set(data) - _TOP_LEVEL
        if unknown:
            raise ConfigError(f"{source}: unknown top-level field(s) {sorted(unknown)}; expected 'models'")
        if "models" not in data:
            raise ConfigError(f"{source}: missing field 'models'")
        data = data["models"]
    if not isinstance(data, list):
        raise ConfigError(f'{source}: expected a list of models or {{"models": [...]}}, got {type(data).__name__}')
    return validate_models(ExtendedModelInfo, data, f"{source}: models")


def read_models_config(path: str | Path, max_bytes: int = MAX_CONFIG_BYTES) -> list[ExtendedModelInfo]:
    """Read and validate the models-config file at ``path``.

    Raises :class:`PersistenceError` when the file is missing, unreadable or larger than ``max_bytes``, and
    :class:`ConfigError` when its content is not valid JSON or a model is invalid.
    """
    path = Path(path)
    text = jsonio.read_text(path, max_bytes)
    if text is None:
        raise PersistenceError(f"{path}: models-config file not found")
    return parse_models_config(jsonio.loads(text, str(path)), str(path))


def bundled_config_path() -> Path:
    """The catalogue shipped with the package (``config/models-config.json`` in a source checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "data" / "models-config.json"
    if installed.is_file():
        return installed
    return here.parents[1] / "config" / "models-config.json"
