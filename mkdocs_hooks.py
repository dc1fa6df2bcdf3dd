"""MkDocs hook: the docstrings' reStructuredText roles (``:class:`~a.b.C```, ``:meth:`f```) become cross-references.

mkdocstrings renders ``:class:`X``` as the text ``:class:`` followed by ``<code>X</code>``. This turns each into an
optional autorefs reference: a link when ``X`` is a documented object (a fully qualified name), else just the
code, without a warning. ``~`` shows the last component only, as in Sphinx.
"""

from __future__ import annotations

import html
import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|data|mod|exc|obj):<code>(~?)([^<]+)</code>")


def _reference(match: re.Match[str]) -> str:
    short, target = match.group(1), html.unescape(match.group(2)).strip()
    shown = target.rsplit(".", 1)[-1] if short else target
    if target.endswith("()"):
        target = target[:-2]
    return f'<autoref optional identifier="{html.escape(target)}"><code>{html.escape(shown)}</code></autoref>'


def on_page_content(content: str, **kwargs: Any) -> str:
    return ROLE.sub(_reference, content)
