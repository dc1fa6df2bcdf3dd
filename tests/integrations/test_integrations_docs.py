"""docs/integrations.md: its Python blocks run as written, against a local server that answers like the OpenAI and
Anthropic APIs, and what they state holds.

How the page is run:

- Every fenced ``python`` block runs, top to bottom, in **one namespace for the whole page** (the page is one
  walk-through: later blocks use the registry, clients and ``messages`` of earlier ones), with its line numbers
  those of the page, so a failure points at the page's line. A block whose fence is preceded, on the line right
  before it, by ``<!-- not run: reason -->`` is only compiled; any other ``python`` block runs. A fence whose info
  string looks like Python but is not exactly ``python`` (``py``, ``Python``, indented) fails the test, so no
  block escapes it.
- An expression statement whose last line ends in ``# -> value`` is checked to equal ``value`` (the convention
  of ``tests/docblocks.py``), and every such check must have been executed at least once (a check inside an
  ``except`` that never ran would otherwise pass silently).
- The SDKs are the real ones, made as a user makes them (``openai.OpenAI()``, ``anthropic.Anthropic()``): the
  environment variables they read (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``ANTHROPIC_BASE_URL``,
  ``ANTHROPIC_API_KEY``) point them at a ``ThreadingHTTPServer`` on 127.0.0.1 that answers with the recorded
  shapes of ``test_openai_meter`` / ``test_anthropic_meter`` (JSON, rate-limit headers, SSE streams). A request
  asking for a ``service_tier`` other than ``auto`` is answered with that tier, as the API reports the tier used.
- :data:`SCENARIOS`: the server answers the first requests of a few blocks (found by a string only they contain)
  with scripted errors (a 429 with ``retry-after-ms`` / ``retry-after``), and the test checks how many requests
  such a block sent (``nothing is sent`` is a claim of the page).
- Logs: a block followed (as the next fenced block) by a ``text`` block starting with ``ERROR`` must log exactly
  that on ``noa_ai_provider`` (first line and last line of the traceback); any other block must log nothing at
  WARNING or above.
- ``tiktoken.encoding_for_model`` is replaced by a small tiktoken ``Encoding`` built here (the published
  vocabularies are downloaded on first use, and the test has no network); the page's tiktoken block checks nothing
  that depends on the vocabulary.

Waits are real (the registry runs on the real clock): a 0.3 s retry and a 2 s cooldown; the whole page runs in
about 3 s.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
import tiktoken

from ..docblocks import CHECK, Block, blocks_of
from . import test_anthropic_meter as claude
from . import test_openai_meter as gpt
from .test_meter_retries import byte_level

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


# The local provider --------------------------------------------------------------------------------------------


def rate_limited(headers: dict[str, str]) -> httpx2.Response:
    """A 429 as both APIs send it (OpenAI's body; the SDKs only read the status and headers)."""
    body = {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}
    return httpx2.Response(429, headers={"x-request-id": "req_429", **headers}, json=body)


def answer(request: httpx2.Request) -> httpx2.Response:
    """What the APIs answer: a message (or its stream) on /v1/messages, else OpenAI's completion, response,
    embeddings or their streams; a requested service tier is reported back as the tier used."""
    if request.url.path == "/v1/messages":
        return claude.answer(request)
    body = json.loads(request.content)
    tier = body.get("service_tier")
    if request.url.path == "/v1/chat/completions" and tier not in (None, "auto") and not body.get("stream"):
        return httpx2.Response(200, headers=gpt.HEADERS, json={**gpt.COMPLETION, "service_tier": tier})
    return gpt.answer(request)


class Provider(ThreadingHTTPServer):
    """The local server: answers each request with the next scripted response, else with :func:`answer`; counts the
    requests it receives."""

    daemon_threads = True
    request_queue_size = 64  # the page's thread pool connects 8 at a time: a full backlog costs a 1 s SYN retry

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: deque[httpx2.Response] = deque()
        self.received = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def respond(self, request: httpx2.Request) -> httpx2.Response:
        with self.lock:
            self.received += 1
            scripted = self.script.popleft() if self.script else None
        return scripted if scripted is not None else answer(request)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no connection outlives the test.
    server: Provider

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        content = self.rfile.read(int(self.headers.get("content-length") or 0))
        request = httpx2.Request("POST", self.server.url + self.path, headers=dict(self.headers), content=content)
        response = self.server.respond(request)
        body = response.content
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Scenario:
    """What the server answers first for the one block containing a string, and how many requests the block sends."""

    script: list[httpx2.Response] = field(default_factory=list)
    sent: int = 0


SCENARIOS: dict[str, Scenario] = {
    # Retries: one 429 with a short retry-after-ms, then the answer: two requests.
    '[usage["cost"] for usage in recorded[-2:]]': Scenario([rate_limited({"retry-after-ms": "300"})], sent=2),
    # The cooldown: a 429 with retry-after: 2 and no retry; the second call is refused without being sent.
    "except openai.RateLimitError as exc:": Scenario([rate_limited({"retry-after": "2"})], sent=1),
    # Waiting: the impatient call sends nothing, the patient one waits out the cooldown and sends one request.
    "impatient = meter(": Scenario(sent=1),
    # Never admitted, and over budget: nothing is sent (the budget example's second call sends one).
    "max_tokens=16000": Scenario(sent=0),
    "registry.set_budget(": Scenario(sent=1),
}


# Running the page ----------------------------------------------------------------------------------------------


class Checks(ast.NodeTransformer):
    """Turns each expression statement whose last line ends in ``# -> value`` into ``__check__(line, expr,
    value)``; ``lines`` are the page's lines."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.found: list[int] = []

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        last = node.end_lineno or node.lineno
        match = CHECK.search(self.lines[last - 1])
        if match is None:
            return node
        self.found.append(last)
        expected = ast.parse(match.group(1).strip(), mode="eval").body
        call = ast.Call(ast.Name("__check__", ast.Load()), [ast.Constant(last), node.value, expected], [])
        return ast.copy_location(ast.Expr(call), node)


def compiled(block: Block, lines: list[str]) -> tuple[Any, list[int]]:
    """``block`` compiled with the page's line numbers and its checks; the lines of those checks."""
    tree = ast.parse(block.code, str(DOC))
    ast.increment_lineno(tree, block.line - 1)
    checks = Checks(lines)
    tree = ast.fix_missing_locations(checks.visit(tree))
    marked = [n for n in range(block.line, block.line + block.code.count("\n")) if CHECK.search(lines[n - 1])]
    assert checks.found == marked, f"{DOC.name}: a '# ->' at lines {marked} is not at the end of an expression"
    return compile(tree, str(DOC), "exec"), checks.found


def expected_log(blocks: list[Block], index: int) -> list[str] | None:
    """The log a ``text`` block right after ``blocks[index]`` shows, if it shows one."""
    following = blocks[index + 1] if index + 1 < len(blocks) else None
    if following is None or following.info != "text" or not following.code.startswith(("ERROR ", "WARNING ")):
        return None
    return following.code.splitlines()


def logged(record: logging.LogRecord) -> list[str]:
    lines = [f"{record.levelname} {record.name}: {record.getMessage()}"]
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        lines.append(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
    return lines


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Provider]:
    server = Provider()
    thread = threading.Thread(target=server.serve_forever, name="docs-provider", daemon=True)
    thread.start()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_CUSTOM_HEADERS", "ANTHROPIC_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-docs-test")
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda model_name: byte_level())
    monkeypatch.chdir(tmp_path)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_examples_of_docs_integrations_md_hold(provider: Provider, caplog: pytest.LogCaptureFixture) -> None:
    text = DOC.read_text()
    lines = text.splitlines()
    blocks = blocks_of(text, DOC.name)
    python = [block for block in blocks if block.info == "python"]
    assert len([block for block in python if block.runs]) >= 15
    for block in python:
        if not block.runs:
            compile(block.code, f"{DOC}:{block.line}", "exec")  # not run, but still Python

    for needle in SCENARIOS:
        assert sum(needle in block.code for block in python if block.runs) == 1, f"{needle!r}: not in exactly one block"

    executed: set[int] = set()

    def check(line: int, actual: Any, expected: Any) -> None:
        assert actual == expected, f"{DOC.name}:{line}: expected {expected!r}, got {actual!r}"
        executed.add(line)

    namespace: dict[str, Any] = {"__name__": "integrations_md", "__check__": check}
    every_check: list[int] = []
    caplog.set_level(logging.WARNING, logger="noa_ai_provider")
    started = time.monotonic()
    for index, block in enumerate(blocks):
        if block.info != "python" or not block.runs:
            continue
        code, checks = compiled(block, lines)
        every_check += checks
        scenario = next((s for needle, s in SCENARIOS.items() if needle in block.code), None)
        provider.script.extend(scenario.script if scenario else [])
        received = provider.received
        caplog.clear()
        exec(code, namespace)
        assert not provider.script, f"{DOC.name}:{block.line}: the scripted answers were not all used"
        if scenario is not None:
            assert provider.received - received == scenario.sent, f"{DOC.name}:{block.line}: requests sent"
        shown = expected_log(blocks, index)
        records = [record for record in caplog.records if record.levelno >= logging.WARNING]
        if shown is None:
            assert records == [], f"{DOC.name}:{block.line}: logged {[r.getMessage() for r in records]}"
        else:
            assert len(records) == 1, f"{DOC.name}:{block.line}: expected one log record, got {len(records)}"
            assert [shown[0], shown[-1]] == logged(records[0])

    assert every_check, "the page checks nothing"
    assert executed == set(every_check), (
        f"{DOC.name}: checks never executed at lines {sorted(set(every_check) - executed)}"
    )
    assert time.monotonic() - started < 10


def test_the_pages_links_to_its_own_sections_exist() -> None:
    text = DOC.read_text()
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.DOTALL), flags=re.MULTILINE)
    slugs = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in slugs, f"{DOC.name}: no section for #{anchor}"
