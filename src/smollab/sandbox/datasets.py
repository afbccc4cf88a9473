"""Read the HumanEval and MBPP files from the data dir, checking they are what they claim.

Layout (as in ``../shared/data``): ``DIR/humaneval/HumanEval.jsonl.gz``, ``DIR/mbpp/mbpp.jsonl``
and ``DIR/mbpp/sanitized-mbpp.json``. ``DIR`` is the argument, else ``$SMOLLAB_DATA_DIR``.
Records are returned unchanged (dicts with the files' own keys).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any

from smollab.errors import DataError
from smollab.paths import data_dir

HUMANEVAL_FILE = "humaneval/HumanEval.jsonl.gz"
MBPP_FILE = "mbpp/mbpp.jsonl"
MBPP_SANITIZED_FILE = "mbpp/sanitized-mbpp.json"
HUMANEVAL_KEYS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
MBPP_KEYS = ("task_id", "text", "code", "test_list", "test_setup_code")
MBPP_SANITIZED_KEYS = ("task_id", "prompt", "code", "test_list", "test_imports")
MBPP_TEST_IDS = range(11, 511)  # the standard test split; 1-10 few-shot, 511-974 train


def _locate(rel: str, explicit: str | os.PathLike[str] | None) -> Path:
    root = data_dir(explicit)
    if root is None:
        raise DataError(
            f"No data dir for {rel}.",
            hint="Pass a data dir (--data-dir) or set SMOLLAB_DATA_DIR to the folder that "
            f"holds {rel} (for example ../shared/data).",
        )
    path = root / rel
    if not path.is_file():
        raise DataError(
            f"Data file {path} does not exist.",
            hint=f"The data dir {root} must contain {rel}; point --data-dir or SMOLLAB_DATA_DIR "
            "at the folder with the benchmark files.",
        )
    return path


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (EOFError, zlib.error) as e:
        raise DataError(
            f"Data file {path} is truncated or corrupt ({e}).",
            hint="Copy the file again from its source (see PROVENANCE.md beside it).",
        ) from None
    except gzip.BadGzipFile:
        raise DataError(
            f"Data file {path} is not gzip-compressed although its name ends in .gz.",
            hint="Replace it with the original compressed file.",
        ) from None
    except UnicodeDecodeError as e:
        raise DataError(f"Data file {path} is not UTF-8 text ({e}).") from None


def _check_records(path: Path, rows: list[Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    if not rows:
        raise DataError(f"Data file {path} holds no records.", hint="Copy the file again.")
    for i, row in enumerate(rows, 1):
        missing = [k for k in keys if not isinstance(row, dict) or k not in row]
        if missing:
            raise DataError(
                f"Record {i} of {path} lacks {', '.join(missing)}; this is not the expected file.",
                hint=f"Each record needs the keys {', '.join(keys)}.",
            )
    return rows


def _read_jsonl(path: Path) -> list[Any]:
    rows = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if not rows and line.strip() in ("[", "{"):
                raise _not_jsonl(path, "one JSON document") from None
            raise DataError(
                f"Line {n} of {path} is not valid JSON ({e.msg}); the file is truncated or not "
                "JSON Lines.",
                hint="Copy the file again from its source (see PROVENANCE.md beside it).",
            ) from None
    if len(rows) == 1 and isinstance(rows[0], list):
        raise _not_jsonl(path, "one JSON list")
    return rows


def _not_jsonl(path: Path, what: str) -> DataError:
    return DataError(
        f"Data file {path} holds {what}, not JSON Lines: a .jsonl file has one JSON record per "
        "line.",
        hint="Write one record per line (jq -c '.[]' does it for a list), or copy the file again "
        "from its source (see PROVENANCE.md beside it).",
    )


def humaneval_file(data: str | os.PathLike[str] | None = None) -> Path:
    """The HumanEval file under the data dir (``data``, else ``$SMOLLAB_DATA_DIR``)."""
    return _locate(HUMANEVAL_FILE, data)


def mbpp_file(data: str | os.PathLike[str] | None = None, *, sanitized: bool = False) -> Path:
    """The MBPP file (full or sanitized) under the data dir."""
    return _locate(MBPP_SANITIZED_FILE if sanitized else MBPP_FILE, data)


def load_humaneval(data: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The 164 HumanEval problems, in file order."""
    path = humaneval_file(data)
    return _check_records(path, _read_jsonl(path), HUMANEVAL_KEYS)


def load_mbpp(
    data: str | os.PathLike[str] | None = None, *, sanitized: bool = False
) -> list[dict[str, Any]]:
    """MBPP problems in file order: the full set (974) or the hand-checked sanitized one (427)."""
    path = mbpp_file(data, sanitized=sanitized)
    if not sanitized:
        return _check_records(path, _read_jsonl(path), MBPP_KEYS)
    try:
        rows = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path} is not valid JSON ({e.msg} at char {e.pos}); it is truncated or not the "
            "sanitized MBPP file.",
            hint="Copy the file again from its source (see PROVENANCE.md beside it).",
        ) from None
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a JSON array of problems.")
    return _check_records(path, rows, MBPP_SANITIZED_KEYS)
