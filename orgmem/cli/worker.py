"""`orgmem worker`: reserved here; issue #5 replaces this module (export `app` or `command`)."""

from orgmem.cli.common import reserved

command = reserved("worker", issue=5, summary="Run a Celery worker")
