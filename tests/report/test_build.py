"""build_report on the sample results: files, numbers traceability, verdict wording, HTML."""

from __future__ import annotations

import json
import re

from smollab.report import build_report
from smollab.report.figures import accuracy_by_difficulty

from ._numbers import consistent, printed_numbers, resolve, same_value, stray_numbers
from .conftest import load_sample

NO_DIFF = "no detectable difference"


def test_all_files_written(built):
    session, paths = built
    names = sorted(p.name for p in paths.figures)
    assert names == sorted(
        f"{stem}.{ext}"
        for stem in ("accuracy_by_difficulty_mul", "loss_curves", "error_taxonomy_mul")
        for ext in ("png", "pdf")
    )
    for p in [*paths.figures, paths.report_md, paths.report_html, paths.paper_tex]:
        assert p.is_file() and p.stat().st_size > 0, p
    assert paths.numbers_json == session / "paper" / "numbers.json"
    assert paths.paper_pdf is None  # pdf=False
    assert not list(session.rglob(".*.tmp")), "atomic-write temp files left behind"


def check_paper_numbers(session) -> dict:
    """Every number printed in the paper body is a printed value in numbers.json; every entry
    in numbers.json matches its text and the value at its path in results.json."""
    tex = (session / "paper" / "paper.tex").read_text()
    doc = json.loads((session / "paper" / "numbers.json").read_text())
    results = json.loads((session / "results" / "results.json").read_text())
    numbers = doc["numbers"]
    assert printed_numbers(tex), "no numbers found in the paper body"
    stray = stray_numbers(tex, numbers)
    assert not stray, f"numbers in paper.tex not in numbers.json: {stray}"
    for key, entry in numbers.items():
        assert consistent(entry), (key, entry)
        assert same_value(entry["value"], resolve(results, key)), key
    return numbers


def test_every_paper_number_is_traceable(built):
    session, _ = built
    numbers = check_paper_numbers(session)
    # the abstract's headline: 2x2 is the hardest stratum that improved (3x3 did not)
    for key in (
        "conditions.baseline.tasks.mul.strata.2x2.exact_match.estimate",
        "conditions.finetune_full.tasks.mul.strata.2x2.exact_match.estimate",
        "conditions.finetune_full.seeds.length",
        "tasks.mul.n_items.1x1",
    ):
        assert key in numbers, key
    assert (
        numbers["conditions.finetune_full.tasks.mul.strata.2x2.exact_match.estimate"]["text"]
        == "58.2%"
    )


def test_abstract_names_hardest_improved_stratum(built):
    session, _ = built
    tex = (session / "paper" / "paper.tex").read_text()
    abstract = tex.split(r"\begin{abstract}")[1].split(r"\end{abstract}")[0]
    assert r"detectable improvement is \texttt{2x2}" in abstract
    assert "58.2\\% [51.5, 64.7]" in abstract and "3.0\\% [1.4, 6.4]" in abstract
    assert r"\texttt{3x3}, \texttt{finetune\_full} showed no detectable difference" in abstract


def test_no_difference_is_never_called_an_improvement(built):
    session, _ = built
    comps = load_sample()["comparisons"]
    flat = [c["stratum"] for c in comps if c["verdict"] == NO_DIFF]
    assert flat == ["3x3"]
    texts = {
        "md": ((session / "report.md").read_text(), "`3x3`"),
        "tex": ((session / "paper" / "paper.tex").read_text(), r"\texttt{3x3}"),
        "html": ((session / "report.html").read_text(), "<code>3x3</code>"),
    }
    for kind, (text, ident) in texts.items():
        lines = [ln for ln in text.splitlines() if ident in ln]
        assert any(NO_DIFF in ln for ln in lines), kind
        bad = [ln for ln in lines if "improv" in ln.lower()]
        assert not bad, (kind, bad)


def test_results_table_format(built):
    session, _ = built
    md = (session / "report.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| `2x2` | 3.0%"))
    assert "3.0% [1.4, 6.4]" in row and "58.2% [51.5, 64.7]" in row and "84.1% [82.0, 86.1]" in row
    assert "| `finetune_full` | `2x2` | +55.2 pp [48.3, 62.0] | p < 0.001 | p < 0.001 |" in md
    assert "p = 1.000" in md


def test_html_is_self_contained(built):
    session, paths = built
    html = paths.report_html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "<script" not in html
    pngs = [p for p in paths.figures if p.suffix == ".png"]
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert "no detectable difference" in html and "58.2% [51.5, 64.7]" in html


def test_figures_are_deterministic(built, tmp_path):
    import matplotlib as mpl

    from smollab.report.figures import STYLE

    session, _ = built
    results = json.loads((session / "results" / "results.json").read_text())
    with mpl.rc_context(STYLE):
        again = accuracy_by_difficulty(results, "mul", tmp_path)
    for p in again:
        assert p.read_bytes() == (session / "figures" / p.name).read_bytes(), p.name
    assert b"CreationDate" not in again[1].read_bytes()


def test_baseline_only_renders(built_baseline):
    session, paths = built_baseline
    assert {p.stem for p in paths.figures} == {"accuracy_by_difficulty_mul", "error_taxonomy_mul"}
    md = paths.report_md.read_text()
    assert "n/a" in md and "nan" not in md.lower().replace("nanos", "")
    assert "No trained conditions." in md
    tex = paths.paper_tex.read_text()
    assert "improvement is" not in tex and "loss_curves" not in tex
    check_paper_numbers(session)


