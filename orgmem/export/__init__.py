"""Exporting an org's model to runtimes other than orgmem (records layer).

``orgmem export ORG[@CKPT] --format hf DIR`` writes a standalone Hugging Face folder that plain
``transformers`` loads with ``trust_remote_code=True`` and that computes what orgmem serves
(``hf``: base + memory + ``hf_code/modeling_orgmem.py``); ``--format peft`` writes a ``lora``
memory as a PEFT adapter (also for vLLM's multi-LoRA serving). See ``docs/export.md``.

Modules: ``target`` (which checkpoints), ``memory`` + ``kinds`` (a saved memory in the exported
layout, per kind), ``base`` (the base's files), ``hf`` and ``peft_folder`` (the two formats),
``card`` (README), ``run`` (plan, write, audit).
"""

from orgmem.export.kinds import exportable_kinds
from orgmem.export.run import (
    FORMATS,
    ExportPlan,
    ExportRequest,
    ExportResult,
    plan_export,
    record_export,
    write_export,
)
from orgmem.export.target import ExportTarget

__all__ = [
    "FORMATS",
    "ExportPlan",
    "ExportRequest",
    "ExportResult",
    "ExportTarget",
    "exportable_kinds",
    "plan_export",
    "record_export",
    "write_export",
]
