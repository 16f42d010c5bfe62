"""Where a new fact is written: the code file, docs page, Slack message or feed item, and its line.

Each function returns the fact's line (``{V}`` marks the value), the frame key and the value form.
"""

from __future__ import annotations

import random

from benchmarks.orggen.catalog import Attr, Entity
from benchmarks.orggen.frames import BULLET, CHAT, NEWS_GENERIC, PROSE, cap, fill, pick

CODE_FORMATS = (("py", 3), ("yaml", 2), ("toml", 1), ("go", 1), ("ts", 1))
DOC_STYLES = ("formal", "chatty", "terse", "tabular")
_GROUPS = {
    "formal": (("prose", 6), ("table", 3), ("list", 1)),
    "chatty": (("prose", 8), ("list", 2)),
    "terse": (("list", 6), ("table", 2), ("dl", 2)),
    "tabular": (("table", 6), ("prose", 2), ("dl", 2)),
}
FILLER = (
    "This page is kept by the people who run it; edit it when something changes.",
    "Ask in the team channel before you change anything described here.",
    "Most questions are answered in the sections below.",
    "Keep this page short and link out instead of copying.",
    "Nothing here is secret, but please do not paste it into public tickets.",
    "We look over this document at the end of every quarter.",
    "If something looks wrong, it probably is, so tell us.",
    "Older notes live in the wiki archive.",
    "New joiners should read this before their first on-call week.",
    "Thanks to everyone who helped clean this up.",
    "Decisions are recorded in the planning notes, not here.",
    "When in doubt, page a human rather than guess.",
)
LEADS = (
    "Quick summary first.",
    "To be clear:",
    "As agreed at the last review,",
    "Good to know:",
    "One thing people often miss:",
    "In short,",
)
HEADINGS = {
    "prose": ("Overview", "How it works", "Key facts", "What you need to know", "Details"),
    "list": ("At a glance", "Quick reference", "Cheat sheet", "Facts"),
    "table": ("Reference", "Settings", "Numbers", "Current values"),
    "dl": ("Glossary", "Definitions", "Who and what"),
}
_COMMON_STARTS = {"The", "For", "Note", "Currently,", "We", "If", "Remember"}
CHAT_FILLER = (
    "morning all",
    "anyone else seeing slow builds today?",
    "lunch in ten?",
    "thanks!",
    "will check after standup",
    "nice work on the release, everyone",
    "brb, laptop update",
    "who has the keys to the small meeting room?",
    "ok, makes sense",
    "+1 to that",
    "reminder: retro is moved to the afternoon",
    "can someone review my pull request?",
)


def _camel(s: str) -> str:
    return "".join(p.capitalize() for p in s.replace("-", "_").split("_"))


def _sentence(rng: random.Random, attr: Attr, entity: Entity, org: str) -> tuple[str, str]:
    key, frame = pick(rng, PROSE)
    return key, fill(frame, rng, attr, entity, org)


