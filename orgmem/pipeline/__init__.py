"""The nightly consolidation pipeline: pending chunks → engine → evaluation → commit → gate.

``consolidate_org(org_slug, ctx=job_context)`` is what the ``consolidate`` worker task runs;
``ConsolidationOutcome.to_dict()`` is stored as the job's result. ``PipelineConfig`` holds the
pipeline's own knobs; engine knobs are ``orgmem.engine.ConsolidationConfig``; both can be set per
deployment (``ORGMEM_PIPELINE_ENGINE`` / ``ORGMEM_PIPELINE_OPTIONS``) and per job.
"""

from orgmem.pipeline.config import PipelineConfig, PipelineSettings, resolve
from orgmem.pipeline.run import ConsolidationOutcome, LogReporter, consolidate_org

__all__ = [
    "ConsolidationOutcome",
    "LogReporter",
    "PipelineConfig",
    "PipelineSettings",
    "consolidate_org",
    "resolve",
]
