"""Render ``report.md`` and ``report.html`` (same context, same content, two templates).

The HTML is self-contained: figures are embedded as base64 PNG data URIs and the CSS is inline,
so the file can be mailed or opened anywhere without the session folder.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from smollab.io import atomic_write_text
from smollab.report.render import html_env, md_env


def render_markdown(ctx: dict[str, Any]) -> str:
    return md_env().get_template("report.md.j2").render(**ctx)


def render_html(ctx: dict[str, Any], session_dir: Path) -> str:
    figures = []
    for fig in ctx["figures"]:
        png = (session_dir / fig["png"]).read_bytes()
        figures.append(
            {**fig, "data_uri": "data:image/png;base64," + base64.b64encode(png).decode()}
        )
    return html_env().get_template("report.html.j2").render(**{**ctx, "figures": figures})


def write_reports(ctx: dict[str, Any], session_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` atomically into ``session_dir``."""
    md = atomic_write_text(session_dir / "report.md", render_markdown(ctx))
    html = atomic_write_text(session_dir / "report.html", render_html(ctx, session_dir))
    return md, html
