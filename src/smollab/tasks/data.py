"""Loading benchmark data files: jsonl, json, and their ``.gz`` / ``.bz2`` compressed forms.

A dataset is looked up as ``<data dir>/<folder>/<file>`` where the data dir is the explicit
argument, else ``$SMOLLAB_DATA_DIR``. With neither, or when the file is not there, it comes from
the Hugging Face hub when the ``datasets`` package is installed and the hub answers; otherwise
the error says where the file was looked for and how to provide it.

Every failure is a :class:`~smollab.errors.DataError` naming the file: a missing file, a
truncated compressed stream or JSON document, a line that is not JSON, a record without the
fields the task needs.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smollab.errors import DataError
from smollab.paths import data_dir as _data_dir


@dataclass(frozen=True)
class HubSource:
    """Where the same records live on the Hugging Face hub (``datasets.load_dataset`` args)."""

    path: str
    name: str | None
    split: str


def _open_binary(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        return bz2.open(path, "rb")
    return path.open("rb")


def read_text(path: Path, *, own: bool = False) -> str:
    """The decompressed UTF-8 text of ``path`` (plain, ``.gz`` or ``.bz2``), newlines
    universal, a leading byte order mark dropped (editors on Windows write one; it is no part
    of the text). ``own``: the user's own file, which has no source to copy it again from (the
    messages say so)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8-sig") as f:
                return f.read()
        if path.suffix == ".bz2":
            with bz2.open(path, "rt", encoding="utf-8-sig") as f:
                return f.read()
        return path.read_text(encoding="utf-8-sig")
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        fix = (
            "Write it again, or decompress it to check where it ends."
            if own
            else "Copy it again from its source (see PROVENANCE.md in its folder)."
        )
        raise DataError(
            f"Data file {path} is truncated or corrupt ({type(e).__name__}: {e}). {fix}"
        ) from None
    except UnicodeDecodeError:
        # the decoder's position is within one chunk of the stream: find the byte in the whole
        with _open_binary(path) as f:
            raw = f.read()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            where = f"line {line}: byte {raw[e.start]:#04x} is not UTF-8"
        else:  # pragma: no cover - the text decoder refused what the whole-file one reads
            where = "a byte is not UTF-8"
        fix = (
            "Convert it to UTF-8 (e.g. iconv -f latin1 -t utf-8 OLD > NEW for Latin-1 text)."
            if own
            else "Copy it again from its source (see PROVENANCE.md in its folder)."
        )
        raise DataError(f"Data file {path} is not UTF-8 text ({where}). {fix}") from None


#: a .json file (a list of records) where JSON Lines are expected
_NOT_JSONL = (
    "Data file {path} holds {what}, not JSON Lines: a .jsonl file has one JSON record per line. "
    "Write one record per line (jq -c '.[]' does it for a list){again}."
)


