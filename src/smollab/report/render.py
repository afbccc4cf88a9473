"""Jinja2 environments for the three outputs: LaTeX, Markdown and HTML.

Context values are plain strings, :class:`Ident` (names: conditions, strata, tasks), :class:`Num`
and :class:`Phrase`. Each environment's ``finalize`` turns them into its own markup, so templates
write ``\\VAR{c.name}`` / ``{{ c.name }}`` and never escape or format anything by hand:

* LaTeX: text is escaped, identifiers become ``\\texttt{..}``, and every printed :class:`Num` is
  recorded in a :class:`NumberLog` (which becomes ``paper/numbers.json``); a number's sign is
  printed as a minus (``\\ensuremath{-}``), not a hyphen.
* Markdown: identifiers become code spans; ``|`` is escaped so table cells stay cells.
* HTML: autoescaped; identifiers become ``<code>``.

LaTeX templates use ``\\VAR{..}``, ``\\BLOCK{..}``, ``\\#{..}`` (comments) delimiters so that
TeX braces and ``%`` need no quoting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypedDict, Unpack

import jinja2
from markupsafe import Markup, escape

from smollab.report.context import Ident, Num, Phrase, counted, joined, listing

TEMPLATES = Path(__file__).parent / "templates"

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "±": r"\ensuremath{\pm}",
    "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}",
    "×": r"\ensuremath{\times}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))
# a sign before a number (not a range's dash): printed as a minus, not a hyphen
_MINUS_RE = re.compile(r"(?<![\w.])-(?=\d)")


def latex_escape(text: Any) -> str:
    """Escape text for LaTeX body text (all ten specials, plus ``< > |`` and a few symbols)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], str(text))


class NumberLog:
    """The numbers a rendering printed, in print order: ``{dotted key: {"text", "value",
    "format"}}``; ``format`` names the formatter in :data:`smollab.report.fmt.FORMATTERS`
    (``pct``/``pct_bare``/``pct0``/``pp`` print ``value * 100``)."""

    def __init__(self) -> None:
        self.numbers: dict[str, dict[str, Any]] = {}

    def add(self, num: Num) -> None:
        self.numbers.setdefault(num.key, {"text": num.text, "value": num.raw, "format": num.kind})


def _parts(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Phrase) else [value]


def _loader() -> jinja2.FileSystemLoader:
    return jinja2.FileSystemLoader(str(TEMPLATES))


def tex_env(log: NumberLog) -> jinja2.Environment:
    """The LaTeX environment; printed numbers are recorded in ``log``."""

    def finalize(value: Any) -> str:
        if isinstance(value, Markup):  # already LaTeX (from a filter)
            return str(value)
        out = []
        for part in _parts(value):
            if isinstance(part, Num):
                log.add(part)
                out.append(_MINUS_RE.sub(r"\\ensuremath{-}", latex_escape(part.text)))
            elif isinstance(part, Ident):
                out.append(r"\texttt{" + latex_escape(part) + "}")
            else:
                out.append(latex_escape("" if part is None else part))
        return "".join(out)

    env = _environment(
        finalize,
        autoescape=False,
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
    )
    # text copied verbatim from the results (title, question, notes): marked so that a number
    # checker can tell it from numbers the template prints
    env.filters["freetext"] = lambda s: Markup(r"\freetext{" + latex_escape(s) + "}")
    return env


def md_env() -> jinja2.Environment:
    def finalize(value: Any) -> str:
        out = []
        for part in _parts(value):
            if isinstance(part, Ident):
                out.append(f"`{part}`")
            else:
                out.append(str("" if part is None else part).replace("|", r"\|"))
        return "".join(out)

    return _environment(finalize, autoescape=False)


def html_env() -> jinja2.Environment:
    def finalize(value: Any) -> Any:
        if isinstance(value, Markup) or not isinstance(value, Phrase | Ident):
            return value
        out = []
        for part in _parts(value):
            if isinstance(part, Ident):
                out.append(Markup("<code>{}</code>").format(part))
            else:
                out.append(escape(str(part)))
        return Markup("").join(out)

    return _environment(finalize, autoescape=True)


class _Delimiters(TypedDict, total=False):
    """Jinja's delimiter settings (the LaTeX renderer replaces the defaults)."""

    block_start_string: str
    block_end_string: str
    variable_start_string: str
    variable_end_string: str
    comment_start_string: str
    comment_end_string: str


def _environment(
    finalize: Any, *, autoescape: bool, **delimiters: Unpack[_Delimiters]
) -> jinja2.Environment:
    """The one Jinja set-up shared by the LaTeX, Markdown and HTML renderers."""
    env = jinja2.Environment(
        loader=_loader(),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
        **delimiters,
    )
    _add_globals(env)
    return env


def _add_globals(env: jinja2.Environment) -> None:
    env.globals.update(listing=listing, joined=joined, counted=counted)
