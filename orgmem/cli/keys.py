"""`orgmem keys`: reserved here; issue #6 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("keys", issue=6, summary="Create and revoke API keys")
