"""Tables of profiles and their events. Registered on the shared ``metadata``.

Layout, chosen for the timeline's window queries over million-event profiles:

- ``profiles``: one row per profiling window (live) or imported trace file (one per worker/rank).
- ``profile_lanes``: one row per ``(pid, tid)`` of a trace: a host thread, or a device stream (``pid`` = device,
  ``tid`` = stream in Kineto traces). Events belong to a lane, and a lane to a profile.
- ``profile_events``: every duration/instant event. ``start`` is nanoseconds since ``profiles.start_ns`` (small
  integers keep the rows short); ``level`` is the bit length of ``dur``. A lane's events have contiguous ids in
  start order, so the index ``(lane_id, level, id)`` orders each duration class by start (on SQLite the index names
  ``(lane_id, level)``: every entry ends with the rowid). With the ids of a time range (``timeline_lanes.starts``)
  it makes both exact overlap queries (an event of level L lasts less than ``2**L`` ns, so it overlaps ``[a, b)``
  only if it starts in ``[a - 2**L, b)``) and level-of-detail queries (the longest events first) a few index range
  scans.
  The args most events carry have columns too (``ev_idx``, ``seq_nr``, ``fwd_tid``, ``cbid``, ``py_id``,
  ``py_parent``, ``rf_id``); an op's input dims, types, strides and concrete values are one interned text
  (``info_id``).
- ``profile_event_details``: what only device events carry (grid, block, registers, shared memory, occupancy, bytes,
  queued, context, memory bandwidth).
- ``profile_event_args``: the args of an event that no column above keeps (collective sizes, ``Python module id``
  ...), as the trace wrote them: one JSON object per event that has any, so an exported trace
  gives them back.
- ``profile_flows``: flow arrows other than runtime -> kernel (those are ``link``): forward -> backward ops.
- ``profile_memory``: allocator events (``[memory]`` instants of ``profile_memory=True``).
- ``profile_summaries``: the analyses the pages show (operator, kernel, module, step, memory tables), computed once
  when the profile is stored (``storage/summaries.py``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, LargeBinary, SmallInteger, String, Table, Text

from torchscope.storage.schema import metadata

LANE_LEVEL_INDEX = "ix_profile_events_lane_level"

ROWID = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit id that is SQLite's rowid (declared INTEGER there): no second index beside the table, faster inserts."""

profiles = Table(
    "profiles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("source", String(16), nullable=False),  # live | import
    Column("path", Text),  # the imported file, or the live session's window
    Column("rank", Integer),  # distributed rank when the trace says so
    Column("start_ns", BigInteger, nullable=False),  # absolute time of event start 0 (trace clock, ns)
    Column("duration_ns", BigInteger, nullable=False),
    Column("step_first", BigInteger),  # first and last ProfilerStep#N of the window
    Column("step_last", BigInteger),
    Column("step_count", Integer, nullable=False, default=0),
    Column("event_count", BigInteger, nullable=False, default=0),
    Column("first_event_id", BigInteger),  # the profile's events have ids first_event_id .. + event_count - 1
    Column("kernel_count", BigInteger, nullable=False, default=0),
    Column("device_name", Text),
    Column("devices", Text, nullable=False, default="[]"),  # JSON: Kineto deviceProperties
    Column("info", Text, nullable=False, default="{}"),  # JSON: other trace-level fields (distributedInfo, ...)
    Column("created_at", BigInteger, nullable=False),
)

profile_lanes = Table(
    "profile_lanes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("profile_id", Integer, nullable=False, index=True),
    Column("pid", Text, nullable=False),  # as in the trace (a process id, a device number, or a label)
    Column("tid", Text, nullable=False),
    Column("kind", String(8), nullable=False),  # host | device | other
    Column("device", Integer),
    Column("stream", BigInteger),
    Column("label", Text),  # thread/process name from the trace's metadata events
    Column("sort", BigInteger),
    Column("event_count", BigInteger, nullable=False, default=0),
    Column("max_level", SmallInteger, nullable=False, default=0),
)

