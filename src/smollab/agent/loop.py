"""The research loop: plan -> act (spec, run) -> critique -> decide, then the write-up.

One :class:`Agent` drives one session folder. Each iteration writes ``plans.txt`` and
``critiques.txt`` and records its stage in ``session.json``; every model reply and tool result
goes to ``transcript.jsonl`` (see :mod:`smollab.agent.state` for how resume replays it). The
ledger checks the budget before every call; the limits (iterations, budget, tool steps, sandbox)
are attributes of the Agent, never files the model can write.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smollab.agent import tools as T
from smollab.agent.checks import review, summarize
from smollab.agent.claims import check_claims, stated_constants
from smollab.agent.context import context_block, summarize_code
from smollab.agent.state import AgentState
from smollab.agent.writeup import (
    disclose_html,
    disclose_md,
    disclose_tex,
    fallback_sentence,
    insert_prose,
    keep_version,
    log_tail,
    missing_write_up,
    no_write_up_note,
    not_compiled_note,
)
from smollab.errors import ConfigError, SmollabError
from smollab.io import read_json
from smollab.providers.base import Provider, Reply, ToolCall
from smollab.providers.ledger import BudgetExceeded, Ledger
from smollab.providers.redact import Redactor
from smollab.study.problem import Problem

PROMPTS = Path(__file__).with_name("prompts")
MAX_TOOL_STEPS = 8
MAX_WRITE_ATTEMPTS = 3
MAX_LATEX_ATTEMPTS = 3
MAX_TOKENS = {"plan": 800, "act": 2000, "critique": 800, "decide": 300, "write": 1500}


def prompt(name: str, **values: Any) -> str:
    """The ``prompts/<name>.md`` text with ``{name}`` placeholders filled (``{{key}}`` stays)."""
    text = (PROMPTS / f"{name}.md").read_text(encoding="utf-8")
    return re.sub(
        r"(?<!\{)\{(\w+)\}(?!\})",
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
        text,
    )


@dataclass
class Limits:
    """What the user fixed; the model cannot change any of it."""

    max_iterations: int = 3
    budget_usd: float | None = None
    max_tool_steps: int = MAX_TOOL_STEPS
    pdf: bool = True
    workers: int | None = None
    max_output_tokens: int | None = None
    """Cap on every call's output (small local models ramble to the stage maximum)."""


@dataclass
class AgentResult:
    session_dir: Path
    iterations: int
    finished: bool
    stop_reason: str
    claims_ok: bool
    paper_pdf: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)


