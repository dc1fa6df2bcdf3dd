"""``usage_from_openai`` / ``usage_from_anthropic``: whole responses or their usage, as SDK objects or dicts; the
service tier read from the response; Anthropic's 5-minute / 1-hour cache-write split; bad values; and the result
recorded by a registry at the exact price.

The OpenAI SDK's own models are used where the package is importable (it comes with LiteLLM); the Anthropic SDK is
stood for by ``SimpleNamespace`` objects of the same shape (``anthropic.types.Message`` / ``Usage`` /
``CacheCreation``) and by dicts.
"""

from __future__ import annotations

import doctest
import importlib.util
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import noa_ai_provider.usage as usage_module
from noa_ai_provider import EnhancedModelRegistry, InvalidUsageError, usage_from_anthropic, usage_from_openai

HAVE_OPENAI = importlib.util.find_spec("openai") is not None


def anthropic_usage(
    input_tokens: int = 50,
    output_tokens: int = 200,
    read: int | None = None,
    written: int | None = None,
    five: int | None = None,
    hour: int | None = None,
    service_tier: str | None = None,
    *,
    cache_creation: bool = True,
) -> SimpleNamespace:
    """Stands for ``anthropic.types.Usage``: the SDK leaves absent counts ``None``."""
    creation = (
        SimpleNamespace(ephemeral_5m_input_tokens=five, ephemeral_1h_input_tokens=hour) if cache_creation else None
    )
    return SimpleNamespace(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=written,
        cache_creation=creation,
        server_tool_use=None,
        service_tier=service_tier,
    )


def anthropic_message(usage: Any) -> SimpleNamespace:
    """Stands for ``anthropic.types.Message``."""
    return SimpleNamespace(
        id="msg_01",
        type="message",
        role="assistant",
        model="claude-sonnet-4-5",
        content=[SimpleNamespace(type="text", text="Hello")],
        stop_reason="end_turn",
        stop_sequence=None,
        usage=usage,
    )


# ------------------------------------------------------------------ OpenAI


CHAT_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
CHAT_EXPECTED = {"input_tokens": 1200, "output_tokens": 300, "cached_input_tokens": 1024}

RESPONSES_USAGE = {
    "input_tokens": 5000,
    "output_tokens": 700,
    "total_tokens": 5700,
    "input_tokens_details": {"cached_tokens": 4096},
    "output_tokens_details": {"reasoning_tokens": 500},
}
RESPONSES_EXPECTED = {"input_tokens": 5000, "output_tokens": 700, "cached_input_tokens": 4096}


def test_openai_chat_completion_response_or_usage_as_dicts() -> None:
    assert usage_from_openai(CHAT_USAGE) == CHAT_EXPECTED
    response: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [], "usage": CHAT_USAGE}
    assert usage_from_openai(response) == CHAT_EXPECTED  # no service tier reported: no key
    response["service_tier"] = "default"
    assert usage_from_openai(response) == {**CHAT_EXPECTED, "service_tier": "default"}
    response["service_tier"] = None
    assert usage_from_openai(response) == CHAT_EXPECTED


def test_openai_chat_completion_response_or_usage_as_objects() -> None:
    usage = SimpleNamespace(
        prompt_tokens=1200,
        completion_tokens=300,
        total_tokens=1500,
        prompt_tokens_details=SimpleNamespace(cached_tokens=1024, audio_tokens=None),
        completion_tokens_details=None,
    )
    assert usage_from_openai(usage) == CHAT_EXPECTED
    response = SimpleNamespace(id="chatcmpl-1", object="chat.completion", choices=[], service_tier="flex", usage=usage)
    assert usage_from_openai(response) == {**CHAT_EXPECTED, "service_tier": "flex"}
    assert usage_from_openai(SimpleNamespace(service_tier=None, usage=usage)) == CHAT_EXPECTED
    assert usage_from_openai(SimpleNamespace(usage=usage)) == CHAT_EXPECTED  # no service_tier attribute at all


