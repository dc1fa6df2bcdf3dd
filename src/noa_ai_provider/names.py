"""How the names users write resolve to registry keys: aliases, dated snapshots, LiteLLM strings, synonyms.

A registry key is ``f"{provider}:{id}"``. Users, SDK responses and other libraries name models otherwise:

- an alias of the model (``aliases`` in its definition), alone or after its provider (``openai:gpt-4o-2024-08-06``);
- the model's id alone (``gpt-4o``), or the id of a catalogue entry (``gemini/gemini-2.5-pro``);
- a dated snapshot name a provider returns in ``response.model`` (``gpt-4o-2024-08-06``,
  ``claude-sonnet-4-5-20250929``): the undated name is tried when the dated one is not known itself;
- another spelling of a built-in provider (``anthropic:claude-sonnet-4-5``, ``OpenAI:gpt-4o``);
- LiteLLM's ``provider/model`` strings (``azure/gpt-4o``): the model under that provider.

:class:`NameIndex` holds the names of a set of models and answers :meth:`NameIndex.resolve`. It is pure data; the
registry rebuilds it when its models change. A name that fits several models is ambiguous and never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from .schemas import ExtendedModelInfo, normalize_provider

__all__ = ["NameIndex", "Resolution", "undated"]

_DATED: Final = re.compile(r"^(?P<base>.+?)(?:-|@)(?:\d{4}-\d{2}-\d{2}|\d{8})$")


def undated(name: str) -> str | None:
    """``name`` without a trailing snapshot date (``-2024-08-06``, ``-20250929`` or ``@20250929``), or ``None``
    when it has none.

    >>> undated("gpt-4o-2024-08-06"), undated("claude-sonnet-4-5-20250929"), undated("gpt-4o")
    ('gpt-4o', 'claude-sonnet-4-5', None)
    """
    match = _DATED.match(name)
    return None if match is None else match.group("base")


Resolution = tuple[str, ...]
"""The keys a name stands for: one key, several (ambiguous), or none."""


class NameIndex:
    """Every name of a set of models, each mapped to the keys it names."""

    __slots__ = ("_keys", "_names", "_providers")

    def __init__(self, models: Iterable[tuple[str, ExtendedModelInfo]]) -> None:
        self._keys: set[str] = set()
        self._names: dict[str, list[str]] = {}  # an id or alias, bare or after its provider -> keys
        self._providers: set[str] = set()
        for key, model in models:
            self._keys.add(key)
            provider = str(model.provider)
            self._providers.add(provider)
            for name in (model.id, *model.aliases):
                self._add(name, key)
                self._add(f"{provider}:{name}", key)

    def _add(self, name: str, key: str) -> None:
        keys = self._names.setdefault(name, [])
        if key not in keys:
            keys.append(key)

    def resolve(self, name: str) -> Resolution:
        """The keys ``name`` stands for, trying in turn: the key itself; an id or alias (bare or after its
        provider); the provider spelled otherwise; a LiteLLM ``provider/model`` string; and each of these again
        without a trailing snapshot date. The first step that finds anything decides (so an exact alias wins over
        an undated guess); ``()`` when nothing fits."""
        found = self._exact(name)
        if found:
            return found
        base = undated(name.rsplit(":", 1)[-1])
        if base is not None:
            prefix = name[: len(name) - len(name.rsplit(":", 1)[-1])]
            return self._exact(prefix + base)
        return ()

    def _exact(self, name: str) -> Resolution:
        if name in self._keys:
            return (name,)
        keys = self._names.get(name)
        if keys:
            return tuple(keys)
        provider, colon, rest = name.partition(":")
        if colon and rest:
            normal = normalize_provider(provider)
            if normal != provider:
                return self._exact(f"{normal}:{rest}")
            return ()
        provider, slash, rest = name.partition("/")
        if slash and rest:
            normal = normalize_provider(provider)
            if normal in self._providers:
                return tuple(self._names.get(f"{normal}:{rest}", ()))
        return ()

    def suggestions(self, name: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` keys whose key, id or alias is closest to ``name`` (for "did you mean ...?")."""
        import difflib  # only on the error path: not worth its import at start-up

        matches = difflib.get_close_matches(name, [*self._keys, *self._names], n=limit * 2, cutoff=0.6)
        out: list[str] = []
        for match in matches:
            for key in (match,) if match in self._keys else tuple(self._names[match]):
                if key not in out:
                    out.append(key)
        return out[:limit]
