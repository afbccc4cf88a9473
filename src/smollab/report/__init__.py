"""Reports for a session folder: figures, Markdown/HTML reports, a LaTeX paper and its PDF.

    from smollab.report import build_report
    paths = build_report(Path("outputs/multiplication"))

Every number printed comes from ``results/results.json``; ``paper/numbers.json`` maps each number
in the paper back to its path in the results.
"""

from __future__ import annotations

from smollab.report.build import ReportPaths, build_report
from smollab.report.pdf import tex_available

__all__ = ["ReportPaths", "build_report", "tex_available"]
