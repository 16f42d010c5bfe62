"""`orgmem source`: reserved here; issue #4 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("source", issue=4, summary="Register, list and remove data sources")
