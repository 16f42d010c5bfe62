"""OrgGenerator: simulates every night of an invented org up front, then writes any night in place.

The whole history (new facts, updates, deleted documents, Slack edits and deletions, feed items)
is drawn from one seeded RNG at construction, so probes are known without writing anything and
writing night n only renders the documents as of night n.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.orggen import places, writer
from benchmarks.orggen.catalog import (
    CODE,
    DOCS,
    NEWS,
    POLICY_ATTRS,
    SLACK,
    Attr,
    Entity,
    ValueMaker,
    attrs_for,
    new_entity,
)
from benchmarks.orggen.model import Block, Doc, Fact, Message, NewsItem
from benchmarks.orggen.names import NameMaker
from benchmarks.orggen.render import (
    night_date,
    stamp,
    visible_prefix,
)

SOURCES = (CODE, DOCS, SLACK, NEWS)
_KIND_WEIGHTS = {"service": 3.0, "team": 2.0, "office": 1.0, "product": 2.0, "person": 1.5, "policy": 0.6}
_CHANNELS = ("general", "engineering", "ops", "product", "random")
_CHANNEL_OF = {
    "service": ("ops", "engineering"),
    "team": ("general", "engineering"),
    "office": ("general",),
    "product": ("product",),
    "person": ("general", "random"),
    "policy": ("general",),
}


NIGHT_SIZES = ("nights", "facts_per_night", "updates_per_night", "deletes_per_night")


def night_sizes(source: object) -> dict[str, int]:
    """The size fields of a ``GeneratorConfig``, read off anything that has them: parsed command-line
    arguments, or a benchmark's own config that generates its org."""
    return {name: getattr(source, name) for name in NIGHT_SIZES}


@dataclass
class GeneratorConfig:
    seed: int = 0
    nights: int = 10
    facts_per_night: int = 30
    updates_per_night: int = 6
    deletes_per_night: int = 1
    org_name: str | None = None
    source_mix: tuple[float, float, float, float] = (0.35, 0.35, 0.20, 0.10)  # code, docs, slack, news

    def __post_init__(self) -> None:
        if self.nights < 1 or self.facts_per_night < 1:
            raise ValueError("nights and facts_per_night must be >= 1")
        if self.updates_per_night < 0 or self.deletes_per_night < 0:
            raise ValueError("updates_per_night and deletes_per_night must be >= 0")
        if len(self.source_mix) != 4 or any(w < 0 for w in self.source_mix) or not sum(self.source_mix):
            raise ValueError("source_mix must be 4 non-negative weights (code, docs, slack, news)")
        self.source_mix = tuple(float(w) for w in self.source_mix)


@dataclass
class NightSummary:
    night: int
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # paths (or slack/feed locations) removed
    retired: list[str] = field(default_factory=list)  # facts that stopped being true
    files_written: int = 0


def quotas(total: int, weights: tuple[float, ...]) -> list[int]:
    """Largest-remainder split of ``total`` by ``weights`` (ties to the earlier source)."""
    raw = [total * w / sum(weights) for w in weights]
    out = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))[: total - sum(out)]:
        out[i] += 1
    return out


