"""Documents that state another value for a corrected fact, shown to the reviewer.

Lexical, over the live chunks of the correction's audience (newest version of each document that
is not deleted, no excluded chunk): a sentence conflicts when it is about the question (at least
half of the question's content words, and two when it has two) and does not say the proposed
value (every word only the proposal has), while it says the model's old value, a number, or the
proposal's own words around its value with another word in its place ("The alarm code is quartz."
against "The alarm code is garnet."). Cheap and explainable; it flags for a
human, it decides nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orgmem.db.enums import ChunkStatus
from orgmem.db.models import Chunk, Document, DocumentVersion, Source
from orgmem.feedback.values import changed_values, content_words, says_any, words

MAX_CONFLICTS = 10
EXCERPT_CHARS = 240
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Conflict:
    document: str  # the document's path / external id
    source: str
    chunk_id: int
    excerpt: str

    def as_dict(self) -> dict[str, Any]:
        return {"document": self.document, "source": self.source, "chunk_id": self.chunk_id,
                "excerpt": self.excerpt}


def _live_chunks(session: Session, org_id: int, audience: str):
    latest = (select(DocumentVersion.document_id, func.max(DocumentVersion.id).label("vid"))
              .group_by(DocumentVersion.document_id).subquery())
    return session.execute(
        select(Chunk.id, Chunk.text, Document.external_id, Source.name)
        .join(DocumentVersion, DocumentVersion.id == Chunk.document_version_id)
        .join(latest, latest.c.vid == DocumentVersion.id)
        .join(Document, Document.id == DocumentVersion.document_id)
        .join(Source, Source.id == Document.source_id)
        .where(Chunk.org_id == org_id, Chunk.status != ChunkStatus.EXCLUDED.value,
               Document.audience == audience, Document.deleted.is_(False), DocumentVersion.deleted.is_(False))
        .order_by(Chunk.id))


def _conflicting_sentence(text: str, topic: set[str], old: set[str], new: set[str], frame: set[str]
                          ) -> str | None:
    need = max(1, min(2, len(topic)), (len(topic) + 1) // 2)
    for sentence in _SENTENCE.split(text):
        found = set(words(sentence))
        if len(topic & found) < need or (new and new <= found):  # off topic, or it says the proposed value
            continue
        other = content_words(sentence) - topic - frame
        if says_any(sentence, old) or any(w.isdigit() for w in found - topic) or (frame <= found and other):
            return sentence.strip()[:EXCERPT_CHARS]
    return None


def find_conflicts(session: Session, org_id: int, audience: str, question: str, old_answer: str,
                   proposed: str) -> list[Conflict]:
    """Live chunks of ``audience`` that state something else than ``proposed`` for ``question``."""
    topic = content_words(question)
    if not topic:
        return []
    old, new = changed_values(old_answer, proposed, question)
    frame = content_words(proposed) - new  # the proposal's words around its value
    out: list[Conflict] = []
    for chunk_id, text, document, source in _live_chunks(session, org_id, audience):
        sentence = _conflicting_sentence(text, topic, old, new, frame)
        if sentence is not None:
            out.append(Conflict(document, source, chunk_id, sentence))
            if len(out) >= MAX_CONFLICTS:
                break
    return out