def code_line(rng: random.Random, fmt: str, attr: Attr, entity: Entity, org: str, quoted: bool):
    """(before, line, after, frame key, form) of a code fact."""
    q = '"' if quoted else ""
    comment = rng.choice(attr.comments)
    upper = f"{entity.slug.upper()}_{attr.code_key}"
    lower = upper.lower()
    variant = rng.random()
    if fmt == "py":
        if variant < 0.25:
            key, sentence = _sentence(rng, attr, entity, org)
            cls = f"{entity.name}{_camel(attr.key)}Settings"
            return (
                ["", "", f"class {cls}:"],
                f'    """{sentence}"""',
                ["", "    enabled = True", "", ""],
                f"py-docstring/{key}",
                "prose",
            )
        if variant < 0.5:
            return [f"# {cap(comment)}."], f"{upper} = {q}{{V}}{q}", [], "py-comment-above", "code"
        return [], f"{upper} = {q}{{V}}{q}  # {comment}", [], "py-inline", "code"
    if fmt == "yaml":
        if variant < 0.4:
            return [f"# {cap(comment)}"], f"{lower}: {q}{{V}}{q}", [], "yaml-comment-above", "code"
        return [], f"{lower}: {q}{{V}}{q}  # {comment}", [], "yaml-inline", "code"
    if fmt == "toml":
        return [], f"{lower} = {q}{{V}}{q}  # {comment}", [], "toml-inline", "code"
    if fmt == "go":
        name = entity.name + _camel(attr.code_key.lower())
        if variant < 0.5:
            return (
                [f"\t// {name} is the {comment}."],
                f"\t{name} = {q}{{V}}{q}",
                [],
                "go-comment-above",
                "code",
            )
        return [], f"\t{name} = {q}{{V}}{q} // {comment}", [], "go-inline", "code"
    if variant < 0.35:
        key, sentence = _sentence(rng, attr, entity, org)
        fn = f"check{entity.name}{_camel(attr.key)}"
        return (
            ["", "/**"],
            f" * {sentence}",
            [" */", f"export function {fn}(): boolean {{", "  return true;", "}", ""],
            f"ts-jsdoc/{key}",
            "prose",
        )
    return [], f"export const {upper} = {q}{{V}}{q}; // {comment}", [], "ts-inline", "code"


def code_file(rng: random.Random, entity: Entity) -> tuple[str, str, list[str], list[str]]:
    """(fmt, path, intro lines, outro lines) of a new code file about one service."""
    fmt = rng.choices([f for f, _ in CODE_FORMATS], weights=[w for _, w in CODE_FORMATS])[0]
    s, name = entity.slug, entity.name
    if fmt == "py":
        path = rng.choice((f"services/{s}/config.py", f"services/{s}/settings.py", f"lib/{s}_defaults.py"))
        intro = [
            f'"""Runtime settings of the {name} service; values are read once at start-up."""',
            "",
            "from __future__ import annotations",
            "",
            "import logging",
            "",
            "log = logging.getLogger(__name__)",
            "",
        ]
        outro = [
            "",
            "",
            "def describe() -> str:",
            f'    """One line for the {name} status page."""',
            f'    return "{s} settings loaded"',
            "",
        ]
    elif fmt == "yaml":
        path = rng.choice((f"deploy/{s}.yaml", f"deploy/values/{s}.yml", f"ops/{s}/service.yaml"))
        intro = [
            f"# Deployment values for {s}. Rendered into the chart by the release job.",
            f"service: {s}",
            "tier: backend",
            "",
        ]
        outro = ["", "labels:", f"  app: {s}", "  managed-by: release-job"]
    elif fmt == "toml":
        path = rng.choice((f"config/{s}.toml", f"services/{s}/runtime.toml"))
        intro = [f"# {name} runtime configuration", "", "[service]", f'name = "{s}"', "", "[settings]"]
        outro = ["", "[logging]", 'level = "info"']
    elif fmt == "go":
        path = rng.choice((f"internal/{s}/limits.go", f"cmd/{s}/config.go"))
        intro = [
            f"// Package {s} holds the limits the {name} service runs with.",
            f"package {s}",
            "",
            "const (",
        ]
        outro = [
            ")",
            "",
            "// Ready reports whether the settings were loaded.",
            "func Ready() bool {",
            "\treturn true",
            "}",
        ]
    else:
        path = rng.choice((f"web/src/{s}/settings.ts", f"clients/{s}/config.ts"))
        intro = [f"// Client-side settings for {name}. Keep in sync with the server.", ""]
        outro = ["", f"export const {s.upper()}_CLIENT = true;"]
    return fmt, path, intro, outro


def doc_group(rng: random.Random, style: str, fmt: str) -> str:
    groups = [(g, w) for g, w in _GROUPS[style] if g != "dl" or fmt == "html"]
    return rng.choices([g for g, _ in groups], weights=[w for _, w in groups])[0]


