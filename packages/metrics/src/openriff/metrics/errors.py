"""Errors of openriff-metrics that callers may want to catch by type."""

from __future__ import annotations


class EmbedderUnavailable(RuntimeError):
    """An embedding model cannot be built here; the message says what is missing."""
