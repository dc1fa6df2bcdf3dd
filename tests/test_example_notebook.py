"""examples/cost-inspection.ipynb runs from a clean kernel, examples/make_sample_registry.py still writes the file
it reads, and the Python blocks of docs/notebooks.md run and print what the page shows.

The notebook runs in a copy of examples/ (nothing is written into the repository) on a kernel that is this
interpreter: a kernelspec made here from ipykernel's, so a ``python3`` kernel installed elsewhere on the machine
(``~/.local/share/jupyter/kernels``) cannot be picked instead.

``python -m tests.test_example_notebook`` regenerates docs/images/ from the page's own plotting block.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import runpy
import shutil
import struct
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipykernel.kernelspec import get_kernel_dict
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.notebook import MODEL_COLUMNS, USAGE_COLUMNS

from .docblocks import _Checks

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOK = EXAMPLES / "cost-inspection.ipynb"
SAMPLE = EXAMPLES / "data" / "model-registry.json"
DOC = ROOT / "docs" / "notebooks.md"
IMAGES = ROOT / "docs" / "images"

# ------------------------------------------------------------------ the notebook


def _kernel_manager(folder: Path) -> AsyncKernelManager:
    """A kernel manager whose only kernel, ``python3``, is ipykernel on this interpreter (sys.executable), with
    matplotlib's inline backend (non-interactive: figures come back as image/png outputs) whatever MPLBACKEND the
    environment sets."""
    spec = get_kernel_dict()  # argv: [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec["env"] = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    kernel_dir = folder / "python3"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(folder)], ensure_native_kernel=False)
    assert specs.get_kernel_spec("python3").argv[0] == sys.executable
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _tagged(nb: Any, tag: str) -> Any:
    (cell,) = [cell for cell in nb.cells if tag in cell.metadata.get("tags", [])]
    return cell


def _text(cell: Any) -> str:
    # What a cell printed and the plain-text form of what it displayed.
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def _data(cell: Any, mime: str) -> list[Any]:
    return [output.data[mime] for output in cell.outputs if mime in output.get("data", {})]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook executed in a copy of examples/, with one cell appended that prints the kernel's
    interpreter."""
    folder = tmp_path_factory.mktemp("notebook")
    examples = folder / "examples"
    shutil.copytree(EXAMPLES, examples, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    nb = nbformat.read(examples / NOTEBOOK.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)", metadata={"tags": ["kernel"]}))
    client = NotebookClient(
        nb,
        km=_kernel_manager(folder / "kernels"),
        timeout=120,  # seconds per cell
        startup_timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(examples)}},  # the kernel's working directory
    )
    # Raises CellExecutionError (naming the cell, with its traceback) when a cell fails. cleanup_kc: shut the kernel
    # down and close its sockets, which nbclient leaves open by default for a kernel manager it was given.
    client.execute(cleanup_kc=True)
    return nb


def test_the_committed_notebook_is_clean() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {cell.id}: outputs are committed cleared"
            assert cell.execution_count is None, f"cell {cell.id}: outputs are committed cleared"


@pytest.mark.slow
def test_the_notebook_runs_on_this_interpreter(executed: Any) -> None:
    assert _text(_tagged(executed, "kernel")).strip() == sys.executable
    errors = [output for cell in executed.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert errors == []
    assert _text(_tagged(executed, "load")).strip() == "4"


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["plot-by-day", "plot-by-model"])
def test_the_plot_cells_show_one_image(executed: Any, tag: str) -> None:
    assert len(_data(_tagged(executed, tag), "image/png")) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "tag",
    [
        "registry-html",
        "statistics",
        "entry-html",
        "history-html",
        "budget-html",
        "to-dataframe",
        "top-models",
        "usage-dataframe",
        "cost-per-day",
        "cached-share",
        "second-week",
    ],
)
def test_the_tables_show_as_html(executed: Any, tag: str) -> None:
    (html,) = _data(_tagged(executed, tag), "text/html")
    assert "<table" in html


@pytest.mark.slow
def test_the_history_and_budget_views_show_the_files_figures(executed: Any) -> None:
    (history,) = _data(_tagged(executed, "history-html"), "text/html")
    assert "<caption>Usage history (8 rows)</caption>" in history  # 4 models, 14 and 15 June
    assert "claude:claude-sonnet-4-5" in history
    (budget,) = _data(_tagged(executed, "budget-html"), "text/html")
    # the whole history's spend, exact, and what remains of 25
    assert '<td style="text-align:right">10.51905695</td>' in budget
    assert '<td style="text-align:right">14.48094305</td>' in budget


@pytest.mark.slow
def test_the_exact_total_is_the_files(executed: Any) -> None:
    saved = json.loads(SAMPLE.read_text())
    from_file = sum(Decimal(model["usageStats"]["totalCost"]) for model in saved["models"])
    with EnhancedModelRegistry(persistence_path=SAMPLE, auto_save=False) as registry:
        registry.load()
        assert registry.get_statistics().total_cost == from_file
    printed = _text(_tagged(executed, "exact-total"))
    assert f"exact total: ${from_file}\n" in printed


# ------------------------------------------------------------------ the sample file