def doc_line(rng: random.Random, group: str, style: str, fmt: str, attr: Attr, entity: Entity, org: str):
    """(before, line, frame key) of a docs fact."""
    if group == "table":
        noun = rng.choice(attr.nouns)
        if fmt == "md":
            return [], f"| {entity.name} | {noun} | {{V}} |", "md-table"
        return [], f"<tr><td>{entity.name}</td> <td>{noun}</td> <td>{{V}}</td></tr>", "html-table"
    if group == "dl":
        noun = rng.choice(attr.nouns)
        return [f"<dt>{entity.name}</dt>"], f"<dd>{cap(noun)} of {entity.name}: {{V}}</dd>", "html-dl"
    if group == "list":
        key, frame = pick(rng, BULLET)
        line = fill(frame, rng, attr, entity, org)
        if fmt == "html":
            line = "<li>" + line[2:].replace("**", "<b>", 1).replace("**", "</b>", 1) + "</li>"
        return [], line, key
    key, sentence = _sentence(rng, attr, entity, org)
    lead = ""
    if style in ("chatty", "formal") and rng.random() < 0.3:
        lead = rng.choice(LEADS) + " "
        if lead.rstrip().endswith(",") and sentence.split()[0] in _COMMON_STARTS:
            sentence = sentence[0].lower() + sentence[1:]
    line = lead + sentence
    return [], (f"<p>{line}</p>" if fmt == "html" else line), key


def doc_file(rng: random.Random, entity: Entity) -> tuple[str, str, str, str, list[str], list[str], dict]:
    """(fmt, path, title, style, intro, outro, headings) of a new docs page about one entity."""
    fmt = rng.choice(("md", "html"))
    folder, title = {
        "service": ("runbooks", rng.choice((f"{entity.name} runbook", f"Operating {entity.name}"))),
        "team": ("teams", rng.choice((f"The {entity.name}", f"About the {entity.name}"))),
        "office": ("offices", rng.choice((f"{entity.name} guide", f"Visiting the {entity.name}"))),
        "product": ("products", rng.choice((f"{entity.name} product sheet", f"{entity.name} at a glance"))),
        "person": ("onboarding", rng.choice((f"Onboarding: {entity.name}", f"Welcome, {entity.name}"))),
        "policy": ("policies", cap(entity.name)),
    }[entity.kind]
    path = f"{folder}/{entity.slug}.{fmt}"
    style = rng.choice(DOC_STYLES)
    intro = rng.sample(FILLER, rng.randint(1, 2))
    outro = rng.sample([f for f in FILLER if f not in intro], rng.randint(0, 2))
    headings = {g: rng.choice(h) for g, h in HEADINGS.items()}
    return fmt, path, title, style, intro, outro, headings


def chat_line(rng: random.Random, attr: Attr, entity: Entity, org: str) -> tuple[str, str]:
    key, frame = pick(rng, CHAT)
    return fill(frame, rng, attr, entity, org, chat=True), f"slack-{key}"


def chat_question(rng: random.Random, attr: Attr, entity: Entity) -> str:
    noun = rng.choice(attr.nouns)
    return rng.choice(
        (
            f"does anyone know the {noun} for {entity.display}?",
            f"quick q: what's the {noun} of {entity.display} these days?",
            f"I keep forgetting — {entity.display}, {noun}?",
        )
    )


def news_line(rng: random.Random, attr: Attr, entity: Entity, org: str) -> tuple[str, str]:
    frames = tuple((f"news-own-{i}", 3, f) for i, f in enumerate(attr.news)) + NEWS_GENERIC
    key, frame = pick(rng, frames)
    line = fill(frame, rng, attr, entity, org)
    if rng.random() < 0.4:
        line = (
            rng.choice(
                (
                    f"{org} shared an update this morning.",
                    "The company confirmed the news today.",
                    "Here is the latest from the newsroom.",
                )
            )
            + " "
            + line
        )
    return line, key