def test_openai_responses_api_response_or_usage() -> None:
    assert usage_from_openai(RESPONSES_USAGE) == RESPONSES_EXPECTED
    response = {"id": "resp_1", "object": "response", "status": "completed", "service_tier": "priority"}
    assert usage_from_openai({**response, "usage": RESPONSES_USAGE}) == {
        **RESPONSES_EXPECTED,
        "service_tier": "priority",
    }
    as_object = SimpleNamespace(
        object="response",
        service_tier="scale",
        usage=SimpleNamespace(
            input_tokens=5000,
            output_tokens=700,
            total_tokens=5700,
            input_tokens_details=SimpleNamespace(cached_tokens=4096),
            output_tokens_details=SimpleNamespace(reasoning_tokens=500),
        ),
    )
    assert usage_from_openai(as_object) == {**RESPONSES_EXPECTED, "service_tier": "scale"}
    # a dict response holding an SDK usage object, and the other way round
    assert usage_from_openai({"service_tier": "flex", "usage": as_object.usage})["service_tier"] == "flex"
    assert usage_from_openai(SimpleNamespace(usage=RESPONSES_USAGE)) == RESPONSES_EXPECTED


@pytest.mark.parametrize("tier", ["default", "auto", "flex", "scale", "priority", "Priority", "some-new-tier"])
def test_openai_service_tier_is_passed_through_unchanged(tier: str) -> None:
    # the registry maps (and checks) the name when the usage is recorded
    assert usage_from_openai({"service_tier": tier, "usage": CHAT_USAGE})["service_tier"] == tier


def test_openai_stream_final_chunk_and_a_chunk_without_usage() -> None:
    last = {"object": "chat.completion.chunk", "choices": [], "service_tier": "default", "usage": CHAT_USAGE}
    assert usage_from_openai(last) == {**CHAT_EXPECTED, "service_tier": "default"}
    chunk = SimpleNamespace(object="chat.completion.chunk", choices=[], service_tier="default", usage=None)
    with pytest.raises(InvalidUsageError, match=r"OpenAI response: usage is None.*include_usage"):
        usage_from_openai(chunk)
    with pytest.raises(InvalidUsageError, match="OpenAI response: usage is None"):
        usage_from_openai({"id": "chatcmpl-1", "usage": None})


if HAVE_OPENAI:

    def test_openai_sdk_chat_completion_and_chunk() -> None:
        from openai.types.chat import ChatCompletion, ChatCompletionChunk
        from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

        usage = CompletionUsage(
            prompt_tokens=1200,
            completion_tokens=300,
            total_tokens=1500,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=1024),
        )
        assert usage_from_openai(usage) == CHAT_EXPECTED
        common: dict[str, Any] = {"id": "chatcmpl-1", "choices": [], "created": 0, "model": "gpt-4o"}
        completion = ChatCompletion(**common, object="chat.completion", service_tier="flex", usage=usage)
        assert usage_from_openai(completion) == {**CHAT_EXPECTED, "service_tier": "flex"}
        assert usage_from_openai(completion.model_dump()) == {**CHAT_EXPECTED, "service_tier": "flex"}
        small = CompletionUsage(prompt_tokens=10, completion_tokens=2, total_tokens=12)
        plain = ChatCompletion(**common, object="chat.completion", usage=small)
        assert usage_from_openai(plain) == {"input_tokens": 10, "output_tokens": 2, "cached_input_tokens": 0}
        last = ChatCompletionChunk(**common, object="chat.completion.chunk", service_tier="default", usage=usage)
        assert usage_from_openai(last) == {**CHAT_EXPECTED, "service_tier": "default"}
        chunk = ChatCompletionChunk(**common, object="chat.completion.chunk")
        with pytest.raises(InvalidUsageError, match="usage is None"):
            usage_from_openai(chunk)

    def test_openai_sdk_responses_api_response() -> None:
        from openai.types.responses import Response, ResponseUsage

        usage = ResponseUsage.model_validate(
            {
                "input_tokens": 5000,
                "output_tokens": 700,
                "total_tokens": 5700,
                "input_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 500},
            }
        )
        assert usage_from_openai(usage) == RESPONSES_EXPECTED
        response = Response.model_validate(
            {
                "id": "resp_1",
                "created_at": 0,
                "model": "gpt-4o",
                "object": "response",
                "output": [],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "service_tier": "priority",
                "usage": usage.model_dump(),
            }
        )
        assert usage_from_openai(response) == {**RESPONSES_EXPECTED, "service_tier": "priority"}
        assert usage_from_openai(response.model_dump()) == {**RESPONSES_EXPECTED, "service_tier": "priority"}


