"""Recorded conversations: an org's opt-in policy and its chat turns as documents of a built-in source.

Public API: the policy (``get_policy``, ``enable``, ``disable``, ``policy_dict``), recording
(``record_turn`` with a ``TurnInput``), and reading turns back (``list_turns``, ``find_turn``,
``turn_dict``). Deleting and retention go through the forget path: ``orgmem.ops.conversations``.
"""

from orgmem.ingest.conversations.policy import (
    CONVERSATIONS_KIND,
    CONVERSATIONS_SOURCE,
    DEFAULT_RETENTION_DAYS,
    conversations_source,
    disable,
    enable,
    get_policy,
    policy_dict,
    refuse_builtin_kind,
)
from orgmem.ingest.conversations.record import Recorded, TurnInput, record_turn, turn_audience
from orgmem.ingest.conversations.settings import ConversationSettings, get_conversation_settings
from orgmem.ingest.conversations.turns import (
    TurnPage,
    expired_turns,
    find_turn,
    list_turns,
    turn_dict,
)

__all__ = [
    "CONVERSATIONS_KIND",
    "CONVERSATIONS_SOURCE",
    "DEFAULT_RETENTION_DAYS",
    "ConversationSettings",
    "Recorded",
    "TurnInput",
    "TurnPage",
    "conversations_source",
    "disable",
    "enable",
    "expired_turns",
    "find_turn",
    "get_conversation_settings",
    "get_policy",
    "list_turns",
    "policy_dict",
    "record_turn",
    "refuse_builtin_kind",
    "turn_audience",
    "turn_dict",
]
