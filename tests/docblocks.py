"""Runs the Python blocks of a docs page as a test: every expression statement whose last line ends in
``# -> value`` becomes ``assert (expr) == (value)``, and the blocks share one namespace, top to bottom."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

CHECK = re.compile(r"#\s*->\s*(.+)$")
FENCE = re.compile(r"^(\s*)```(.*)$")
NOT_RUN = re.compile(r"^<!-- not run: \S.* -->$")


@dataclass
class Block:
    """A fenced block of a page: its info string, first line of code (1-based), code, and, for a ``python``
    block, whether it runs (it does unless the line before it is ``<!-- not run: reason -->``)."""

    info: str
    line: int
    code: str
    runs: bool = True


def blocks_of(text: str, name: str) -> list[Block]:
    """Every fenced block of ``text`` (the page ``name``), in order. Fails on a Python-looking fence that is not
    exactly ``python``, an indented python block, or an unclosed fence."""
    lines = text.splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        indent, info = match.group(1), match.group(2).strip()
        if info.lower().startswith("py"):
            assert info == "python", f"{name}:{index + 1}: write python blocks as ```python"
            assert not indent, f"{name}:{index + 1}: a python block must not be indented"
        end = next((n for n in range(index + 1, len(lines)) if lines[n].strip() == "```"), None)
        assert end is not None, f"{name}:{index + 1}: unclosed fence"
        runs = not (index > 0 and NOT_RUN.match(lines[index - 1]))
        found.append(Block(info, index + 2, "\n".join(lines[index + 1 : end]) + "\n", runs))
        index = end + 1
    return found


class _Checks(ast.NodeTransformer):
    """Turns every expression statement whose last line ends in ``# -> value`` into ``assert (expr) == (value)``."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.count = 0

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        match = CHECK.search(self.lines[(node.end_lineno or node.lineno) - 1])
        if match is None:
            return node
        self.count += 1
        expected = ast.parse(match.group(1), mode="eval").body
        check = ast.Assert(
            test=ast.Compare(left=node.value, ops=[ast.Eq()], comparators=[expected]),
            msg=ast.Constant(f"line {node.lineno}: expected {match.group(1)}"),
        )
        return ast.copy_location(check, node)


def run_blocks(name: str, blocks: list[str]) -> int:
    """Run ``blocks`` (the page ``name``'s Python blocks) in one namespace; return how many ``# ->`` checks held
    (each one closed an expression statement)."""
    namespace: dict[str, Any] = {}
    checked = 0
    for index, block in enumerate(blocks):
        tree = ast.parse(block)
        checks = _Checks(block.splitlines())
        tree = ast.fix_missing_locations(checks.visit(tree))
        exec(compile(tree, f"{name}, python block {index + 1}", "exec"), namespace)
        checked += checks.count
    marked = sum(1 for block in blocks for line in block.splitlines() if CHECK.search(line))
    assert checked == marked  # every "# ->" closed an expression statement
    return checked