profile_events = Table(
    "profile_events",
    metadata,
    Column("id", ROWID, primary_key=True, autoincrement=False),
    Column("lane_id", Integer, nullable=False),
    Column("kind", SmallInteger, nullable=False),  # torchscope.storage.profile.kinds.KINDS
    Column("name_id", Integer, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("dur", BigInteger, nullable=False),
    Column("parent", BigInteger),  # innermost enclosing event of the same host lane
    Column("corr", BigInteger),  # CUDA/HIP correlation id (runtime call <-> device activity)
    Column("link", BigInteger),  # device event -> the runtime event that launched it
    Column("ext_id", BigInteger),  # Kineto "External id"
    Column("info_id", Integer),  # interned text: an op's inputs (records.SHAPE_ARGS), an 'other' event's category
    Column("ev_idx", Integer),  # Kineto "Ev Idx" (the op's index in the profiler's results)
    Column("seq_nr", Integer),  # autograd "Sequence number" (forward op <-> its backward)
    Column("fwd_tid", Integer),  # "Fwd thread id" (the thread that ran the forward of a backward op)
    Column("cbid", Integer),  # CUPTI callback id of a runtime call
    Column("py_id", Integer),  # "Python id" of a python_function event (with_stack)
    Column("py_parent", Integer),  # its "Python parent id"
    Column("rf_id", Integer),  # "Record function id"
    # a lane's events have contiguous ids in start order, so (lane, level, id) orders them as (lane, level, start):
    # SQLite appends the rowid (id) to every index entry, PostgreSQL needs it named
    Index(LANE_LEVEL_INDEX, "lane_id", "level").ddl_if(dialect="sqlite"),
    Index(LANE_LEVEL_INDEX, "lane_id", "level", "id").ddl_if(dialect="postgresql"),
)

profile_event_details = Table(
    "profile_event_details",
    metadata,
    Column("event_id", ROWID, primary_key=True, autoincrement=False),
    Column("grid", String(48)),  # "x,y,z"
    Column("block", String(48)),
    Column("registers", Integer),
    Column("shared_memory", BigInteger),
    Column("blocks_per_sm", Float),
    Column("warps_per_sm", Float),
    Column("occupancy", Float),  # estimated achieved occupancy, percent
    Column("bytes", BigInteger),  # memcpy / memset size
    Column("queued", BigInteger),  # Kineto "queued", "context" and "memory bandwidth (GB/s)"
    Column("context", BigInteger),
    Column("bandwidth", Float),
)

profile_event_args = Table(
    "profile_event_args",
    metadata,
    Column("event_id", ROWID, primary_key=True, autoincrement=False),
    Column("args", Text, nullable=False),  # JSON object: the args kept in no other column
)

profile_flows = Table(
    "profile_flows",
    metadata,
    Column("profile_id", Integer, nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # fwdbwd: a forward op -> the backward op autograd ran for it
    Column("flow_id", BigInteger, nullable=False),  # the id the trace gave the flow
    Column("src", BigInteger, nullable=False),  # event ids
    Column("dst", BigInteger, nullable=False),
)

profile_memory = Table(
    "profile_memory",
    metadata,
    Column("profile_id", Integer, nullable=False),
    Column("lane_id", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),  # ns since profiles.start_ns
    Column("device_type", SmallInteger, nullable=False),  # 0 CPU, 1 CUDA (c10::DeviceType)
    Column("device", SmallInteger, nullable=False),  # -1 for the CPU
    Column("bytes", BigInteger, nullable=False),  # > 0 allocation, < 0 free
    Column("addr", BigInteger),
    Column("allocated", BigInteger),  # total allocated after the event
    Column("reserved", BigInteger),
    Column("args", Text),  # JSON object: the event's other args (Ev Idx, ...), NULL when none
    Index("ix_profile_memory_profile_ts", "profile_id", "ts"),
)

profile_summaries = Table(
    "profile_summaries",
    metadata,
    Column("profile_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(32), primary_key=True),  # op_table, kernel_table, step_breakdown, ... (summaries.py)
    Column("data", LargeBinary, nullable=False),  # the frame as JSON: columns, dtypes, values (summary_store.py)
)
