"""Serving: every org's model on one shared base, behind an OpenAI-compatible API (issue #6).

Public API:

- ``create_app(settings=None, serve=None, *, base=None, store=None) -> FastAPI`` (``orgmem.serving.app``):
  ``/v1`` (models, chat/completions, completions; SSE streaming), ``/api`` (admin REST),
  ``/healthz``, ``/readyz``, ``/metrics``. ``orgmem serve`` runs it under uvicorn.
- ``ServeSettings`` (``orgmem.serving.config``): ``ORGMEM_SERVE_*`` tuning (cache size, batch, rate limit).
- ``GenerationEngine`` (``orgmem.serving.engine``): batched decoding of many orgs in one forward pass;
  ``GenerationRequest(prompt_ids, params, memory, on_event)``, events ``TextDelta``/``Finished``/``Failed``.
- ``build_row_memory(base, data, sha256=, source=) -> RowMemory`` and ``register_row_adapter(kind, build)``
  (``orgmem.serving.adapters``): a saved memory as per-row operations on the shared base.

Reading order: adapters → routing → kvcache → sampling/textstream → engine → memcache → resolve →
state → auth → openai_schema/generation → openai_routes, admin_routes, admin_jobs, ops_routes → app.
Modules are imported explicitly (this package imports nothing on its own, so ``orgmem.serving.config``
stays cheap to import).
"""
