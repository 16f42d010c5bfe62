"""The admin console: server-rendered pages under ``/console`` of ``orgmem serve``.

An admin logs in with an org admin key and sees the org's sources, pending data, jobs, checkpoint
lineage with metrics charts and serving history (the org's, and each group's the key carries),
audit trail and forget receipts; pins, unpins, rolls back, syncs, consolidates, forgets; and chats
with any checkpoint. The installation operator key logs in too and reads every org, changing
nothing (on ``/api`` it only creates orgs). Pages are Jinja templates with one CSS and one small
script served from this package (no build step, nothing loaded from elsewhere). Mounted by
``orgmem.app`` with ``routes.router``.
"""
