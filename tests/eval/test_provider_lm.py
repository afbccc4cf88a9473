"""``smollab eval`` with API models: generation through the real openai and anthropic SDKs
against a loopback server, scoring, stop strings, the request cache, usage, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smollab.eval.provider_lm import ProviderLM, make_provider_lm
from smollab.tasks.requests import GenerateRequest
from tests.cli.test_cli import assert_clean_error
from tests.conftest import SHARED, needs_data
from tests.providers.wire import WIRE, Replay, chat_completion

pytest.importorskip("openai")
pytest.importorskip("anthropic")


def _gsm8k_golds(n: int) -> dict[str, str]:
    rows = [json.loads(x) for x in (SHARED / "gsm8k" / "test.jsonl").read_text().splitlines()]
    return {r["question"]: r["answer"].split("####")[-1].strip() for r in rows[:n]}


@pytest.fixture
def server() -> Any:
    r = Replay()
    yield r
    r.close()


@needs_data
def test_gsm8k_chat_through_an_openai_compatible_server(cli: Any, server: Replay, tmp_path: Path):
    golds = _gsm8k_golds(4)
    first_question = next(iter(golds))

    def respond(body: dict[str, Any]) -> tuple[int, str]:
        msg = body["messages"][-1]["content"]
        q = next(q for q in golds if q in msg)
        answer = "99999" if q == first_question else golds[q]  # one wrong answer
        # the text after the stop string must be cut off before scoring
        return 200, chat_completion(f"Working.\n#### {answer}\n\nQuestion: more #### 7")

    server.respond = respond
    out = tmp_path / "ev"
    url = server.url + "/v1"
    args = ("eval", "--model", "openai:local", "--base-url", url, "--task", "gsm8k_chat",
            "--limit", "4", "--data-dir", SHARED, "--batch-size", "2")  # fmt: skip
    proc = cli(*args, "--out", out)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())
    t = res["tasks"]["gsm8k_chat"]
    assert t["n"] == 4
    assert t["metrics"]["strict_match"]["estimate"] == pytest.approx(0.75)
    samples = [json.loads(x) for x in (out / "samples_gsm8k_chat.jsonl").read_text().splitlines()]
    assert all("Question:" not in s["completion"] for s in samples)
    assert sorted(s["strict_match"] for s in samples) == [0.0, 1.0, 1.0, 1.0]
    # the wire: one user message (no system prompt), greedy, the task's token budget
    assert len(server.requests) == 4
    for r in server.requests:
        body = r["body"]
        assert r["path"] == "/v1/chat/completions"
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["temperature"] == 0.0 and body["max_tokens"] == 256
        assert "####" in body["messages"][0]["content"]  # the chat instruction
    info = res["model_info"]
    assert info["api"] == "openai" and info["model"] == "local" and info["calls"] == 4
    assert (info["input_tokens"], info["output_tokens"]) == (400, 80)
    assert info["cost_usd"] is None  # no price for a local server
    assert info["temperature"].startswith("as the task asks")
    assert "4 API calls" in proc.stdout
    # the task's own share, kept with its entry when later runs add other tasks here
    assert t["api_usage"] == {"calls": 4, "input_tokens": 400, "output_tokens": 80,
                              "cost_usd": None}  # fmt: skip
    # another folder: every reply comes from the request cache, no new call
    proc = cli(*args, "--out", tmp_path / "again")
    assert proc.returncode == 0, proc.stderr
    assert len(server.requests) == 4
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["tasks"]["gsm8k_chat"]["metrics"] == t["metrics"]
    assert again["tasks"]["gsm8k_chat"]["api_usage"]["calls"] == 0


def test_anthropic_wire_for_generation(server: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-loopback-FAKE-0000000000")
    server.queue += [(200, "anthropic_text_cached.json")] * 2
    lm = make_provider_lm("anthropic:claude-sonnet-5-5", base_url=server.url, concurrency=1)
    assert isinstance(lm, ProviderLM)
    reqs = [GenerateRequest("Say a plan.", ("first",), 32), GenerateRequest("Again.", (), 16)]
    assert lm.generate(reqs) == ["Plan: baseline ", "Plan: baseline first."]
    body = server.requests[0]["body"]
    assert "system" not in body and "temperature" not in body and body["max_tokens"] == 32
    assert body["messages"] == [{"role": "user", "content": "Say a plan."}]
    assert lm.info["calls"] == 2 and lm.info["input_tokens"] == 760
    assert "server's default" in lm.info["temperature"]
    assert lm.truncated(reqs[0]) is False


def test_loglikelihood_tasks_are_refused_for_api_models(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    msg = assert_clean_error(
        cli(
            "eval",
            "--model",
            "openai:gpt-4o",
            "--task",
            "hellaswag",
            "--task",
            "gsm8k",
            "--out",
            out,
        ),  # fmt: skip
        code=2,
    )
    assert "hellaswag" in msg and "log-probability" in msg
    assert "gsm8k_chat" in msg and "humaneval" in msg  # the tasks that do work
    assert not out.exists()


def test_api_model_without_a_key(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    out = tmp_path / "ev"
    msg = assert_clean_error(
        cli(
            "eval",
            "--model",
            "anthropic:claude-sonnet-5-5",
            "--task",
            "gsm8k_chat",
            "--limit",
            "1",
            "--data-dir",
            tmp_path / "no-data",  # the key is checked before the data
            "--out",
            out,
        ),  # fmt: skip
        code=2,
    )
    assert "ANTHROPIC_API_KEY is not set" in msg
    assert not out.exists()


def test_base_url_with_a_local_model(cli: Any) -> None:
    msg = assert_clean_error(
        cli("eval", "--model", "smollm2-135m", "--task", "gsm8k", "--base-url", "http://x/v1"),
        code=2,
    )
    assert "--base-url" in msg and "openai:MODEL" in msg


@needs_data
def test_a_rate_limit_mid_run_keeps_the_paid_calls(cli: Any, server: Replay, tmp_path: Path):
    golds = _gsm8k_golds(4)
    limited = list(golds)[2]
    state = {"limit": True}

    def respond(body: dict[str, Any]) -> tuple[int, str]:
        msg = body["messages"][-1]["content"]
        q = next(q for q in golds if q in msg)
        if q == limited and state["limit"]:
            return 429, (WIRE / "openai_429.json").read_text()
        return 200, chat_completion(f"#### {golds[q]}")

    server.respond = respond
    out = tmp_path / "ev"
    url = server.url + "/v1"
    args = ("eval", "--model", "openai:local", "--base-url", url, "--task", "gsm8k_chat",
            "--limit", "4", "--data-dir", SHARED, "--batch-size", "4", "--out", out)  # fmt: skip
    msg = assert_clean_error(cli(*args), code=3)
    assert "429" in msg and "run the same command again" in msg and "resume" not in msg
    calls = [r["body"]["messages"][0]["content"] for r in server.requests]
    assert sum(limited in c for c in calls) == 3  # the first try and the SDK's 2 retries
    assert len(calls) == 6  # 3 answered, 1 failed 3 times
    state["limit"] = False
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    new = [r["body"]["messages"][0]["content"] for r in server.requests[6:]]
    assert len(new) == 1 and limited in new[0]  # only the call that failed is made again
    res = json.loads((out / "results.json").read_text())
    assert res["tasks"]["gsm8k_chat"]["metrics"]["strict_match"]["estimate"] == 1.0


@needs_data
def test_humaneval_chat_through_an_api_model(cli: Any, server: Replay, tmp_path: Path):
    """A chat model restates the function in a fence: humaneval_chat scores that code."""
    from smollab.sandbox import load_humaneval, sandbox_status

    if sandbox_status() is not None:
        pytest.skip("sandbox unavailable here")
    problems = {p["entry_point"]: p for p in load_humaneval(str(SHARED))[:3]}

    def respond(body: dict[str, Any]) -> tuple[int, str]:
        msg = body["messages"][-1]["content"]
        name = next(n for n in problems if f"def {n}(" in msg)
        p = problems[name]
        code = p["prompt"] + p["canonical_solution"]
        if name == "truncate_number":  # HumanEval/2: a wrong function
            code = "def truncate_number(number):\n    return 0.5\n"
        return 200, chat_completion(f"Here you go:\n\n```python\n{code}```\n\nHope it helps.")

    server.respond = respond
    out = tmp_path / "ev"
    proc = cli("eval", "--model", "openai:local", "--base-url", server.url + "/v1",
               "--task", "humaneval_chat", "--limit", "3", "--data-dir", SHARED,
               "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    t = json.loads((out / "results.json").read_text())["tasks"]["humaneval_chat"]
    assert t["n"] == 3 and t["metrics"]["pass@1"]["estimate"] == pytest.approx(2 / 3)
    assert t["outcomes"] == {"passed": 2, "assertion_error": 1}
    for r in server.requests:
        body = r["body"]
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert body["max_tokens"] == 512 and body["temperature"] == 0.0
        assert "```python" in body["messages"][0]["content"]


def test_api_models_default_to_fewer_calls_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    from smollab.eval.provider_lm import API_CONCURRENCY

    monkeypatch.setenv("OPENAI_API_KEY", "k")
    lm = make_provider_lm("openai:local", base_url="http://127.0.0.1:9/v1")
    assert lm.batch_size == API_CONCURRENCY == 8


@needs_data
def test_eval_budget_is_checked_before_the_first_call(
    cli: Any, server: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A priced model ('openai:gpt-5-mini', served by the loopback server through the SDK's
    OPENAI_BASE_URL): the worst case of the calls not cached is printed and checked against
    --budget-usd before any call."""
    golds = _gsm8k_golds(2)
    server.respond = lambda body: (200, chat_completion("#### " + next(
        a for q, a in golds.items() if q in body["messages"][-1]["content"])))  # fmt: skip
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000")
    out = tmp_path / "ev"
    args = ("eval", "--model", "openai:gpt-5-mini", "--task", "gsm8k_chat", "--limit", "2",
            "--data-dir", SHARED, "--out", out)  # fmt: skip
    msg = assert_clean_error(cli(*args, "--budget-usd", "0.0001"), code=4)
    assert "could cost up to $0.00" in msg and "No call was made" in msg and "--limit" in msg
    assert server.requests == [] and not out.exists()  # a refused run leaves no empty folder
    proc = cli(*args, "--budget-usd", "1")
    assert proc.returncode == 0, proc.stderr
    assert "openai:gpt-5-mini: 2 of 2 calls not cached, at most $0.00" in proc.stdout
    assert len(server.requests) == 2
    res = json.loads((out / "results.json").read_text())
    bound = res["api_bound"]
    assert (bound["calls"], bound["uncached_calls"], bound["budget_usd"]) == (2, 2, 1.0)
    # 256 output tokens per call at most, at $2 per million: the bound covers them
    assert 2 * 256 * 2.0 / 1e6 < bound["worst_case_usd"] < 0.01
    assert 0 < res["model_info"]["cost_usd"] < bound["worst_case_usd"]
    # done now: a budget of 0 is enough to run it again (in another folder: from the request
    # cache), and nothing is sent
    proc = cli(*args[:-1], tmp_path / "again", "--budget-usd", "0")
    assert proc.returncode == 0, proc.stderr
    assert "openai:gpt-5-mini: no call to make (2 answered from the cache)" in proc.stdout
    assert len(server.requests) == 2


