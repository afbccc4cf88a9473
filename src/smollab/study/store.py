"""The run store: run folders are the truth, an SQLite index makes them queryable.

``outputs/index.sqlite`` holds one row per session, per run and per (run, task, stratum,
metric). Every write is a transaction, and :meth:`Store.reindex` rebuilds the index from the
``record.json`` files, so a crash can never leave the two disagreeing for long.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from smollab.io import read_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  name TEXT PRIMARY KEY, path TEXT, problem TEXT, study TEXT, status TEXT,
  created TEXT, updated TEXT
);
CREATE TABLE IF NOT EXISTS runs (
  hash TEXT, session TEXT, study TEXT, condition TEXT, model TEXT, seed INTEGER,
  status TEXT, started TEXT, finished TEXT, path TEXT, record TEXT,
  PRIMARY KEY (hash, session)
);
CREATE TABLE IF NOT EXISTS metrics (
  hash TEXT, session TEXT, task TEXT, stratum TEXT, metric TEXT, value REAL,
  PRIMARY KEY (hash, session, task, stratum, metric)
);
"""


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / "index.sqlite"
        with self._conn() as c:
            c.executescript(SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def upsert_session(self, name: str, **fields: Any) -> None:
        cols = ["name", *fields]
        with self._conn() as c:
            c.execute(
                f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT(name) DO UPDATE SET "
                + ", ".join(f"{k}=excluded.{k}" for k in fields),
                [name, *fields.values()],
            )

    def add_run(self, session: str, run_dir: Path, record: dict[str, Any]) -> None:
        with self._conn() as c:
            c.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record["hash"],
                    session,
                    record["study"],
                    record["condition"],
                    record["model_name"],
                    record["seed"],
                    record["status"],
                    record["started"],
                    record["finished"],
                    str(run_dir),
                    json.dumps(record, default=str),
                ),
            )
            c.execute("DELETE FROM metrics WHERE hash=? AND session=?", (record["hash"], session))
            rows = [
                (record["hash"], session, task, stratum, "exact_match", acc)
                for task, by in record.get("eval", {}).items()
                for stratum, acc in by.items()
            ]
            c.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", rows)

    def sessions(self) -> list[dict[str, Any]]:
        with self._conn() as c:
            c.row_factory = sqlite3.Row
            rows = c.execute(
                "SELECT s.*, (SELECT COUNT(*) FROM runs r WHERE r.session = s.name) AS n_runs "
                "FROM sessions s ORDER BY s.updated DESC"
            ).fetchall()
        return [dict(r) for r in rows]

    def runs(self, session: str) -> list[dict[str, Any]]:
        with self._conn() as c:
            c.row_factory = sqlite3.Row
            rows = c.execute(
                "SELECT * FROM runs WHERE session=? ORDER BY condition, seed", (session,)
            ).fetchall()
        return [dict(r) for r in rows]

    def reindex(self) -> int:
        """Rebuild run rows from every ``<session>/runs/*/record.json`` under the root."""
        n = 0
        for rec_path in sorted(self.root.glob("*/runs/*/record.json")):
            session = rec_path.parents[2].name
            self.add_run(session, rec_path.parent, read_json(rec_path))
            n += 1
        return n
