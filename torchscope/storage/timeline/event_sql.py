"""One event's details for the timeline's panel, read from SQL by id (large profiles; the extras for both paths)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from torchscope.errors import NotFoundError
from torchscope.storage.profile.kinds import KIND, LAUNCH_KINDS
from torchscope.storage.timeline import tiled

Frame = Callable[[np.ndarray, np.ndarray, dict[str, np.ndarray]], pd.DataFrame]
"""Event arrays of :data:`tiled.EVENT_FIELDS` (with each lane's first row and id) -> the documented event columns."""


def event_details(conn: Connection, t: tiled.Layout, profile_id: int, event_id: int, frame: Frame) -> dict[str, Any]:
    """``Store.timeline_event`` of a large profile: the event, its stack by ``parent``, its launch relations, the
    op behind it, its flows and device details, as the loaded-index path describes them."""
    found, relations = tiled.event_rows(conn, t, [event_id])
    if event_id not in relations:
        raise NotFoundError(f"there is no event {event_id} in profile {profile_id}")

    def rows(ids: list[int]) -> pd.DataFrame:
        return frame(t.row0, t.lane_ids, tiled.event_rows(conn, t, ids)[0])

    event = frame(t.row0, t.lane_ids, found).iloc[0].to_dict()
    _, launcher, kind = relations[event_id]
    launched = tiled.launched_by(conn, t, event_id, int(event["start"])) if kind in LAUNCH_KINDS else []
    related = rows(([launcher] if launcher >= 0 else []) + launched)
    op_id = -1
    if launcher >= 0:
        op_id = tiled.nearest_op(conn, t, launcher)
    elif kind in (KIND["cuda_runtime"], KIND["cuda_driver"]):
        op_id = tiled.nearest_op(conn, t, event_id)
    row, flows, details = event_extras(conn, profile_id, event_id)
    ends_out = [(k, dst) for k, src, dst in flows if src == event_id]
    ends_in = [(k, src) for k, src, dst in flows if dst == event_id]
    lane = t.lanes.set_index("position").loc[int(found["lane"][0])]
    event.update(
        lane_label=lane["label"], group=lane["group"], corr=row[0], ext_id=row[1], info=row[2],
        details={k: v for k, v in dict(details or {}).items() if v is not None},
        stack=rows(tiled.ancestors(conn, t, event_id))["name"].tolist(),
        launched_by=related.iloc[:1].to_dict("records") if launcher >= 0 else [],
        launched=related.iloc[(1 if launcher >= 0 else 0):].to_dict("records"),
        op=rows([op_id]).iloc[0].to_dict() if op_id >= 0 else None,
        flows_out=with_flow(rows([e for _, e in ends_out]), ends_out),
        flows_in=with_flow(rows([e for _, e in ends_in]), ends_in),
    )  # fmt: skip
    return event


def event_extras(conn: Connection, profile_id: int, event_id: int) -> tuple[Any, list[Any], Any]:
    """An event's ``(corr, ext_id, arguments)``, its flows ``(kind, src, dst)`` and its device details."""
    row = conn.execute(
        text("SELECT e.corr, e.ext_id, i.name FROM profile_events e LEFT JOIN names i ON i.id = e.info_id "
             "WHERE e.id = :id"), {"id": int(event_id)},
    ).one()  # fmt: skip
    flows = conn.execute(
        text("SELECT kind, src, dst FROM profile_flows WHERE profile_id = :p AND (src = :id OR dst = :id) "
             "ORDER BY flow_id"), {"p": int(profile_id), "id": int(event_id)},
    ).all()  # fmt: skip
    details = conn.execute(
        text("SELECT grid, block, registers, shared_memory, blocks_per_sm, warps_per_sm, occupancy, bytes "
             "FROM profile_event_details WHERE event_id = :id"), {"id": int(event_id)},
    ).mappings().first()  # fmt: skip
    return row, list(flows), details


def with_flow(frame: pd.DataFrame, pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Flow ends as event records in ``pairs`` order (ids of another profile dropped), each with its flow kind."""
    by_id = {int(r["id"]): r for r in frame.to_dict("records")}
    return [{**by_id[int(e)], "flow": kind} for kind, e in pairs if int(e) in by_id]