def test_missing_results_is_a_clear_error(tmp_path):
    import pytest

    from smollab.errors import DataError

    with pytest.raises(DataError, match="No results file"):
        build_report(tmp_path, pdf=False)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text('{"schema": "other/9"}')
    with pytest.raises(DataError, match="schema"):
        build_report(tmp_path, pdf=False)


def test_trained_condition_without_a_baseline_on_its_model_is_not_called_a_null_result(tmp_path):
    """No comparison was made: the summary says so instead of 'no detectable improvement'."""
    import copy

    from smollab.report import build_report
    from tests.report.conftest import load_sample, make_session

    results = copy.deepcopy(load_sample())
    results["comparisons"] = []
    paths = build_report(make_session(tmp_path, results), pdf=False)
    for text in (paths.report_md.read_text(), paths.paper_tex.read_text()):
        flat = " ".join(text.split())
        assert "no trained condition was compared with a baseline" in flat
        assert "showed a detectable improvement" not in flat
    check_paper_numbers(tmp_path)


def test_category_strata_get_an_overall_headline_and_a_chance_level(tmp_path):
    """Strata that are categories (a code task's problem kinds) have no "hardest": the summary
    and abstract report the overall comparison; a task's guessing level is stated and traced."""
    import copy

    from smollab.report import build_report
    from tests.report.conftest import load_sample, make_session

    results = copy.deepcopy(load_sample())
    results["tasks"]["mul"]["strata_by_difficulty"] = False
    results["tasks"]["mul"]["chance"] = 0.25
    paths = build_report(make_session(tmp_path, results), pdf=False)
    md = " ".join(paths.report_md.read_text().split())
    tex = " ".join(paths.paper_tex.read_text().split())
    assert "hardest stratum" not in md and "hardest stratum" not in tex
    assert "On mul, finetune_full improved overall exact match from" in md.replace("`", "")
    assert "guessing scores 25% exact match" in md
    assert r"guessing scores 25\% exact match" in tex and "by stratum" in tex
    assert "by difficulty" not in tex
    numbers = check_paper_numbers(tmp_path)
    assert numbers["tasks.mul.chance"]["text"] == "25%"
    assert "conditions.finetune_full.tasks.mul.overall.exact_match.estimate" in numbers


def test_a_benchmark_task_is_worded_by_its_score_and_stale_figures_go(tmp_path):
    """A benchmark's figures, comparison tables and captions name its score (acc), it gets no
    right/wrong "taxonomy" figure, and a rebuild removes the figures it no longer draws."""
    import copy

    from smollab.report import build_report
    from tests.report.conftest import load_sample, make_session

    session = make_session(tmp_path)
    build_report(session, pdf=False)
    assert (session / "figures" / "error_taxonomy_mul.png").is_file()
    results = copy.deepcopy(load_sample())
    results["tasks"]["mul"].update(
        score="acc", error_types=["correct", "wrong"], strata_by_difficulty=False
    )
    paths = build_report(make_session(session, results), pdf=False)
    assert not list((session / "figures").glob("error_taxonomy_mul.*"))
    assert sorted(p.name for p in (session / "figures").iterdir()) == sorted(
        p.name for p in paths.figures
    )
    md = paths.report_md.read_text()
    assert "Comparisons with the baseline (acc, percentage points):" in md
    assert "![acc by stratum](figures/accuracy_by_difficulty_mul.png)" in md
    assert "Exact match scores only the final answer" not in md
    tex = " ".join(paths.paper_tex.read_text().split())
    assert r"Differences in acc against the baseline on \texttt{mul}" in tex
    assert (
        "by the difference in each task's score (exact match, or a benchmark's own metric)" in tex
    )
    check_paper_numbers(session)


def test_setup_sentences_name_metrics_mid_sentence_and_count_one_stratum(tmp_path):
    """The paper's setup says "scored by exact match and digit accuracy" (not capitalised
    mid-sentence), and a task with one stratum reads "on the stratum X with N test items", not
    "... respectively"."""
    import copy

    from smollab.report import build_report
    from tests.report.conftest import load_sample, make_session

    paths = build_report(make_session(tmp_path / "a"), pdf=False)
    tex = " ".join(paths.paper_tex.read_text().split())
    assert "is scored by exact match and digit accuracy, on the strata" in tex
    assert "test items respectively" in tex
    md = " ".join(paths.report_md.read_text().split())
    assert "metrics: exact match and digit accuracy" in md
    results = copy.deepcopy(load_sample())
    results["tasks"]["mul"].update(strata=["2x2"], n_items={"2x2": 200})
    for cond in results["conditions"].values():
        strata = cond["tasks"]["mul"]["strata"]
        cond["tasks"]["mul"]["strata"] = {"2x2": strata["2x2"]}
    results["comparisons"] = [c for c in results["comparisons"] if c.get("stratum") == "2x2"]
    paths = build_report(make_session(tmp_path / "b", results), pdf=False)
    tex = " ".join(paths.paper_tex.read_text().split())
    assert r"on the stratum \texttt{2x2} with 200 test items;" in tex or (
        r"on the stratum \texttt{2x2} with 200 test items." in tex
    )
    assert "respectively" not in tex
    check_paper_numbers(tmp_path / "b")
