"""Text that can be stored: sources can smuggle in lone UTF-16 surrogates (JSON ``"\\ud800"``, XML
``&#xD800;``), which are valid in a Python str but cannot be encoded as UTF-8, so hashing or storing
them would crash the sync. They become U+FFFD, like any other undecodable byte."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (a no-op for ordinary text)."""
    return _SURROGATE.sub("\ufffd", text)
