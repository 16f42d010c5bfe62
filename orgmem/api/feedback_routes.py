"""``POST /v1/feedback``: a rating and/or a correction of a reply this server produced.

Next to the OpenAI routes (same key, same errors) but no OpenAI endpoint: the official client
reaches it with ``client.post("/feedback", ...)``. The server knows a reply by its response id
because ``reply_listener`` records every finished reply (``api/turns.py``); only the key that got
the reply, or an admin key of its org, may attach feedback, and any other response id is a 404.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orgmem.api.auth import get_state, require_key
from orgmem.api.state import ServingState
from orgmem.api.turns import CompletedTurn, TurnListener
from orgmem.feedback.settings import FeedbackSettings, get_feedback_settings
from orgmem.keys import ApiKeyIdentity
from orgmem.lineage.audiences import ORG_AUDIENCE
from orgmem.ops import feedback
from orgmem.serving.resolve import parse_model_id

router = APIRouter(prefix="/v1", tags=["feedback"])


class FeedbackBody(BaseModel):
    response_id: str = Field(..., min_length=1, max_length=64, description="The `id` of a completion.")
    rating: Literal["up", "down"] | None = Field(None, description="Thumbs up or down.")
    correction: str | None = Field(None, min_length=1, max_length=20_000,
                                   description="The answer the model should have given (reviewed before "
                                               "it trains the memory).")
    comment: str | None = Field(None, max_length=2000)
    choice_index: int = Field(0, ge=0, le=127, description="Which choice of an n > 1 response.")


def reply_of(turn: CompletedTurn) -> feedback.Reply:
    """The record of a finished turn: a ``ORG#GROUP`` model's reply belongs to that group's memory
    (a correction of it trains only the group), any other to the org's."""
    resolved = turn.resolved
    _, _, group = parse_model_id(resolved.model)
    audience, checkpoint = ORG_AUDIENCE, resolved.checkpoint_id
    if group:
        layer = next((g for g in resolved.groups if g.audience == group), None)
        audience, checkpoint = group, layer.checkpoint_id if layer is not None else None
    return feedback.Reply(turn.response_id, turn.choice_index, resolved.model, audience, checkpoint,
                          resolved.label, turn.question, turn.answer)


def reply_listener(state: ServingState, settings: FeedbackSettings | None = None) -> TurnListener:
    """The turn listener that records replies (bounded and expiring: ``ORGMEM_FEEDBACK_*``)."""
    config = settings or get_feedback_settings()

    def record_reply(turn: CompletedTurn) -> None:
        with state.session(write=True) as session:
            feedback.record_reply(session, turn.identity, reply_of(turn), config)

    return record_reply


@router.post("/feedback", summary="Rate a reply, or correct it (the correction is reviewed)")
async def post_feedback(body: FeedbackBody, request: Request,
                        identity: ApiKeyIdentity = Depends(require_key)) -> dict[str, Any]:
    """404 for a response id this key may not give feedback on (unknown, expired, another key's or
    org's); 429 past the key's corrections per hour."""
    state = get_state(request)

    def submit() -> dict[str, Any]:
        with state.session(write=True) as session:
            return feedback.submit_feedback(session, identity, body.response_id, rating=body.rating,
                                            correction=body.correction, comment=body.comment,
                                            choice_index=body.choice_index)

    return {"object": "feedback", **await run_in_threadpool(submit)}
