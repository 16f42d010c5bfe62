"""`orgmem memory`: reserved here; issue #3 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("memory", issue=3, summary="Memory engine tools (meta-training)")
