"""`orgmem schedule`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("schedule", issue=5, summary="Set when the nightly loop runs")
