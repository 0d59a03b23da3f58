"""torchscope: see what your PyTorch program really did — graph, values, kernels and timings — in the browser."""

from importlib.metadata import PackageNotFoundError, version

from torchscope.errors import (
    NotFoundError,
    SchemaVersionError,
    StoreError,
    TorchscopeError,
    TraceImportError,
)
from torchscope.capture.run import Run, init
from torchscope.storage.store import Store, compare
from torchscope.storage.store import open_store as open  # noqa: A001 - the public name is torchscope.open

try:
    __version__ = version("torchscope")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "NotFoundError",
    "Run",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "TorchscopeError",
    "TraceImportError",
    "__version__",
    "compare",
    "init",
    "open",
]
