"""Serving runtime: every org's model on one shared base, many orgs decoded in one batched forward.

The HTTP face (routes, auth, errors, rate limits) is ``orgmem.api``; the app is ``orgmem.app``.

- ``ServeSettings`` (``orgmem.serving.config``): ``ORGMEM_SERVE_*`` tuning (cache size, batch, rate limit).
- ``GenerationEngine`` (``orgmem.serving.engine``): batched decoding of many orgs in one forward pass;
  ``GenerationRequest(prompt_ids, params, memory, on_event)``, events ``TextDelta``/``Finished``/``Failed``.
- A saved memory reaches the engine in its serving form, ``RowMemory`` (per-row operations on the
  shared base), built by ``orgmem.memory.build_row_memory`` from each kind's own row form.

Reading order: ``orgmem.memory.rows`` → routing → kvcache → sampling/textstream → engine → memcache →
resolve → stack → generation.
Modules are imported explicitly (this package imports nothing on its own, so ``orgmem.serving.config``
stays cheap to import).
"""
