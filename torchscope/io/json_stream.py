"""Reading a Chrome / Kineto trace file in bounded pieces: its top-level fields, then its events, batch by batch.

A trace is one JSON document, ``{..., "traceEvents": [event, event, ...], ...}`` (or a bare ``[event, ...]``), of up
to several GB. :class:`TraceReader` streams it (through ``zlib`` when it is gzip) and never holds more than a block
of text and the events decoded from it: each batch is the longest run of whole events in the text read so far,
decoded by ``msgspec`` as one array (of dicts, or of the caller's ``msgspec.Struct``: only the fields it names are
built). A cut is tried where one event ends and the next begins (``}`` ``,`` ``{``); the decoder only accepts the
slice when the cut really is between two events of the array (a ``}`` inside a string or a nested object leaves the
slice unbalanced), so a wrong guess costs one failed decode, never a wrong event.

Fields before the events are read first (:attr:`TraceReader.fields`); fields after them (Kineto writes
``baseTimeNanoseconds`` and ``traceName`` last) are added when the events end.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec
import orjson

from torchscope.errors import TraceImportError

BLOCK = 8 << 20
"""Text decoded per batch (bytes): about 25k Kineto events, a few tens of MB of Python objects."""

ADVICE = "re-export the trace, or check that the file is an unmodified Kineto/Chrome trace"
_EVENTS_KEY = re.compile(rb'"traceEvents"\s*:\s*\[')
_CUT = re.compile(rb"\}\s*,\s*\{")
_WS = b" \t\r\n"
_MAX_HEADER = 256 << 20  # a header this large without "traceEvents" is read as one document
_TAIL = 64 << 10


def invalid_json(where: str, exc: Exception) -> TraceImportError:
    """The error for a file that is not valid JSON: bytes that are not UTF-8, or a truncated or corrupt text."""
    what = "holds bytes that are not UTF-8" if "utf-8" in str(exc).lower() else "is truncated or corrupt"
    return TraceImportError(f"{where}: not valid JSON, the file {what} ({exc}); {ADVICE}")


def malformed_event(where: str, exc: Exception) -> TraceImportError:
    """The error for a trace event that is not what the trace format says (not a JSON object, say)."""
    return TraceImportError(f"{where}: malformed trace event ({exc}); {ADVICE}")


class TraceReader:
    """The events of the trace at ``path``, in batches; ``fields`` holds its other top-level fields.

    Iterate :meth:`batches` once. Events are decoded as ``event_type``: plain JSON values by default, or a
    ``msgspec.Struct`` (every event must then be a JSON object). Raises :class:`TraceImportError` for a file that is
    not JSON, is truncated or corrupt (gzip or JSON), is not a trace, or holds an event that is not ``event_type``.
    ``position`` and ``size`` (bytes of the file read / in all) drive a progress bar.
    """

    def __init__(
        self, path: str | os.PathLike[str], block: int | None = None, event_type: Any = Any,
        plain_phases: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.path = os.fspath(path)
        self.block = block or BLOCK
        self.event_type = event_type
        self._events = msgspec.json.Decoder(list[event_type])  # type: ignore[valid-type]
        self.plain_phases = frozenset(plain_phases)
        self.plain: list[Any] = []
        """The last batch's events of ``plain_phases`` (their ``ph``) also as plain JSON values, exactly as written
        (a struct keeps only its fields): a batch that holds any is decoded a second time."""
        self._plain_quoted = [b'"' + p.encode() + b'"' for p in plain_phases]
        names = b"|".join(re.escape(p.encode()) for p in plain_phases)
        self._plain_hint = re.compile(rb'"ph"\s*:\s*"(?:' + names + rb')"')
        self.fields: dict[str, Any] = {}
        self.size = os.path.getsize(self.path)
        self.position = 0

    def batches(self) -> Iterator[list[Any]]:
        """Lists of events (decoded JSON values) in file order."""
        with open(self.path, "rb") as fh:
            yield from self._parse(self._text(fh))

    # -- text ----------------------------------------------------------------------------------------------------

    def _text(self, fh: BinaryIO) -> Iterator[bytes]:
        """The file's text in blocks: gunzipped (also multi-member gzip) when it starts with the gzip magic."""
        first = fh.read(self.block)
        self.position = fh.tell()
        if first[:2] != b"\x1f\x8b":
            while first:
                yield first
                first = fh.read(self.block)
                self.position = fh.tell()
            return
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        pending = first
        try:
            while True:
                if not pending:
                    pending = fh.read(self.block)
                    self.position = fh.tell()
                    if not pending:
                        break
                if inflate.eof:  # another gzip member follows (or zero padding)
                    if not pending.strip(b"\x00"):
                        pending = b""
                        continue
                    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
                text = inflate.decompress(pending, self.block)
                pending = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
                if text:
                    yield text
            text = inflate.flush()
        except zlib.error as exc:
            raise TraceImportError(f"{self.path}: the gzip file is corrupt ({exc}); {ADVICE}") from exc
        if text:
            yield text
        if not inflate.eof:
            raise TraceImportError(f"{self.path}: the gzip file is truncated (it ends mid-stream); {ADVICE}")

    # -- JSON ----------------------------------------------------------------------------------------------------

    def _parse(self, blocks: Iterator[bytes]) -> Iterator[list[Any]]:
        buf = bytearray()
        eof = False

        def more() -> bool:
            nonlocal eof
            chunk = next(blocks, None)
            if chunk is None:
                eof = True
                return False
            buf.extend(chunk)
            return True

        # the document's start: an object with "traceEvents", or a bare array of events
        while not eof and len(buf.lstrip(_WS)) == 0:
            more()
        start = len(buf) - len(buf.lstrip(_WS))
        if eof and start >= len(buf):
            raise TraceImportError(f"{self.path}: the file is empty: nothing to import ({ADVICE})")
        opener = buf[start : start + 1]
        if opener == b"[":
            pos = start + 1
            bare = True
        elif opener == b"{":
            bare = False
            while True:
                match = _EVENTS_KEY.search(buf, start)
                if match or eof or len(buf) > _MAX_HEADER:
                    break
                more()
            if match is None:  # no event array: the whole document decides (a small file, or not a trace)
                while more():
                    pass
                yield from self._whole(bytes(buf))
                return
            header = bytes(buf[start : match.start()]).rstrip(_WS).rstrip(b",")
            try:
                fields = orjson.loads(header + b"}")
            except orjson.JSONDecodeError:  # the key sits inside some value: read it all as one document
                while more():
                    pass
                yield from self._whole(bytes(buf))
                return
            self.fields.update(fields)
            pos = match.end()
        else:
            while more():
                pass
            yield from self._whole(bytes(buf))
            return

        while True:
            # at the start of an array element (or the array's end)
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            cut = self._last_cut(buf, pos)
            if cut is not None:
                events, after = cut
                if events:
                    yield events
                del buf[: after - 1]  # keep the byte before the next event: it frames the next slice (_framed)
                pos = 1
                continue
            if not eof and more():
                continue
            # the end of the file: the last events, the array's end and the fields after it
            events = self._finish(bytes(buf[pos:]), bare)
            if events:
                yield events
            return

    def _last_cut(self, buf: bytearray, pos: int) -> tuple[list[Any], int] | None:
        """The whole events from ``pos`` up to the last event boundary in ``buf``, and where the next one starts."""
        if len(buf) - pos < self.block // 2:
            return None  # read on: decode in large slices
        end = len(buf)
        window = max(pos, end - _TAIL)  # the last boundary is near the end: look there first
        tries = 0
        while tries < 8:
            last = None
            for last in _CUT.finditer(buf, window, end):
                pass
            if last is None:
                if window == pos:
                    return None
                window = max(pos, end - 4 * (end - window))
                continue
            close = last.start()
            try:
                events = self._framed(buf, pos - 1, close + 1)
            except msgspec.DecodeError:
                end = close  # not between two events: try the boundary before it
                tries += 1
                continue
            return events, last.end() - 1
        return None

    def _framed(self, buf: bytearray, before: int, after: int) -> list[Any]:
        """The events between ``before`` and ``after`` (exclusive) in ``buf``, decoded where they lie: the two bytes
        at ``before`` and ``after`` (a separator, whitespace) stand in for the array's brackets for the moment."""
        saved = buf[before], buf[after]
        buf[before], buf[after] = 0x5B, 0x5D  # [ ]
        try:
            with memoryview(buf) as view, view[before : after + 1] as text:
                return self._decode(text, self._may_hold_plain(buf, before, after + 1))
        finally:
            buf[before], buf[after] = saved

    def _may_hold_plain(self, data: bytes | bytearray, lo: int = 0, hi: int | None = None) -> bool:
        """Whether ``data[lo:hi]`` may hold an event of ``plain_phases`` (a quick scan for the quoted phase first)."""
        hi = len(data) if hi is None else hi
        if not any(data.find(quoted, lo, hi) >= 0 for quoted in self._plain_quoted):
            return False
        return self._plain_hint.search(data, lo, hi) is not None

    def _decode(self, text: bytes | memoryview, plain: bool) -> list[Any]:
        """An array of events; ``msgspec.DecodeError`` when ``text`` is not one JSON array (:class:`TraceImportError`
        when it is one, but of something else than events). ``plain``: whether it may hold events of
        ``plain_phases`` (:meth:`_may_hold_plain`)."""
        try:
            events = self._events.decode(text)
        except msgspec.ValidationError as exc:
            raise malformed_event(self.path, exc) from exc
        self.plain = []
        if plain:
            self.plain = self._of_plain_phases(events, msgspec.json.decode(text))
        return events

    def _of_plain_phases(self, events: list[Any], values: list[Any]) -> list[Any]:
        """Of ``values`` (the plain decoding of ``events``), those of events whose phase is in ``plain_phases``."""
        phases = (e.get("ph") if isinstance(e, dict) else getattr(e, "ph", None) for e in events)
        return [value for ph, value in zip(phases, values) if type(ph) is str and ph in self.plain_phases]

    def _finish(self, rest: bytes, bare: bool) -> list[Any]:
        """The events in ``rest`` (the end of the event array), with the fields after the array into ``fields``."""
        close = len(rest)
        error: msgspec.DecodeError | None = None
        while True:
            close = rest.rfind(b"]", 0, close)
            if close < 0:
                if error is not None:
                    raise invalid_json(self.path, error)
                raise TraceImportError(
                    f"{self.path}: the trace is truncated: its event array never ends (the file is cut short or "
                    f"corrupt); {ADVICE}"
                )
            trailer = self._trailer(rest[close + 1 :].strip(_WS), bare)
            if trailer is None:  # this ] closes something inside an event, or inside a field after the events
                continue
            try:
                text = b"[" + rest[:close] + b"]"
                events = self._decode(text, self._may_hold_plain(text))
            except msgspec.DecodeError as exc:
                error = error or exc
                continue
            self.fields.update(trailer)
            return events

    @staticmethod
    def _trailer(tail: bytes, bare: bool) -> dict[str, Any] | None:
        """The fields after the event array (``tail`` is the text after its ``]``), or None when it is not that."""
        if bare:
            return {} if not tail else None
        if tail == b"}":
            return {}
        if not tail.startswith(b","):
            return None
        try:
            fields = orjson.loads(b"{" + tail[1:])
        except orjson.JSONDecodeError:
            return None
        return fields if isinstance(fields, dict) else None

    def _whole(self, text: bytes) -> Iterator[list[Any]]:
        """A document read whole (no event array found while streaming): its events, or the reason it has none."""
        try:
            data = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise invalid_json(self.path, exc) from exc
        if isinstance(data, list):
            yield self._converted(data)
            return
        if not isinstance(data, dict):
            raise TraceImportError(f"{self.path}: not a Chrome/Kineto trace (top level is a {type(data).__name__})")
        events = data.get("traceEvents")
        if not isinstance(events, list):
            raise TraceImportError(f"{self.path}: JSON without 'traceEvents': not a Chrome/Kineto trace")
        self.fields.update({k: v for k, v in data.items() if k != "traceEvents"})
        yield self._converted(events)

    def _converted(self, events: list[Any]) -> list[Any]:
        """Events read as plain JSON values, as ``event_type``."""
        self.plain = self._of_plain_phases(events, events) if self.plain_phases else []
        if self.event_type is Any:
            return events
        try:
            return msgspec.convert(events, list[self.event_type])  # type: ignore[name-defined]
        except msgspec.ValidationError as exc:
            raise malformed_event(self.path, exc) from exc
