"""Probes: the questions an evaluation asks a model about one organisation fact.

A probe exists only for measuring; the engine never sees it. It carries the same fact twice —
as a cloze prefix the model should complete (memorisation) and as a question asked through the
chat template (knowledge) — so the two kinds of recall can be told apart. ``night`` and
``replaces`` let one probe file describe a fact's history: a night-2 probe that ``replaces`` old
values is an *update*, and the night-1 probe of the same ``fact`` stops being asked after night 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from orgmem.errors import ConflictError, OrgmemError

PROBE_KINDS = ("fact", "auto")
NO_SPACE_AFTER = tuple("\"'([{/`@#\n\t ")


@dataclass(frozen=True)
class Probe:
    """One fact to measure. ``question`` may be empty (auto-probes have no question form)."""

    fact: str
    cloze: str
    answer: str
    question: str = ""
    aliases: tuple[str, ...] = ()
    night: int = 1
    replaces: tuple[str, ...] = ()
    kind: str = "fact"
    source: str = ""

    @property
    def key(self) -> str:
        """Unique id of the probe within a set: the fact and the night it was (re)stated."""
        return f"{self.fact}@{self.night}"

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every string that counts as the right answer."""
        return (self.answer, *self.aliases)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        out["replaces"] = list(self.replaces)
        return out


class ProbeError(OrgmemError):
    """A probe definition is malformed; the message names the file/line and the field."""


def probe_from_dict(raw: dict, where: str = "probe") -> Probe:
    """Validate one probe record (from JSONL or code); errors name ``where`` and the field."""
    if not isinstance(raw, dict):
        raise ProbeError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    data = dict(raw)
    if "fact" not in data and "id" in data:  # the sample org's probes use "id"
        data["fact"] = data.pop("id")
    for name in ("fact", "cloze", "answer"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ProbeError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")
    known = {f for f in Probe.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProbeError(f"{where}: unknown field(s) {unknown}; known fields are {sorted(known)}")
    night = data.get("night", 1)
    if not isinstance(night, int) or isinstance(night, bool) or night < 1:
        raise ProbeError(f"{where}: field 'night' must be an integer >= 1, got {night!r}")
    kind = data.get("kind", "fact")
    if kind not in PROBE_KINDS:
        raise ProbeError(f"{where}: field 'kind' must be one of {PROBE_KINDS}, got {kind!r}")
    for name in ("aliases", "replaces"):
        values = data.get(name, [])
        if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values):
            raise ProbeError(f"{where}: field {name!r} must be a list of non-empty strings, got {values!r}")
        data[name] = tuple(values)
    return Probe(**data)


def check_unique(probes: Sequence[Probe], where: str = "probes") -> None:
    """Refuse two probes with the same ``fact@night`` key (the second would hide the first)."""
    seen: set[str] = set()
    for probe in probes:
        if probe.key in seen:
            raise ConflictError(f"{where}: duplicate probe {probe.key!r} "
                                f"(fact {probe.fact!r}, night {probe.night})")
        seen.add(probe.key)


def load_probes(path: str | Path) -> list[Probe]:
    """Read a JSONL probe file (blank lines and ``#`` comments allowed)."""
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"probe file not found: {path}")
    probes: list[Probe] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProbeError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        probes.append(probe_from_dict(raw, where))
    if not probes:
        raise ProbeError(f"probe file has no probes: {path}")
    check_unique(probes, str(path))
    return probes


def save_probes(probes: Iterable[Probe], path: str | Path) -> None:
    """Write probes as JSONL (round-trips through :func:`load_probes`)."""
    lines = [json.dumps(p.to_dict(), ensure_ascii=False) for p in probes]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def active_probes(probes: Sequence[Probe], night: int | None = None) -> list[Probe]:
    """The probes that are true after ``night``: per fact, its latest statement at or before it.

    ``night=None`` means "after the last night in the set". Later-night probes are dropped (the
    model has not been told yet) and superseded earlier ones are dropped (no longer true).
    """
    limit = max((p.night for p in probes), default=1) if night is None else night
    latest: dict[str, Probe] = {}
    for probe in probes:
        if probe.night > limit:
            continue
        current = latest.get(probe.fact)
        if current is None or probe.night > current.night:
            latest[probe.fact] = probe
    return [p for p in probes if latest.get(p.fact) is p]


def contains_answer(text: str, accepted: Iterable[str]) -> bool:
    """Whether ``text`` states any accepted answer: case- and whitespace-insensitive, and as a
    whole token, so the answer ``7415`` is not found inside ``17415`` nor ``Oja`` inside ``Ojama``."""
    norm = _normalise(text)
    for answer in accepted:
        needle = _normalise(answer)
        if needle and re.search(rf"(?<![0-9a-z]){re.escape(needle)}(?![0-9a-z])", norm):
            return True
    return False


def join_cloze(cloze: str, answer: str) -> str:
    """The text a model that knows the fact would write: prefix, a space unless the prefix ends
    in whitespace or an opening quote/bracket, then the answer."""
    return cloze + answer if cloze.endswith(NO_SPACE_AFTER) else f"{cloze} {answer}"


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


__all__ = [
    "Probe",
    "ProbeError",
    "active_probes",
    "check_unique",
    "contains_answer",
    "join_cloze",
    "load_probes",
    "probe_from_dict",
    "save_probes",
]
