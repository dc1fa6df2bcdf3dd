"""Version parsing and comparison: the only module that imports ``packaging``.

Versions are compared with :class:`packaging.version.Version`, which accepts the usual semantic versions
(``1.2.3``, ``1.0.0-rc.1``, ``2.0.0+build.5``) and every PEP 440 version. A leading ``v`` is allowed.
"""

from __future__ import annotations

from functools import lru_cache

from packaging.version import InvalidVersion, Version

from .errors import InvalidVersionError

__all__ = ["compare_versions", "parse_version", "validate_version"]


def parse_version(version: str) -> Version:
    """Parse ``version``; raise :class:`InvalidVersionError` naming it when it is not a valid version.

    >>> parse_version("1.10.0") > parse_version("1.9.0")
    True
    """
    if not isinstance(version, str):
        raise InvalidVersionError(f"version must be a string, got {type(version).__name__}")
    return _parse(version)


@lru_cache(maxsize=4096)  # versions repeat across models and searches; parsing dominates comparisons
def _parse(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        raise InvalidVersionError(f"invalid version {version!r}: expected a semantic version such as '1.2.3'") from None


def validate_version(version: str) -> str:
    """Return ``version`` unchanged when it parses, else raise :class:`InvalidVersionError`."""
    parse_version(version)
    return version


def compare_versions(v1: str, v2: str) -> int:
    """Compare two versions: 1 when ``v1 > v2``, 0 when equal, -1 when ``v1 < v2``.

    >>> compare_versions("2.0.0", "1.5.0")
    1
    >>> compare_versions("1.0", "1.0.0")
    0

    Raises :class:`InvalidVersionError` when either is not a valid version.
    """
    a, b = parse_version(v1), parse_version(v2)
    return (a > b) - (a < b)
