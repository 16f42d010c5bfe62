"""`orgmem jobs`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("jobs", issue=5, summary="List an org's background jobs")
