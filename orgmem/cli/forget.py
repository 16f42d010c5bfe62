"""`orgmem forget`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("forget", issue=5, summary="Remove a document from an org's memory")