def read_records(path: str | Path, *, own: bool = False) -> list[Any]:
    """Records of a ``.jsonl`` / ``.json`` file (optionally ``.gz`` / ``.bz2``).

    JSONL: one JSON value per non-empty line. JSON: a top-level list of records. ``own``: the
    user's own file (the messages say to fix it, not to copy it again from its source).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Data file {path} does not exist.")
    text = read_text(path, own=own)
    again = "" if own else ", or copy the file again from its source (see PROVENANCE.md)"
    stem = path.name.removesuffix(".gz").removesuffix(".bz2")
    if stem.endswith(".jsonl"):
        rows = []
        lines = text.splitlines()
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                if not rows and line.strip() in ("[", "{"):
                    raise DataError(
                        _NOT_JSONL.format(path=path, what="one JSON document", again=again)
                    ) from None
                last = i == len(lines)
                raise DataError(
                    f"Data file {path}, line {i}: not valid JSON ({e.msg})"
                    + ("; the file looks truncated" if last else "")
                    + ". Each line of a .jsonl file must be one JSON record; "
                    + ("fix or drop that line." if own else again.removeprefix(", or ") + ".")
                ) from None
        if len(rows) == 1 and isinstance(rows[0], list):
            raise DataError(_NOT_JSONL.format(path=path, what="one JSON list", again=again))
        return rows
    if stem.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(
                f"Data file {path} is not valid JSON ({e.msg} at line {e.lineno}); it may be "
                "truncated. "
                + ("Fix it there." if own else "Copy it again from its source (see PROVENANCE.md).")
            ) from None
        if not isinstance(data, list):
            raise DataError(
                f"Data file {path} holds a JSON {type(data).__name__}, not a list of records."
            )
        return data
    raise DataError(
        f"Data file {path} has an unsupported format; expected .jsonl or .json, optionally "
        "compressed as .gz or .bz2."
    )


#: what a JSON type is called in messages
_JSON_NAMES = {str: "a string", int: "a whole number", list: "a list", dict: "an object"}


def check_fields(
    path: Path | str, rows: Sequence[Any], fields: Sequence[str] | Mapping[str, Any]
) -> None:
    """Every record must be an object with ``fields`` (a mapping also gives each field's type
    or tuple of types); else a DataError naming the first bad record and field."""
    if not rows:
        raise DataError(f"Data file {path} holds no records.")
    names = list(fields)
    for i, r in enumerate(rows):
        missing = [f for f in names if not isinstance(r, dict) or f not in r]
        if missing:
            got = sorted(r) if isinstance(r, dict) else type(r).__name__
            raise DataError(
                f"Data file {path}, record {i}: missing field(s) {missing} (has {got}). This is "
                f"not the expected format; each record needs {names}. Check that the "
                "data dir points at smollab's benchmark data (see its README and PROVENANCE.md)."
            )
        if not isinstance(fields, Mapping):
            continue
        for f, types in fields.items():
            want = types if isinstance(types, tuple) else (types,)
            v = r[f]
            if not isinstance(v, want) or (isinstance(v, bool) and bool not in want):
                expected = " or ".join(_JSON_NAMES.get(t, t.__name__) for t in want)
                raise DataError(
                    f"Data file {path}, record {i}: field {f!r} is {json.dumps(v)[:60]}, where "
                    f"{expected} is expected. This is not the expected format; check that the "
                    "data dir points at smollab's benchmark data (see its README and "
                    "PROVENANCE.md), or fix that record."
                )


def locate(folder: str, files: Sequence[str], data_dir: str | Path | None = None) -> Path | None:
    """The first existing ``<data dir>/<folder>/<file>`` among ``files``, or None."""
    root = _data_dir(data_dir)
    if root is None:
        return None
    for name in files:
        p = root / folder / name
        if p.is_file():
            return p
    return None


def load_records(
    folder: str,
    files: Sequence[str],
    fields: Sequence[str] | Mapping[str, Any],
    *,
    data_dir: str | Path | None = None,
    hub: HubSource | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """The records of a dataset and a description of where they came from.

    Looks for ``files`` (in order of preference) under ``<data dir>/<folder>``; falls back to
    ``hub`` when the hub is reachable. Raises DataError with the places looked at otherwise.
    """
    root = _data_dir(data_dir)
    if root is not None and not root.is_dir():
        origin = "" if data_dir else " (from the environment variable SMOLLAB_DATA_DIR)"
        raise DataError(
            f"Data dir {root}{origin} does not exist or is not a folder. Pass --data-dir or set "
            "SMOLLAB_DATA_DIR to the folder holding the benchmark data (e.g. shared/data)."
        )
    path = locate(folder, files, data_dir)
    if path is not None:
        rows = read_records(path)
        check_fields(path, rows, fields)
        return rows, str(path.resolve())
    if hub is not None:
        hub_rows = _from_hub(hub)
        if hub_rows is not None:
            check_fields(f"hub:{hub.path}", hub_rows, fields)
            return hub_rows, f"hub:{hub.path}/{hub.name or ''}/{hub.split}"
    where = f"{root / folder}" if root is not None else "(no data dir set)"
    raise DataError(
        f"No data for {folder!r}: none of {list(files)} found in {where}, and the Hugging Face "
        "hub is unreachable or the 'datasets' package is not installed. Pass --data-dir DIR "
        f"or set SMOLLAB_DATA_DIR to a folder with {folder}/{files[0]}."
    )


def _from_hub(hub: HubSource) -> list[dict[str, Any]] | None:
    """Records from the hub, or None when offline or ``datasets`` is missing."""
    try:
        import datasets  # noqa: F401  (optional dependency)
    except ImportError:
        return None
    from smollab.models.loader import hub_reachable

    if not hub_reachable():
        return None
    import datasets as ds

    return [dict(r) for r in ds.load_dataset(hub.path, hub.name, split=hub.split)]
