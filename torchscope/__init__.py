"""torchscope: see what your PyTorch program really did — graph, values, kernels and timings — in the browser."""

import importlib.metadata as _metadata

from torchscope.capture.run import Run, init
from torchscope.notebook import show
from torchscope.errors import (
    NotFoundError,
    SchemaVersionError,
    StoreError,
    TorchscopeError,
    TorchscopeWarning,
    TraceImportError,
)
from torchscope.storage.store import Store, compare
from torchscope.storage.store import open_store as open  # noqa: A001 - the public name is torchscope.open

try:
    __version__ = _metadata.version("torchscope")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "NotFoundError",
    "Run",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "TorchscopeError",
    "TorchscopeWarning",
    "TraceImportError",
    "__version__",
    "compare",
    "init",
    "open",
    "show",
]
