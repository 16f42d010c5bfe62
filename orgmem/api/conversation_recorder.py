"""The turn listener that records finished chat replies when their org has opted in.

Registered on ``ServingState.turn_listeners`` by ``orgmem.app``; it runs on a worker thread after
the reply was built (a failure is logged by the state, never seen by the client). Only chat
completions are recorded: a text completion's prompt is not a question someone asked but text to
continue (documents, code, templates), so it is never a conversation. With ``n > 1`` only the first
choice is recorded, the one a client shows by default.
"""

from __future__ import annotations

from orgmem.api.state import ServingState
from orgmem.api.turns import CompletedTurn, TurnListener
from orgmem.chunking import token_counter
from orgmem.db.models import ConversationPolicy
from orgmem.ingest.conversations import TurnInput, record_turn


def conversation_recorder(state: ServingState) -> TurnListener:
    """A listener recording ``state``'s chat turns (one policy read per turn; writes only when enabled)."""
    def record_conversation(turn: CompletedTurn) -> None:
        if turn.prompt is not None or not turn.messages or turn.choice_index != 0:
            return
        identity = turn.identity
        with state.session() as session:  # a read first: no write lock for orgs that do not record
            policy = session.get(ConversationPolicy, identity.org_id)
            if policy is None or not policy.enabled:
                return
        count = token_counter(state.require_engine().tokenizer)  # cached per tokenizer
        with state.session(write=True) as session:
            record_turn(session, TurnInput(
                org_id=identity.org_id, key_id=identity.key_id, groups=tuple(identity.groups),
                question=turn.question, answer=turn.answer, response_id=turn.response_id,
                checkpoint=turn.resolved.label), count_tokens=count)

    return record_conversation
