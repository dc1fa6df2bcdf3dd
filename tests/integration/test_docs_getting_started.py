"""docs/getting-started.md, the newcomer's path, runs as a newcomer would follow it: a registry and a model, a call
admitted and billed, a metered OpenAI SDK call, a worker fleet sharing one Redis, and a cost plot.

Every python block of the page runs (``tests/docblocks.py``: top to bottom in one namespace, in a temporary working
directory, ``# -> value`` checked). What the page leaves to the reader's environment is set here as a reader's
would be, never by editing the page's code:

- ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` point the unchanged ``openai.OpenAI()`` at a local OpenAI-compatible
  server (a real HTTP server on loopback answering chat completions with the requested model and a usage);
- ``REDIS_URL`` is the session's real redis-server (tests/conftest.py); the page's namespace is emptied first.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from matplotlib.image import imread

from tests.docblocks import blocks_of, run_blocks
from tests.redis_server import RedisServer

PAGE = "getting-started.md"
DOC = Path(__file__).resolve().parents[2] / "docs" / PAGE
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


class _Handler(BaseHTTPRequestHandler):
    server: _OpenAICompatible

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        assert self.path == "/v1/chat/completions", self.path
        with self.server.lock:
            self.server.received += 1
        answer = {
            "id": "chatcmpl-docs",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
            "usage": USAGE,
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _OpenAICompatible(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received = 0


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[_OpenAICompatible]:
    server = _OpenAICompatible()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-getting-started")
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_newcomers_path_runs(
    provider: _OpenAICompatible,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with redis.Redis.from_url(redis_server.url) as client:  # the page's namespace, empty as on a new deployment
        stale = list(client.scan_iter(match="*myapp*"))
        if stale:
            client.delete(*stale)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.chdir(tmp_path)
    blocks = [block for block in blocks_of(DOC.read_text(), PAGE) if block.info == "python"]
    assert all(block.runs for block in blocks), "every step of the newcomer's path runs"
    try:
        checked = run_blocks(f"docs/{PAGE}", ["\n" * (block.line - 1) + block.code for block in blocks])
    finally:
        gc.collect()  # the page's registries close here, inside tmp_path
    assert checked >= 8
    assert provider.received == 21  # the metered call, then the fleet's 20: every call reached the server once
    plot = imread(tmp_path / "costs-by-day.png")
    assert plot.std() > 0.01  # a drawn figure, not a blank one
