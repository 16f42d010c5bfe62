"""Queue and task names, apart from the Celery app so that naming a task imports no Celery."""

from __future__ import annotations

INGEST_QUEUE = "ingest"
CONSOLIDATE_QUEUE = "consolidate"
QUEUES = (INGEST_QUEUE, CONSOLIDATE_QUEUE)
SYNC_TASK = "orgmem.sync"
CONSOLIDATE_TASK = "orgmem.consolidate"
#: The task that runs each job kind.
TASK_FOR_KIND = {"sync": SYNC_TASK, "consolidate": CONSOLIDATE_TASK}
