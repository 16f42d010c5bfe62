"""`orgmem scheduler`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("scheduler", issue=5, summary="Run the scheduler process")
