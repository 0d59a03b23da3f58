"""Every table of the store, registered on one ``MetaData``: import this module to see the whole schema."""

from torchscope.storage import schema_graph, schema_profile, schema_tbgraph  # noqa: F401 - registers their tables
from torchscope.storage.schema import metadata, meta, names, runs, scalar_latest, scalars

__all__ = ["metadata", "meta", "names", "runs", "scalars", "scalar_latest"]
