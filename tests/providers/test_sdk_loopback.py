"""The real anthropic and openai SDK clients against a loopback server replaying recorded
responses: tool calls, streaming, cache tokens, 401, 429 with retry, 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smollab.providers import AuthError, Outage, ProviderError, RateLimited, make_provider
from smollab.providers.base import ToolSpec
from tests.providers.wire import Replay

pytest.importorskip("anthropic")
pytest.importorskip("openai")

TOOLS = [
    ToolSpec(
        "run_study", "Run a study.", {"type": "object", "properties": {"path": {"type": "string"}}}
    ),
    ToolSpec("write_file", "Write.", {"type": "object", "properties": {}}),
    ToolSpec("finish", "Stop.", {"type": "object", "properties": {}}),
]
MSGS = [{"role": "user", "content": "go"}]
FAKE = "sk-ant-loopback-FAKE-0000000000"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Replay]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-loopback-FAKE-000000000000")
    r = Replay()
    yield r
    r.close()


def anthropic(server: Replay, **kw: object):  # type: ignore[no-untyped-def]
    return make_provider("anthropic:claude-sonnet-5-5", base_url=server.url, **kw)


def openai(server: Replay, **kw: object):  # type: ignore[no-untyped-def]
    return make_provider("openai:gpt-4o", base_url=server.url + "/v1", **kw)


def test_anthropic_tool_use_with_prompt_caching(server: Replay) -> None:
    server.queue += [(200, "anthropic_tool_use.json"), (200, "anthropic_text_cached.json")]
    p = anthropic(server)
    r = p.complete("SYSTEM", MSGS, TOOLS, max_tokens=100, cached_context="API REFERENCE")
    assert r.tool_calls[0].name == "run_study" and r.tool_calls[0].arguments == {
        "path": "study.toml"
    }
    assert r.usage.cache_write_tokens == 3120 and r.usage.input_tokens == 412
    req = server.requests[0]
    assert req["path"] == "/v1/messages"
    # the key travels in a header (x-api-key or a bearer token, by SDK version), nowhere else
    h = req["headers"]
    assert FAKE in (h.get("x-api-key", "") + h.get("authorization", ""))
    assert FAKE not in str(req["body"])
    sys_blocks = req["body"]["system"]
    assert [b["text"] for b in sys_blocks] == ["SYSTEM", "API REFERENCE"]
    assert all(b["cache_control"] == {"type": "ephemeral"} for b in sys_blocks)
    assert req["body"]["tools"][0]["input_schema"]["properties"]["path"]["type"] == "string"
    # the tool result goes back as a tool_result block in a user turn
    msgs = [
        *MSGS,
        {"role": "assistant", "content": r.text, "tool_calls": r.tool_calls},
        {"role": "tool", "tool_call_id": r.tool_calls[0].id, "name": "run_study", "content": "ok"},
    ]
    r2 = p.complete("SYSTEM", msgs, TOOLS, max_tokens=100, cached_context="API REFERENCE")
    assert r2.usage.cache_read_tokens == 3120 and r2.text == "Plan: baseline first."
    sent = server.requests[1]["body"]["messages"]
    assert sent[1]["content"][1]["type"] == "tool_use"
    assert sent[2]["content"][0]["type"] == "tool_result"


def test_anthropic_streaming(server: Replay) -> None:
    server.queue.append((200, "anthropic_stream.sse"))
    r = anthropic(server, stream=True).complete("S", MSGS, TOOLS, max_tokens=100)
    assert r.text == "Writing the spec."
    assert r.tool_calls[0].arguments == {"path": "study.toml", "content": "x = 1"}
    assert r.usage.output_tokens == 41 and r.usage.cache_read_tokens == 3120
    assert server.requests[0]["body"]["stream"] is True


def test_anthropic_401_is_not_retried(server: Replay) -> None:
    server.queue.append((401, "anthropic_401.json"))
    with pytest.raises(AuthError, match="key was rejected"):
        anthropic(server).complete("S", MSGS, [], max_tokens=5)
    assert len(server.requests) == 1


def test_anthropic_429_retried_then_ok(server: Replay) -> None:
    server.queue += [(429, "anthropic_429.json"), (200, "anthropic_text_cached.json")]
    r = anthropic(server).complete("S", MSGS, [], max_tokens=5)
    assert r.text == "Plan: baseline first." and len(server.requests) == 2


def test_anthropic_429_exhausted_and_500(server: Replay) -> None:
    server.queue += [(429, "anthropic_429.json")] * 2
    with pytest.raises(RateLimited, match="429"):
        anthropic(server, max_retries=1).complete("S", MSGS, [], max_tokens=5)
    server.queue += [(500, "anthropic_500.json")] * 3
    with pytest.raises(Outage, match="HTTP 500"):
        anthropic(server, max_retries=2).complete("S", MSGS, [], max_tokens=5)
    assert len(server.requests) == 2 + 3


def test_openai_tool_calls_and_cached_tokens(server: Replay) -> None:
    server.queue.append((200, "openai_tool_calls.json"))
    r = openai(server).complete("SYS", MSGS, TOOLS, max_tokens=100, cached_context="REF")
    assert r.tool_calls[0].name == "run_study" and r.tool_calls[0].arguments == {
        "path": "study.toml"
    }
    assert r.usage.input_tokens == 3500 - 3072 and r.usage.cache_read_tokens == 3072
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert body["messages"][0] == {"role": "system", "content": "SYS\n\nREF"}
    assert body["tools"][0]["function"]["name"] == "run_study"


def test_openai_streaming_tool_call(server: Replay) -> None:
    server.queue.append((200, "openai_stream.sse"))
    r = openai(server, stream=True).complete("S", MSGS, TOOLS, max_tokens=100)
    assert r.tool_calls[0].name == "write_file"
    assert r.tool_calls[0].arguments == {"path": "study.toml", "content": "x = 1"}
    assert r.usage.input_tokens == 120 and r.usage.output_tokens == 25
    assert server.requests[0]["body"]["stream_options"] == {"include_usage": True}


def test_openai_json_fallback_and_unknown_usage(server: Replay) -> None:
    server.queue.append((200, "openai_no_usage.json"))
    r = openai(server, tool_mode="json").complete("S", MSGS, TOOLS, max_tokens=100)
    assert r.tool_calls[0].name == "finish" and r.stop_reason == "json_tool_call"
    assert r.usage.input_tokens is None and r.usage.output_tokens is None
    body = server.requests[0]["body"]
    assert "tools" not in body and '"tool": "<name>"' in body["messages"][0]["content"]


def test_openai_errors(server: Replay) -> None:
    server.queue.append((401, "openai_401.json"))
    with pytest.raises(AuthError):
        openai(server).complete("S", MSGS, [], max_tokens=5)
    server.queue += [(429, "openai_429.json"), (200, "openai_tool_calls.json")]
    assert openai(server).complete("S", MSGS, TOOLS, max_tokens=5).tool_calls
    server.queue += [(500, "openai_500.json")] * 2
    with pytest.raises(Outage, match="HTTP 500"):
        openai(server, max_retries=1).complete("S", MSGS, [], max_tokens=5)
    assert len(server.requests) == 1 + 2 + 2


def test_openai_server_without_tools_falls_back_to_json(server: Replay) -> None:
    server.queue += [(400, "openai_400_tools.json"), (200, "openai_no_usage.json")]
    p = openai(server)
    r = p.complete("S", MSGS, TOOLS, max_tokens=50)
    assert r.tool_calls[0].name == "finish" and p.tool_mode == "json"
    assert "tools" in server.requests[0]["body"] and "tools" not in server.requests[1]["body"]


@pytest.mark.parametrize("body", ["{not json", "{}", "[1, 2]", '{"choices": []}'])
def test_a_reply_that_is_not_a_chat_completion_is_one_clear_error(
    server: Replay, body: str
) -> None:
    """A 200 whose body is garbage (a wrong --base-url, a broken local server) is a
    ProviderError naming the server and --base-url, not a JSONDecodeError or IndexError."""
    server.respond = lambda _: (200, body)
    for call in (
        lambda: openai(server).complete("S", MSGS, TOOLS, max_tokens=5),
        lambda: openai(server).ping(),
    ):
        with pytest.raises(ProviderError, match="not a chat completion") as e:
            call()
        assert "openai:gpt-4o at http://127.0.0.1" in str(e.value) and "--base-url" in str(e.value)
    if body != "{not json":  # the anthropic SDK takes any JSON
        with pytest.raises(ProviderError, match="not a chat completion"):
            anthropic(server).complete("S", MSGS, TOOLS, max_tokens=5)


def test_openai_404_names_the_model_and_how_to_check_it(server: Replay) -> None:
    server.respond = lambda _: (404, '{"error": {"message": "model not found"}}')
    with pytest.raises(ProviderError, match="not found \\(HTTP 404\\)") as e:
        openai(server).complete("S", MSGS, [], max_tokens=5)
    assert "openai:gpt-4o at" in str(e.value) and "--agent PROVIDER:MODEL" in str(e.value)
