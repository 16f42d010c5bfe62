"""Ingestion: run a source's connector and store governed, chunked, pending material for the org."""

from orgmem.ingest.report import SyncReport
from orgmem.ingest.sources import (
    add_source,
    check_registered,
    check_source,
    get_source,
    list_sources,
    remove_source,
    source_stats,
)
from orgmem.ingest.sync import default_token_counter, sync_org, sync_source

__all__ = [
    "SyncReport",
    "add_source",
    "check_registered",
    "check_source",
    "default_token_counter",
    "get_source",
    "list_sources",
    "remove_source",
    "source_stats",
    "sync_org",
    "sync_source",
]
