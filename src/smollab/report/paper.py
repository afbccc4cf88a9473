"""Render ``paper/paper.tex`` and ``paper/numbers.json`` from the report context.

``numbers.json`` lists every number the paper prints, keyed by its dotted path in
``results.json`` (list lengths end in ``.length``), with the exact printed text and the raw value,
so that a claim checker can verify the text against the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smollab.io import atomic_write_json, atomic_write_text
from smollab.report.render import NumberLog, tex_env

NUMBERS_SCHEMA = "smollab.numbers/1"


def render_paper(ctx: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return the LaTeX source and the ``numbers.json`` document for ``ctx``."""
    log = NumberLog()
    tex = tex_env(log).get_template("paper.tex.j2").render(**ctx)
    numbers = {
        "schema": NUMBERS_SCHEMA,
        "source": "../results/results.json",
        "paper": "paper.tex",
        "conventions": (
            "key: dotted path into results.json (list items by index; '.length' = list length); "
            "text: as printed; value: raw value (null = missing); format: how it was printed "
            "(pct, pct_bare, pct0 and pp print value*100)"
        ),
        "numbers": log.numbers,
    }
    return tex, numbers


def write_paper(ctx: dict[str, Any], paper_dir: Path) -> tuple[Path, Path]:
    """Write ``paper.tex`` and ``numbers.json`` atomically under ``paper_dir``."""
    tex, numbers = render_paper(ctx)
    tex_path = atomic_write_text(paper_dir / "paper.tex", tex)
    numbers_path = atomic_write_json(paper_dir / "numbers.json", numbers)
    return tex_path, numbers_path
