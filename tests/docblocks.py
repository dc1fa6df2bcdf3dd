"""Runs the Python blocks of a docs page as a test: every expression statement whose last line ends in
``# -> value`` becomes ``assert (expr) == (value)``, and the blocks share one namespace, top to bottom."""

from __future__ import annotations

import ast
import re
from typing import Any

CHECK = re.compile(r"#\s*->\s*(.+)$")


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
