"""The documentation site: ``mkdocs build --strict`` passes (no broken link, no missing reference), the API
reference covers every public name, the changelog page is CHANGELOG.md, and every Python block of the pages this
file owns runs.

How the pages are run (the convention of ``tests/docblocks.py`` and ``tests/integrations/test_integrations_docs.py``):
every fenced ``python`` block of a page runs, top to bottom, in one namespace for the page, in a temporary working
directory; an expression statement whose last line ends in ``# -> value`` is checked to equal ``value``. A block
whose fence is preceded, on the line right before it, by ``<!-- not run: reason -->`` is only compiled. A fence
whose info string looks like Python but is not exactly ``python`` fails the test, so no block escapes it. The
not-run blocks of testing.md are pytest modules: they run with pytest in a subprocess.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import noa_ai_provider

from .docblocks import Block, blocks_of, run_blocks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# The pages whose blocks this file runs; the other pages have tests of their own (test_docs_stores,
# test_pricing_rules, integrations/test_integrations_docs, test_notebook, test_cli...).
PAGES = ["index.md", "concepts.md", "rate-limits.md", "budgets.md", "testing.md", "migrating.md"]


def python_blocks(page: str) -> list[Block]:
    return [block for block in blocks_of((DOCS / page).read_text(), page) if block.info == "python"]


# The pages' blocks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page)
    for block in blocks:  # every block compiles, with the page's line numbers
        compile("\n" * (block.line - 1) + block.code, f"docs/{page}", "exec")
    monkeypatch.chdir(tmp_path)
    # A page's code is padded to its lines, so a failure points at the page's line.
    running = ["\n" * (block.line - 1) + block.code for block in blocks if block.runs]
    try:
        run_blocks(f"docs/{page}", running)
    finally:
        gc.collect()  # registries the page left open are closed by their finalisers here, inside tmp_path


def test_every_page_but_testing_runs_its_blocks() -> None:
    """A not-run block says why, and most blocks run: each page has at least one block that runs (testing.md's
    run below, with pytest)."""
    for page in PAGES:
        blocks = python_blocks(page)
        assert blocks, page
        if page != "testing.md":
            assert any(block.runs for block in blocks), page


def test_testing_page_modules_pass_under_pytest(tmp_path: Path) -> None:
    modules = [block for block in python_blocks("testing.md") if not block.runs]
    assert len(modules) == 2
    for number, block in enumerate(modules):
        assert "def test_" in block.code
        (tmp_path / f"test_page_{number}.py").write_text(block.code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout


# The site ----------------------------------------------------------------------------------------------------


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as CI builds it: ``mkdocs build --strict`` from the repository's root."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",  # not --quiet: it hides the warnings that --strict counts, and the build passes
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "reference" / "registry" / "index.html").is_file()


def reference_ids(site: Path) -> set[str]:
    parser = _Ids()
    for page in (site / "reference").rglob("index.html"):
        parser.feed(page.read_text())
    return parser.ids


# Submodules users import, and their public names (their __all__).
SUBMODULES = [
    "errors",
    "usage",
    "headers",
    "testing",
    "notebook",
    "stores",
    "stores.redis",
    "integrations.openai",
    "integrations.anthropic",
    "integrations.estimates",
    "importers",
]


def test_reference_covers_every_public_name(site: Path) -> None:
    ids = reference_ids(site)
    missing = []
    for name in noa_ai_provider.__all__:
        if name == "__version__":
            continue  # a string: described in prose on the registry page
        module = getattr(noa_ai_provider, name).__module__
        if f"noa_ai_provider.{name}" not in ids and f"{module}.{name}" not in ids:
            missing.append(f"noa_ai_provider.{name}")
    for submodule in SUBMODULES:
        module = importlib.import_module(f"noa_ai_provider.{submodule}")
        for name in module.__all__:
            value = getattr(module, name)
            candidates = {f"noa_ai_provider.{submodule}.{name}", f"noa_ai_provider.{name}"}
            home = getattr(value, "__module__", None)
            if isinstance(home, str):
                candidates.add(f"{home}.{name}")
            if not candidates & ids:
                missing.append(f"noa_ai_provider.{submodule}.{name}")
    assert missing == []


def test_changelog_page_is_the_changelog(site: Path) -> None:
    assert (DOCS / "changelog.md").read_text() == '--8<-- "CHANGELOG.md"\n'
    html = (site / "changelog" / "index.html").read_text()
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert versions[:2] == ["0.2.0", "0.1.0"]
    for version in versions:
        assert f"[{version}]" in html


def test_changelog_sections_follow_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    allowed = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert set(re.findall(r"^### (.+)$", text, flags=re.MULTILINE)) <= allowed
    assert "## [Unreleased]" in text


# Every code block of the site ---------------------------------------------------------------------------------

# The tests that run each page's python blocks (those not marked ``<!-- not run: reason -->``).
PYTHON_RUN_BY = {
    **dict.fromkeys(PAGES, "tests/test_docs_site.py"),
    "getting-started.md": "tests/integration/test_docs_getting_started.py",
    "guide.md": "tests/test_docs_guide.py",
    "pricing.md": "tests/test_pricing.py",
    "stores.md": "tests/test_docs_stores.py",
    "redis.md": "tests/integration/test_docs_redis.py",
    "integrations.md": "tests/integrations/test_integrations_docs.py",
    "notebooks.md": "tests/test_example_notebook.py",
}
# The tests that run a page's shell blocks (cli.md's commands run against the installed script).
SHELL_RUN_BY = {"cli.md": "tests/test_cli_docs.py"}
SHELL = {"bash", "sh", "shell", "console"}


def site_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "reference" not in p.relative_to(DOCS).parts)


@pytest.mark.parametrize("path", site_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_code_block_runs_in_a_test_or_says_why_not(path: Path) -> None:
    """The site's rule: a block of code (python, shell) runs in a test or is marked ``<!-- not run: reason -->``;
    every fence names its language; JSON blocks parse. ``text`` blocks are output, checked where their page's test
    compares them."""
    page = str(path.relative_to(DOCS))
    for block in blocks_of(path.read_text(), page):
        where = f"docs/{page}:{block.line - 1}"
        assert block.info, f"{where}: a fence without a language (python, bash, json, text ...)"
        language = block.info.split()[0]
        if language == "python":  # run or not, it is Python
            compile(block.code, where, "exec")
        if language == "python" and block.runs:
            runner = PYTHON_RUN_BY.get(page)
            assert runner is not None, f"{where}: a python block no test runs: run it, or mark it not run"
            assert page in (ROOT / runner).read_text(), f"{runner} does not name {page}"
        elif language in SHELL and block.runs:
            runner = SHELL_RUN_BY.get(page)
            assert runner is not None, f"{where}: a shell block no test runs: run it, or mark it not run"
            assert page in (ROOT / runner).read_text(), f"{runner} does not name {page}"
        elif language == "json" and block.runs:
            json.loads(block.code)


def test_version_directives_render_as_notes(site: Path) -> None:
    """``.. versionadded::`` / ``.. versionchanged::`` in docstrings show as "New in" / "Changed in" notes, never
    as the raw directive; the names new in 0.2.0 carry one."""
    reference = "".join(p.read_text() for p in (site / "reference").rglob("index.html"))
    assert ".. version" not in reference
    assert reference.count("New in 0.2.0") >= 30
    assert "Changed in 0.2.0</p><p>Survives pickling with its attributes.</p>" in reference
