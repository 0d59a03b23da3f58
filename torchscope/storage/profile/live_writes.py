"""Records of the profile capability: a finished profiler window, exported as a Chrome trace file.

The training thread only writes the trace file (as ``torch.profiler.tensorboard_trace_handler`` would) and queues
its path; decoding and inserting happen here, on the writer thread.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from sqlalchemy import Connection

from torchscope.storage.bulk import Interner
from torchscope.storage.handlers import handler
from torchscope.io.kineto import decode_trace, load_json, read_bytes
from torchscope.storage.profile.writes import insert_profile


@handler("profile_trace")
def write_profile_traces(conn: Connection, interner: Interner, payloads: list[Any]) -> None:
    """Store each ``(run_id, trace_path, name)`` as a live profile of the run and delete the file.

    A window that cannot be stored is skipped with a warning (in its own savepoint, so it leaves no rows) and
    does not cost the rest of the batch.
    """
    for run_id, path, name in payloads:
        try:
            cols = decode_trace(load_json(read_bytes(path), path), path)
            with conn.begin_nested():
                insert_profile(conn, interner, run_id, cols, name=name, source="live", path=None)
        except Exception as exc:  # noqa: BLE001 - one bad window must not cost the batch's other records
            # names interned inside the rolled-back savepoint are gone from the table: forget every cached id
            interner._ids.clear()
            warnings.warn(f"torchscope: profiler window {name!r} was not stored: {exc}", RuntimeWarning, stacklevel=2)
        finally:
            try:
                os.remove(path)
            except OSError:
                pass
