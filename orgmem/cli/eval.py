"""`orgmem eval`: reserved here; issue #3 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("eval", issue=3, summary="Evaluate a checkpoint")
