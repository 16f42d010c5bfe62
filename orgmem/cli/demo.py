"""`orgmem demo`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("demo", issue=5, summary="Run the whole loop on the sample org")
