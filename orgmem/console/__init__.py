"""The admin console: server-rendered pages under ``/console`` of ``orgmem serve``.

An admin logs in with an org admin key and sees the org's sources, pending data, jobs, checkpoint
lineage with metrics charts and serving history; pins, unpins, rolls back, syncs, consolidates,
forgets; and chats with any checkpoint. Pages are Jinja templates with one CSS and one small
script served from this package (no build step, nothing loaded from elsewhere). Mounted by
``orgmem.serving.app`` with ``routes.router``.
"""
