"""`orgmem job`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("job", issue=5, summary="Show or cancel one job")
