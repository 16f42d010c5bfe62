"""The promotion gate: did a nightly checkpoint learn, keep, not drift and not leak?

``GateConfig.from_org(org.gate_config)`` → thresholds; ``decide(metrics, config)`` → a
``GateDecision`` with one ``Check`` per threshold; ``apply_decision(session, org, ck, decision)``
promotes or rejects through the lineage operations (serving event + audit).
"""

from orgmem.gate.apply import GATE_ACTOR, apply_decision
from orgmem.gate.config import GateConfig
from orgmem.gate.decide import Check, GateDecision, decide

__all__ = ["GATE_ACTOR", "Check", "GateConfig", "GateDecision", "apply_decision", "decide"]
