"""Tables of the timeline's level of detail, written once when a profile is stored (``build.build_timeline``).

The dashboard opens a store read-only and must answer a pan or zoom of a 10M-event profile in well under 100 ms
without loading the profile, so everything a window needs beyond index range scans of ``profile_events`` is here:

- ``timeline_lanes``: per lane, its display rows (``row0``, ``rows`` = nesting depth + 1), the finest pyramid
  level stored for it (``finest_shift``) and the nesting depth of each of its events (``depth``: a zlib'd int16
  array, in id order: a lane's events have contiguous ids) and every 256th start of its events (``starts``: the
  ids of a time range without a search, see :func:`~torchscope.storage.timeline.tiles.starting_within`).
- ``timeline_tiles``: the density pyramid. At level ``shift`` time is cut into bins of ``2**shift`` ns from the
  profile start; a tile holds :data:`~torchscope.storage.timeline.tiles.TILE_BINS` consecutive bins of one lane:
  for every non-empty (display row, bin), the count of events that start in the bin and their busy ns (each
  event's duration clipped at the bin's end), zlib'd narrow integer arrays.
- ``timeline_names``: per event name and lane of a profile: calls, first start, last end, the duration classes it
  spans (searches, links by name).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, SmallInteger, Table

from torchscope.storage.schema import metadata

timeline_lanes = Table(
    "timeline_lanes",
    metadata,
    Column("lane_id", Integer, primary_key=True, autoincrement=False),
    Column("profile_id", Integer, nullable=False, index=True),
    Column("row0", Integer, nullable=False),  # first display row of the lane
    Column("rows", Integer, nullable=False),  # nesting depth + 1
    Column("finest_shift", SmallInteger, nullable=False),  # finest pyramid level stored for the lane
    Column("depth", LargeBinary, nullable=False),  # zlib(int16 little-endian): depth of each event, by id
    Column("starts", LargeBinary),  # tiles.encode_starts: every START_STEP-th start of the lane's events, by id
)

timeline_tiles = Table(
    "timeline_tiles",
    metadata,
    Column("profile_id", Integer, primary_key=True, autoincrement=False),
    Column("shift", SmallInteger, primary_key=True, autoincrement=False),  # bins of 2**shift ns
    Column("tile", BigInteger, primary_key=True, autoincrement=False),  # bins tile * TILE_BINS ... + TILE_BINS - 1
    Column("lane_id", Integer, primary_key=True, autoincrement=False),
    Column("cells", LargeBinary, nullable=False),  # tiles.encode_cells: rows, bins, counts, busy ns
)

timeline_names = Table(
    "timeline_names",
    metadata,
    Column("profile_id", Integer, primary_key=True, autoincrement=False),
    Column("name_id", Integer, primary_key=True, autoincrement=False),
    Column("lane_id", Integer, primary_key=True, autoincrement=False),
    Column("calls", BigInteger, nullable=False),
    Column("first_start", BigInteger, nullable=False),  # ns since the profile start
    Column("last_end", BigInteger, nullable=False),
    Column("min_level", SmallInteger, nullable=False),  # duration classes (profile_events.level) the name spans
    Column("max_level", SmallInteger, nullable=False),
)
