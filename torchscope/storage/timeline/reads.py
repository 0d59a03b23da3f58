"""Timeline reads (``Store`` delegates to these): lanes as rows, level-of-detail windows, search, event details,
minimap.

A profile of up to :data:`INDEX_MAX_EVENTS` events is answered from its event index
(:mod:`torchscope.storage.timeline.index`, loaded on the first read and kept for recently viewed profiles); a larger
one from SQL and the timeline tables stored with it (:mod:`torchscope.storage.timeline.tiled`), which give the same
answers without loading it. Names, arguments and device details of what is drawn come from SQL by id.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from torchscope.errors import BadRequestError, NotFoundError
from torchscope.storage.profile.analyses import names_of
from torchscope.storage.profile.kinds import KIND, KINDS
from torchscope.storage.profile.reads import ProfileReads
from torchscope.storage.timeline import event_sql, lod, tiled
from torchscope.storage.timeline.index import LANE_GROUP_COLUMNS, IndexCache, Loaded, load_index

INDEX_MAX_EVENTS = 500_000
"""Profiles with more events are read from SQL and the stored pyramid instead of a loaded index."""
LAYOUTS_KEPT = 8
WINDOW_COLUMNS = ["id", "row", "lane_id", "kind", "name", "start", "dur", "depth"]
BLOCK_COLUMNS = ["row", "start", "end", "count", "busy"]


class TimelineReads:
    """``timeline_lanes``, ``timeline_window``, ``timeline_search``, ``timeline_event``, ``timeline_minimap``,
    ``name_spans``, ``memory_by_op``: what the timeline and the profile page's links need."""

    def __init__(self, engine: Engine, profiles: ProfileReads) -> None:
        self._engine = engine
        self._profiles = profiles
        self._indexes = IndexCache()
        self._layouts: dict[int, tiled.Layout] = {}
        self._layout_lock = threading.Lock()

    def _large(self, profile_id: int) -> tiled.Layout | None:
        """The layout of a profile read from SQL, or None when it is small enough for the loaded index."""
        meta = self._profiles.profile(profile_id)
        if int(meta["event_count"]) <= INDEX_MAX_EVENTS:
            return None
        with self._layout_lock:
            got = self._layouts.get(int(profile_id))
        if got is None or got.event_count != int(meta["event_count"]):
            lanes = self._profiles.lanes(profile_id)
            with self._engine.connect() as conn:
                got = tiled.Layout(conn, lanes, meta)
            with self._layout_lock:
                self._layouts[int(profile_id)] = got
                while len(self._layouts) > LAYOUTS_KEPT:
                    self._layouts.pop(next(iter(self._layouts)))
        return got

    def _timeline(self, profile_id: int) -> Loaded:
        meta = self._profiles.profile(profile_id)

        def load() -> Loaded:
            lanes = self._profiles.lanes(profile_id)
            with self._engine.connect() as conn:
                return load_index(conn, lanes, meta)

        return self._indexes.get(int(profile_id), int(meta["event_count"]), load)

    def timeline_prefetch(self, profile_id: int) -> None:
        """Backs :meth:`Store.timeline_prefetch`, which documents the columns."""

        def load() -> None:
            try:
                if self._large(profile_id) is None:
                    self._timeline(profile_id)
            except Exception:  # noqa: BLE001 - a prefetch must never fail the page that asked for it
                pass

        threading.Thread(target=load, name=f"timeline-prefetch-{profile_id}", daemon=True).start()

    # -- reads -------------------------------------------------------------------------------------------------------

    def timeline_lanes(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.timeline_lanes`, which documents the columns."""
        large = self._large(profile_id)
        if large is not None:
            return large.lanes[LANE_GROUP_COLUMNS].copy()
        return self._timeline(profile_id).lanes.copy()

    def timeline_window(
        self,
        profile_id: int,
        start: int | None = None,
        end: int | None = None,
        *,
        px: int = 1200,
        max_items: int = 3000,
        max_blocks: int = 2000,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Backs :meth:`Store.timeline_window`, which documents the columns."""
        if max_items < 0 or max_blocks < 0 or px <= 0:
            raise BadRequestError("px must be positive, max_items and max_blocks non-negative")
        large = self._large(profile_id)
        if large is not None:
            a, b = _bounds(start, end, large.duration)
            with self._engine.connect() as conn:
                drawn, bl, in_window, npp = tiled.window(conn, large, a, b, px, max_items, max_blocks)
            events = self._frame(large.row0, large.lane_ids, drawn)
            events.attrs.update(in_window=in_window, ns_per_px=npp, start=a, end=b)
            blocks = pd.DataFrame({"row": bl.row, "start": bl.start, "end": bl.end, "count": bl.count,
                                   "busy": bl.busy}, columns=BLOCK_COLUMNS)  # fmt: skip
            return events, blocks
        t = self._timeline(profile_id)
        a, b = _bounds(start, end, t.duration)
        key = (a, b, px, max_items, max_blocks)
        w = t.windows.get(key)
        if w is None:  # the same view asked again (reloads, the whole profile after a double click) is remembered
            w = lod.window(t.ix, t.row_of_lane, a, b, px, max_items, max_blocks)
            t.windows[key] = w
            while len(t.windows) > 16:
                try:
                    t.windows.popitem(last=False)
                except KeyError:  # another request trimmed it first
                    break
        events = self._event_rows(t, w.events)
        events.attrs.update(in_window=w.in_window, ns_per_px=w.ns_per_px, start=a, end=b)
        blocks = pd.DataFrame(
            {"row": w.block_row, "start": w.block_start, "end": w.block_end, "count": w.block_count,
             "busy": w.block_busy}, columns=BLOCK_COLUMNS,
        )  # fmt: skip
        return events, blocks

    def timeline_search(
        self, profile_id: int, query: str, start: int | None = None, end: int | None = None, max_items: int = 2000
    ) -> pd.DataFrame:
        """Backs :meth:`Store.timeline_search`, which documents the columns."""
        large = self._large(profile_id)
        if large is not None:
            a, b = _bounds(start, end, large.duration)
            wanted, total, levels = self._names_matching(profile_id, query)
            with self._engine.connect() as conn:
                hit = (tiled.search(conn, large, wanted, levels, a, b, max_items) if wanted
                       else tiled.event_rows(conn, large, [])[0])  # fmt: skip
            frame = self._frame(large.row0, large.lane_ids, hit)
            frame.attrs["total"] = total
            return frame
        t = self._timeline(profile_id)
        a, b = _bounds(start, end, t.duration)
        hit = self._matching_events(t, query)
        total = len(hit)
        s, d = t.ix.start[hit], t.ix.dur[hit]
        hit = hit[((s + d > a) | ((d == 0) & (s >= a))) & (s < b)]
        # the longest duration classes first, then the earliest: what the SQL path's ordered index scans return
        hit = hit[np.lexsort((hit, t.ix.start[hit], -t.ix.level[hit].astype(np.int64)))[:max_items]]
        frame = self._event_rows(t, np.sort(hit))
        frame.attrs["total"] = total
        return frame

    def timeline_event(self, profile_id: int, event_id: int) -> dict[str, Any]:
        """Backs :meth:`Store.timeline_event`, which documents the columns."""
        large = self._large(profile_id)
        if large is not None:
            with self._engine.connect() as conn:
                return event_sql.event_details(conn, large, int(profile_id), int(event_id), self._frame)
        t = self._timeline(profile_id)
        pos = int(event_id) - t.ix.base
        if t.ix.base == 0 or not 0 <= pos < len(t.ix) or self._event_rows(t, np.array([pos]))["id"].iloc[0] != event_id:
            raise NotFoundError(f"there is no event {event_id} in profile {profile_id}")
        event = self._event_rows(t, np.array([pos])).iloc[0].to_dict()
        with self._engine.connect() as conn:
            row, flows, details = event_sql.event_extras(conn, int(profile_id), int(event_id))
        lane = t.lanes.set_index("position").loc[int(t.ix.lane[pos])]
        stack = []
        up = int(t.ix.parent[pos])
        while up >= 0:
            stack.append(up)
            up = int(t.ix.parent[up])
        launcher = int(t.ix.link[pos])
        launched = t.launched_by(pos)
        related_pos = ([launcher] if launcher >= 0 else []) + launched.tolist()
        related = self._event_rows(t, np.array(related_pos, dtype=np.int64))
        op = None
        if launcher >= 0:
            op = self._nearest_op(t, launcher)
        elif t.ix.kind[pos] in (KIND["cuda_runtime"], KIND["cuda_driver"]):
            op = self._nearest_op(t, pos)
        event.update(
            lane_label=lane["label"], group=lane["group"], corr=row[0], ext_id=row[1], info=row[2],
            details={k: v for k, v in dict(details or {}).items() if v is not None},
            stack=self._event_rows(t, np.array(stack[::-1], dtype=np.int64))["name"].tolist(),
            launched_by=related.iloc[:1].to_dict("records") if launcher >= 0 else [],
            launched=related.iloc[(1 if launcher >= 0 else 0):].to_dict("records"),
            op=op,
            flows_out=self._flow_rows(t, [(k, dst) for k, src, dst in flows if src == event_id]),
            flows_in=self._flow_rows(t, [(k, src) for k, src, dst in flows if dst == event_id]),
        )  # fmt: skip
        return event

    def _flow_rows(self, t: Loaded, pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """The events at the other end of flow arrows (``fwdbwd``: forward op -> backward op), with the flow kind."""
        pos = np.array([int(e) - t.ix.base for _, e in pairs], dtype=np.int64)
        pos = pos[(pos >= 0) & (pos < len(t.ix))]
        rows = self._event_rows(t, pos).to_dict("records")
        for row, (kind, _) in zip(rows, pairs):
            row["flow"] = kind
        return rows

    def timeline_minimap(self, profile_id: int, bins: int = 400) -> pd.DataFrame:
        """Backs :meth:`Store.timeline_minimap`, which documents the columns."""
        large = self._large(profile_id)
        if large is not None:
            with self._engine.connect() as conn:
                counts = tiled.minimap(conn, large, bins)
            t: Any = large
        else:
            t = self._timeline(profile_id)
            counts = t.minimaps.get(bins)
            if counts is None:  # the whole profile never changes: count once per resolution
                counts = t.minimaps[bins] = lod.density(t.ix, t.duration, bins)
        order = t.lanes.sort_values("row0")
        frame = pd.DataFrame(counts[order["position"].to_numpy()], index=order["id"].to_numpy())
        frame.attrs["bin_ns"] = max(t.duration, 1) / max(bins, 1)
        frame.attrs["labels"] = order["label"].tolist()
        return frame

    def name_spans(self, profile_id: int) -> pd.DataFrame:
        """Backs :meth:`Store.name_spans`, which documents the columns."""
        self._profiles.profile(profile_id)
        with self._engine.connect() as conn:
            stored = conn.execute(
                text("SELECT n.name, SUM(t.calls), MIN(t.first_start), MAX(t.last_end) FROM timeline_names t "
                     "JOIN names n ON n.id = t.name_id WHERE t.profile_id = :p GROUP BY t.name_id, n.name "
                     "ORDER BY t.name_id"), {"p": int(profile_id)},
            ).all()  # fmt: skip
        if stored or self._large(profile_id) is not None:
            return pd.DataFrame(stored, columns=["name", "calls", "first_start", "last_end"]).astype(
                {"calls": "int64", "first_start": "int64", "last_end": "int64"}
            )
        t = self._timeline(profile_id)
        ids, inverse = t.name_codes()
        first = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
        last = np.zeros(len(ids), dtype=np.int64)
        np.minimum.at(first, inverse, t.ix.start)
        np.maximum.at(last, inverse, t.ix.start + t.ix.dur)
        names = self._names(ids)
        return pd.DataFrame(
            {"name": [names.get(int(i)) for i in ids], "calls": np.bincount(inverse, minlength=len(ids)),
             "first_start": first, "last_end": last}
        )  # fmt: skip

    def memory_by_op(self, profile_id: int, host: lod.HostEvents | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.memory_by_op`, which documents the columns. ``host``: the profile's host events with
        lane ids (the importer has them), else they are the loaded index's."""
        memory = self._profiles.memory_numbers(profile_id)
        cols = ["op", "allocations", "allocated_bytes", "frees", "freed_bytes", "held_bytes"]
        if memory.empty or "lane_id" not in memory.columns:
            return pd.DataFrame(columns=cols)
        lanes = memory["lane_id"].to_numpy(np.int64)
        if host is None:
            t = self._timeline(profile_id)
            host = t.ix
            lane_of = {int(v): i for i, v in enumerate(t.lane_ids.tolist())}
            lanes = np.array([lane_of.get(v, -1) for v in lanes.tolist()], dtype=np.int64)
        owner = lod.enclosing(host, lanes, memory["ts"].to_numpy(np.int64), KIND["cpu_op"])
        names = self._names(np.unique(host.name_id[owner[owner >= 0]]))
        op = [names.get(int(host.name_id[o])) if o >= 0 else "(no op)" for o in owner.tolist()]
        size = memory["bytes"].to_numpy(np.int64)
        frame = pd.DataFrame({"op": op, "alloc": size > 0, "bytes": size})
        frame["allocated"] = np.where(size > 0, size, 0)
        frame["freed"] = np.where(size < 0, -size, 0)
        frame["held"] = np.where(not_freed_later(memory), size, 0)
        g = frame.groupby("op", sort=False)
        out = pd.DataFrame(
            {"allocations": g["alloc"].sum().astype("int64"), "allocated_bytes": g["allocated"].sum(),
             "frees": (g.size() - g["alloc"].sum()).astype("int64"), "freed_bytes": g["freed"].sum(),
             "held_bytes": g["held"].sum()}
        )  # fmt: skip
        out = out.reset_index().sort_values(["allocated_bytes", "op"], ascending=[False, True], kind="stable")
        return out.reset_index(drop=True)[cols]

    def op_modules(self, profile_id: int, host: lod.HostEvents | None = None) -> pd.DataFrame:
        """Backs :meth:`Store.op_modules`, which documents the columns. ``host``: the profile's host events (the
        importer has them), else they are the loaded index's."""
        cols = ["name", "module", "host_ns"]
        with self._engine.connect() as conn:  # no module events (no with_stack): no need to load the events
            modules = conn.execute(
                text("SELECT 1 FROM timeline_names t JOIN names n ON n.id = t.name_id "
                     "WHERE t.profile_id = :p AND n.name LIKE 'nn.Module: %' LIMIT 1"), {"p": int(profile_id)},
            ).first()  # fmt: skip
        if modules is None:
            self._profiles.profile(profile_id)
            return pd.DataFrame(columns=cols)
        ix = host if host is not None else self._timeline(profile_id).ix
        candidates = np.flatnonzero(ix.kind == KIND["python_function"])
        names = self._names(np.unique(ix.name_id[candidates]))
        is_module = np.zeros(len(ix.kind), dtype=bool)
        module_ids = [i for i, n in names.items() if n.startswith("nn.Module: ")]
        is_module[candidates[np.isin(ix.name_id[candidates], module_ids)]] = True
        if not is_module.any():
            return pd.DataFrame(columns=cols)
        owner = lod.nearest_marked(ix.parent, is_module)
        paths: dict[int, str] = {}
        for p in np.flatnonzero(is_module).tolist():  # parents come first: they start earlier in the same lane
            up = int(owner[p])
            short = names[int(ix.name_id[p])].split(": ", 1)[1]
            paths[p] = f"{paths[up]}/{short}" if up >= 0 else short
        ops = np.flatnonzero((ix.kind == KIND["cpu_op"]) & (owner >= 0))
        frame = pd.DataFrame({"name_id": ix.name_id[ops], "module": [paths[int(o)] for o in owner[ops]],
                              "host_ns": ix.dur[ops]})  # fmt: skip
        total = frame.groupby(["name_id", "module"], sort=False)["host_ns"].sum().reset_index()
        best = total.sort_values(["host_ns", "module"], ascending=[False, True]).drop_duplicates("name_id")
        op_names = self._names(best["name_id"].to_numpy())
        best.insert(0, "name", best["name_id"].map(op_names))
        return best[cols].sort_values("name").reset_index(drop=True)

    # -- helpers -----------------------------------------------------------------------------------------------------

    def _names_matching(self, profile_id: int, query: str) -> tuple[list[int], int, dict[int, tuple[int, int]]]:
        """Name ids of the profile whose name contains ``query`` (case-insensitive), their events' count and, per
        lane id holding some, the duration classes (lowest, highest) they span there."""
        query = (query or "").strip().lower()
        if not query:
            return [], 0, {}
        with self._engine.connect() as conn:
            rows = conn.execute(
                text("SELECT t.name_id, n.name, t.lane_id, t.calls, t.min_level, t.max_level FROM timeline_names t "
                     "JOIN names n ON n.id = t.name_id WHERE t.profile_id = :p"), {"p": int(profile_id)},
            ).all()  # fmt: skip
        ids, total, levels = set(), 0, {}
        for name_id, name, lane, calls, low, high in rows:
            if query in name.lower():
                ids.add(int(name_id))
                total += int(calls)
                was = levels.get(int(lane), (int(low), int(high)))
                levels[int(lane)] = (min(was[0], int(low)), max(was[1], int(high)))
        return sorted(ids), total, levels

    def _frame(self, row_of_lane: np.ndarray, lane_ids: np.ndarray, e: dict[str, np.ndarray]) -> pd.DataFrame:
        """Event arrays (:data:`tiled.EVENT_FIELDS`) as the documented event columns."""
        names = self._names(np.unique(e["name_id"])) if len(e["id"]) else {}
        return pd.DataFrame(
            {"id": e["id"], "row": row_of_lane[e["lane"]] + e["depth"], "lane_id": lane_ids[e["lane"]],
             "kind": [KINDS[k] for k in e["kind"].tolist()], "name": [names.get(int(i)) for i in e["name_id"]],
             "start": e["start"], "dur": e["dur"], "depth": np.asarray(e["depth"], dtype=np.int64)},
            columns=WINDOW_COLUMNS,
        )  # fmt: skip

    def _names(self, ids: np.ndarray) -> dict[int, str]:
        wanted = sorted({int(i) for i in ids})
        with self._engine.connect() as conn:
            return names_of(conn, wanted)

    def _matching_events(self, t: Loaded, query: str) -> np.ndarray:
        """Positions of the events whose name contains ``query`` (case-insensitive)."""
        query = (query or "").strip().lower()
        if not query:
            return np.zeros(0, dtype=np.int64)
        distinct, codes = t.name_codes()
        names = self._names(distinct)
        wanted = np.array([query in names.get(int(i), "").lower() for i in distinct], dtype=bool)
        return np.flatnonzero(wanted[codes]) if wanted.any() else np.zeros(0, dtype=np.int64)

    def _event_rows(self, t: Loaded, pos: np.ndarray) -> pd.DataFrame:
        pos = np.asarray(pos, dtype=np.int64)
        ix = t.ix
        arrays = {"id": pos + ix.base, "lane": ix.lane[pos], "kind": ix.kind[pos], "name_id": ix.name_id[pos],
                  "start": ix.start[pos], "dur": ix.dur[pos], "depth": ix.depth[pos]}  # fmt: skip
        return self._frame(t.row_of_lane, t.lane_ids, arrays)

    def _nearest_op(self, t: Loaded, pos: int) -> dict[str, Any] | None:
        while pos >= 0 and t.ix.kind[pos] != KIND["cpu_op"]:
            pos = int(t.ix.parent[pos])
        return self._event_rows(t, np.array([pos])).iloc[0].to_dict() if pos >= 0 else None


def _bounds(start: int | None, end: int | None, duration: int) -> tuple[int, int]:
    a = 0 if start is None else int(start)
    b = duration + 1 if end is None else int(end)
    if b <= a:
        raise BadRequestError(f"the window end ({b}) must come after its start ({a})")
    return a, b


def not_freed_later(memory: pd.DataFrame) -> np.ndarray:
    """Per allocator event of ``memory`` (in time order): whether it is an allocation whose block is not freed
    later within the profile, i.e. the next event at the same device and address is not a free. Allocations of
    unknown address count as freed (nothing to match them by)."""
    size = memory["bytes"].to_numpy(np.int64)
    known = memory["addr"].notna().to_numpy()
    keys = [memory[c].fillna(-1).to_numpy(np.int64) for c in ("device_type", "device", "addr")]
    order = np.lexsort((np.arange(len(memory)), memory["ts"].to_numpy(np.int64), *keys[::-1]))
    same = known[order][1:] & known[order][:-1]  # sorted positions i and i + 1: the same device and address
    for key in keys:
        same &= key[order][1:] == key[order][:-1]
    freed_next = np.zeros(len(memory), dtype=bool)
    freed_next[:-1] = same & (size[order][1:] < 0)
    held = np.zeros(len(memory), dtype=bool)
    held[order] = (size[order] > 0) & ~freed_next & known[order]
    return held
