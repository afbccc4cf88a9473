"""Atomic file writes, append-only logs and file digests.

Every file a run or session writes goes through here, so that ``kill -9`` at any moment leaves
either the old or the new version of a file, never a torn one.

Every JSON file written here is strict JSON: a float that is not finite (``nan``, ``inf``,
``-inf``: e.g. the SEM of one seed) is written as ``null``, since jq, JavaScript and most JSON
libraries refuse the ``NaN``/``Infinity`` tokens Python's :mod:`json` writes by default. Readers
of these files therefore take ``None`` where the value in memory was ``nan``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: a name that is also one file or folder name: a study, condition, session or task id. It
#: starts with a letter or digit, so "." and ".." and hidden names are not names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every float that is not finite replaced by ``None``, through dicts, lists
    and tuples (a tuple becomes a list, as JSON writes it); anything else is returned as is.
    Containers are copied, never changed in place: the caller's results keep their ``nan``."""
    if isinstance(obj, float):  # numpy's float64 too (a float subclass)
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_null(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    # what this returns is encoded as it stands, so its floats are made finite here too
    return finite_or_null(_plain(obj))


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, Path):
        return str(obj)
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as strict JSON: non-finite floats are ``null`` (:func:`finite_or_null`), and
    ``allow_nan=False`` makes any that got past that an error rather than a ``NaN`` token."""
    return json.dumps(finite_or_null(obj), indent=indent, default=_json_default, allow_nan=False)


# the process's umask (read once: os.umask can only be read by setting it)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file + fsync + rename (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode open() would (0666 - umask)
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, dumps(obj) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> Path:
    """Atomically write a whole JSONL file."""
    return atomic_write_text(path, "".join(dumps(r, indent=None) + "\n" for r in rows))


def append_jsonl(path: str | os.PathLike[str], row: Any) -> None:
    """Append one JSON line and flush it to disk (a crash loses at most this line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        # a crash may have left a torn last line: end it, so the new row stays parseable
        # (seek returns the new offset, so it must not decide the test by itself)
        torn = f.tell() > 0 and f.seek(-1, os.SEEK_END) >= 0 and f.read(1) != b"\n"
        prefix = b"\n" if torn else b""
        f.write(prefix + (dumps(row, indent=None) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON file holding an object (every JSON file smollab writes holds one); one that
    is not valid JSON, or holds something else, raises :class:`~smollab.errors.CorruptFile`
    naming it (a ``ValueError`` too)."""
    from smollab.errors import CorruptFile

    hint = (
        "Restore it, or delete it and run again the command that writes it "
        "(finished runs are found again by their content hash and reused)."
    )
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFile(
            f"{path} is not valid JSON ({e}): it was cut short or edited.", hint=hint
        ) from None
    if not isinstance(data, dict):
        raise CorruptFile(
            f"{path} holds a JSON {type(data).__name__} where smollab writes an object "
            "({...}): it was edited or replaced.",
            hint=hint,
        )
    return data


#: (resolved path, inode, mtime, size) -> sha256: a run's hash is computed many times in one
#: process (every check, every session step), and a model's weights can be gigabytes
_SHA256_CACHE: dict[tuple[str, int, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of the file at ``path``, read once per process while the file's inode,
    modification time and size stay the same (a file rewritten in place with the same size
    within the file system's timestamp resolution is not seen until the next process)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _SHA256_CACHE:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA256_CACHE[key] = h.hexdigest()
    return _SHA256_CACHE[key]


def read_jsonl(path: str | os.PathLike[str]) -> list[Any]:
    """Read a JSONL file, ignoring a torn last line left by a crash."""
    rows = []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            # a torn line is one a crash cut short: the last line, or one that append_jsonl
            # later terminated; anything else is corruption
            if i == len(lines) - 1 or not line.rstrip().endswith("}"):
                continue
            raise
    return rows