# ------------------------------------------------------------------ Anthropic


def test_anthropic_message_or_usage_as_dicts() -> None:
    usage = {
        "input_tokens": 50,
        "output_tokens": 200,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 300,
    }
    expected = {"input_tokens": 1350, "output_tokens": 200, "cached_input_tokens": 1000, "cache_write_tokens": 300}
    assert usage_from_anthropic(usage) == expected
    message = {"id": "msg_01", "type": "message", "role": "assistant", "content": [], "usage": usage}
    assert usage_from_anthropic(message) == expected
    message["usage"] = {**usage, "service_tier": "standard"}
    assert usage_from_anthropic(message) == {**expected, "service_tier": "standard"}


def test_anthropic_message_or_usage_as_objects() -> None:
    usage = anthropic_usage(read=1000, written=300, five=300, hour=0, service_tier="priority")
    expected = {"input_tokens": 1350, "output_tokens": 200, "cached_input_tokens": 1000, "cache_write_tokens": 300}
    assert usage_from_anthropic(anthropic_message(usage)) == {**expected, "service_tier": "priority"}
    # a bare usage gives the counts only: the service tier is read from a response
    assert usage_from_anthropic(usage) == {**expected, "service_tier": "priority"}  # Anthropic reports it in usage
    usage.service_tier = None
    assert usage_from_anthropic(anthropic_message(usage)) == expected
    # caching off: the SDK leaves the cache fields None
    plain = anthropic_usage(input_tokens=50, output_tokens=20, cache_creation=False)
    assert usage_from_anthropic(anthropic_message(plain)) == {
        "input_tokens": 50,
        "output_tokens": 20,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
    }


@pytest.mark.parametrize("tier", ["standard", "priority", "batch", "Standard", "some-new-tier"])
def test_anthropic_service_tier_is_passed_through_unchanged(tier: str) -> None:
    message = {"usage": {"input_tokens": 1, "output_tokens": 1, "service_tier": tier}}
    assert usage_from_anthropic(message)["service_tier"] == tier


def test_anthropic_service_tier_on_the_response_itself() -> None:
    # Anthropic reports it in the usage; a wrapper reporting it on the response is read too (the usage's wins)
    response = {"service_tier": "batch", "usage": {"input_tokens": 1, "output_tokens": 1}}
    assert usage_from_anthropic(response)["service_tier"] == "batch"
    response["usage"] = {"input_tokens": 1, "output_tokens": 1, "service_tier": "priority"}
    assert usage_from_anthropic(response)["service_tier"] == "priority"


def test_anthropic_stream_final_message_and_message_delta() -> None:
    # the stream's final message (MessageStream.get_final_message()) is a Message
    final = anthropic_message(anthropic_usage(input_tokens=10, output_tokens=99, read=0, written=0, five=0, hour=0))
    assert usage_from_anthropic(final) == {
        "input_tokens": 10,
        "output_tokens": 99,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
    }
    # a message_delta event carries the cumulative usage (MessageDeltaUsage: no service tier)
    delta = SimpleNamespace(
        type="message_delta",
        delta=SimpleNamespace(stop_reason="end_turn", stop_sequence=None),
        usage=SimpleNamespace(
            input_tokens=10, output_tokens=99, cache_read_input_tokens=2000, cache_creation_input_tokens=None
        ),
    )
    assert usage_from_anthropic(delta) == {
        "input_tokens": 2010,
        "output_tokens": 99,
        "cached_input_tokens": 2000,
        "cache_write_tokens": 0,
    }
    # older SDKs' MessageDeltaUsage holds output_tokens only
    assert usage_from_anthropic({"type": "message_delta", "usage": {"output_tokens": 7}}) == {
        "input_tokens": 0,
        "output_tokens": 7,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
    }


