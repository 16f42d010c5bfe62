"""What an invented org's facts are about: entity kinds, attributes, value generators, phrasings.

An attribute carries several noun phrases, verb phrases and question frames; documents compose
sentences from them (see ``frames``), so no attribute has one fixed template.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from benchmarks.orggen.names import NameMaker


@dataclass(frozen=True)
class Value:
    """A value in its code form and its prose form, each with natural alternatives."""

    code: str
    prose: str
    code_aliases: tuple[str, ...] = ()
    prose_aliases: tuple[str, ...] = ()
    quoted: bool = False  # a string in code (written between quotes)

    def written(self, form: str) -> tuple[str, tuple[str, ...]]:
        if form == "code":
            return self.code, self.code_aliases
        return self.prose, self.prose_aliases


@dataclass
class Entity:
    kind: str
    name: str
    slug: str
    display: str  # how a sentence names it ("the Tessaly team")
    attrs_used: set[str] = field(default_factory=set)


class ValueMaker:
    """Draws values; each written form is unique across the whole org so probes never collide."""

    def __init__(self, rng: random.Random, names: NameMaker, org_slug: str) -> None:
        self.rng, self.names, self.org_slug = rng, names, org_slug
        self.used: set[str] = set()

    def unique(self, draw: Callable[[], Value]) -> Value:
        for _ in range(500):
            value = draw()
            if value.code not in self.used and value.prose not in self.used:
                self.used.update({value.code, value.prose})
                return value
        raise RuntimeError("value space exhausted")

    def number(self, lo: int, hi: int, unit: str = "", plural: str = "", step: int = 1) -> Value:
        def draw() -> Value:
            n = self.rng.randrange(lo, hi + 1, step)
            word = unit if n == 1 else (plural or unit)
            prose = f"{n} {word}" if word else str(n)
            return Value(str(n), prose, (f"{n} {word}",) if word else (), (str(n),) if word else ())

        return self.unique(draw)

    def grouped(self, lo: int, hi: int, unit: str) -> Value:
        def draw() -> Value:
            n = self.rng.randint(lo, hi)
            return Value(str(n), f"{n:,} {unit}", (f"{n:,}",), (f"{n} {unit}", str(n), f"{n:,}"))

        return self.unique(draw)

    def money(self, lo: int, hi: int) -> Value:
        def draw() -> Value:
            n = self.rng.randint(lo, hi)
            return Value(str(n), f"€{n}", (f"€{n}", f"{n} euros"), (f"{n} euros", f"EUR {n}"))

        return self.unique(draw)

    def text(self, s: str, aliases: tuple[str, ...] = ()) -> Value:
        return Value(s, s, aliases, aliases, quoted=True)

    def person(self) -> Value:
        return self.unique(lambda: self._name_value(self.names.person()))

    def _name_value(self, full: str) -> Value:
        last = full.split()[-1]
        return Value(full, full, (last,), (last,), quoted=True)

    def city(self) -> Value:
        return self.unique(lambda: self.text(self.names.city()))

    def channel(self) -> Value:
        def draw() -> Value:
            name = (
                f"{self.names.slug()}-{self.rng.choice(('ops', 'alerts', 'dev', 'oncall', 'help', 'team'))}"
            )
            return Value(f"#{name}", f"#{name}", (name,), (name,), quoted=True)

        return self.unique(draw)

    def host(self) -> Value:
        def draw() -> Value:
            zone = self.rng.choice(("int", "prod", "core", "edge"))
            return self.text(f"{self.names.slug()}-{self.rng.randint(1, 40):02d}.{zone}.{self.org_slug}.net")

        return self.unique(draw)

    def version(self) -> Value:
        def draw() -> Value:
            v = f"{self.rng.randint(1, 9)}.{self.rng.randint(0, 24)}.{self.rng.randint(0, 19)}"
            return Value(v, v, (f"v{v}",), (f"v{v}",), quoted=True)

        return self.unique(draw)

    def day(self) -> Value:
        def draw() -> Value:
            d = date(2026, 1, 1) + timedelta(days=self.rng.randint(40, 700))
            long = f"{d.day} {d:%B %Y}"
            return Value(
                d.isoformat(), long, (long,), (d.isoformat(), f"{d:%B} {d.day}, {d.year}"), quoted=True
            )

        return self.unique(draw)

    def clock(self) -> Value:
        def draw() -> Value:
            t = f"{self.rng.randint(8, 16):02d}:{self.rng.choice((5, 10, 20, 25, 35, 40, 50, 55)):02d}"
            return Value(t, t, (), (), quoted=True)

        return self.unique(draw)

    def codename(self) -> Value:
        return self.unique(lambda: self.text(self.names.word((2, 3), 5)))


@dataclass(frozen=True)
class Attr:
    key: str
    ekind: str
    sources: tuple[str, ...]
    code_key: str
    comments: tuple[str, ...]
    nouns: tuple[str, ...]
    verbs: tuple[str, ...]  # "{V}" marks the value
    questions: tuple[str, ...]  # "{E}" entity, "{Org}" company
    draw: Callable[[ValueMaker], Value]
    news: tuple[str, ...] = ()  # announcement frames for the feed ("{E}", "{V}", "{Org}")


CODE, DOCS, SLACK, NEWS = "code", "docs", "slack", "news"
_S = (CODE, DOCS, SLACK)

ATTRS: tuple[Attr, ...] = (
    Attr(
        "port",
        "service",
        _S,
        "PORT",
        ("API port", "listening port", "TCP port the server binds"),
        ("port", "listening port", "API port"),
        ("listens on port {V}", "accepts connections on port {V}", "is served on port {V}"),
        (
            "On which port does the {E} service at {Org} accept connections?",
            "What TCP port is {Org}'s {E} service bound to?",
        ),
        lambda v: v.number(2100, 9890),
    ),
    Attr(
        "timeout",
        "service",
        _S,
        "TIMEOUT_S",
        ("seconds before a request is abandoned", "request timeout"),
        ("request timeout", "timeout", "upstream timeout"),
        ("gives up on a request after {V}", "times requests out after {V}"),
        (
            "How long does {Org}'s {E} service wait before abandoning a request?",
            "After how many seconds does a call to {E} at {Org} time out?",
        ),
        lambda v: v.number(6, 180, "second", "seconds"),
    ),
    Attr(
        "retries",
        "service",
        _S,
        "RETRY_LIMIT",
        ("attempts before failing", "max retries"),
        ("retry limit", "maximum number of retries", "retry budget"),
        ("retries a failed call at most {V} times", "stops retrying after {V} attempts"),
        (
            "How many times will {Org}'s {E} service retry a failed call?",
            "What is the cap on retry attempts for {E} at {Org}?",
        ),
        lambda v: v.number(11, 49),
    ),
    Attr(
        "replicas",
        "service",
        _S,
        "REPLICAS",
        ("pods in production", "replica count"),
        ("replica count", "number of production replicas"),
        ("runs {V} replicas in production", "is deployed as {V} pods"),
        (
            "How many production replicas does {Org} run for {E}?",
            "How many pods back the {E} service in {Org}'s production cluster?",
        ),
        lambda v: v.number(52, 99),
    ),
    Attr(
        "memory",
        "service",
        _S,
        "MEMORY_LIMIT_MIB",
        ("memory limit per pod, MiB", "container memory cap"),
        ("memory limit", "per-pod memory cap"),
        ("is capped at {V} of memory per pod", "gets {V} of memory per container"),
        (
            "What memory limit does each {E} pod get at {Org}?",
            "How much RAM may one container of {Org}'s {E} service use?",
        ),
        lambda v: v.number(130, 4000, "MiB", step=10),
    ),
    Attr(
        "host",
        "service",
        _S,
        "PRIMARY_HOST",
        ("primary host", "where the leader runs"),
        ("primary host", "leader host", "main hostname"),
        ("has its leader on {V}", "runs its primary on {V}"),
        (
            "Which machine hosts the primary of {Org}'s {E} service?",
            "What is the hostname of the {E} leader node at {Org}?",
        ),
        lambda v: v.host(),
    ),
    Attr(
        "version",
        "service",
        _S,
        "VERSION",
        ("pinned release", "deployed release"),
        ("pinned version", "deployed release", "current release"),
        ("is pinned to release {V}", "ships version {V} in production"),
        (
            "Which release of {E} is deployed at {Org}?",
            "What version number is {Org}'s {E} service pinned to?",
        ),
        lambda v: v.version(),
    ),
    Attr(
        "cache_ttl",
        "service",
        _S,
        "CACHE_TTL_MIN",
        ("minutes a cached entry lives", "cache lifetime"),
        ("cache TTL", "cache lifetime"),
        ("keeps cached entries for {V}", "expires its cache after {V}"),
        (
            "For how long does {Org}'s {E} service keep an entry in its cache?",
            "What is the cache expiry of {E} at {Org}?",
        ),
        lambda v: v.number(7, 300, "minute", "minutes"),
    ),
    Attr(
        "rate_limit",
        "service",
        _S,
        "RATE_LIMIT_RPS",
        ("requests per second per client", "throttle"),
        ("rate limit", "request throttle"),
        ("throttles clients at {V}", "allows at most {V} per client"),
        (
            "How many requests per second does {Org}'s {E} service allow a client?",
            "At what request rate are clients of {E} throttled at {Org}?",
        ),
        lambda v: v.number(150, 9000, "requests per second", step=25),
    ),
    Attr(
        "oncall",
        "service",
        _S,
        "ONCALL_CHANNEL",
        ("where pages go", "escalation channel"),
        ("on-call channel", "escalation channel"),
        ("pages its on-call in {V}", "escalates incidents to {V}"),
        (
            "Which Slack channel receives the pages for {Org}'s {E} service?",
            "Where do {E} incidents get escalated at {Org}?",
        ),
        lambda v: v.channel(),
    ),
    Attr(
        "lead",
        "team",
        (DOCS, SLACK, NEWS),
        "",
        (),
        ("lead", "manager", "head"),
        ("is led by {V}", "reports to {V}"),
        ("Who manages the {E} at {Org}?", "Which person heads the {E} at {Org}?"),
        lambda v: v.person(),
        ("{E} has a new head: {V}, who starts this month.", "Leading {E} from now on: {V}."),
    ),
    Attr(
        "channel",
        "team",
        (DOCS, SLACK),
        "",
        (),
        ("Slack channel", "chat channel"),
        ("talks in {V}", "can be reached in {V}"),
        (
            "In which Slack channel can the {E} at {Org} be reached?",
            "What chat room does the {E} at {Org} use?",
        ),
        lambda v: v.channel(),
    ),
    Attr(
        "standup",
        "team",
        (DOCS, SLACK),
        "",
        (),
        ("daily standup", "standup time"),
        ("holds its standup at {V}", "meets every morning at {V}"),
        (
            "At what time of day does the {E} at {Org} meet for standup?",
            "When is the daily sync of the {E} at {Org}?",
        ),
        lambda v: v.clock(),
    ),
    Attr(
        "headcount",
        "team",
        (DOCS, NEWS),
        "",
        (),
        ("headcount", "size"),
        ("has {V}", "counts {V}"),
        ("How many people work in the {E} at {Org}?", "How large is the {E} at {Org}, in people?"),
        lambda v: v.number(13, 95, "people"),
        ("{E} has grown to {V}.",),
    ),
    Attr(
        "home_office",
        "team",
        (DOCS, SLACK),
        "",
        (),
        ("home office", "base"),
        ("sits in {V}", "is based in {V}"),
        ("In which city does the {E} of {Org} work?", "Where is the {E} at {Org} located?"),
        lambda v: v.city(),
    ),
    Attr(
        "city",
        "office",
        (DOCS, NEWS),
        "",
        (),
        ("city", "location"),
        ("is in {V}", "is located in {V}"),
        ("In which city is {Org}'s {E}?", "Where is the {E} of {Org} located?"),
        lambda v: v.city(),
        ("{Org} opened {E} in {V}.", "{E} of {Org} is now open in {V}."),
    ),
    Attr(
        "desks",
        "office",
        (DOCS, NEWS),
        "",
        (),
        ("desk count", "capacity"),
        ("has {V}", "seats {V}"),
        ("How many desks does {Org}'s {E} have?", "What is the seating capacity of the {E} at {Org}?"),
        lambda v: v.number(21, 480, "desks"),
        ("{E} will seat {V}.",),
    ),
    Attr(
        "office_head",
        "office",
        (DOCS, NEWS, SLACK),
        "",
        (),
        ("site lead", "office manager"),
        ("is run by {V}", "is managed by {V}"),
        ("Who runs {Org}'s {E}?", "Which person manages the {E} of {Org}?"),
        lambda v: v.person(),
        ("At {E}, the new site lead is {V}.",),
    ),
    Attr(
        "launch",
        "product",
        (DOCS, NEWS),
        "",
        (),
        ("launch date", "release date"),
        ("launches on {V}", "goes on sale on {V}"),
        ("When does {Org} launch {E}?", "On what date will {Org}'s {E} be released?"),
        lambda v: v.day(),
        ("{Org} will release {E} on {V}.", "{E} ships on {V}, {Org} said."),
    ),
    Attr(
        "price",
        "product",
        (DOCS, NEWS, SLACK),
        "",
        (),
        ("price per seat", "monthly price per seat"),
        ("costs {V} per seat per month", "is sold at {V} per seat each month"),
        (
            "How much does {Org} charge per seat per month for {E}?",
            "What is the monthly per-seat cost of {Org}'s {E}?",
        ),
        lambda v: v.money(11, 390),
        ("{E} is priced at {V} per seat per month.",),
    ),
    Attr(
        "customers",
        "product",
        (NEWS, DOCS),
        "",
        (),
        ("customer count", "number of paying customers"),
        ("is used by {V}", "has signed up {V}"),
        ("How many paying customers does {Org}'s {E} have?", "How many customers use {E} from {Org}?"),
        lambda v: v.grouped(1100, 98000, "customers"),
        ("{E} now serves {V}.",),
    ),
    Attr(
        "codename",
        "product",
        (DOCS, SLACK, NEWS),
        "",
        (),
        ("internal codename", "project codename"),
        ("was developed under the codename {V}", "is known internally as {V}"),
        ("What internal codename did {Org} use for {E}?", "Under which project name was {E} built at {Org}?"),
        lambda v: v.codename(),
        ("{E}, developed as project {V}, is {Org}'s next product.",),
    ),
    Attr(
        "product_lead",
        "product",
        (DOCS, NEWS, SLACK),
        "",
        (),
        ("product owner", "product lead"),
        ("is owned by {V}", "is driven by {V}"),
        ("Who is the product owner of {E} at {Org}?", "Which person is in charge of {Org}'s {E}?"),
        lambda v: v.person(),
        ("Product lead for {E} will be {V}.",),
    ),
    Attr(
        "start_date",
        "person",
        (DOCS, SLACK, NEWS),
        "",
        (),
        ("start date", "first day"),
        ("joins on {V}", "starts on {V}"),
        ("On which date does {E} start at {Org}?", "When is the first working day of {E} at {Org}?"),
        lambda v: v.day(),
        ("{E} joins {Org} on {V}.",),
    ),
    Attr(
        "manager",
        "person",
        (DOCS, SLACK),
        "",
        (),
        ("manager", "line manager"),
        ("reports to {V}", "is managed by {V}"),
        ("Who is the line manager of {E} at {Org}?", "To whom does {E} report at {Org}?"),
        lambda v: v.person(),
    ),
    Attr(
        "vacation",
        "policy",
        (DOCS,),
        "",
        (),
        ("annual leave", "vacation allowance"),
        ("grants {V} of paid leave a year", "allows {V} off per year"),
        ("How many days of paid vacation does {Org} give per year under its {E}?",),
        lambda v: v.number(23, 41, "days"),
    ),
    Attr(
        "approval",
        "policy",
        (DOCS,),
        "",
        (),
        ("approval threshold", "sign-off limit"),
        ("requires manager sign-off above {V}", "needs approval for anything over {V}"),
        ("Above which amount does a purchase need approval under {Org}'s {E}?",),
        lambda v: v.money(410, 4900),
    ),
    Attr(
        "rotation",
        "policy",
        (DOCS,),
        "",
        (),
        ("rotation length", "shift length"),
        ("rotates every {V}", "hands over after {V}"),
        ("How long is one shift under {Org}'s {E}?",),
        lambda v: v.number(3, 21, "days"),
    ),
)

POLICY_TOPICS = ("leave", "expense", "on-call", "hardware", "travel", "security")
POLICY_ATTRS = {
    "leave": ("vacation",),
    "expense": ("approval",),
    "on-call": ("rotation",),
    "hardware": ("approval",),
    "travel": ("approval",),
    "security": ("rotation",),
}
BY_KEY = {a.key: a for a in ATTRS}
EKINDS = ("service", "team", "office", "product", "person", "policy")


def attrs_for(ekind: str, source: str) -> list[Attr]:
    return [a for a in ATTRS if a.ekind == ekind and source in a.sources]


def new_entity(kind: str, names: NameMaker, rng: random.Random, taken: set[str]) -> Entity | None:
    if kind == "service":
        name = names.word((2, 3), 5)
        return Entity(kind, name, name.lower(), rng.choice((name, f"the {name} service")))
    if kind == "team":
        name = names.word((2, 3), 5)
        return Entity(kind, f"{name} team", name.lower(), f"the {name} team")
    if kind == "office":
        name = names.word((2, 2), 5)
        return Entity(kind, f"{name} office", name.lower(), f"the {name} office")
    if kind == "product":
        name = names.word((2, 3), 5)
        return Entity(kind, name, name.lower(), name)
    if kind == "person":
        name = names.person()
        return Entity(kind, name, name.lower().replace(" ", "-"), name)
    free = [t for t in POLICY_TOPICS if t not in taken]
    if not free:
        return None
    topic = free[0]
    return Entity(kind, f"{topic} policy", topic.replace("-", ""), f"the {topic} policy")