class OrgGenerator:
    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(f"orggen:{cfg.seed}")
        self.names = NameMaker(self.rng)
        base = self.names.word((2, 3), 5)
        self.org_name = cfg.org_name or f"{base} {self.rng.choice(('Labs', 'Systems', 'Logistics', 'Works'))}"
        self.org_slug = "".join(c for c in self.org_name.split()[0].lower() if c.isalnum()) or "org"
        self.site = f"https://www.{self.org_slug}.example"
        self.values = ValueMaker(self.rng, self.names, self.org_slug)
        self.entities: dict[str, list[Entity]] = {k: [] for k in _KIND_WEIGHTS}
        self.facts: dict[str, Fact] = {}
        self.docs: dict[str, Doc] = {}
        self.code_doc: dict[str, Doc] = {}
        self.docs_doc: dict[str, Doc] = {}
        self.messages: list[Message] = []
        self.items: list[NewsItem] = []
        self._probes: list[dict] = []
        self._retired_probes: dict[str, list[dict]] = {}
        self.plan: list[NightSummary] = []
        self._clock: dict[int, int] = {}
        self._written: dict[Path, int] = {}
        self.users = [self._user(i) for i in range(1, 7)]
        self.channels = [
            {"id": f"C0{i}", "name": c, "created": 1767225600, "is_general": c == "general"}
            for i, c in enumerate(_CHANNELS, start=1)
        ]
        for n in range(1, cfg.nights + 1):
            self.plan.append(self._simulate(n))

    # ------------------------------------------------------------ public API

    def probes(self, upto: int | None = None) -> list[dict]:
        """Probes of nights 1..upto for facts still true after ``upto`` (retired facts are left out)."""
        upto = self.cfg.nights if upto is None else upto
        gone = self.retired(upto)
        return [dict(p) for p in self._probes if p["night"] <= upto and p["fact"] not in gone]

    def retired(self, upto: int | None = None) -> dict[str, int]:
        """fact id -> the night it stopped being true (its document was deleted), up to ``upto``."""
        upto = self.cfg.nights if upto is None else upto
        return {f.id: f.retired for f in self.facts.values() if f.retired is not None and f.retired <= upto}

    def retired_probes(self, upto: int | None = None) -> list[dict]:
        """The probes of retired facts (what must no longer be asked as current)."""
        gone = self.retired(upto)
        return [dict(p) for p in self._probes if p["fact"] in gone and p["night"] <= gone[p["fact"]]]

    def write_night(self, out_dir: Path, n: int) -> NightSummary:
        """Apply night ``n`` in place under ``out_dir``; nights must come in order 1, 2, ..."""
        out_dir = Path(out_dir)
        done = self._written.get(out_dir.resolve())
        summary = writer.write_night(self, out_dir, n, done)
        self._written[out_dir.resolve()] = n
        return summary

    # ------------------------------------------------------------ simulation of one night

    def _simulate(self, n: int) -> NightSummary:
        summary = NightSummary(night=n)
        if n > 1:  # updates first; a deleted document then holds no fact updated tonight
            self._updates(n, summary)
            for k in range(self.cfg.deletes_per_night):
                self._delete(
                    n, ("slack", "docs", "code")[((n - 2) * self.cfg.deletes_per_night + k) % 3], summary
                )
        for source, count in zip(SOURCES, quotas(self.cfg.facts_per_night, self.cfg.source_mix), strict=True):
            for _ in range(count):
                fact = self._new_fact(source, n)
                if fact is not None:
                    summary.new.append(fact.id)
        self._noise(n)
        return summary

    def _retire(self, fact: Fact, n: int, summary: NightSummary) -> None:
        fact.retired = n
        summary.retired.append(fact.id)

    def _delete(self, n: int, first: str, summary: NightSummary) -> None:
        for kind in (first, *(k for k in ("slack", "docs", "code") if k != first)):
            if kind == "slack":
                msgs = [
                    m
                    for m in self.messages
                    if m.fact
                    and m.night < n
                    and m.deleted is None
                    and m.fact.retired is None
                    and m.fact.id not in summary.updated
                ]
                if not msgs:
                    continue
                msg = self.rng.choice(msgs)
                msg.deleted, msg.deleted_ts = n, self._ts(n)
                msg.deleted_form = ("event", "vanish")[
                    sum(1 for m in self.messages if m.fact and m.deleted) % 2
                ]
                self._retire(msg.fact, n, summary)
                summary.deleted.append(f"slack/export.zip#{msg.channel}@{msg.ts}")
                return
            docs = [
                d
                for d in self.docs.values()
                if d.source == kind
                and d.created < n
                and d.deleted is None
                and not any(b.fact.id in summary.updated for b in d.blocks)
            ]
            if not docs:
                continue
            doc = self.rng.choice(docs)
            doc.deleted = n
            for block in doc.blocks:
                self._retire(block.fact, n, summary)
            summary.deleted.append(doc.path)
            return

    def _updates(self, n: int, summary: NightSummary) -> None:
        live = [f for f in self.facts.values() if f.retired is None and f.created < n and f.source != NEWS]
        if not live:
            return
        chosen: list[Fact] = []
        slack = [f for f in live if f.source == SLACK]
        if slack and self.cfg.updates_per_night:
            chosen.append(self.rng.choice(slack))
        rest = [f for f in live if f not in chosen]
        chosen += self.rng.sample(rest, min(len(rest), self.cfg.updates_per_night - len(chosen)))
        for fact in chosen:
            old = [v.written(fact.form)[0] for _, v in reversed(fact.history)]
            value = fact.attr.draw(self.values)
            fact.history.append((n, value))
            if fact.source == SLACK:
                msg = next(m for m in self.messages if m.fact is fact)
                if not msg.edits:
                    msg.edit_form = ("event", "inplace")[
                        sum(1 for m in self.messages if m.edits) % 2
                    ]  # both forms
                msg.edits.append((n, self._ts(n)))
            self._probe(fact, n, list(dict.fromkeys(old)))
            summary.updated.append(fact.id)

    # ------------------------------------------------------------ new facts

    def _new_fact(self, source: str, n: int) -> Fact | None:
        kinds = [k for k in _KIND_WEIGHTS if attrs_for(k, source)]
        for _ in range(40):
            kind = self.rng.choices(kinds, weights=[_KIND_WEIGHTS[k] for k in kinds])[0]
            entity = self._entity(kind, source)
            if entity is None:
                continue
            free = [a for a in self._attrs(entity, source) if a.key not in entity.attrs_used]
            if free:
                return self._add(entity, self.rng.choice(free), source, n)
        return None

    def _attrs(self, entity: Entity, source: str) -> list[Attr]:
        attrs = attrs_for(entity.kind, source)
        if entity.kind == "policy":
            allowed = POLICY_ATTRS[entity.name.removesuffix(" policy")]
            attrs = [a for a in attrs if a.key in allowed]
        return attrs

    def _usable(self, entity: Entity, source: str) -> bool:
        home = {CODE: self.code_doc, DOCS: self.docs_doc}.get(source, {}).get(entity.slug)
        if home is not None and home.deleted is not None:
            return False
        return any(a.key not in entity.attrs_used for a in self._attrs(entity, source))

    def _entity(self, kind: str, source: str) -> Entity | None:
        pool = [e for e in self.entities[kind] if self._usable(e, source)]
        if not pool or self.rng.random() < 0.12:
            taken = {e.name.removesuffix(" policy") for e in self.entities["policy"]}
            entity = new_entity(kind, self.names, self.rng, taken)
            if entity is not None:
                self.entities[kind].append(entity)
                return entity
        return self.rng.choice(pool) if pool else None

    def _add(self, entity: Entity, attr: Attr, source: str, n: int) -> Fact:
        entity.attrs_used.add(attr.key)
        value = attr.draw(self.values)
        fact = Fact(
            id=f"{entity.slug}-{attr.key.replace('_', '-')}",
            entity=entity,
            attr=attr,
            source=source,
            where="",
            form="prose",
            frame="",
            line="",
            cloze="",
            question="",
            created=n,
            history=[(n, value)],
        )
        getattr(self, f"_place_{source}")(fact, value.quoted, n)
        if not fact.cloze.strip() or fact.line.count("{V}") != 1:
            raise AssertionError(f"{fact.id}: frame {fact.frame!r} gives no cloze before the value")
        fact.question = self._question(fact)
        self.facts[fact.id] = fact
        self._probe(fact, n, [])
        return fact

    def _question(self, fact: Fact) -> str:
        accepted = [fact.history[0][1].written(fact.form)[0], *fact.history[0][1].written(fact.form)[1]]
        frames = list(fact.attr.questions)
        self.rng.shuffle(frames)
        for frame in frames:
            org = self.org_name
            q = frame.replace("{E}", fact.entity.name).replace(
                "{Org}'s", org + ("'" if org.endswith("s") else "'s")
            )
            q = q.replace("{Org}", org)
            if not any(a.lower() in q.lower() for a in accepted):
                return q
        return f"What is the {fact.attr.nouns[0]} of {fact.entity.name} at {self.org_name}?"

    def _place_code(self, fact: Fact, quoted: bool, n: int) -> None:
        doc = self.code_doc.get(fact.entity.slug)
        if doc is None:
            fmt, path, intro, outro = places.code_file(self.rng, fact.entity)
            while f"repo/{path}" in self.docs:
                path = path.replace(".", "_x.", 1)
            doc = Doc(f"repo/{path}", CODE, fmt, fact.entity, path, "code", n, intro, outro)
            self.docs[doc.path] = self.code_doc[fact.entity.slug] = doc
        before, line, after, frame, form = places.code_line(
            self.rng, doc.fmt, fact.attr, fact.entity, self.org_name, quoted
        )
        self._set_line(fact, doc, line, frame, form)
        doc.blocks.append(Block(fact, "main", before, after))

    def _place_docs(self, fact: Fact, quoted: bool, n: int) -> None:
        doc = self.docs_doc.get(fact.entity.slug)
        if doc is None:
            fmt, path, title, style, intro, outro, headings = places.doc_file(self.rng, fact.entity)
            doc = Doc(f"docs/{path}", DOCS, fmt, fact.entity, title, style, n, intro, outro, headings)
            self.docs[doc.path] = self.docs_doc[fact.entity.slug] = doc
        group = places.doc_group(self.rng, doc.style, doc.fmt)
        before, line, frame = places.doc_line(
            self.rng, group, doc.style, doc.fmt, fact.attr, fact.entity, self.org_name
        )
        self._set_line(fact, doc, line, f"{doc.fmt}-{doc.style}/{frame}", "prose")
        doc.blocks.append(Block(fact, group, before, []))

    def _set_line(self, fact: Fact, doc: Doc, line: str, frame: str, form: str) -> None:
        fact.line, fact.frame, fact.form, fact.where = line, frame, form, doc.path
        fact.cloze = visible_prefix(line.split("{V}")[0], doc.fmt)

    def _place_slack(self, fact: Fact, quoted: bool, n: int) -> None:
        channel = self.rng.choice(_CHANNEL_OF[fact.entity.kind])
        author, other = self.rng.sample([u["id"] for u in self.users], 2)
        line, frame = places.chat_line(self.rng, fact.attr, fact.entity, self.org_name)
        fact.line, fact.frame, fact.form, fact.cloze = line, frame, "prose", line.split("{V}")[0]
        if self.rng.random() < 0.45:
            parent = Message(
                self._ts(n), channel, other, places.chat_question(self.rng, fact.attr, fact.entity), n
            )
            parent.thread_ts, parent.reply_count = parent.ts, 2
            reply = Message(self._ts(n), channel, author, "", n, fact=fact, thread_ts=parent.ts)
            thanks = Message(
                self._ts(n),
                channel,
                other,
                self.rng.choice(("thanks!", "perfect, ty", "got it")),
                n,
                thread_ts=parent.ts,
            )
            self.messages += [parent, reply, thanks]
            day = night_date(n).isoformat()
        else:
            reply = Message(self._ts(n), channel, author, "", n, fact=fact)
            self.messages.append(reply)
            day = night_date(n).isoformat()
        fact.where = f"slack/export.zip#{channel}/{day}"

    def _place_news(self, fact: Fact, quoted: bool, n: int) -> None:
        line, frame = places.news_line(self.rng, fact.attr, fact.entity, self.org_name)
        fact.line, fact.frame, fact.form, fact.cloze = line, f"news/{frame}", "prose", line.split("{V}")[0]
        item = self._item(
            n,
            self.rng.choice(
                (
                    f"{fact.entity.name}: an update from {self.org_name}",
                    f"News from {self.org_name}: {fact.entity.name}",
                    f"{self.org_name} announces changes at {fact.entity.name}",
                )
            ),
            "",
            fact,
        )
        fact.where = f"feed/feed.xml#{item.guid}"

    def _item(self, n: int, title: str, body: str, fact: Fact | None) -> NewsItem:
        guid = f"{self.org_slug}-news-{len(self.items) + 1:04d}"
        link = f"{self.site}/news/{night_date(n).isoformat()}/{guid}"
        item = NewsItem(guid, link, title, body, n, self.rng.randint(0, 600), fact)
        self.items.append(item)
        return item

    # ------------------------------------------------------------ noise, probes, helpers

    def _noise(self, n: int) -> None:
        users = [u["id"] for u in self.users]
        for _ in range(self.rng.randint(2, 4)):
            self.messages.append(
                Message(
                    self._ts(n),
                    self.rng.choice(_CHANNELS),
                    self.rng.choice(users),
                    self.rng.choice(places.CHAT_FILLER),
                    n,
                )
            )
        self.messages.append(
            Message(
                self._ts(n),
                "engineering",
                "",
                f"build finished for {self.names.slug()}",
                n,
                subtype="bot_message",
                extra={"bot_id": "B01", "username": "buildbot"},
            )
        )
        joiner = self.rng.choice(users)
        self.messages.append(
            Message(
                self._ts(n),
                "general",
                joiner,
                f"<@{joiner}> has joined the channel",
                n,
                subtype="channel_join",
            )
        )
        oops = Message(
            self._ts(n),
            self.rng.choice(_CHANNELS),
            self.rng.choice(users),
            "oops, wrong channel, ignore me",
            n,
        )
        oops.deleted, oops.deleted_ts, oops.deleted_form = n, self._ts(n), "event"
        self.messages.append(oops)
        self._item(
            n,
            self.rng.choice(
                (
                    f"{self.org_name} at the {self.names.word()} meetup",
                    f"Life at {self.org_name}: a week in the {self.names.word()} team",
                    f"{self.org_name} newsletter",
                )
            ),
            self.rng.choice(
                (
                    "A short look at what people have been building lately.",
                    "We met customers and partners and listened a lot.",
                    "Photos and notes from the week are on the intranet.",
                )
            ),
            None,
        )

    def _probe(self, fact: Fact, n: int, replaces: list[str]) -> None:
        value = fact.value_at(n)
        answer, aliases = value.written(fact.form)
        self._probes.append(
            {
                "fact": fact.id,
                "cloze": fact.cloze,
                "answer": answer,
                "question": fact.question,
                "aliases": [a for a in aliases if a != answer],
                "night": n,
                "replaces": replaces,
                "kind": "fact",
                "source": fact.where,
            }
        )

    def _ts(self, n: int) -> str:
        self._clock[n] = self._clock.get(n, 9 * 3600) + self.rng.randint(40, 700)
        return stamp(n, self._clock[n])

    def _user(self, i: int) -> dict:
        full = self.names.person()
        first, last = full.split()
        handle = f"{first.lower()}.{last[0].lower()}"
        display = handle if i % 2 else ""
        return {
            "id": f"U0{i}",
            "name": handle,
            "real_name": full,
            "is_bot": False,
            "profile": {"display_name": display, "real_name": full},
        }


__all__ = ["GeneratorConfig", "NightSummary", "OrgGenerator", "quotas"]
