"""Key redaction and the JSON tool-call fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from smollab.errors import ConfigError
from smollab.providers import make_provider, parse_agent
from smollab.providers.base import Reply, parse_json_tool_call
from smollab.providers.redact import MASK, Redactor


def test_redactor_masks_env_secrets_and_key_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-secret-value-123")
    r = Redactor()
    out = r("key=plain-secret-value-123 other=sk-ant-api03-abcdefghijklmnop")
    assert "plain-secret" not in out and "sk-ant" not in out and out.count(MASK) == 2


def test_sweep_rewrites_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TOKEN", "zzzz-secret-zzzz")
    (tmp_path / "a").mkdir()
    f = tmp_path / "a" / "log.jsonl"
    f.write_text('{"k": "zzzz-secret-zzzz"}\n')
    assert Redactor().sweep(tmp_path) == [f]
    assert "zzzz" not in f.read_text()


def test_logging_filter(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-shouldnotleak0000")
    log = logging.getLogger("smollab.test")
    f = Redactor().logging_filter()
    log.addFilter(f)
    try:
        with caplog.at_level(logging.INFO):
            log.info("calling with %s", "sk-ant-shouldnotleak0000")
    finally:
        log.removeFilter(f)
    assert "shouldnotleak" not in caplog.text and MASK in caplog.text


def test_json_fallback_parses_first_tool_object() -> None:
    text = 'Sure! ```json\n{"tool": "run_study", "arguments": {"path": "study.toml"}}\n```'
    call = parse_json_tool_call(text, {"run_study"})
    assert call and call.name == "run_study" and call.arguments == {"path": "study.toml"}
    assert parse_json_tool_call('{"tool": "rm_rf", "arguments": {}}', {"run_study"}) is None
    assert parse_json_tool_call("no json {here", {"run_study"}) is None
    bad = parse_json_tool_call('{"tool": "run_study", "arguments": "x"}', {"run_study"})
    assert bad and bad.arguments is None


def test_parse_agent_errors() -> None:
    assert parse_agent("anthropic:claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    with pytest.raises(ConfigError, match="PROVIDER:MODEL"):
        parse_agent("claude")
    with pytest.raises(ConfigError, match="Unknown provider 'gemini'"):
        parse_agent("gemini:pro")


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set"):
        make_provider("anthropic:claude-sonnet-4-5")


def test_scripted_provider(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text('[{"text": "hi"}]')
    p = make_provider(f"scripted:{f}")
    assert p.complete("s", [], [], max_tokens=5).text == "hi"
    r = p.complete("s", [], [], max_tokens=5)
    assert r.tool_calls[0].name == "finish"  # exhausted: never hangs
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid"):
        make_provider(f"scripted:{bad}")
    assert Reply.from_dict(Reply("x").to_dict()).text == "x"
