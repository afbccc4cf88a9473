"""API models as study conditions: evaluated (never trained) through their provider, with the
real openai SDK against a loopback OpenAI-compatible server, analysed like local models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from smollab.errors import ConfigError
from smollab.io import read_json, read_jsonl
from smollab.study.executor import InlineExecutor
from smollab.study.session import pending_api_bounds, run_study
from smollab.study.spec import loads_spec
from tests.conftest import SHARED, needs_data
from tests.providers.wire import Replay, chat_completion

pytest.importorskip("openai")
pytestmark = needs_data


LOCAL = """
[[models]]
name = "tiny"
source = "scratch:gpt2"
tokenizer = "char"
config = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 }
"""
ADD = """
[[tasks]]
id = "add"
task = "arith.add"
strata = ["1x1"]
n_test = 6
"""
GSM = f"""
[[tasks]]
id = "gsm"
task = "gsm8k_chat"
limit = 2
data_dir = "{SHARED}"
"""


def spec_text(url: str, extra: str = "", *, local: bool = True, tasks: str = ADD) -> str:
    """Two baselines (a local model, compact format; the API model, chat format), or the API
    model alone."""
    head = '[study]\nname = "api"\nseeds = [0]\n' + (LOCAL if local else "")
    served = f'\n[[models]]\nname = "served"\nsource = "openai:local"\nbase_url = "{url}"\n'
    conds = (
        '\n[[conditions]]\nname = "local"\nmodel = "tiny"\nformat = "compact"\n' if local else ""
    )
    conds += '\n[[conditions]]\nname = "api"\nmodel = "served"\nformat = "chat_answer"\n'
    return head + served + tasks + conds + extra


@pytest.fixture
def server() -> Any:
    golds = [json.loads(x) for x in (SHARED / "gsm8k" / "test.jsonl").read_text().splitlines()]
    gold = {r["question"]: r["answer"].split("####")[-1].strip() for r in golds[:2]}
    first = next(iter(gold))

    def respond(body: dict[str, Any]) -> tuple[int, str]:
        msg = body["messages"][-1]["content"]
        m = re.fullmatch(r"What is (\d+) \+ (\d+)\? Reply with the number only\.", msg)
        if m:  # arithmetic: right unless the sum is even; the reply's second line is cut
            a, b = int(m.group(1)), int(m.group(2))
            ans = a + b if (a + b) % 2 else a + b + 1
            return 200, chat_completion(f"{a} + {b} = {ans}\nAnything else?")
        q = next(q for q in gold if q in msg)
        return 200, chat_completion(f"So.\n#### {'0' if q == first else gold[q]}")

    r = Replay()
    r.respond = respond
    yield r
    r.close()


def _run(text: str, root: Path) -> dict[str, Any]:
    run_study(loads_spec(text), text, out_root=root, session_name="s",
              executor=InlineExecutor(), pdf=False)  # fmt: skip
    return read_json(root / "s" / "results" / "results_baseline.json")


def _api_run(root: Path) -> Path:
    return next(d for d in (root / "s" / "runs").iterdir()
                if read_json(d / "record.json")["condition"] == "api")  # fmt: skip


def test_api_model_is_evaluated_beside_a_local_model(tmp_path: Path, server: Replay, report_ready):
    url = server.url + "/v1"
    text = spec_text(url)
    results = _run(text, tmp_path)
    assert set(results["conditions"]) == {"local", "api"}
    run = _api_run(tmp_path)
    preds = read_jsonl(run / "predictions" / "add.jsonl")
    sums = [int(p["target"]) for p in preds]
    assert results["conditions"]["api"]["tasks"]["add"]["overall"]["exact_match"][
        "estimate"
    ] == pytest.approx(sum(s % 2 for s in sums) / 6)
    assert all("\n" not in p["completion"] for p in preds)  # cut at the newline
    info = read_json(run / "record.json")["model_info"]
    assert info["calls"] == 6 and info["model_type"] == "API model (openai)"
    assert info["base_url"] == url and info["input_tokens"] == 600
    # the wire: the question itself as the one user message (the chat_answer format), greedy
    bodies = [r["body"] for r in server.requests]
    asked = [b["messages"][0]["content"] for b in bodies]
    assert all(re.fullmatch(r"What is \d+ \+ \d+\? Reply with the number only\.", q) for q in asked)
    assert all(len(b["messages"]) == 1 for b in bodies)
    assert all(b["temperature"] == 0.0 and b["max_tokens"] == 64 for b in bodies)
    # running the study again reuses the finished runs: no call is made twice
    _run(text, tmp_path)
    assert len(server.requests) == 6


def test_api_model_on_a_benchmark_task(tmp_path: Path, server: Replay, report_ready):
    results = _run(spec_text(server.url + "/v1", local=False, tasks=GSM), tmp_path)
    gsm = results["conditions"]["api"]["tasks"]["gsm"]
    assert gsm["overall"]["n_items"] == 2
    assert gsm["overall"]["exact_match"]["estimate"] == pytest.approx(0.5)
    samples = read_jsonl(_api_run(tmp_path) / "predictions" / "samples" / "samples_gsm.jsonl")
    assert sorted(s["strict_match"] for s in samples) == [0.0, 1.0]
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("[conditions.train]\nsteps = 1\n", r"trains model 'served', an API model"),
        (
            '\n[[tasks]]\nid = "hs"\ntask = "hellaswag"\nlimit = 2\n',
            r"hs score log-probabilities.*cannot return",
        ),  # fmt: skip
    ],
)
def test_what_an_api_model_cannot_do_is_refused(extra: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        loads_spec(spec_text("http://127.0.0.1:9/v1", extra))


def test_base_url_is_for_openai_models_only() -> None:
    text = spec_text("http://127.0.0.1:9/v1").replace(
        'tokenizer = "char"', 'tokenizer = "char"\nbase_url = "http://x/v1"'
    )
    with pytest.raises(ConfigError, match=r"'models\[0\].base_url' is for API models"):
        loads_spec(text)


def test_local_run_hashes_do_not_change() -> None:
    """base_url is hashed only when set: the runs of local models keep the hashes they had."""
    from smollab.study.runspec import expand_lm

    runs = {r.condition: r for r in expand_lm(loads_spec(spec_text("http://127.0.0.1:9/v1")))}
    assert "base_url" not in runs["local"].content()["model"]
    assert runs["api"].content()["model"]["base_url"] == "http://127.0.0.1:9/v1"


def _priced(url: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> str:
    """The API model as 'openai:gpt-5-mini' (listed in prices.toml), served by the loopback
    server through the SDK's OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000")
    return spec_text(url, **kw).replace(
        f'source = "openai:local"\nbase_url = "{url}"', 'source = "openai:gpt-5-mini"'
    )


