"""Evaluation: did a checkpoint learn its org's material, keep the old, and leave the base alone?

Entry points: :func:`evaluate` (all metrics for one model), :func:`get_reference` (the base's
behaviour on the generic set, cached per base fingerprint), :func:`auto_probes` (probes cut from
an org's own chunks), :func:`load_probes` (hand-written JSONL probe sets).
"""

from orgmem.eval.auto import AutoProbeConfig, auto_probes
from orgmem.eval.evaluate import EvalConfig, evaluate
from orgmem.eval.probes import Probe, ProbeError, active_probes, load_probes, save_probes
from orgmem.eval.reference import BaseReference, ReferenceConfig, compute_reference, get_reference
from orgmem.eval.report import EvalReport, GenericStats, GroupStats, ProbeResult

__all__ = [
    "AutoProbeConfig",
    "BaseReference",
    "EvalConfig",
    "EvalReport",
    "GenericStats",
    "GroupStats",
    "Probe",
    "ProbeError",
    "ProbeResult",
    "ReferenceConfig",
    "active_probes",
    "auto_probes",
    "compute_reference",
    "evaluate",
    "get_reference",
    "load_probes",
    "save_probes",
]
