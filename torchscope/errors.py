"""The one root error type of torchscope, its per-layer subclasses, and the one warning type.

Every error carries a message a user can act on. ``http_code`` says how the dashboard maps it onto an HTTP status,
as TensorBoard's ``PublicError.http_code`` does. A failure that must not stop the user's training is a
:class:`TorchscopeWarning` instead (warned once, counted, and training goes on).
"""

from __future__ import annotations


class TorchscopeError(Exception):
    """Root of every error torchscope raises on purpose."""

    http_code: int = 500


class StoreError(TorchscopeError):
    """The database cannot be opened, read or written as asked."""


class SchemaVersionError(StoreError):
    """The database was written by a newer torchscope than this one."""


class NotFoundError(TorchscopeError):
    """A run, profile or graph id that the store does not hold."""

    http_code = 404


class BadRequestError(TorchscopeError):
    """A request (dashboard URL, CLI argument, API argument) that cannot be served as given."""

    http_code = 400


class CaptureError(TorchscopeError):
    """Graph or tensor capture was asked for something it cannot do."""


class ProfilerError(TorchscopeError):
    """A profiler session was set up or driven wrongly."""


class TraceImportError(TorchscopeError):
    """A file or directory given to ``torchscope import`` cannot be imported."""

    http_code = 400


class ExportError(TorchscopeError):
    """A run or profile cannot be exported as asked."""


class TorchscopeWarning(RuntimeWarning):
    """Something in torchscope went wrong without stopping the user's program."""