# (cache_creation_input_tokens, ephemeral_5m, ephemeral_1h, cache_creation present,
#  expected cache_write_tokens, expected cache_write_1h_tokens or None when the key is absent)
SPLITS: list[tuple[int | None, int | None, int | None, bool, int, int | None]] = [
    (3000, 1000, 2000, True, 1000, 2000),  # both lifetimes
    (2000, 0, 2000, True, 0, 2000),  # 1-hour only
    (2000, None, 2000, True, 0, 2000),  # 1-hour only, the 5-minute part None
    (1000, 1000, 0, True, 1000, None),  # 5-minute only: no 1h key
    (3000, 1000, 500, True, 2500, 500),  # 1500 attributed to neither lifetime: 5-minute
    (300, None, None, True, 300, None),  # both parts None: all 5-minute
    (300, None, None, False, 300, None),  # no cache_creation: all 5-minute
    (None, 1000, 2000, True, 1000, 2000),  # the total missing: the sum of the parts
    (None, None, None, False, 0, None),  # nothing written
    (0, 0, 0, True, 0, None),
]


@pytest.mark.parametrize(("written", "five", "hour", "present", "expected_5m", "expected_1h"), SPLITS)
def test_anthropic_cache_writes_are_split_by_lifetime(
    written: int | None, five: int | None, hour: int | None, present: bool, expected_5m: int, expected_1h: int | None
) -> None:
    usage = anthropic_usage(read=100, written=written, five=five, hour=hour, cache_creation=present)
    result = usage_from_anthropic(anthropic_message(usage))
    total = expected_5m + (expected_1h or 0)
    expected: dict[str, Any] = {
        "input_tokens": 50 + 100 + total,
        "output_tokens": 200,
        "cached_input_tokens": 100,
        "cache_write_tokens": expected_5m,
    }
    if expected_1h is not None:
        expected["cache_write_1h_tokens"] = expected_1h
    assert result == expected
    # the same from the usage alone, and from dicts
    assert usage_from_anthropic(usage) == expected
    as_dict: dict[str, Any] = {"input_tokens": 50, "output_tokens": 200, "cache_read_input_tokens": 100}
    if written is not None:
        as_dict["cache_creation_input_tokens"] = written
    if present:
        as_dict["cache_creation"] = {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour}
    assert usage_from_anthropic({"usage": as_dict}) == expected


@pytest.mark.parametrize(
    ("written", "five", "hour"),
    [
        (100, 0, 150),  # the 1-hour part alone exceeds the total
        (100, 150, 0),  # the 5-minute part alone
        (100, 60, 60),  # together
        (0, 0, 1),  # an explicit 0 total is not "missing"
    ],
)
def test_anthropic_inconsistent_cache_write_counts_raise(written: int, five: int, hour: int) -> None:
    usage = {
        "input_tokens": 5,
        "output_tokens": 1,
        "cache_creation_input_tokens": written,
        "cache_creation": {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour},
    }
    for given in (usage, {"usage": usage}):
        with pytest.raises(InvalidUsageError) as info:
            usage_from_anthropic(given)
        message = str(info.value)
        assert message.startswith("Anthropic usage: ")
        assert "cache_creation.ephemeral_5m_input_tokens" in message
        assert "cache_creation.ephemeral_1h_input_tokens" in message
        assert f"exceed cache_creation_input_tokens ({written})" in message


# ------------------------------------------------------------------ bad values


@pytest.mark.parametrize("bad", [-1, True, False, 1.0, 2.5, "10", b"10", Decimal(3), [1], {"n": 1}])
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: {"prompt_tokens": v, "completion_tokens": 1}, "prompt_tokens"),
        (lambda v: {"prompt_tokens": 10, "completion_tokens": v}, "completion_tokens"),
        (
            lambda v: {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": v}},
            "prompt_tokens_details.cached_tokens",
        ),
        (lambda v: {"input_tokens": v, "output_tokens": 1}, "input_tokens"),
        (lambda v: {"input_tokens": 10, "output_tokens": v}, "output_tokens"),
        (
            lambda v: {"input_tokens": 10, "output_tokens": 1, "input_tokens_details": {"cached_tokens": v}},
            "input_tokens_details.cached_tokens",
        ),
    ],
)
def test_openai_bad_counts_name_the_provider_and_field(bad: Any, make: Any, field: str) -> None:
    usage = make(bad)
    for given in (usage, {"usage": usage}, SimpleNamespace(usage=SimpleNamespace(**usage))):
        with pytest.raises(InvalidUsageError, match=rf"^OpenAI usage: {field} must be a non-negative integer"):
            usage_from_openai(given)


