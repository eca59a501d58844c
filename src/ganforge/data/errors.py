"""The one exception family of the data layer: a clear message, never a deep traceback."""

from __future__ import annotations


class DataError(ValueError):
    """A data source or the prepared store cannot be used; the message says why and what to do."""


class StoreMissingError(DataError, FileNotFoundError):
    """The prepared store (or one of its files) is not there: `dvc repro prepare` makes it."""
