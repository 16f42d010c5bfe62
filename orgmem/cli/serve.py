"""`orgmem serve`: reserved here; issue #6 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("serve", issue=6, summary="Serve the OpenAI-compatible API")
