"""Every table of the store, registered on one ``MetaData``: import this module to see the whole schema.

The core tables are in :mod:`torchscope.storage.schema`; each subject's in ``storage/<subject>/schema.py``.
Importing a subject's schema registers its tables; this module imports all of them, and nothing imports it back
except the engine and migrations (which create the tables).
"""

from torchscope.storage.compile import schema as compile_schema
from torchscope.storage.graph import schema as graph_schema
from torchscope.storage.profile import schema as profile_schema
from torchscope.storage.runs import schema as runs_schema
from torchscope.storage.schema import meta, metadata, names
from torchscope.storage.tensorboard import schema as tensorboard_schema
from torchscope.storage.timeline import schema as timeline_schema

SUBJECTS = (runs_schema, graph_schema, profile_schema, tensorboard_schema, timeline_schema, compile_schema)
"""The subject schema modules whose tables are registered on :data:`metadata`."""

__all__ = ["SUBJECTS", "meta", "metadata", "names"]
