"""Consolidation engine: write an org's chunks into its memory layers on a frozen base.

Public API (stable; used by workers, eval, benchmarks):

- ``orgmem.engine.consolidation.consolidate(base, parent, new_chunks, replay_chunks, config=None, *,
  train_state=None, progress=True, log_extra=None) -> ConsolidationResult(memory: bytes, train_state: bytes,
  metrics: dict, n_tokens: int, seconds: float)``. ``parent``: memory bytes, an attached
  ``MemoryHandle`` (trained in place) or None (fresh ``config.memory``). Deterministic under
  ``config.seed``; passing the parent's ``train_state`` continues exactly.
  ``underlay=`` (memory bytes): a saved memory applied frozen beneath the trained one, as serving
  stacks a group's memory on the org's (``orgmem.engine.underlay``).
- ``ConsolidationConfig`` (``orgmem.engine.config``): memory spec, seed, epochs, token budget, forms,
  KL weight, rehearsal, lr scale... (JSON via ``to_dict``/``from_dict``).
- ``Consolidator(base, parent, config, train_state=...)``: ``run(new, replay)`` per night in one
  process, ``memory_bytes()``, ``train_state_bytes()``, ``handle``, ``close()``.
- ``orgmem.engine.forms``: ``split_units``, ``chat_forms``, ``statements`` (training forms from raw
  text); ``orgmem.engine.rehearsal``: ``generic_prompts``, ``rehearsal_texts(base)``.

Import from the modules (``orgmem.engine.consolidation``, ``orgmem.engine.config``): the package
itself imports nothing, so ``orgmem.engine.forms`` loads without torch.
"""
