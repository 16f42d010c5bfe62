"""Governance: nothing reaches training before secrets (and opted-in PII) are redacted."""

from orgmem.governance.redact import (
    GovernancePolicy,
    GovernedText,
    Redaction,
    govern,
    is_secret_file,
    placeholder,
)
from orgmem.governance.secrets import DETECT_SECRETS_VERSION, RULESET, find_secrets, plugin_names

__all__ = [
    "DETECT_SECRETS_VERSION",
    "RULESET",
    "GovernancePolicy",
    "GovernedText",
    "Redaction",
    "find_secrets",
    "govern",
    "is_secret_file",
    "placeholder",
    "plugin_names",
]