def test_a_study_over_its_budget_makes_no_call(
    tmp_path: Path, server: Replay, monkeypatch: pytest.MonkeyPatch, report_ready
) -> None:
    from smollab.providers.ledger import BudgetExceeded, price_for, worst_case_usd

    text = _priced(server.url + "/v1", monkeypatch)
    events: list[dict[str, Any]] = []

    def run(budget: float | None) -> None:
        run_study(loads_spec(text), text, out_root=tmp_path, session_name="s",
                  executor=InlineExecutor(), pdf=False, on_event=events.append,
                  budget_usd=budget)  # fmt: skip

    # 6 questions, 64 output tokens each at most: the bound is the ledger's worst case per call
    price = price_for("openai", "gpt-5-mini")
    prompts = [f"What is {a} + {b}? Reply with the number only." for a in range(1, 10)
               for b in range(1, 10)]  # fmt: skip
    per_call = [worst_case_usd(len(p), 64, price) or 0.0 for p in prompts]
    with pytest.raises(BudgetExceeded, match=r"could cost up to \$0\.000[0-9]+.*No call was made"):
        run(min(per_call) * 5)  # less than 6 calls can cost
    assert server.requests == []
    assert not list((tmp_path / "s" / "runs").glob("*/record.json"))  # no run started
    bound = next(e for e in events if e["event"] == "api_bound")["text"]
    assert bound.startswith("openai:gpt-5-mini: 6 of 6 calls not cached, at most $")
    worst = float(bound.rsplit("$", 1)[1])
    assert min(per_call) * 6 <= worst + 1e-4 and worst <= max(per_call) * 6 + 1e-4
    # enough budget: the runs go ahead and the API model's 6 calls are made
    run(worst * 1.01)
    assert len(server.requests) == 6
    info = read_json(_api_run(tmp_path) / "record.json")["model_info"]
    assert info["cost_usd"] == pytest.approx(
        (info["input_tokens"] * price.input + info["output_tokens"] * price.output) / 1e6
    )
    assert info["cost_usd"] < worst  # the bound held
    # a finished study costs nothing more: any budget, even 0, lets it be re-run
    run(0.0)
    assert len(server.requests) == 6


def test_a_budget_needs_a_price(tmp_path: Path, server: Replay) -> None:
    text = spec_text(server.url + "/v1")  # a --base-url server: never priced
    with pytest.raises(ConfigError, match=r"cannot be enforced for this study.*openai:local"):
        run_study(loads_spec(text), text, out_root=tmp_path, session_name="s",
                  executor=InlineExecutor(), pdf=False, budget_usd=1.0)  # fmt: skip
    assert server.requests == []


