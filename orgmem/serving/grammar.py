"""Grammars for constrained decoding (structured output, forced tool calls) through xgrammar.

Why xgrammar: of the libraries measured in the batched engine (xgrammar 0.2.9, llguidance 1.9.1),
it computed the next-token mask fastest on the default base (numbers and command:
``benchmarks/results/grammar_choice.json``, ``docs/openai.md``). A grammar is compiled once per
(tokenizer, schema) and cached; each request gets its own matcher, advanced on the engine thread.

JSON is generated without free whitespace (``any_whitespace=False``: ``", "`` and ``": "``
separators), so a model cannot spend its tokens on blanks between values. xgrammar 0.2.9's JSON
strings admit raw control characters (U+0000-U+001F but newline), which strict JSON parsers
(Python's ``json``, JavaScript's ``JSON.parse``) refuse; tokens holding any such byte are masked
out whenever the grammar allows some other token (the tool-call framing's newlines still pass).
It also lets a byte-level vocabulary spell invalid UTF-8 (a lead byte without its continuation),
which decodes to U+FFFD and breaks ``maxLength``; ``Utf8Table`` keeps each reply valid UTF-8.

Vocabulary width: a base's logits may be wider than its tokenizer (padded embedding rows); the
matcher is built for the model's width and ids without a string are never allowed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from orgmem.errors import OrgmemError

CACHE_SIZE = 64  # compiled grammars kept per tokenizer (a schema is a few KB compiled)
Utf8State = tuple[int, int, int]  # (continuation bytes still due, lowest and highest next byte)
_BOUNDARY: Utf8State = (0, 0, 0)


class GrammarError(OrgmemError):
    """A schema the grammar library cannot compile (the API answers 400 naming the parameter)."""


@dataclass(frozen=True)
class GrammarSpec:
    """What the reply must be: ``kind`` json_object | json_schema | tool_call.

    ``tool_call``: ``prefix`` + one JSON value following ``schema`` + ``suffix`` (the tool-call
    framing of ``orgmem.serving.toolcalls``)."""

    kind: str
    schema: str = ""  # canonical JSON text of the schema (cache key)
    strict: bool = True
    prefix: str = ""
    suffix: str = ""

    @staticmethod
    def json_object() -> GrammarSpec:
        return GrammarSpec("json_object", json.dumps({"type": "object"}), strict=False)

    @staticmethod
    def json_schema(schema: dict[str, Any], strict: bool = True) -> GrammarSpec:
        return GrammarSpec("json_schema", json.dumps(schema), strict=strict)

    @staticmethod
    def framed(schema: dict[str, Any], prefix: str, suffix: str) -> GrammarSpec:
        return GrammarSpec("tool_call", json.dumps(schema), True, prefix, suffix)


class GrammarConstraint:
    """``TokenConstraint`` over one xgrammar matcher (one request, engine thread only)."""

    def __init__(self, compiled, vocab_size: int, clean: Tensor, utf8: Utf8Table) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self.vocab_size = vocab_size
        self.clean = clean  # tokens without control bytes (see the module doc)
        self.utf8 = utf8
        self.utf8_state = _BOUNDARY
        self.matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.rejected: int | None = None  # a token the grammar refused (a bug if ever set)

    def allowed(self, vocab_size: int) -> Tensor | None:
        self._xgr.reset_token_bitmask(self._bitmask)
        self.matcher.fill_next_token_bitmask(self._bitmask)
        packed = self._bitmask[0].numpy().view(np.uint8)
        bits = torch.from_numpy(np.unpackbits(packed, bitorder="little").view(np.bool_))[:self.vocab_size]
        for rule in (self.utf8.valid(self.utf8_state), self.clean):
            narrowed = bits & rule
            if bool(narrowed.any()):  # never narrow to nothing: the grammar's own mask then
                bits = narrowed
        if bits.numel() >= vocab_size:
            return bits[:vocab_size]
        return torch.cat([bits, torch.zeros(vocab_size - bits.numel(), dtype=torch.bool)])

    def advance(self, token: int) -> None:
        if self.rejected is None and not self.matcher.accept_token(int(token)):
            self.rejected = int(token)  # ends the row rather than the engine (see ``finished``)
        self.utf8_state = self.utf8.after(self.utf8_state, int(token))

    @property
    def finished(self) -> bool:
        return self.rejected is not None or bool(self.matcher.is_terminated())


class GrammarCompiler:
    """Compiles ``GrammarSpec``s for one tokenizer; thread-safe, with an LRU of compiled grammars."""

    def __init__(self, tokenizer, vocab_size: int, stop_ids: list[int]) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self.vocab_size = vocab_size
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                  stop_token_ids=sorted(stop_ids))
        self._compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.clean = _without_control_bytes(info.decoded_vocab, vocab_size)
        self.utf8 = Utf8Table(info.decoded_vocab, vocab_size)
        self._cache: OrderedDict[GrammarSpec, Any] = OrderedDict()
        self._lock = threading.Lock()

    def constraint(self, spec: GrammarSpec) -> GrammarConstraint:
        """A fresh matcher for ``spec`` (compiled on first use)."""
        return GrammarConstraint(self.compiled(spec), self.vocab_size, self.clean, self.utf8)

    def compiled(self, spec: GrammarSpec):
        with self._lock:
            hit = self._cache.get(spec)
            if hit is not None:
                self._cache.move_to_end(spec)
                return hit
        compiled = self._compile(spec)
        with self._lock:
            self._cache[spec] = compiled
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return compiled

    def _compile(self, spec: GrammarSpec):
        xgr = self._xgr
        try:
            grammar = xgr.Grammar.from_json_schema(spec.schema, any_whitespace=False, strict_mode=spec.strict)
            if spec.prefix or spec.suffix:
                grammar = xgr.Grammar.concat(_literal(xgr, spec.prefix), grammar, _literal(xgr, spec.suffix))
            return self._compiler.compile_grammar(grammar)
        except Exception as exc:  # xgrammar raises RuntimeError / InvalidJSONError with its reason
            raise GrammarError(f"the JSON schema cannot be used for constrained decoding: {exc}") from None


class Utf8Table:
    """Per UTF-8 decoder state: which tokens continue the reply as valid UTF-8, and the state after.

    Rows are computed on first need (the boundary state at once; a mid-character state when a
    reply first stops inside a character) and kept: a handful of states per tokenizer."""

    def __init__(self, decoded_vocab: list[bytes], vocab_size: int) -> None:
        self.pieces = list(decoded_vocab[:vocab_size]) + [b""] * max(0, vocab_size - len(decoded_vocab))
        self._rows: dict[Utf8State, tuple[Tensor, list[Utf8State | None]]] = {}
        self._lock = threading.Lock()
        self._row(_BOUNDARY)

    def valid(self, state: Utf8State) -> Tensor:
        return self._row(state)[0]

    def after(self, state: Utf8State, token: int) -> Utf8State:
        nxt = self._row(state)[1][token] if 0 <= token < len(self.pieces) else None
        return nxt if nxt is not None else _BOUNDARY

    def _row(self, state: Utf8State) -> tuple[Tensor, list[Utf8State | None]]:
        row = self._rows.get(state)
        if row is None:
            nexts = [_walk(state, piece) for piece in self.pieces]
            row = (torch.tensor([n is not None for n in nexts], dtype=torch.bool), nexts)
            with self._lock:
                self._rows[state] = row
        return row


_LEADS: dict[int, Utf8State] = {0xE0: (2, 0xA0, 0xBF), 0xED: (2, 0x80, 0x9F), 0xF0: (3, 0x90, 0xBF),
                                0xF4: (3, 0x80, 0x8F)}


def _walk(state: Utf8State, piece: bytes) -> Utf8State | None:
    """The decoder state after ``piece`` from ``state``; None if the bytes are not valid UTF-8 there."""
    due, lo, hi = state
    for b in piece:
        if due:
            if not lo <= b <= hi:
                return None
            due, lo, hi = (due - 1, 0x80, 0xBF) if due > 1 else _BOUNDARY
        elif b < 0x80:
            continue
        elif 0xC2 <= b <= 0xDF:
            due, lo, hi = 1, 0x80, 0xBF
        elif b in _LEADS:
            due, lo, hi = _LEADS[b]
        elif 0xE1 <= b <= 0xEF:
            due, lo, hi = 2, 0x80, 0xBF
        elif 0xF1 <= b <= 0xF3:
            due, lo, hi = 3, 0x80, 0xBF
        else:
            return None
    return due, lo, hi


def _without_control_bytes(decoded_vocab: list[bytes], vocab_size: int) -> Tensor:
    clean = torch.ones(vocab_size, dtype=torch.bool)
    for i, piece in enumerate(decoded_vocab[:vocab_size]):
        if any(b < 0x20 for b in piece):
            clean[i] = False
    return clean


def _literal(xgr, text: str):
    return xgr.Grammar.from_ebnf(f"root ::= {json.dumps(text)}")


_compilers: dict[tuple[int, int], GrammarCompiler] = {}
_compilers_lock = threading.Lock()


def compiler_for(tokenizer, vocab_size: int, stop_ids: frozenset[int] | set[int]) -> GrammarCompiler:
    """The process's compiler for this tokenizer (building its token table takes ~0.2 s once)."""
    key = (id(tokenizer), vocab_size)
    with _compilers_lock:
        found = _compilers.get(key)
        if found is None:
            found = _compilers[key] = GrammarCompiler(tokenizer, vocab_size, sorted(stop_ids))
        return found
