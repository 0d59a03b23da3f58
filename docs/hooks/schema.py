"""mkdocs hook: the store schema page, generated from the SQLAlchemy metadata at build time (never hand-written).

A page holding the line ``<!-- schema -->`` gets, in its place, one section per subject (the subject's schema module
docstring, then each table: columns with type, nullability, key and default, then indexes).
"""

from __future__ import annotations

import inspect
from typing import Any

MARKER = "<!-- schema -->"


def schema_markdown() -> str:
    """The schema of every table registered on :data:`torchscope.storage.tables.metadata`, as Markdown."""
    from torchscope.storage import schema, tables

    modules = [("core", schema), *[(m.__name__.split(".")[-2], m) for m in tables.SUBJECTS]]
    owner = {}
    for subject, module in modules:
        for value in vars(module).values():
            if getattr(value, "metadata", None) is tables.metadata and hasattr(value, "columns"):
                owner.setdefault(value.name, subject)
    out = [f"Schema version **{schema.SCHEMA_VERSION}**; {len(tables.metadata.tables)} tables.\n"]
    for subject, module in modules:
        names = sorted(n for n, s in owner.items() if s == subject)
        if not names:
            continue
        doc = (inspect.getdoc(module) or "").split("\n\n")[0].replace("\n", " ")
        out.append(f"## {subject}\n\n{doc} (`{module.__name__}`)\n")
        for name in names:
            out.append(_table(tables.metadata.tables[name]))
    unowned = sorted(set(tables.metadata.tables) - set(owner))
    if unowned:
        out.append("## other\n")
        out.extend(_table(tables.metadata.tables[name]) for name in unowned)
    return "\n".join(out)


def _table(table: Any) -> str:
    rows = [f"### `{table.name}`\n", "| column | type | null | key | default |", "|---|---|---|---|---|"]
    for col in table.columns:
        default = "" if col.default is None else f"`{getattr(col.default, 'arg', col.default)!r}`"
        key = "primary" if col.primary_key else ("indexed" if col.index else "")
        rows.append(f"| `{col.name}` | {col.type} | {'yes' if col.nullable else 'no'} | {key} | {default} |")
    indexes = sorted(", ".join(c.name for c in ix.columns) for ix in table.indexes if len(ix.columns) > 1)
    if indexes:
        rows.append("\nIndexes on: " + "; ".join(f"({i})" for i in indexes))
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace :data:`MARKER` with :func:`schema_markdown`."""
    return markdown.replace(MARKER, schema_markdown()) if MARKER in markdown else markdown
