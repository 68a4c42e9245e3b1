"""One error tree for tokenflow_rag.

Every error subclasses :class:`TokenFlowError`, and also the built-in exception
callers already catch (``ValueError``, ``TypeError``, ``ImportError`` ...), so
``except ValueError`` keeps working around our calls.
"""

from __future__ import annotations


class TokenFlowError(Exception):
    """Base class of every error raised by tokenflow_rag."""


class TaxonomyError(TokenFlowError, ValueError):
    """A taxonomy file or dict is malformed (names the intent and the field)."""


class InvalidQueryError(TokenFlowError, ValueError):
    """A query is empty, not a string, or otherwise unusable."""


class DataFormatError(TokenFlowError, ValueError):
    """A data file (corpus, training set, benchmark file) is malformed (names file and row)."""


class IndexStoreError(TokenFlowError, OSError):
    """An index directory is missing, half-written or from an incompatible version."""


class ModelLoadError(TokenFlowError, OSError):
    """A classifier model directory is missing, corrupt, or from another taxonomy."""


class ConfigError(TokenFlowError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class MissingDependencyError(TokenFlowError, ImportError):
    """An optional dependency is not installed (the message names the extra to install)."""