def test_a_budget_for_a_local_model_is_refused(cli: Any) -> None:
    msg = assert_clean_error(
        cli("eval", "--model", "smollm2-135m", "--task", "gsm8k", "--budget-usd", "1"), code=2
    )
    assert "--budget-usd" in msg and "local model" in msg


def test_a_budget_over_an_unpriced_model_names_a_fix_that_can_work() -> None:
    """A base_url server is never priced, so its refusal does not say to add a price; a model
    missing from prices.toml is told to add it."""
    from smollab.errors import ConfigError
    from smollab.eval.provider_lm import ApiBound, ApiTarget, api_bound, check_api_budget

    target = ApiTarget.of("openai:foo", "http://127.0.0.1:9/v1", None)
    served = api_bound(target, [GenerateRequest("q", ("\n",), 8)])
    assert served.base_url == "http://127.0.0.1:9/v1" and served.worst_usd is None
    assert "a model on a base_url server, http://127.0.0.1:9/v1, has no price" in (
        served.describe()
    )
    with pytest.raises(ConfigError) as e:
        check_api_budget([served], 1.0, "this evaluation")
    msg = e.value.message
    assert msg.startswith("--budget-usd 1.0 cannot be enforced for this evaluation: openai:foo")
    assert "never prices" in msg and msg.endswith("Drop --budget-usd.")
    assert "Add its price" not in msg
    unlisted = ApiBound("openai:unlisted-model", 1, 1, None)
    with pytest.raises(ConfigError) as e:
        check_api_budget([unlisted], 1.0, "this evaluation")
    assert "no price is known for openai:unlisted-model" in e.value.message
    assert e.value.message.endswith("Add its price there, or drop --budget-usd.")
    with pytest.raises(ConfigError) as e:
        check_api_budget([served, unlisted], 1.0, "this study")
    assert e.value.message.endswith(
        "Drop --budget-usd (or add the price of openai:unlisted-model there)."
    )