class Agent:
    def __init__(
        self,
        problem: Problem,
        provider: Provider,
        *,
        out_root: Path,
        session_name: str | None = None,
        limits: Limits | None = None,
        code_dir: Path | None = None,
        sandbox_limits: Any = None,
        on_event: Any = None,
        executor: Any = None,
    ) -> None:
        self.problem = problem
        self.provider = provider
        self.limits = limits or Limits()
        self.out_root = Path(out_root)
        self.name = session_name or problem.spec.study.name
        self.dir = self.out_root / self.name
        self.redactor = Redactor()
        self.state = AgentState(self.dir, self.redactor)
        self.ledger = Ledger(provider.name, provider.model, self.limits.budget_usd)
        self.code_summary = summarize_code(code_dir) if code_dir else None
        self.sandbox_limits = sandbox_limits
        self.emit = on_event or (lambda e: None)
        self.executor = executor  # None: a LocalProcessExecutor per study
        self.call_no = 0
        self.bookkeeping_s = 0.0
        self.study_s = 0.0
        self._log_filter = self.redactor.logging_filter()
        self._plans: dict[int, str] = {}
        self._critiques: dict[int, str] = {}
        # the fallback_run result while the latest results come from the problem's reference
        # protocol run in place of the agent's study (None once the agent's own study ran)
        self._fallback: dict[str, Any] | None = None
        # the cached prefix of every call: identical bytes each time, so the cache hits
        self.system = prompt("system")
        self.context = context_block(self.problem.text, self.code_summary)

    # ------------------------------------------------------------------ entry points

    def run(self, *, start_iteration: int | None = None) -> AgentResult:
        """Run (or resume) the session to its end; raises BudgetExceeded/ProviderError with the
        state saved."""
        logging.getLogger().addFilter(self._log_filter)
        try:
            return self._run(start_iteration)
        finally:
            logging.getLogger().removeFilter(self._log_filter)
            t0 = time.perf_counter()
            self.redactor.sweep(self.dir)
            self.bookkeeping_s += time.perf_counter() - t0

    def _run(self, start_iteration: int | None) -> AgentResult:
        t0 = time.perf_counter()
        self.ledger.check_budget_configured()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "code").mkdir(exist_ok=True)
        resuming = "iteration" in self.state.session_info()
        if resuming:
            metrics = self.dir / "metrics.json"
            if metrics.exists():
                self.ledger.restore(read_json(metrics))
        self.state.load_transcript(before_iteration=start_iteration)
        if not resuming:
            self.state.write_text("problem.md", self.problem.text)
            if not (self.dir / "study.toml").exists():
                self.state.write_text("study.toml", self.problem.protocol_text)
            self.state.write_text("plans.txt", "")
            self.state.write_text("critiques.txt", "")
        self.state.set_stage(
            0,
            "start",
            agent=f"{self.provider.name}:{self.provider.model}",
            max_iterations=self.limits.max_iterations,
            status="running",
        )
        self.state.log(
            "agent_start",
            resumed=resuming,
            recorded_calls=self.state.n_recorded(),
            start_iteration=start_iteration,
        )
        self.bookkeeping_s += time.perf_counter() - t0
        finished, stop = False, "max_iterations"
        it = 0
        try:
            for it in range(1, self.limits.max_iterations + 1):
                if self._iteration(it):
                    finished, stop = True, "finished"
                    break
            claims_ok, pdf = self._write_up(it)
        except BudgetExceeded:
            self.state.set_stage(it, self.state.session_info().get("stage", "?"), status="budget")
            self.state.log("budget_exceeded", spent=self.ledger.budget_spent)
            self._save_metrics()
            raise
        except SmollabError as e:
            self.state.set_stage(it, self.state.session_info().get("stage", "?"), status="failed")
            self.state.log("error", message=e.render())
            self._save_metrics()
            raise
        self.state.set_stage(it, "done", status="done", stop_reason=stop)
        self.state.log("agent_done", iterations=it, stop_reason=stop, claims_ok=claims_ok)
        saved = self._save_metrics()
        return AgentResult(self.dir, it, finished, stop, claims_ok, pdf, saved)

    # ------------------------------------------------------------------ one iteration

    def _iteration(self, it: int) -> bool:
        """One plan-act-critique-decide cycle; True when the model chose to finish."""
        self._stage(it, "plan")
        plan = self._converse(
            it,
            "plan",
            prompt(
                "plan", iteration=it, max_iterations=self.limits.max_iterations, state=self._brief()
            ),
        )
        self._plans[it] = plan.strip() or "(no plan given)"
        self._rewrite_notes("plans.txt", self._plans, "Plan")

        self._stage(it, "act")
        ran = {"ok": False}
        self._converse(
            it, "act", prompt("act", iteration=it, plan=plan, state=self._brief()), ran=ran
        )
        if not ran["ok"]:
            self.state.log("act_without_run", iteration=it)
            if self._results() is None:
                self._fallback_run(it)

        self._stage(it, "critique")
        t0 = time.perf_counter()
        results = self._results()
        checks = review(results, self.dir) if results else ["No results yet: no study has run."]
        self.bookkeeping_s += time.perf_counter() - t0
        text = self._converse(
            it,
            "critique",
            prompt(
                "critique",
                iteration=it,
                checks="\n".join(f"- {c}" for c in checks),
                results=summarize(results) if results else "(none)",
            ),
        )
        auto = "\n".join(f"- {c}" for c in checks)
        self._critiques[it] = f"Automated checks:\n{auto}\n\nThe agent's critique:\n{text.strip()}"
        self._rewrite_notes("critiques.txt", self._critiques, "Critique")

        self._stage(it, "decide")
        decision = {"finish": False}
        self._converse(
            it,
            "decide",
            prompt(
                "decide",
                iteration=it,
                max_iterations=self.limits.max_iterations,
                critique=self._critiques[it],
            ),
            decision=decision,
        )
        self.state.log("decision", iteration=it, finish=decision["finish"])
        return decision["finish"]

    def _stage(self, it: int, stage: str) -> None:
        self.state.set_stage(it, stage, status="running")
        self.state.log("stage", iteration=it, stage=stage)
        self.emit({"event": "agent_stage", "iteration": it, "stage": stage})

    # ------------------------------------------------------------------ model calls

    def _converse(
        self,
        it: int,
        stage: str,
        user: str,
        *,
        ran: dict[str, bool] | None = None,
        decision: dict[str, bool] | None = None,
    ) -> str:
        """One stage's conversation: call, run the tools it asks for, repeat until it answers
        in text (or the tool-step limit); return the final text."""
        allowed = T.STAGE_TOOLS[stage]
        tools = [T.SPECS[n] for n in allowed]
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
        text = ""
        for _ in range(self.limits.max_tool_steps):
            reply = self._call(it, stage, messages, tools)
            text = reply.text
            if not reply.tool_calls:
                return text
            messages.append(
                {
                    "role": "assistant",
                    "content": reply.text,
                    "tool_calls": reply.tool_calls,
                    "json_mode": reply.stop_reason == "json_tool_call",
                }
            )
            stop = False
            for call in reply.tool_calls:
                res = self._tool(it, stage, call, allowed)
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "name": call.name,
                        "content": res["content"],
                        "image_b64": res.get("image_b64"),
                        "json_mode": reply.stop_reason == "json_tool_call",
                    }
                )
                if res.get("ran_study") and res.get("ok"):
                    self._fallback = None  # the agent's own study ran: its results stand
                    if ran is not None:
                        ran["ok"] = True
                if decision is not None and (res.get("finished") or res.get("continue_research")):
                    decision["finish"] = bool(res.get("finished"))
                    stop = True
            if stop:
                return text
        self.state.log("tool_steps_exhausted", iteration=it, stage=stage)
        return text

    def _call(self, it: int, stage: str, messages: list[dict[str, Any]], tools: list[Any]) -> Reply:
        self.call_no += 1
        rec = self.state.recorded_reply(self.call_no)
        if rec is not None:
            return Reply.from_dict(rec["reply"])
        if hasattr(self.provider, "skip"):
            # a scripted provider serves reply N to call N, also after replayed calls
            self.provider.skip(self.call_no - 1)
        t0 = time.perf_counter()
        chars = (
            len(self.system)
            + len(self.context)
            + sum(
                len(str(m.get("content"))) + len(str(m.get("tool_calls") or "")) for m in messages
            )
            + sum(len(t.description) + len(str(t.parameters)) for t in tools)
        )
        max_tokens = min(MAX_TOKENS[stage], self.limits.max_output_tokens or MAX_TOKENS[stage])
        worst = self.ledger.before_call(chars, max_tokens)
        self.state.log(
            "call_start", call=self.call_no, iteration=it, stage=stage, worst_case_usd=worst
        )
        self.bookkeeping_s += time.perf_counter() - t0
        start = time.perf_counter()
        reply = self.provider.complete(
            self.system, messages, tools, max_tokens=max_tokens, cached_context=self.context
        )
        latency = time.perf_counter() - start
        t0 = time.perf_counter()
        rec_ = self.ledger.record(
            stage=stage, iteration=it, usage=reply.usage, latency_s=latency, worst=worst
        )
        # the ledger first: a crash before the transcript line repeats (and re-charges) this
        # call on resume, which keeps the budget a conservative bound
        self._save_metrics()
        self.state.record(
            {
                "kind": "reply",
                "call": self.call_no,
                "iteration": it,
                "stage": stage,
                "reply": reply.to_dict(),
            }
        )
        self.state.log(
            "call_end",
            call=self.call_no,
            iteration=it,
            stage=stage,
            cost_usd=rec_.cost_usd,
            input_tokens=rec_.input_tokens,
            output_tokens=rec_.output_tokens,
            latency_s=rec_.latency_s,
        )
        self.bookkeeping_s += time.perf_counter() - t0
        return reply

    def _tool(self, it: int, stage: str, call: ToolCall, allowed: list[str]) -> dict[str, Any]:
        rec = self.state.recorded_tool(self.call_no, call.id)
        if rec is not None:
            return rec["result"]
        err = T.check_args(call.name, call.arguments, allowed)
        if err is not None:
            res = T.ToolResult(f"ERROR: {err}", ok=False)
        else:
            assert call.arguments is not None
            res = T.dispatch(self, call.name, call.arguments)
        out = {
            "content": res.content,
            "ok": res.ok,
            "image_b64": res.image_b64,
            "ran_study": res.ran_study,
            "finished": res.finished,
            "continue_research": res.continue_research,
        }
        self.state.record(
            {
                "kind": "tool",
                "call": self.call_no,
                "tool_call_id": call.id,
                "iteration": it,
                "stage": stage,
                "name": call.name,
                "result": out,
            }
        )
        self.state.log(
            "tool", iteration=it, stage=stage, name=call.name, ok=res.ok, summary=res.content[:300]
        )
        return out

    # ------------------------------------------------------------------ the study

    def run_study_file(self, path: Path) -> str:
        """Validate and run a spec of the session; the results summary (errors raise)."""
        from smollab.study.executor import LocalProcessExecutor
        from smollab.study.session import run_study
        from smollab.study.spec import loads_spec

        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(self.dir.resolve()).as_posix()
        spec = loads_spec(text, rel)
        api = sorted({m.source for m in spec.models if m.is_api})
        worst = None
        if api:
            # the study's API calls count against this session's budget: their worst case
            # must fit in what is left of it before any is made
            from smollab.study.session import pending_api_bounds

            worst = self.ledger.before_study(pending_api_bounds(spec, self.dir), rel)
        if rel != "study.toml":
            self.state.write_text("study.toml", text)
        t0 = time.perf_counter()
        self.emit({"event": "agent_study", "study": spec.study.name})
        it = self.state.session_info().get("iteration", 0)
        try:
            res = run_study(
                spec,
                text,
                out_root=self.out_root,
                session_name=self.name,
                problem_text=self.problem.text,
                executor=self.executor
                or LocalProcessExecutor(
                    workers=self.limits.workers or spec.execution.workers,
                    threads_per_worker=None
                    if self.limits.workers
                    else spec.execution.threads_per_worker,
                ),
                on_event=self.emit,
                pdf=False,
                notes=False,
            )
        except BaseException:
            if worst:  # what ran is not known here: charge the bound
                self._charge_study(it, rel, api, worst, None)
            raise
        finally:
            self.study_s += time.perf_counter() - t0
        if worst is not None:
            self._charge_study(it, rel, api, worst, res.outcomes)
        hist = self.dir / "results" / f"iteration-{it}"
        hist.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.dir / "results" / "results.json", hist / "results.json")
        shutil.copyfile(path, hist / "study.toml")
        # run_study marks its own stages in session.json; put the agent's back
        self.state.set_stage(it, "act", status="running")
        return "The study ran. Results:\n" + summarize(res.results)

    def _charge_study(
        self, it: int, rel: str, api: list[str], worst: float, outcomes: list[Any] | None
    ) -> None:
        """Charge the ledger for a study's API calls and save ``metrics.json``: the calls and
        cost the runs it executed recorded (``model_info``), or, where a run failed, a cost is
        unknown or the study did not finish (``outcomes`` None), the worst case checked before
        it started."""
        calls, cost = 0, None if outcomes is None else 0.0
        for o in outcomes or []:
            rp = o.job.run_dir / "record.json"
            info = read_json(rp).get("model_info", {}) if o.ok and rp.exists() else None
            if info is None:
                cost = None
            elif "api" in info:
                calls += int(info.get("calls") or 0)
                known = info.get("cost_usd")
                cost = None if known is None or cost is None else cost + float(known)
        if not worst and not calls:
            return
        rec = self.ledger.record_study(
            iteration=it, study=rel, models=api, calls=calls, cost_usd=cost, worst_case_usd=worst
        )
        self.state.log("study_api_charged", **asdict(rec))
        self._save_metrics()

    def _fallback_run(self, it: int) -> None:
        """No study has run yet and the model did not run one: run the current study.toml
        (the problem's reference protocol unless the model wrote a valid one), so that the
        critique and the paper rest on real runs. Recorded like a tool call, so resume replays
        it instead of running it twice."""
        rec = self.state.recorded_tool(self.call_no, "fallback_run")
        if rec is not None:
            self._note_fallback(rec["result"])
            return
        reference = (self.dir / "study.toml").read_text(encoding="utf-8") == (
            self.problem.protocol_text
        )
        reason = "the agent ran no study"
        try:
            summary = self.run_study_file(self.dir / "study.toml")
            ok = True
        except BudgetExceeded:  # a valid study whose API calls do not fit: the session stops
            raise
        except SmollabError as e:
            spec = self.problem.protocol_text
            self.state.write_text("study.toml", spec)
            self.state.log("fallback_spec_invalid", error=e.render())
            # the hint addressed to the model ("Fix these fields ...") is no reason
            error = re.sub(r"\s*Fix these fields.*$", "", e.render(), flags=re.S).strip()
            reason = f"its study spec was invalid: {error}"
            summary = self.run_study_file(self.dir / "study.toml")
            ok, reference = False, True
        result = {"content": summary, "ok": ok, "reference_protocol": reference, "reason": reason}
        self._note_fallback(result)
        self.state.record(
            {
                "kind": "tool",
                "call": self.call_no,
                "tool_call_id": "fallback_run",
                "iteration": it,
                "stage": "act",
                "name": "fallback_run",
                "result": result,
            }
        )
        self.state.log(
            "fallback_run",
            iteration=it,
            spec_was_valid=ok,
            reference_protocol=reference,
            reason=reason,
        )

    def _note_fallback(self, result: dict[str, Any]) -> None:
        """Remember a fallback run of the reference protocol for the write-up's disclosure
        (records written before ``reference_protocol`` existed: an invalid spec means it)."""
        if result.get("reference_protocol", result.get("ok") is False):
            self._fallback = result

    def _results(self) -> dict[str, Any] | None:
        p = self.dir / "results" / "results.json"
        return read_json(p) if p.exists() else None

    def results_summary(self) -> str:
        res = self._results()
        hist = sorted(
            p.parent.name for p in (self.dir / "results").glob("iteration-*/results.json")
        )
        head = f"Result files of earlier iterations: {hist or 'none'}\n"
        return head + (summarize(res) if res else "No results yet: run a study first.")

    def _brief(self) -> str:
        spec = (self.dir / "study.toml").read_text(encoding="utf-8")
        res = self._results()
        return (
            f"Current study.toml:\n```toml\n{spec}\n```\n"
            + ("Latest results:\n" + summarize(res) if res else "No results yet.")
            + (
                "\nLast critique:\n" + self._critiques[max(self._critiques)]
                if self._critiques
                else ""
            )
        )

    def _rewrite_notes(self, fname: str, notes: dict[int, str], title: str) -> None:
        self.state.write_text(
            fname, "".join(f"== {title}, iteration {i} ==\n{notes[i]}\n\n" for i in sorted(notes))
        )

    # ------------------------------------------------------------------ write-up

    def _write_up(self, it: int) -> tuple[bool, Path | None]:
        from smollab.report.pdf import build_pdf

        self._stage(it, "write")
        results = self._results()
        if results is None:
            self.state.log("no_results_no_paper")
            return False, None
        spec_text = (self.dir / "study.toml").read_text(encoding="utf-8")
        constants = stated_constants(self.problem.text, spec_text)
        from smollab.agent.checks import constants_from

        disclosure = fallback_sentence(self._fallback) if self._fallback else None
        user = prompt(
            "write",
            results=summarize(results),
            constants=constants_from(self.problem.text, spec_text),
            provenance=prompt("write_fallback") if disclosure else "",
        )
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
        report = None
        missing: str | None = None
        for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
            prose = self._call(it, "write", messages, []).text
            report = check_claims(prose, results, constants)
            missing = missing_write_up(prose)
            if missing:
                report.problems.append(f"{missing}: write the discussion section")
            self.state.log("claims", attempt=attempt, ok=report.ok, problems=report.problems)
            if report.ok:
                break
            messages += [
                {"role": "assistant", "content": prose},
                {
                    "role": "user",
                    "content": prompt(
                        "write_fix", problems="\n".join(f"- {p}" for p in report.problems)
                    ),
                },
            ]
        assert report is not None
        claims_ok = report.ok
        if missing:
            # no write-up: the offline one stays, and says so (never the placeholder)
            from smollab.report.render import latex_escape

            prose_text = latex_escape(no_write_up_note())
            md_text = no_write_up_note()
        elif not claims_ok:
            prose_text = (
                "The agent's prose was withheld: it still contained unverified numbers after "
                f"{MAX_WRITE_ATTEMPTS} attempts (see claims.json)."
            )
            md_text = prose_text
        else:
            prose_text = report.rendered
            md_text = prose_text.replace("\\%", "%")
        self.state.write_json(
            "paper/claims.json",
            {
                "ok": claims_ok,
                "problems": report.problems,
                "references": report.references,
                "numbers_checked": report.numbers_checked,
                "write_up": missing is None,
                "reference_protocol_ran": disclosure,
                # False: the prose broke LaTeX to the end and was left out (_leave_prose_out)
                "prose_in_paper": claims_ok,
            },
        )
        self._stage(it, "report")
        paper_tex = self._report()
        base_tex = paper_tex.read_text(encoding="utf-8") if paper_tex else ""
        if disclosure:
            base_tex = disclose_tex(base_tex, disclosure) if base_tex else base_tex
            self._disclose_reports(disclosure)
        self.state.write_text("paper/prose.tex", prose_text + "\n")
        self.state.append_text(
            "report.md", "\n## Analysis by the research agent\n\n" + md_text + "\n"
        )
        self.state.write_text(
            "paper/paper.tex", insert_prose(base_tex, prose_text, verified=claims_ok)
        )
        if not (self.limits.pdf and paper_tex):
            return claims_ok, None
        from smollab.report import tex_available

        if tex_available() is None:
            self.state.log("pdf_skipped", reason="no TeX engine")
            return claims_ok, None
        pdf = None
        for attempt in range(1, MAX_LATEX_ATTEMPTS + 1):
            self._stage(it, "latex")
            pdf = build_pdf(self.dir / "paper" / "paper.tex")
            self.state.log("latex", attempt=attempt, ok=pdf is not None)
            if pdf is not None:
                keep_version(self.dir / "paper", pdf)
                break
            if attempt == MAX_LATEX_ATTEMPTS or not claims_ok:
                break
            messages += [
                {"role": "assistant", "content": prose_text},
                {"role": "user", "content": prompt("latex_fix", log=log_tail(self.dir / "paper"))},
            ]
            text = self._call(it, "write", messages, []).text
            fixed = check_claims(text, results, constants)
            if fixed.ok and missing_write_up(text) is None:
                prose_text = fixed.rendered
                self.state.write_text("paper/prose.tex", prose_text + "\n")
                self.state.write_text("paper/paper.tex", insert_prose(base_tex, prose_text))
        if pdf is None and claims_ok:
            pdf = self._leave_prose_out(base_tex)
        return claims_ok, pdf

    def _leave_prose_out(self, base_tex: str) -> Path | None:
        """The agent's verified prose still broke LaTeX when the fix loop was spent: build the
        paper with smollab's note in its place, so that the session still ends with a PDF (the
        prose stays in ``paper/prose.tex``, the TeX error goes to the session log). When that
        build fails too, the prose was not the fault: ``paper.tex`` gets it back."""
        from smollab.report.pdf import build_pdf
        from smollab.report.render import latex_escape

        paper = self.dir / "paper"
        tex_error = log_tail(paper)
        with_prose = (paper / "paper.tex").read_text(encoding="utf-8")
        note = latex_escape(not_compiled_note(MAX_LATEX_ATTEMPTS))
        self.state.write_text("paper/paper.tex", insert_prose(base_tex, note, verified=False))
        pdf = build_pdf(paper / "paper.tex")
        self.state.log(
            "prose_left_out",
            ok=pdf is not None,
            latex_attempts=MAX_LATEX_ATTEMPTS,
            tex_error=tex_error,
        )
        if pdf is None:
            self.state.write_text("paper/paper.tex", with_prose)
            return None
        keep_version(paper, pdf)
        claims = read_json(paper / "claims.json")
        self.state.write_json("paper/claims.json", {**claims, "prose_in_paper": False})
        return pdf

    def _disclose_reports(self, sentence: str) -> None:
        """Put ``sentence`` near the top of ``report.md`` and ``report.html``."""
        for name, disclose in (("report.md", disclose_md), ("report.html", disclose_html)):
            path = self.dir / name
            if path.exists():
                self.state.write_text(name, disclose(path.read_text(encoding="utf-8"), sentence))

    def _report(self) -> Path | None:
        """The report layer's paper for this session's study kind (no PDF yet)."""
        from smollab.study.kinds import get_kind
        from smollab.study.spec import StudyMeta

        # the kind of the study that produced results.json (study.toml may have been edited
        # since, even into an invalid spec)
        results = self._results() or {}
        kind = (results.get("study") or {}).get("kind") or StudyMeta.model_fields["kind"].default
        paper_tex, _ = get_kind(kind).report(self.dir, pdf=False)
        return paper_tex

    # ------------------------------------------------------------------ metrics

    def _save_metrics(self) -> dict[str, Any]:
        path = self.dir / "metrics.json"
        prev = read_json(path) if path.exists() else {}
        m = {
            **prev,
            "llm": self.ledger.summary(),
            "agent": {
                "bookkeeping_s": round(self.bookkeeping_s, 4),
                "study_s": round(self.study_s, 4),
            },
        }
        self.state.write_json("metrics.json", m)
        return m


def check_session_dir(out_root: Path, name: str, *, resume: bool) -> Path:
    from smollab.study.session import check_session_name

    check_session_name(name)
    d = Path(out_root) / name
    if not resume and (d / "transcript.jsonl").exists():
        raise ConfigError(
            f"Session {d} already exists. Continue it with `smollab resume {d}` or pass a new "
            "--session-name."
        )
    return d