@pytest.mark.parametrize("bad", [-1, True, False, 1.0, "10", Decimal(3)])
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda v: {"input_tokens": v, "output_tokens": 1}, "input_tokens"),
        (lambda v: {"input_tokens": 1, "output_tokens": v}, "output_tokens"),
        (lambda v: {"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": v}, "cache_read_input_tokens"),
        (
            lambda v: {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": v},
            "cache_creation_input_tokens",
        ),
        (
            lambda v: {
                "input_tokens": 1,
                "output_tokens": 1,
                "cache_creation_input_tokens": 10,
                "cache_creation": {"ephemeral_5m_input_tokens": v},
            },
            "cache_creation.ephemeral_5m_input_tokens",
        ),
        (
            lambda v: {
                "input_tokens": 1,
                "output_tokens": 1,
                "cache_creation_input_tokens": 10,
                "cache_creation": {"ephemeral_1h_input_tokens": v},
            },
            "cache_creation.ephemeral_1h_input_tokens",
        ),
    ],
)
def test_anthropic_bad_counts_name_the_provider_and_field(bad: Any, make: Any, field: str) -> None:
    usage = make(bad)
    for given in (usage, {"usage": usage}, anthropic_message(SimpleNamespace(**usage))):
        with pytest.raises(InvalidUsageError, match=rf"^Anthropic usage: {field} must be a non-negative integer"):
            usage_from_anthropic(given)


def test_openai_cached_tokens_cannot_exceed_the_prompt() -> None:
    with pytest.raises(InvalidUsageError, match=r"OpenAI usage: prompt_tokens_details.cached_tokens \(101\)"):
        usage_from_openai(
            {"prompt_tokens": 100, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 101}}
        )
    with pytest.raises(
        InvalidUsageError,
        match=r"input_tokens_details.cached_tokens \(101\) \+ input_tokens_details.cache_write_tokens \(0\) "
        r"exceed input_tokens",
    ):
        usage_from_openai(
            {"usage": {"input_tokens": 100, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 101}}}
        )


@pytest.mark.parametrize("tier", [1, True, ["flex"], SimpleNamespace(value="flex")])
def test_a_service_tier_that_is_not_a_string_raises(tier: Any) -> None:
    with pytest.raises(InvalidUsageError, match=r"^OpenAI response: service_tier must be a string"):
        usage_from_openai({"service_tier": tier, "usage": CHAT_USAGE})
    with pytest.raises(InvalidUsageError, match=r"^Anthropic response: usage\.service_tier must be a string"):
        usage_from_anthropic({"usage": {"input_tokens": 1, "output_tokens": 1, "service_tier": tier}})


@pytest.mark.parametrize("given", [None, {}, "usage", 42, [], SimpleNamespace(), {"total_tokens": 10}])
def test_something_without_token_counts_raises(given: Any) -> None:
    with pytest.raises(InvalidUsageError, match=r"^OpenAI "):
        usage_from_openai(given)
    with pytest.raises(InvalidUsageError, match=r"^Anthropic "):
        usage_from_anthropic(given)


def test_a_response_whose_usage_is_none_raises() -> None:
    with pytest.raises(InvalidUsageError, match=r"^Anthropic response: usage is None"):
        usage_from_anthropic(anthropic_message(None))
    with pytest.raises(InvalidUsageError, match=r"^Anthropic response: usage is None"):
        usage_from_anthropic({"type": "message", "usage": None})


# ------------------------------------------------------------------ the documented contract


def test_the_docstrings_examples_hold() -> None:
    result = doctest.testmod(usage_module, optionflags=doctest.ELLIPSIS, raise_on_error=False)
    assert result.attempted >= 6
    assert result.failed == 0