def test_loglikelihood_tasks_refused_for_an_api_model_name_every_task_that_works() -> None:
    from smollab.errors import ConfigError
    from smollab.eval.harness import make_task
    from smollab.eval.provider_lm import check_tasks

    with pytest.raises(ConfigError) as e:
        check_tasks("openai:gpt-4o", [make_task("hellaswag")])
    msg = e.value.message
    assert msg.startswith("Task(s) hellaswag score the log-probability")
    ok = msg.split("with an API model use generation tasks: ")[1].removesuffix(".").split(", ")
    assert {"gsm8k_chat", "humaneval", "arith.add", "arith.mul", "text:PATH"} <= set(ok)
    assert "hellaswag" not in ok and "arith_probe" not in ok


def test_an_unreachable_server_during_eval_names_no_session_to_resume(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An eval is no session: its retry hint says to run it again, and names no `smollab
    resume` (an agent's session, once its folder exists, gets that in its place)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000")
    proc = cli("eval", "--model", "openai:foo", "--base-url", "http://127.0.0.1:1/v1",
               "--task", "arith.add:1x1", "--limit", "1", "--out", tmp_path / "ev")  # fmt: skip
    msg = assert_clean_error(proc, 3)
    assert "cannot reach the server" in msg
    assert msg.endswith("Check the network or --base-url, then run the same command again.")
    assert "resume" not in msg and "SESSION" not in msg
