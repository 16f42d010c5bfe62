"""A deterministic multi-night generator of an invented org's sources (see benchmarks/org_generator.py)."""

from benchmarks.orggen.generator import GeneratorConfig, NightSummary, OrgGenerator

__all__ = ["GeneratorConfig", "NightSummary", "OrgGenerator"]
