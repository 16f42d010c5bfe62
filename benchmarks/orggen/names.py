"""Invented names from seeded syllable combinations (no fixed list of real words to tune on)."""

from __future__ import annotations

import random

_ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "qu",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "vr",
    "z",
    "th",
    "sk",
)
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ei", "ou", "y")
_CODAS = ("", "", "", "", "", "n", "r", "l", "s", "x", "m", "nd")


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


class NameMaker:
    """Unique pronounceable names; every name (any kind) is used once so values never collide."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: tuple[int, int] = (2, 3), min_len: int = 5) -> str:
        for _ in range(1000):
            n = self.rng.randint(*syllables)
            name = "".join(_syllable(self.rng) for _ in range(n))
            if len(name) >= min_len and len(name) <= 10 and name not in self.used:
                self.used.add(name)
                return name.capitalize()
        raise RuntimeError("name space exhausted")

    def person(self) -> str:
        return f"{self.word((2, 2), 4)} {self.word((2, 3), 6)}"

    def city(self) -> str:
        return self.word((2, 2), 5) + self.rng.choice(("", "", "holm", "by", "ford", "vik", "stad"))

    def slug(self) -> str:
        return self.word((2, 2), 4).lower()