def _content(path: Path) -> Any:
    # The saved registry without what differs between two runs of the script (the writer's id, made per process).
    saved = json.loads(path.read_text())
    del saved["saveId"], saved["writers"]
    return saved


def test_the_sample_script_writes_the_committed_file(tmp_path: Path) -> None:
    script = runpy.run_path(str(EXAMPLES / "make_sample_registry.py"))  # its globals; main() does not run
    out = tmp_path / "model-registry.json"
    total = script["build"](out)
    assert _content(out) == _content(SAMPLE), "run: python examples/make_sample_registry.py"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-registry.json"]  # no lock file left beside it
    saved = json.loads(out.read_text())
    assert total == sum(Decimal(m["usageStats"]["totalCost"]) for m in saved["models"])
    assert {m["provider"] for m in saved["models"]} == {"openai", "claude", "llama.cpp"}
    assert len({entry["date"] for entry in saved["usageHistory"]}) == script["DAYS"]
    assert all(m["usageStats"]["failedRequests"] > 0 for m in saved["models"])
    assert sum(m["usageStats"]["totalCachedInputTokens"] for m in saved["models"]) > 0
    assert sum(m["usageStats"]["totalCacheWriteTokens"] for m in saved["models"]) > 0


# ------------------------------------------------------------------ docs/notebooks.md

NOT_RUN = re.compile(r"<!-- not run: [^>]+-->\s*$")
FENCE = re.compile(r"```(\w*)\n(.*?)```", flags=re.DOTALL)


def _doc_blocks(text: str) -> list[tuple[str, str | None]]:
    """The page's Python blocks that run, each with the ```text block right after it (what it prints), if any.
    A Python block preceded by ``<!-- not run: reason -->`` is left out."""
    fences = list(FENCE.finditer(text))
    blocks = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "python" or NOT_RUN.search(text[: fence.start()]):
            continue
        after = fences[index + 1] if index + 1 < len(fences) else None
        shown = None
        if after is not None and after.group(1) == "text" and not text[fence.end() : after.start()].strip():
            shown = after.group(2)
        blocks.append((fence.group(2), shown))
    return blocks


def run_doc(folder: Path) -> list[tuple[str, str | None, str]]:
    """Run the page's Python blocks in ``folder`` (with examples/data copied into it), one namespace top to bottom;
    ``# -> value`` lines are checked. Returns each block, what the page shows it printing, and what it printed."""
    shutil.copytree(EXAMPLES / "data", folder / "examples" / "data")
    namespace: dict[str, Any] = {}
    results = []
    with contextlib.chdir(folder):
        for number, (block, shown) in enumerate(_doc_blocks(DOC.read_text()), 1):
            checks = _Checks(block.splitlines())
            tree = ast.fix_missing_locations(checks.visit(ast.parse(block)))
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(tree, f"{DOC.name}, python block {number}", "exec"), namespace)
            results.append((block, shown, printed.getvalue()))
        namespace["registry"].close()
    return results


def test_the_blocks_of_docs_notebooks_md_run_and_print_what_the_page_shows(tmp_path: Path) -> None:
    results = run_doc(tmp_path)
    assert len(results) >= 5
    for block, shown, printed in results:
        if shown is not None:
            assert printed == shown, f"the page shows another output for:\n{block}"
    assert _png_size(tmp_path / "costs-by-day.png") == (800, 450)


def test_every_python_block_of_docs_notebooks_md_runs_or_says_why_not() -> None:
    text = DOC.read_text()
    python = [fence for fence in FENCE.finditer(text) if fence.group(1) == "python"]
    assert len(_doc_blocks(text)) + len(re.findall(r"<!-- not run: [^>]+-->\s*```python", text)) == len(python)


def _column_table(text: str, heading: str) -> list[str]:
    # The first column's names (in backticks) of the first table after ``heading``, in order.
    section = text[text.index(heading) :]
    table = re.search(r"^\|.*?(?=^[^|])", section, flags=re.MULTILINE | re.DOTALL)
    assert table is not None, f"no table after {heading!r}"
    rows = table.group(0).splitlines()[2:]  # after the header and the |---| line
    return [name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])]


def test_the_column_tables_of_docs_notebooks_md_are_the_helpers_columns() -> None:
    text = DOC.read_text()
    assert _column_table(text, "## One row per model") == ["key", *MODEL_COLUMNS]
    assert _column_table(text, "## One row per model and day") == list(USAGE_COLUMNS)


def test_the_page_shows_the_committed_images() -> None:
    shown = re.findall(r"!\[[^\]]*\]\((images/[^)]+)\)", DOC.read_text())
    assert "images/costs-by-day.png" in shown
    for name in shown:
        assert _png_size(DOC.parent / name) == (800, 450)
        assert (DOC.parent / name).stat().st_size < 100_000


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def write_doc_images() -> None:
    """Regenerate docs/images/ by running docs/notebooks.md's blocks on the sample file."""
    with tempfile.TemporaryDirectory() as folder:
        run_doc(Path(folder))
        for image in Path(folder).glob("*.png"):
            shutil.copyfile(image, IMAGES / image.name)
            print(f"wrote {IMAGES / image.name}")


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    write_doc_images()
