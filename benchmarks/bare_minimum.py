"""The bare minimum any trace importer must do, timed by bench_import.py and run as a process by scale.py:
gunzip, ``orjson.loads``, one tuple per event and ``sqlite3.executemany`` into a table indexed for time windows.

    python benchmarks/bare_minimum.py TRACE.json.gz OUT.db
"""

from __future__ import annotations

import gzip
import sqlite3
import sys
from pathlib import Path

import orjson


def bare_minimum(path: Path, db: Path) -> None:
    """Store the complete events of the gzip trace at ``path`` in ``db``, in one transaction."""
    data = orjson.loads(gzip.decompress(path.read_bytes()))
    rows = []
    # the same 12 values a row of profile_events holds, taken straight from the event
    for i, e in enumerate(data["traceEvents"]):
        if e.get("ph") == "X":
            args = e.get("args") or {}
            rows.append((i, e["pid"], e["tid"], e.get("cat"), e["name"], e["ts"], e.get("dur", 0),
                         None, args.get("correlation"), None, args.get("External id"), None))  # fmt: skip
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, pid, tid, cat, name, ts, dur, parent, corr, link, ext, "
                 "info)")
    conn.execute("CREATE INDEX ix_ev ON ev (pid, tid, ts)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()


if __name__ == "__main__":
    bare_minimum(Path(sys.argv[1]), Path(sys.argv[2]))
