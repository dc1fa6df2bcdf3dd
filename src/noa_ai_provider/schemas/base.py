"""What every schema shares: the base class ``_Schema`` (camelCase aliases, unknown fields rejected, validators
built on first use under a lock), validation with readable errors, construction without validation, the money
context and the integer bound."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Context
from types import ModuleType
from typing import Any, TypeVar

# The one module of the package that imports pydantic: the other schema modules take its vocabulary from here.
from pydantic import AfterValidator as AfterValidator
from pydantic import AwareDatetime as AwareDatetime
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import BeforeValidator as BeforeValidator
from pydantic import Field as Field
from pydantic import PlainSerializer as PlainSerializer
from pydantic import PlainValidator as PlainValidator
from pydantic import Strict as Strict
from pydantic import field_validator as field_validator
from pydantic import model_validator as model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

from ..errors import ConfigError

_S = TypeVar("_S", bound=BaseModel)

__all__ = [
    "MAX_INT",
    "MONEY_CONTEXT",
    "build_trusted",
    "check_unique_keys",
    "construct_trusted",
    "field_names",
    "format_validation_error",
    "item_label",
    "merge_arguments",
    "model_key",
    "schema_shape",
    "shallow_copy",
    "short_repr",
    "utc_from_timestamp",
    "validate_models",
    "validate_or_raise",
]


MONEY_CONTEXT = Context(prec=60)
"""The decimal context of every sum and product of money: 60 significant digits, so no realistic total rounds."""

MAX_INT = 2**63 - 1
"""The largest integer accepted in a definition or a saved file (a signed 64-bit integer)."""


def construct_trusted(cls: type[_S], fields: dict[str, Any]) -> _S:
    """An instance of ``cls`` holding ``fields`` (every field, already valid) without validation.

    For snapshots of state the registry validated when it came in: several times faster than
    ``model_construct``, which re-derives defaults and the fields set. ``fields`` is owned by the result.
    """
    return build_trusted(cls, fields, set(fields))


# BaseModel's slots, set directly: an instance is built without going through pydantic's __setattr__.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def build_trusted(schema: type[_S], values: dict[str, Any], fields_set: set[str]) -> _S:
    """An instance of ``schema`` as validation would leave it: ``values`` (every field, in field order, already
    checked) as its ``__dict__``, ``fields_set`` (the fields the input gave) as its fields set; both are owned by
    the result. Like :func:`construct_trusted`, with the fields set of validation (for importers)."""
    obj = object.__new__(schema)
    _set_dict(obj, values)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def schema_shape(schema: type[BaseModel]) -> tuple[Any, ...]:
    """A fingerprint of ``schema``: each field's name, default and default factory, and its field validators;
    ``()`` when it has model validators or allows extra fields. Code that mirrors a schema's rules (an importer
    building models without validation) compares it with the shape it was written for."""
    decorators = schema.__pydantic_decorators__
    fields = tuple(
        (name, ... if info.default is PydanticUndefined else info.default, info.default_factory)
        for name, info in schema.model_fields.items()
    )
    hooks = (decorators.model_validators, decorators.validators, decorators.root_validators)
    if any(hooks) or schema.model_config.get("extra") != "forbid":
        return ()  # never what is mirrored
    return (*fields, tuple(decorators.field_validators))


def shallow_copy(model: _S) -> _S:
    """A copy of a validated model sharing its field values: independent when they are all immutable (Decimal,
    int, str, datetime, enums); containers inside are shared."""
    return construct_trusted(type(model), dict(model.__dict__))


def field_names(schema: type[BaseModel]) -> dict[str, str]:
    """Each field's snake_case name by that name and by its camelCase alias (for updates in either spelling)."""
    names: dict[str, str] = {}
    for name, info in schema.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
    return names


def merge_arguments(
    what: str, given: BaseModel | Mapping[str, Any] | None, schema: type[BaseModel], keywords: dict[str, Any]
) -> dict[str, Any]:
    """The fields a caller set: an instance of ``schema`` or a mapping (or ``None``), overridden by ``keywords``.

    Raises :class:`ConfigError` when ``given`` is neither.
    """
    data: dict[str, Any] = {}
    if isinstance(given, schema):
        data.update(given.model_dump(by_alias=False, exclude_unset=True))
    elif given is not None:
        if not isinstance(given, Mapping):
            raise ConfigError(f"{what} must be a mapping, got {type(given).__name__}")
        data.update(given)
    data.update(keywords)
    return data


def model_key(provider: str, model_id: str) -> str:
    """The registry key of a model: ``f"{provider}:{id}"``, e.g. ``"openai:gpt-4o"``."""
    return f"{provider}:{model_id}"


def utc_from_timestamp(seconds: float) -> datetime:
    """The timezone-aware UTC ``datetime`` for ``seconds`` since the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def _camel(name: str) -> str:
    # pydantic's to_camel gives "cacheWrite1HTokens" for cache_write_1h_tokens; the JSON name is cacheWrite1hTokens.
    return to_camel(name).replace("1H", "1h")


_BUILD_LOCK = threading.RLock()
"""Held while a schema's validator and serializer are built, so that concurrent first uses build each once."""


def _schemas_namespace() -> dict[str, Any]:
    """Every schema name of the package, as ``noa_ai_provider.schemas`` exports them (schemas, enums, field types
    such as ``Price``): where annotations resolve when a model is built, before its own module's globals. A model
    naming one of another module of the package (an entry's ``ModelUsageStats``) builds on its first use whichever
    module or thread uses it first; the names are the objects the modules import, so each resolves as it does at
    import."""
    package = sys.modules[__name__.rpartition(".")[0]]
    return {
        name: value
        for name, value in list(vars(package).items())
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }


