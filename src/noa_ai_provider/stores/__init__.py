"""Where a registry keeps its live state, chosen by URL: ``EnhancedModelRegistry(backend="memory://")``.

:data:`SCHEMES` is the explicit table of URL schemes and the store each makes; :func:`store_from_url` is the one
function that reads it (as ``limits.storage.storage_from_string`` does). A store's module, and the optional
package it needs, are imported only when its scheme is used, so ``import noa_ai_provider`` never imports one.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import importlib
from typing import NamedTuple
from urllib.parse import urlsplit

from ..errors import ConfigError
from .base import Live, Recorded, RequestUsage, Store

__all__ = ["SCHEMES", "Live", "Recorded", "RequestUsage", "Scheme", "Store", "store_from_url"]


class Scheme(NamedTuple):
    """How to make the store of one URL scheme: ``module:attribute`` of a factory taking the URL, and the
    optional packages it needs with the extra that installs them.

    .. versionadded:: 0.2.0
    """

    factory: str
    requires: tuple[str, ...] = ()
    extra: str | None = None


SCHEMES: dict[str, Scheme] = {
    "memory": Scheme("noa_ai_provider.stores.memory:MemoryStore.from_url"),
    "redis": Scheme("noa_ai_provider.stores.redis:RedisStore.from_url", ("redis",), "redis"),
    "rediss": Scheme("noa_ai_provider.stores.redis:RedisStore.from_url", ("redis",), "redis"),
    "redis+sentinel": Scheme("noa_ai_provider.stores.redis:RedisStore.from_url", ("redis",), "redis"),
    "redis+cluster": Scheme("noa_ai_provider.stores.redis:RedisStore.from_url", ("redis",), "redis"),
}
"""URL scheme -> :class:`Scheme`. ``memory://`` (the default) keeps the state in this process; ``redis://``,
``rediss://`` (TLS), ``redis+sentinel://`` and ``redis+cluster://`` in Redis or Valkey, shared by every registry
pointing at the same namespace (:mod:`noa_ai_provider.stores.redis`).

.. versionadded:: 0.2.0
"""


def store_from_url(url: str) -> Store:
    """The store ``url`` names (``memory://``). Raises :class:`ConfigError` for a URL that is not a string, an
    unknown scheme (naming the known ones), or a store whose optional package is missing (naming the
    ``pip install`` that adds it).

    .. versionadded:: 0.2.0
    """
    if not isinstance(url, str):
        raise ConfigError(f"backend must be a store URL such as 'memory://' or a Store, got {type(url).__name__}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower() if "://" in url else ""
    entry = SCHEMES.get(scheme)
    if entry is None:
        known = ", ".join(f"'{name}://'" for name in sorted(SCHEMES))
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if scheme else url  # no password
        raise ConfigError(f"backend {shown!r}: unknown store scheme {scheme or '(none)'!r}; known: {known}")
    for package in entry.requires:
        try:
            importlib.import_module(package)
        except ImportError as exc:
            extra = entry.extra or package
            raise ConfigError(
                f"backend {url!r} needs the {package!r} package: pip install 'noa-ai-provider[{extra}]'"
            ) from exc
    module_name, _, attribute = entry.factory.partition(":")
    target: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    store = target(url)  # type: ignore[operator]
    if not isinstance(store, Store):
        raise ConfigError(f"backend {url!r}: {entry.factory} made {type(store).__name__}, not a Store")
    return store
