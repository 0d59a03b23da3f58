"""Decoding the TensorBoard summary values that are neither numbers nor graphs: text and images; and the name under
which an import counts a value it does not keep."""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
               (b"RIFF", "image/webp"), (b"BM", "image/bmp"))  # fmt: skip


def text_value(array: np.ndarray) -> str:
    """The markdown of a ``text`` plugin tensor (``add_text``, ``tf.summary.text``): a string as it is, a vector or
    a matrix of strings as a markdown table (as TensorBoard's text dashboard shows them). ValueError beyond 2-D."""
    if array.size == 0:
        return ""
    cells = np.vectorize(_decode, otypes=[object])(array)
    if cells.size == 1 and cells.ndim <= 1:
        return str(cells.reshape(-1)[0])
    if cells.ndim > 2:
        raise ValueError(f"a text summary holds at most a 2-D table of strings, found shape {list(cells.shape)}")
    rows = cells.reshape(len(cells), -1)
    width = rows.shape[1]
    lines = ["| " + " | ".join(" " for _ in range(width)) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _decode(item: Any) -> str:
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)


def image_values(value: Any) -> list[tuple[int, int, str, bytes]]:
    """``(width, height, mime, encoded bytes)`` of each image of a summary value: the classic ``image`` field
    (``add_image``) or the images plugin's tensor (``tf.summary.image``: width, height, then one encoded image each)."""
    if value.WhichOneof("value") == "image":
        image = value.image
        data = bytes(image.encoded_image_string)
        return [(int(image.width), int(image.height), image_mime(data), data)]
    strings = list(value.tensor.string_val)
    if len(strings) < 2:
        raise ValueError(f"an images-plugin tensor holds width, height and images; found {len(strings)} strings")
    width, height = int(strings[0]), int(strings[1])
    return [(width, height, image_mime(data), bytes(data)) for data in strings[2:]]


def image_mime(data: bytes) -> str:
    """The MIME type of encoded image bytes, from their magic number; ValueError for anything else."""
    for magic, mime in IMAGE_TYPES:
        if data.startswith(magic):
            return mime
    raise ValueError(f"an image is not PNG, JPEG, GIF, WebP or BMP (it starts with {data[:8]!r})")


def skipped_kind(which: str | None, plugin: str) -> str:
    """How an import names a summary value it does not keep: ``audio``, or the plugin's name, or the value's kind."""
    if which == "audio" or plugin == "audio":
        return "audio"
    if plugin:
        return plugin
    return which or "empty value"