class _Schema(BaseModel):
    """Common configuration: camelCase aliases, both spellings accepted, unknown fields rejected.

    Validators and serializers are built on a schema's first use, not at import (``defer_build``): building all of
    them at import cost about 10 ms, most of the package's import time beyond its dependencies'. The first
    validation, serialization, validated assignment or JSON schema of a model builds it, through
    :meth:`model_rebuild`, once and under a lock; instances made without validation (:func:`construct_trusted`,
    ``model_construct``) need no validator until then.
    """

    model_config = ConfigDict(
        alias_generator=_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        validate_assignment=True,
        use_enum_values=False,
        defer_build=True,
    )

    @classmethod
    def model_rebuild(
        cls,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Mapping[str, Any] | None = None,
    ) -> bool | None:
        """Build the schema's validator and serializer (pydantic's deferred build calls this on first use).

        Serialised by a lock: two threads using a model for the first time at once must not build it at once
        (pydantic before 2.14 is not thread-safe there). Names in annotations resolve in the schemas package
        alone (every schema name of the package, then the model's own module), as they did when every model was
        built at import, never in the namespace of the caller's frame (where a ``Version`` or a ``Price`` of its
        own would otherwise take precedence).
        """
        if cls.__pydantic_complete__ and not force:
            return None
        with _BUILD_LOCK:
            return super().model_rebuild(
                force=force,
                raise_errors=raise_errors,
                _parent_namespace_depth=0,
                _types_namespace=_schemas_namespace() if _types_namespace is None else _types_namespace,
            )


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in {"json-or-python[json=...]"}:
            continue  # pydantic's internal validator names are not part of the field path
        else:
            out += f".{part}" if out else part
    return out or "(root)"


_MAX_PART = 200  # characters of one field path or one problem in a message: a user's value may be of any length
_MAX_PROBLEMS = 20  # problems listed in one message; the rest are counted


def _cut(text: str, limit: int = _MAX_PART) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


def short_repr(value: object) -> str:
    """``repr(value)`` cut to 40 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_validation_error(exc: ValidationError, where: str = "") -> str:
    """One readable message for ``exc``: every failing field as ``path: problem``, prefixed by ``where``. Bounded
    whatever the input: a path or problem over 200 characters is cut (saying how long it was), and past 20 problems
    the rest are counted."""
    lines = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not part of the schema)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"].endswith("_type") or err["type"] in {"enum", "literal_error"}:
            msg = f"{msg} (got {type(err['input']).__name__} {short_repr(err['input'])})"
        lines.append(f"{_cut(_path(err['loc']))}: {_cut(msg)}")
    if len(lines) > _MAX_PROBLEMS:
        lines[_MAX_PROBLEMS:] = [f"and {len(lines) - _MAX_PROBLEMS} more"]
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(lines)


def validate_models(schema: type[_S], items: object, where: str = "models") -> list[_S]:
    """Validate a list of models, all or nothing; the error names ``where[index] (id ...)`` and the field.

    Raises :class:`ConfigError` when ``items`` is not a list or any item is invalid.
    """
    if isinstance(items, tuple):
        items = list(items)
    if not isinstance(items, list):
        raise ConfigError(f"{where}: expected a list of models, got {type(items).__name__}")
    models = [validate_or_raise(schema, item, item_label(where, index, item)) for index, item in enumerate(items)]
    check_unique_keys(models, where)
    return models


def check_unique_keys(models: list[Any], where: str = "models") -> None:
    """Raise :class:`ConfigError` when two of ``models`` (validated: their providers normalised) share a key,
    naming both: ``models[1] (id 'a'): duplicates models[0] (key openai:a)``. One list defining a model twice is
    a mistake (which one was meant?), never silently resolved by the last one winning."""
    first: dict[str, int] = {}
    for index, model in enumerate(models):
        provider = getattr(model, "provider", None)
        if provider is None:
            continue  # legacy models without a provider are keyed by their callers
        key = model_key(str(provider), model.id)
        seen = first.setdefault(key, index)
        if seen != index:
            listed = where.rsplit(": ", 1)[-1]  # "models", also when `where` starts with the file's name
            raise ConfigError(f"{item_label(where, index, model)}: duplicates {listed}[{seen}] (key {key})")


def item_label(where: str, index: int | None, item: object) -> str:
    """``where[index] (id 'x')``: how errors name one model of a list (``where (id 'x')`` without an index)."""
    ident = item.get("id") if isinstance(item, dict) else getattr(item, "id", None)
    place = where if index is None else f"{where}[{index}]"
    return place + (f" (id {_cut(repr(ident), 60)})" if ident is not None else "")


def validate_or_raise(schema: type[_S], data: object, where: str = "") -> _S:
    """Validate ``data`` (a mapping or an instance) as ``schema``; raise ``ConfigError`` naming each field.

    An instance of ``schema`` is re-validated from its dump, so one built with ``model_construct`` or changed
    attribute by attribute cannot slip past the rules.
    """
    if isinstance(data, BaseModel):
        data = data.model_dump(by_alias=False, include=set(schema.model_fields) & set(type(data).model_fields))
    elif not isinstance(data, dict):
        raise ConfigError(f"{where + ': ' if where else ''}expected an object, got {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None