def _agent(tmp_path: Path, budget: float | None) -> Any:
    from smollab.agent.loop import Limits
    from tests.agent.scripts import scripted_agent

    tmp_path.mkdir(parents=True, exist_ok=True)
    agent = scripted_agent(
        tmp_path, [], limits=Limits(pdf=False, budget_usd=budget), executor=InlineExecutor()
    )
    agent.dir.mkdir(parents=True, exist_ok=True)
    return agent


def test_an_agents_study_calls_api_models_within_the_session_budget(
    tmp_path: Path, server: Replay, monkeypatch: pytest.MonkeyPatch, report_ready
) -> None:
    """The API calls of an agent's study count against the session's --budget-usd: a study
    whose worst case does not fit in what is left is refused to the agent before any call; one
    that fits runs, and what its runs recorded is charged to the ledger (metrics.json)."""
    from smollab.agent.tools import dispatch
    from smollab.providers.ledger import BudgetExceeded, Ledger

    text = _priced(server.url + "/v1", monkeypatch)
    bounds = pending_api_bounds(loads_spec(text), tmp_path / "none")
    worst = bounds[0].worst_usd
    assert worst and bounds[0].uncached == 6
    # the agent's own calls have spent all but half the bound: refused, nothing run
    agent = _agent(tmp_path / "a", budget=1.0)
    agent.ledger.record_study(iteration=0, study="earlier.toml", models=[], calls=1,
                              cost_usd=1.0 - worst / 2, worst_case_usd=None)  # fmt: skip
    (agent.dir / "study.toml").write_text(text)
    r = dispatch(agent, "run_study", {"path": "study.toml"})
    assert not r.ok and "No call was made" in r.content
    assert "left of this session's --budget-usd 1" in r.content
    assert server.requests == [] and not list(agent.dir.glob("runs/*/record.json"))
    # the same study as the fallback run (the model ran none): the session stops on the budget,
    # with the agent's study.toml kept (it is valid, not replaced by the protocol)
    with pytest.raises(BudgetExceeded):
        agent._fallback_run(1)
    assert (agent.dir / "study.toml").read_text() == text and server.requests == []
    # enough left: the study runs, the 6 calls are made and charged at their recorded cost
    agent = _agent(tmp_path / "b", budget=worst * 1.01)
    (agent.dir / "study.toml").write_text(text)
    r = dispatch(agent, "run_study", {"path": "study.toml"})
    assert r.ok, r.content
    assert len(server.requests) == 6
    info = read_json(_api_run(tmp_path / "b" / "out") / "record.json")["model_info"]
    [rec] = agent.ledger.studies
    assert rec.calls == 6 and rec.models == ["openai:gpt-5-mini"]
    assert rec.cost_usd == pytest.approx(info["cost_usd"]) and rec.worst_case_usd == worst
    assert agent.ledger.budget_spent == pytest.approx(info["cost_usd"])
    llm = read_json(agent.dir / "metrics.json")["llm"]
    assert llm["study_api_cost_usd"] == pytest.approx(info["cost_usd"])
    assert llm["budget_spent_usd"] == pytest.approx(info["cost_usd"], abs=1e-6)
    from smollab.cli.agent import _study_api_line

    line = _study_api_line(llm)
    assert line.startswith("; API models in its studies: 6 calls, cost $0.0")
    assert line.endswith("of the budget used")
    # resume restores the charge; the same study again is free (its runs are reused)
    restored = Ledger("scripted", "x", worst * 1.01)
    restored.restore(read_json(agent.dir / "metrics.json"))
    assert restored.budget_spent == pytest.approx(agent.ledger.budget_spent)
    assert dispatch(agent, "run_study", {"path": "study.toml"}).ok
    assert len(server.requests) == 6 and len(agent.ledger.studies) == 1


def test_an_agents_failed_api_study_is_charged_its_bound(
    tmp_path: Path, server: Replay, monkeypatch: pytest.MonkeyPatch, report_ready
) -> None:
    """A run that fails part-way leaves its cost unknown: the budget is charged the worst case
    checked before the study, so it stays a hard bound."""
    from smollab.agent.tools import dispatch

    text = _priced(server.url + "/v1", monkeypatch)
    worst = pending_api_bounds(loads_spec(text), tmp_path / "none")[0].worst_usd
    server.respond = lambda body: (400, '{"error": {"message": "bad request", "type": "x"}}')
    agent = _agent(tmp_path, budget=1.0)
    (agent.dir / "study.toml").write_text(text)
    r = dispatch(agent, "run_study", {"path": "study.toml"})
    assert not r.ok and "runs failed" in r.content
    assert server.requests  # calls were attempted
    [rec] = agent.ledger.studies
    assert rec.cost_usd is None and rec.worst_case_usd == worst
    assert agent.ledger.budget_spent == pytest.approx(worst)
    assert read_json(agent.dir / "metrics.json")["llm"]["study_api_cost_usd"] is None