# ------------------------------------------------------------------ end to end

SONNET: dict[str, Any] = {
    "id": "sonnet",
    "name": "Sonnet",
    "provider": "claude",
    "version": "1.0.0",
    "cost": {
        "inputTokens": 3,
        "outputTokens": 15,
        "cachedInputTokens": "0.3",
        "cacheWriteTokens": "3.75",
        "cacheWrite1hTokens": 6,
        "per": 1_000_000,
    },
}


@pytest.fixture
def sonnet(tmp_path: Path) -> Iterator[tuple[EnhancedModelRegistry, str]]:
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False) as registry:
        yield registry, registry.register_model(SONNET)


def test_a_registry_bills_an_anthropic_response_with_1_hour_writes_exactly(
    sonnet: tuple[EnhancedModelRegistry, str],
) -> None:
    registry, key = sonnet
    message = anthropic_message(
        anthropic_usage(
            input_tokens=0,
            output_tokens=0,
            read=0,
            written=100_000,
            five=0,
            hour=100_000,
            service_tier="standard",
        )
    )
    args = usage_from_anthropic(message)
    assert args == {
        "input_tokens": 100_000,
        "output_tokens": 0,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 100_000,
        "service_tier": "standard",
    }
    # 100,000 × 6 / 1,000,000 (the 1-hour write price, not the 5-minute 3.75)
    assert registry.estimate_cost(key, **args) == Decimal("0.6")
    assert registry.record_usage(key, **usage_from_anthropic(message)) == Decimal("0.6")
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.total_cost == Decimal("0.6")
    assert stats.total_cache_write_tokens == 100_000


def test_a_registry_bills_every_kind_of_anthropic_token_and_commits_a_reservation(
    sonnet: tuple[EnhancedModelRegistry, str],
) -> None:
    registry, key = sonnet
    message = {
        "type": "message",
        "usage": {
            "input_tokens": 50,
            "output_tokens": 200,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 5000,
            "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 3000},
            "service_tier": "standard",
        },
    }
    # 50 × 3 + 1000 × 0.3 + 2000 × 3.75 + 3000 × 6 + 200 × 15 = 150 + 300 + 7500 + 18000 + 3000 = 28950
    assert registry.record_usage(key, **usage_from_anthropic(message)) == Decimal("0.02895")
    with registry.acquire(key, 6050, max_output_tokens=1000) as reservation:
        assert reservation.commit(**usage_from_anthropic(message)) == Decimal("0.02895")
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.total_cost == Decimal("0.0579")
    assert stats.total_cached_input_tokens == 2000
    assert stats.total_cache_write_tokens == 10_000


def test_a_registry_accepts_the_service_tiers_openai_reports(sonnet: tuple[EnhancedModelRegistry, str]) -> None:
    registry, key = sonnet
    # "default" and "scale" bill the standard prices (the model has no priority prices): 1000 × 3 + 100 × 15
    for tier in ("default", "scale", "auto"):
        args = usage_from_openai({"service_tier": tier, "usage": {"prompt_tokens": 1000, "completion_tokens": 100}})
        assert args["service_tier"] == tier
        assert registry.record_usage(key, **args) == Decimal("0.0045")
    # batch: half the standard prices where the model has none
    args = usage_from_anthropic({"usage": {"input_tokens": 1000, "output_tokens": 100, "service_tier": "batch"}})
    assert registry.record_usage(key, **args) == Decimal("0.00225")


def test_openai_prompt_cache_writes_are_read() -> None:
    # Newer OpenAI models report cache writes inside the prompt count, next to the cached tokens.
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 200, "cache_write_tokens": 300},
    }
    assert usage_from_openai(usage) == {
        "input_tokens": 1000,
        "output_tokens": 10,
        "cached_input_tokens": 200,
        "cache_write_tokens": 300,
    }
    with pytest.raises(InvalidUsageError, match="exceed prompt_tokens"):
        usage_from_openai(
            {
                "prompt_tokens": 100,
                "completion_tokens": 0,
                "prompt_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 51},
            }
        )
