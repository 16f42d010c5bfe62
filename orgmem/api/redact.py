"""Scrubs the server's internal locations out of the messages of error responses.

The library's errors are written for the operator at a terminal: they name the store URL, the
database file, the S3 endpoint, ``ORGMEM_HOME``. Over HTTP those are for the server log only.
``errors.py`` already answers infrastructure failures with a generic message; this is the second
line for the 4xx messages it passes on: the configured URLs and folders (exact strings, so a
client learns none of them, not even by naming one) and anything shaped like a store, database or
broker URL become ``<internal>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from orgmem.config import Settings, mask_url_password

PLACEHOLDER = "<internal>"
#: Schemes of store, database and broker URLs: no source takes one, so a message never needs to
#: show one. ``file://`` is not here: it is what an admin types for a local source and is told back.
_INTERNAL_URL = re.compile(
    r"\b(?:s3|sqlite|postgres(?:ql)?|mysql|mariadb|redis|rediss|amqp|filesystem)(?:\+\w+)?://[^\s'\"<>)]*",
    re.IGNORECASE,
)
_MIN_LENGTH = 4  # never scrub "/" or "." out of every message


def scrub_urls(text: str) -> str:
    """Only the URL shapes (no configuration needed): the default where no ``Redactor`` is at hand."""
    return _INTERNAL_URL.sub(PLACEHOLDER, text)


class Redactor:
    """Replaces each of ``internal`` (longest first), then every internal-looking URL."""

    def __init__(self, internal: Iterable[str] = ()) -> None:
        found = {s.rstrip("/") for s in internal if s}
        self._exact = sorted((s for s in found if len(s) >= _MIN_LENGTH), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._exact:
            text = text.replace(secret, PLACEHOLDER)
        return scrub_urls(text)


def _url_parts(url: str) -> list[str]:
    """The URL, its password-masked form, and its local path (the file of ``sqlite:///``, the root
    of ``file://``) and host, each of which a message may show alone."""
    parts = [url, mask_url_password(url)]
    split = urlsplit(url)
    if split.path and split.scheme in ("file", "sqlite", "filesystem"):
        parts.append(split.path)
    if split.netloc and split.scheme not in ("s3",):
        parts.append(split.netloc.rpartition("@")[2])
    return parts


def internal_locations(settings: Settings, *extra_urls: str | None) -> list[str]:
    """Everything of ``settings`` (and of e.g. the store actually opened) no client should see."""
    urls = [settings.database_url, settings.store_url, settings.broker_url, settings.s3_endpoint_url,
            *extra_urls]
    out = [str(settings.home), str(settings.models_dir)]
    if "/" in settings.base_model:  # a local model folder, not a registered name
        out.append(settings.base_model)
    for url in urls:
        if url:
            out += _url_parts(url)
    return out
