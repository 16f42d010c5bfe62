"""Sentence frames: how one fact is phrased, per source and author style.

Every frame names the entity before the value (so a cloze cut before the value still says what it
is about); some put the attribute after the value. A frame is a string with ``{V}`` where the
value goes; the frame key is kept so tests can count how varied the writing is.
"""

from __future__ import annotations

import random

from benchmarks.orggen.catalog import Attr, Entity

# (key, weight, frame) — {E} entity, {N} noun phrase, {VP} verb phrase (holds {V})
PROSE = (
    ("the-n-of", 3, "The {N} of {E} is {V}."),
    ("poss", 3, "{E}'s {N} is {V}."),
    ("verb", 4, "{E} {VP}."),
    ("for-e", 2, "For {E}, the {N} is {V}."),
    ("note", 2, "Note that {E} {VP}."),
    ("currently", 2, "Currently, {E} {VP}."),
    ("we-set", 2, "We have set the {N} of {E} to {V}."),
    ("if-you", 1, "If you need the {N} of {E}: it is {V}."),
    ("value-mid", 1, "{E}: {V} is the {N}, for now."),
    ("remember", 1, "Remember that the {N} for {E} is {V}, whatever older pages say."),
)
CHAT = (
    ("fyi", 3, "fyi {E} {VP} now"),
    ("quick", 2, "quick one: {E}'s {N} is {V}"),
    ("ok-so", 2, "ok so the {N} for {E} = {V}, noting it here so we stop asking"),
    ("heads-up", 2, "heads up, {E} {VP} as of today"),
    ("confirmed", 2, "confirmed with the owners: the {N} of {E} is {V}"),
    ("fwiw", 1, "{E} {VP}, fwiw"),
    ("pretty-sure", 1, "pretty sure the {N} of {E} is {V} — double-checked the dashboard"),
)
BULLET = (
    ("bullet-dash", 2, "- **{EN}** — {N}: {V}"),
    ("bullet-paren", 2, "- {Ncap} ({EN}): {V}"),
    ("bullet-verb", 2, "- {Ecap} {VP}."),
)
NEWS_GENERIC = (
    ("news-said", 2, "{Org} said that {E} {VP}."),
    ("news-according", 2, "According to {Org}, the {N} of {E} is {V}."),
)


def pick(rng: random.Random, frames: tuple[tuple[str, int, str], ...]) -> tuple[str, str]:
    key, _, frame = rng.choices(frames, weights=[w for _, w, _ in frames])[0]
    return key, frame


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def fill(frame: str, rng: random.Random, attr: Attr, entity: Entity, org: str, *, chat: bool = False) -> str:
    """The frame with entity/attribute words chosen; ``{V}`` is left in place."""
    noun = rng.choice(attr.nouns)
    verb = rng.choice(attr.verbs)
    display = entity.display
    out = frame.replace("{VP}", verb).replace("{N}", noun).replace("{Ncap}", cap(noun))
    out = out.replace("{EN}", entity.name).replace("{Ecap}", cap(display)).replace("{Org}", org)
    if out.startswith("{E}") and not chat:
        out = cap(display) + out[3:]
    out = out.replace("{E}", display)
    return cap(out) if not chat else out
