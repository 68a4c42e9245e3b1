"""Query validation: every entry point checks its text here, so bad input fails early and clearly."""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from tokenflow_rag.errors import InvalidQueryError

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 4096
"""Longer queries are truncated (with a warning): no retriever or classifier needs more."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# In a Python str a surrogate is always unpaired: half of a cut-off emoji, or undecodable bytes (surrogateescape).
UNPAIRED_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_query(query: Any, *, max_chars: int = MAX_QUERY_CHARS) -> str:
    """Return a usable query string or raise :class:`InvalidQueryError`.

    Control characters become spaces, the text is NFC-normalised and stripped, and text past
    ``max_chars`` is cut off with a logged warning. Emoji and any script are kept; invalid Unicode (an
    unpaired surrogate) is an error.

    >>> clean_query("  退款\\x00多久?  ")
    '退款 多久?'
    """
    if isinstance(query, bytes):
        raise InvalidQueryError("query must be a str, got bytes; decode it first, e.g. query.decode('utf-8')")
    if not isinstance(query, str):
        raise InvalidQueryError(f"query must be a str, got {type(query).__name__}")
    bad = UNPAIRED_SURROGATE.search(query)
    if bad:
        raise InvalidQueryError(
            f"query holds invalid Unicode at character {bad.start()} (an unpaired surrogate: half of a cut-off "
            "emoji, or bytes that are not UTF-8); send valid UTF-8 text"
        )
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", query)).strip()
    if not text:
        raise InvalidQueryError("query is empty or only whitespace/control characters; pass some text to search for")
    if len(text) > max_chars:
        logger.warning("query of %d characters truncated to %d", len(text), max_chars)
        text = text[:max_chars]
    return text
