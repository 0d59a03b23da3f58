"""``torchscope run --parse-stdout``: numbers a script prints (``loss 0.31``, ``acc: 92.5%``, ``lr=3e-4``) as scalars.

:func:`parse_pairs` is the grammar (pure); :class:`TeeStream` stands in for ``sys.stdout`` and hands every complete
line to a callback (:class:`LineScalars`) after writing it, unchanged and at once, to the stream it replaced.
Only what goes through ``sys.stdout`` is seen: ``print``, ``sys.stdout.write``, ``logging`` handlers on stdout;
bytes written to ``sys.stdout.buffer``, to file descriptor 1 or by child processes reach the terminal but are not
parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TextIO

_PAIR = re.compile(
    r"(?<![\w./-])(?P<key>[A-Za-z_][\w./-]*?)"  # a word that starts with a letter: loss, val/acc, train-loss
    r"(?:\s*[:=]\s*|\s+)"  # key: value, key=value, key value
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b)"
    r"(?=$|[\s,;|)\]%]|\.(?:\s|$))",  # the number ends there: "3/10" and "1e" are not values
    re.IGNORECASE,
)


def parse_pairs(line: str) -> dict[str, float]:
    """The ``key value``, ``key: value`` and ``key=value`` pairs of one printed line, in order.

    A key is a word that starts with a letter or ``_`` and may hold ``. / - _`` (``val/loss``); the value is a
    decimal number (``3``, ``-0.5``, ``1e-4``, ``nan``, ``inf``) followed by the end of the line, a space, one of
    ``, ; | ) ] %`` or a full stop. ``epoch 3 | loss: 0.25, acc=91.5%`` gives
    ``{"epoch": 3.0, "loss": 0.25, "acc": 91.5}``; ``Accuracy: 9839/10000`` gives nothing (a fraction is not one
    value). A key seen twice keeps its last value.
    """
    found: dict[str, float] = {}
    for match in _PAIR.finditer(line):
        found[match.group("key")] = float(match.group("value"))
    return found


class LineScalars:
    """The callback of a :class:`TeeStream`: each line's pairs go to ``log(values, step)`` at ``step()``.

    ``step()`` returns the step the values belong to, or None while they cannot be placed yet (before the first
    optimizer step of a script that has an optimizer): such lines are held (10,000 at most) and logged at step 0 by
    the next line that can be placed, or by :meth:`flush`.
    """

    def __init__(self, log: Callable[[dict[str, float], int], None], step: Callable[[], int | None]) -> None:
        self._log = log
        self._step = step
        self._held: list[dict[str, float]] = []

    def __call__(self, line: str) -> None:
        values = parse_pairs(line)
        if not values:
            return
        step = self._step()
        if step is None:
            if len(self._held) < 10_000:
                self._held.append(values)
            return
        self.flush()
        self._log(values, step)

    def flush(self) -> None:
        """Log the held lines at step 0."""
        held, self._held = self._held, []
        for values in held:
            self._log(values, 0)


class TeeStream:
    """A text stream that writes everything to ``stream`` first, then gives each complete line to ``on_line``.

    Every other attribute (``fileno``, ``isatty``, ``encoding``, ``buffer``, ``flush`` ...) is the wrapped stream's,
    so the script sees the same terminal. ``on_line`` must not raise; a failure there is swallowed (the output has
    been written already).
    """

    def __init__(self, stream: TextIO, on_line: Callable[[str], None], max_pending: int = 65536) -> None:
        self._stream = stream
        self._on_line = on_line
        self._pending = ""
        self._max_pending = max_pending

    @property
    def wrapped(self) -> TextIO:
        """The stream this one writes to."""
        return self._stream

    def write(self, text: str) -> int:
        """Write ``text`` to the wrapped stream, then parse the lines it completes."""
        written = self._stream.write(text)
        try:
            if isinstance(text, str) and text:
                self._feed(text)
        except Exception:  # noqa: BLE001 - parsing must never break the script's output
            self._pending = ""
        return written

    def writelines(self, lines: Any) -> None:
        """``write`` each of ``lines``."""
        for line in lines:
            self.write(line)

    def _feed(self, text: str) -> None:
        text = self._pending + text
        *complete, self._pending = re.split(r"\r\n|\r|\n", text)  # \r: progress bars redraw a line in place
        if len(self._pending) > self._max_pending:  # a line that never ends (a progress bar of dots) is not kept
            self._pending = ""
        for line in complete:
            if line:
                self._on_line(line)

    def close_line(self) -> None:
        """Parse what was printed after the last newline (at the end of the script)."""
        pending, self._pending = self._pending, ""
        if pending:
            try:
                self._on_line(pending)
            except Exception:  # noqa: BLE001
                pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> Any:
        return iter(self._stream)


__all__ = ["LineScalars", "TeeStream", "parse_pairs"]
