"""`orgmem sync`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("sync", issue=5, summary="Pull new material from an org's sources")
