"""MkDocs hook: the docstrings' reStructuredText roles (``:class:`~a.b.C```, ``:meth:`f```) become cross-references,
and their ``.. versionadded::`` / ``.. versionchanged::`` directives become notes ("New in 0.2.0", "Changed in
0.2.0: ...") as Sphinx shows them.

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


# mkdocstrings (sphinx style) leaves a directive as a paragraph of its own: "<p>.. versionchanged:: 0.2.0\n   why</p>".
DIRECTIVE = re.compile(r"<p>\.\. version(added|changed):: ([^\s<]+)\s*(.*?)</p>", re.DOTALL)


def _note(match: re.Match[str]) -> str:
    kind, version, text = match.group(1), match.group(2), " ".join(match.group(3).split())
    title = f"New in {version}" if kind == "added" else f"Changed in {version}"
    body = f"<p>{text}</p>" if text else ""
    return (
        f'<div class="admonition {"info" if kind == "added" else "note"} version{kind}">'
        f'<p class="admonition-title">{title}</p>{body}</div>'
    )


def on_page_content(content: str, **kwargs: Any) -> str:
    return DIRECTIVE.sub(_note, ROLE.sub(_reference, content))
