"""`orgmem model`: reserved here; issue #3 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("model", issue=3, summary="Fetch and inspect base models")