def test_an_agents_study_with_an_unpriced_api_model(tmp_path: Path, server: Replay) -> None:
    """A --base-url server has no price: under a budget its calls cannot be bounded, so the
    study is refused; without one it runs and its cost is recorded as unknown."""
    from smollab.agent.tools import dispatch

    text = spec_text(server.url + "/v1")
    agent = _agent(tmp_path / "a", budget=1.0)
    (agent.dir / "study.toml").write_text(text)
    r = dispatch(agent, "run_study", {"path": "study.toml"})
    assert not r.ok and "openai:local, whose price is unknown" in r.content
    assert server.requests == []
    agent = _agent(tmp_path / "b", budget=None)
    (agent.dir / "study.toml").write_text(text)
    assert dispatch(agent, "run_study", {"path": "study.toml"}).ok
    assert len(server.requests) == 6
    [rec] = agent.ledger.studies
    assert rec.calls == 6 and rec.cost_usd is None and rec.worst_case_usd == 0.0
    assert read_json(agent.dir / "metrics.json")["llm"]["study_api_cost_usd"] is None


def test_estimate_prices_a_study_without_a_key_or_a_call(
    tmp_path: Path, server: Replay, monkeypatch: pytest.MonkeyPatch, cli, report_ready
) -> None:
    """`smollab estimate SPEC.toml` gives the bound `smollab study --budget-usd` enforces, before
    any key is set or call made; runs already done are free."""
    from tests.conftest import one_line

    text = _priced(server.url + "/v1", monkeypatch)
    spec = tmp_path / "api.toml"
    spec.write_text(text)
    out = tmp_path / "o"
    monkeypatch.delenv("OPENAI_API_KEY")
    r = cli("estimate", spec, "--out", out)
    said = one_line(r.stdout)
    assert r.returncode == 0, r.stderr
    m = re.search(r"openai:gpt-5-mini[ │]+6[ │]+6[ │]+\$(0\.\d{6})", said)
    assert m, said
    worst = float(m.group(1))
    assert worst > 0 and "--budget-usd B` refuses to start if this is above B" in said
    assert server.requests == [] and not out.exists()
    # the study checks the same bound: just under it is refused, just over it runs
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000")
    r = cli("study", spec, "--out", out, "--no-pdf", "--budget-usd", f"{worst * 0.99:.6f}")
    assert r.returncode == 4 and f"could cost up to ${worst:.6f}" in one_line(r.stderr)
    assert server.requests == []
    r = cli("study", spec, "--out", out, "--no-pdf", "--budget-usd", f"{worst * 1.01:.6f}")
    assert r.returncode == 0, r.stderr
    assert len(server.requests) == 6
    r = cli("estimate", spec, "--out", out)
    assert r.returncode == 0 and "no API call is left to make" in one_line(r.stdout)


def test_estimate_of_a_local_study_and_bad_flags(tmp_path: Path, cli) -> None:
    from tests.conftest import one_line

    spec = tmp_path / "local.toml"
    spec.write_text(
        '[study]\nname = "loc"\nseeds = [0]\n' + LOCAL + ADD
        + '\n[[conditions]]\nname = "b"\nmodel = "tiny"\nformat = "compact"\n'
    )  # fmt: skip
    r = cli("estimate", spec)
    assert r.returncode == 0 and "names no API model" in one_line(r.stdout)
    r = cli("estimate", spec, "--agent", "openai:gpt-5-mini")
    err = one_line(r.stderr)
    assert r.returncode == 2 and "is a study spec" in err and "Drop --agent" in err
    assert "Traceback" not in r.stderr


def test_the_bound_of_a_benchmark_task_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounding a run not started reads its samples if any and writes no file or folder."""
    from smollab.study.session import pending_api_bounds

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    text = _priced("http://127.0.0.1:9/v1", monkeypatch, local=False, tasks=GSM)
    monkeypatch.delenv("OPENAI_API_KEY")
    [b] = pending_api_bounds(loads_spec(text), tmp_path / "s")
    assert (b.source, b.calls, b.uncached) == ("openai:gpt-5-mini", 2, 2)
    assert b.worst_usd is not None and b.worst_usd > 0
    assert list(tmp_path.iterdir()) == []
