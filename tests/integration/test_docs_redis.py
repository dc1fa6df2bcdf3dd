"""docs/redis.md: its Python blocks run against a real redis-server, and its other blocks are checked or say why
not.

The page is run as the pages of ``tests/test_docs_site.py`` are (``tests/docblocks.py``): every ``python`` block,
top to bottom, in one namespace, in a temporary working directory, with its line numbers those of the page; an
expression whose last line ends in ``# -> value`` is checked to equal ``value``. A block preceded by
``<!-- not run: reason -->`` is only compiled (Python) or, for the Sentinel URL, checked to be accepted by the store.

- Redis: the session's redis-server (the ``redis_server`` fixture of tests/conftest.py, a real server on a free
  loopback port). The page reads where it is from the environment: ``REDIS_URL`` (the first and last examples) and
  ``REDIS_HOST`` / ``REDIS_PORT`` (the example that builds its own client) are set to that server here;
  ``REDIS_PASSWORD`` is unset (the server has none). The page's namespace ``myapp`` is emptied first.
- The page builds its registries from ``./config/models-config.json``: the test puts the bundled catalogue there
  (``bundled_config_path()``), as a project would keep its own file.
- The ``redis.conf`` block: a redis-server started with those settings reports them back (``CONFIG GET``).
- The retry loop's ``except BackendError`` branch does not run here (Redis answers); the outage tests
  (tests/integration/test_redis_outage.py) cover retried commits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.config import bundled_config_path
from tests.docblocks import Block, blocks_of, run_blocks
from tests.redis_server import RedisServer

PAGE = "redis.md"
DOC = Path(__file__).resolve().parents[2] / "docs" / PAGE


def page_blocks() -> list[Block]:
    return blocks_of(DOC.read_text(), PAGE)


def padded(block: Block) -> str:
    """The block's code at its page lines, so a failure points at the page's line."""
    return "\n" * (block.line - 1) + block.code


def test_every_block_runs_or_says_why_not() -> None:
    blocks = page_blocks()
    assert [(block.info, block.runs) for block in blocks] == [
        ("bash", False),  # pip install
        ("python", True),
        ("text", False),  # the form of a URL
        ("python", True),  # TLS
        ("text", False),  # Sentinel
        ("text", False),  # Cluster
        ("python", True),  # your own client
        ("python", True),  # a retried commit
        ("text", True),  # redis.conf, checked below
    ]
    for block in blocks:
        if block.info == "python":
            compile(padded(block), f"docs/{PAGE}", "exec")


def test_python_blocks_run_against_redis(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in redis_client.scan_iter(match="{noa:myapp}:*"):
        redis_client.delete(key)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    (tmp_path / "config").mkdir()
    shutil.copy(bundled_config_path(), tmp_path / "config" / "models-config.json")
    monkeypatch.chdir(tmp_path)
    blocks = [padded(block) for block in page_blocks() if block.info == "python" and block.runs]
    assert len(blocks) == 4
    assert run_blocks(f"docs/{PAGE}", blocks) == 4
    # What the page recorded is in the server, under the page's namespace.
    assert any(redis_client.scan_iter(match="{noa:myapp}:m:openai:gpt-4o:*"))
    with EnhancedModelRegistry(
        backend=f"{redis_server.url}?namespace=myapp",
        models_config_path=tmp_path / "config" / "models-config.json",
        auto_load_config=True,
        auto_save=False,
    ) as registry:
        stats = registry.get_usage_stats("openai:gpt-4o")
        assert stats is not None
        # Two requests of 1150 input and 420 output tokens at $2.50 / $10 per million: 2 * $0.007075.
        assert (stats.request_count, stats.total_input_tokens, stats.total_output_tokens) == (2, 2300, 840)
        assert str(stats.total_cost) == "0.01415"


def test_the_tls_and_sentinel_urls_are_accepted() -> None:
    """Building a store from a URL does not connect: the options the page names are ones the store takes. The TLS
    block ran above (it only builds the string); here it is the store's URL."""
    namespace: dict[str, object] = {}
    [tls] = [block for block in page_blocks() if block.info == "python" and block.code.startswith("backend = (")]
    exec(tls.code, namespace)
    [sentinel] = [block.code.strip() for block in page_blocks() if block.code.startswith("redis+sentinel://")]
    for url in (str(namespace["backend"]), sentinel):
        with EnhancedModelRegistry(backend=url, auto_save=False) as registry:
            assert "namespace=myapp" in repr(registry)
            assert "s3cret" not in repr(registry)


def test_the_redis_conf_block_is_what_a_server_runs_with() -> None:
    [conf] = [block.code for block in page_blocks() if block.code.startswith("# redis.conf")]
    settings = [line.split() for line in conf.splitlines()[1:]]
    assert [name for name, _ in settings] == ["appendonly", "appendfsync", "maxmemory-policy"]
    server = RedisServer(*(arg for name, value in settings for arg in (f"--{name}", value)))
    try:
        with redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True) as client:
            for name, value in settings:
                assert client.config_get(name) == {name: value}
    finally:
        server.stop()
