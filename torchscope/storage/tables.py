"""Every table of the store, registered on one ``MetaData``: import this module to see the whole schema."""

from torchscope.storage.graph import schema as schema_graph  # noqa: F401 - registers their tables
from torchscope.storage.profile import schema as schema_profile  # noqa: F401 - registers their tables
from torchscope.storage.tensorboard import schema as schema_tbgraph  # noqa: F401 - registers their tables
from torchscope.storage.schema import metadata, meta, names, runs, scalar_latest, scalars

__all__ = ["metadata", "meta", "names", "runs", "scalars", "scalar_latest"]
