"""Write-up compile-and-fix loop, preflight, API reference and code summary, figure tool."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from smollab.agent import Agent, Limits
from smollab.agent.context import api_reference, summarize_code
from smollab.agent.preflight import preflight
from smollab.agent.tools import dispatch
from smollab.errors import ConfigError
from smollab.io import read_json, read_jsonl
from smollab.providers import make_provider
from smollab.study.problem import load_problem
from tests.agent.scripts import PROBLEM, scripted_agent, write_script
from tests.conftest import with_source

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results_sample.json"
REF = "{{conditions.finetune_full.tasks.mul.overall.exact_match.estimate|pct}}"


def _agent(tmp: Path, replies: list[dict[str, Any]], pdf: bool = True) -> Agent:
    a = scripted_agent(tmp, replies, name="w", limits=Limits(pdf=pdf))
    d = a.dir
    (d / "results").mkdir(parents=True)
    shutil.copyfile(FIXTURE, d / "results" / "results.json")
    (d / "study.toml").write_text(load_problem(tmp / "problem.md").protocol_text)
    return a


def test_compile_fix_loop_keeps_versions(
    tmp_path: Path, report_ready: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not report_ready:
        pytest.skip("needs the real report package")
    import smollab.report.pdf as pdfmod

    calls = {"n": 0}

    def fake_build(tex: Path, **kw: Any) -> Path | None:
        calls["n"] += 1
        (tex.parent / "build.log").write_text("! Undefined control sequence \\badmacro\n")
        if "\\badmacro" in tex.read_text():
            return None  # the failed build keeps the previous PDF (report layer contract)
        out = tex.with_suffix(".pdf")
        out.write_bytes(b"%PDF-1.5 fake " + str(calls["n"]).encode())
        return out

    monkeypatch.setattr(pdfmod, "build_pdf", fake_build)
    monkeypatch.setattr("smollab.report.tex_available", lambda: "pdflatex")
    a = _agent(tmp_path, [{"text": f"We saw {REF} \\badmacro."}, {"text": f"We saw {REF}."}])
    a._write_up(1)
    paper = a.dir / "paper"
    assert calls["n"] == 2
    assert [p.name for p in sorted((paper / "versions").glob("*.pdf"))] == ["paper-v1.pdf"]
    assert (paper / "paper.pdf").read_bytes().startswith(b"%PDF")
    assert "\\badmacro" not in (paper / "paper.tex").read_text()
    assert f"{0.5495 * 100:.1f}\\%" in (paper / "paper.tex").read_text()
    # the fix prompt carried the TeX error back to the writer
    log = read_jsonl(a.dir / "session_log.jsonl")
    assert [e["ok"] for e in log if e["event"] == "latex"] == [False, True]


def test_unverified_prose_is_withheld(tmp_path: Path, report_ready: bool) -> None:
    if not report_ready:
        pytest.skip("needs the real report package")
    a = _agent(tmp_path, [{"text": "Accuracy was 77.7%."}] * 3, pdf=False)
    ok, _ = a._write_up(1)
    assert not ok
    tex = (a.dir / "paper" / "paper.tex").read_text()
    assert "77.7" not in tex and "withheld" in tex
    claims = read_json(a.dir / "paper" / "claims.json")
    assert claims["ok"] is False and "'77.7%'" in claims["problems"][0]


def test_preflight_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prob = tmp_path / "p.md"
    prob.write_text(PROBLEM)
    script = write_script(tmp_path / "s.json", [])
    checks = preflight(make_provider(f"scripted:{script}"), load_problem(prob), tmp_path)
    names = [c.name for c in checks]
    assert names == ["key", "sandbox", "TeX", "disk", "models / data"]
    assert all(c.status in ("ok", "warn") for c in checks)
    # a hub model that is not cached, offline: found by preflight, before any model call
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    prob.write_text(with_source(PROBLEM, "nobody/not-cached-model"))
    with pytest.raises(ConfigError, match="Preflight failed: models / data"):
        preflight(make_provider(f"scripted:{script}"), load_problem(prob), tmp_path)
    # a local model path that is not there is refused with the spec, earlier still
    prob.write_text(with_source(PROBLEM, "/no/such/model"))
    with pytest.raises(ConfigError, match=r"field 'models\[0\]\.source' is '/no/such/model'"):
        load_problem(prob)


def test_api_reference_covers_every_spec_field() -> None:
    from smollab.study.spec import ConditionSpec, StudyMeta, TrainSpec

    ref = api_reference()
    for cls in (StudyMeta, ConditionSpec, TrainSpec):
        for f in cls.model_fields:
            assert f"`{f}`" in ref, f
    assert "arith.mul" in ref and "`compact`" in ref
    # every task's own fields, each config once, in the order the task list first names them
    # (pretraining's corpus task and its `kind` included)
    assert "task `corpus` (fields: CorpusConfig)" in ref and "'pretrain'" in ref
    named = re.findall(r"\(fields: (\w+)\)", ref)
    sections = re.findall(r"^#+ (\w+) fields$", ref, flags=re.M)
    assert sections == list(dict.fromkeys(named)) and "CorpusConfig" in sections


def test_code_summary_within_budget(tmp_path: Path) -> None:
    for i in range(40):
        (tmp_path / f"mod{i:02d}.py").write_text(
            f'"""Module {i}."""\n\ndef train_{i}(x: int) -> int:\n    """Train it."""\n'
            "    return x\n" + "# padding\n" * 50
        )
    (tmp_path / "broken.py").write_text("def (:\n")
    s = summarize_code(tmp_path, token_budget=300)
    assert len(s) <= 300 * 4 + 200
    assert "def train_0(x: int)" in s and "more files left out by the token budget" in s
    full = summarize_code(tmp_path, token_budget=100_000)
    assert "broken.py (does not parse)" in full and "left out" not in full


def test_view_figure_and_run_code_errors(tmp_path: Path) -> None:
    a = _agent(tmp_path, [])
    (a.dir / "figures").mkdir()
    (a.dir / "figures" / "acc.png").write_bytes(b"\x89PNG fake")
    r = dispatch(a, "view_figure", {"path": "figures/acc.png"})
    assert r.ok and "cannot view images" in r.content  # scripted: no image input
    a.provider.supports_images = True  # type: ignore[misc]
    r = dispatch(a, "view_figure", {"path": "figures/acc.png"})
    assert r.image_b64
    assert "not a PNG figure" in dispatch(a, "view_figure", {"path": "study.toml"}).content
    r = dispatch(a, "run_code", {"path": "study.toml"})
    assert not r.ok and "code/ folder" in r.content
