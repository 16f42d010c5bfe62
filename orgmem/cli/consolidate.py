"""`orgmem consolidate`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("consolidate", issue=5, summary="Write pending material into an org's memory")
