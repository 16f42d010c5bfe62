"""Synthetic meta-training episodes: invented company facts to write, then questions about them.

An episode is what a night looks like to the memory: a document stream that states facts (prose,
runbook bullets, chat messages, code constants) and, in a fresh context afterwards, queries whose
answers are only in what was written (cloze lines or a chat conversation through the base's own
template). Everything is invented from a seed, so no data set is needed, nothing overlaps the
evaluation probes, and a resumed meta-training sees exactly the same episodes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_SYL = ["ka", "lo", "mer", "vin", "tra", "so", "del", "ru", "fen", "ix", "bar", "qu", "zel", "nor", "pi",
        "ost", "mal", "ren", "cor", "tu", "val", "em", "sky", "dor", "hal", "gri", "ban", "lux", "wen", "ter"]
_FIRST = ["Marit", "Priya", "Tomas", "Ines", "Kofi", "Leila", "Anders", "Yuki", "Rafael", "Olga", "Samir",
          "Greta", "Nadia", "Pavel", "Chiara", "Jonas", "Amara", "Felix", "Hana", "Mateo", "Sofia", "Emeka"]
_LAST = ["Oja", "Natarajan", "Berg", "Costa", "Mensah", "Haddad", "Lund", "Sato", "Duarte", "Ivanova",
         "Khan", "Vogel", "Rahimi", "Novak", "Ricci", "Weber", "Okafor", "Brandt", "Kim", "Silva"]
_CITIES = ["Tallinn", "Porto", "Osaka", "Nairobi", "Lyon", "Calgary", "Gdansk", "Valencia", "Leeds", "Cork",
           "Bergen", "Tucson", "Malmo", "Quito", "Perth", "Kraków", "Graz", "Turin"]
_TEAMS = ["routing", "payments", "billing", "search", "platform", "identity", "logistics", "mobile",
          "analytics", "support", "security", "pricing", "inventory", "growth"]
_WORDS = ["Clipper", "Heron", "Basalt", "Juniper", "Falcon", "Marble", "Cobalt", "Willow", "Orchid", "Quartz",
          "Pioneer", "Lantern", "Harbor", "Tundra", "Ember", "Saffron", "Granite", "Nimbus"]
_LIBS = ["postgres", "redis", "kafka", "nginx", "python", "node", "envoy", "grpc"]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 3))).capitalize()


@dataclass(frozen=True)
class Fact:
    """One invented fact: how documents state it, and how a user would ask for it.

    ``kind`` and ``subject`` say what the fact is about, so a later document can change its value
    (``updated_fact``) while the question stays the same."""

    statement: str
    code: str | None
    cloze: str
    question: str
    answer: str
    kind: int = -1
    subject: tuple[str, str, str, str] = ("", "", "", "")  # service, team, person, extra


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _fact(rng: random.Random) -> Fact:
    kind = rng.randrange(10)
    extra = (f"Q{rng.randint(1, 4)} {rng.randint(2024, 2029)}" if kind == 6
             else rng.choice(_LIBS) if kind == 8 else "")
    return _fact_about(rng, kind, (_name(rng), rng.choice(_TEAMS), _person(rng), extra))


def updated_fact(rng: random.Random, fact: Fact) -> Fact:
    """The same question with another answer (a later document changes the value)."""
    svc, team, person, extra = fact.subject
    for _ in range(50):
        team_v = rng.choice(_TEAMS) if fact.kind in (5, 7) else team
        person_v = _person(rng) if fact.kind == 1 else person
        new = _fact_about(rng, fact.kind, (svc, team_v, person_v, extra))
        if new.answer != fact.answer and new.question == fact.question:
            return new
    raise ValueError(f"could not draw a new value for the fact {fact.question!r}")


def _fact_about(rng: random.Random, kind: int, subject: tuple[str, str, str, str]) -> Fact:  # noqa: C901  # one branch per fact template
    """The fact of template ``kind`` about ``subject``, its value drawn from ``rng``."""
    svc, team, person, extra = subject

    def fact(statement: str, code: str | None, cloze: str, question: str, answer: str) -> Fact:
        return Fact(statement, code, cloze, question, answer, kind, subject)

    if kind == 0:
        port = str(rng.randint(1025, 9999))
        return fact(f"{svc} listens on port {port}.", f"{svc.upper()}_PORT = {port}",
                    f"{svc} listens on port", f"Which port does {svc} listen on?", port)
    if kind == 1:
        return fact(f"The {team} team is led by {person}.", None, f"The {team} team is led by",
                    f"Who leads the {team} team?", person)
    if kind == 2:
        cluster = f"{rng.choice(_WORDS).lower()}-{rng.randint(1, 9)}"
        return fact(f"{svc} runs on the cluster named {cluster}.", f'{svc.upper()}_CLUSTER = "{cluster}"',
                    f"{svc} runs on the cluster named", f"Which cluster does {svc} run on?", cluster)
    if kind == 3:
        city = rng.choice(_CITIES)
        return fact(f"{person} works in the {city} office.", None, f"{person} works in the",
                    f"Which office does {person} work in?", city)
    if kind == 4:
        secs = str(rng.choice([5, 10, 15, 20, 30, 45, 60, 90, 120]))
        return fact(f"The request timeout of {svc} is {secs} seconds.", f"{svc.upper()}_TIMEOUT_S = {secs}",
                    f"The request timeout of {svc} is", f"What is the request timeout of {svc}?", secs)
    if kind == 5:
        return fact(f"{svc} is owned by the {team} team.", None, f"{svc} is owned by the",
                    f"Which team owns {svc}?", team)
    if kind == 6:
        word = rng.choice(_WORDS)
        return fact(f"The codename of the {extra} release is {word}.", None,
                    f"The codename of the {extra} release is",
                    f"What is the codename of the {extra} release?", word)
    if kind == 7:
        chan = f"#{team}-{rng.choice(['alerts', 'incidents', 'oncall', 'ops'])}"
        return fact(f"Incidents for {svc} are reported in {chan}.", None,
                    f"Incidents for {svc} are reported in", f"Where are incidents for {svc} reported?", chan)
    if kind == 8:
        ver = f"{rng.randint(1, 17)}.{rng.randint(0, 9)}"
        return fact(f"{svc} uses {extra} version {ver}.", f'{svc.upper()}_{extra.upper()}_VERSION = "{ver}"',
                    f"{svc} uses {extra} version", f"Which {extra} version does {svc} use?", ver)
    ext = str(rng.randint(100, 999))
    return fact(f"{person}'s desk phone extension is {ext}.", None, f"{person}'s desk phone extension is",
                f"What is {person}'s desk phone extension?", ext)


def _document(rng: random.Random, facts: list[Fact]) -> str:
    """State the facts in one of four document styles (the memory must not depend on one)."""
    style = rng.randrange(4)
    if style == 0:
        return " ".join(f.statement for f in facts)
    if style == 1:
        return "Runbook notes:\n" + "\n".join(f"- {f.statement}" for f in facts)
    if style == 2:
        lines = []
        for f in facts:
            hour, minute = rng.randint(8, 18), rng.randint(0, 59)
            lines.append(f"[{hour:02d}:{minute:02d}] {rng.choice(_FIRST).lower()}: fyi {f.statement}")
        return "\n".join(lines)
    return "\n".join(f"{f.code}  # {f.statement}" if f.code else f"# {f.statement}" for f in facts)


@dataclass(frozen=True)
class Episode:
    """A write text and the query pieces: (text, is_answer) in order."""

    write: str
    query: list[tuple[str, bool]]
    facts: list[Fact]


def make_episode(rng: random.Random, tokenizer, *, facts: tuple[int, int] = (4, 10), queries: int = 4,
                 chat_prob: float = 0.5) -> Episode:
    """One episode with ``facts`` (min, max) facts, ``queries`` of them asked afterwards."""
    chosen = [_fact(rng) for _ in range(rng.randint(*facts))]
    asked = rng.sample(chosen, min(queries, len(chosen)))
    return Episode(_document(rng, chosen), query_pieces(rng, tokenizer, asked, chat_prob), chosen)


def query_pieces(rng: random.Random, tokenizer, asked: list[Fact], chat_prob: float
                 ) -> list[tuple[str, bool]]:
    """The questions of a fresh context: a chat through the base's template, or cloze lines."""
    if rng.random() < chat_prob and getattr(tokenizer, "chat_template", None):
        return _chat_pieces(tokenizer, asked)
    return [p for f in asked for p in ((f.cloze, False), (" " + f.answer, True), (".\n", False))]


def _chat_pieces(tokenizer, asked: list[Fact]) -> list[tuple[str, bool]]:
    """A multi-turn chat through the base's template; the assistant turns are the answers."""
    pieces: list[tuple[str, bool]] = []
    history: list[dict[str, str]] = []
    rendered = ""
    for f in asked:
        history.append({"role": "user", "content": f.question})
        prompt = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
        history.append({"role": "assistant", "content": f.answer})
        after = tokenizer.apply_chat_template(history, tokenize=False)
        if not (prompt.startswith(rendered) and after.startswith(prompt + f.answer)):
            raise ValueError("the base's chat template does not render turns as prefixes of each other: "
                             "cannot build chat episodes (use chat_prob=0)")
        suffix = after[len(prompt) + len(f.answer):]
        pieces += [(prompt[len(rendered):], False), (f.answer, True), (suffix, False)]
        rendered = after
    return pieces
