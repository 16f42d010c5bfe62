"""Grammars for constrained decoding (structured output, forced tool calls) through xgrammar.

Why xgrammar: of the libraries measured in the batched engine (xgrammar 0.2.9, llguidance 1.9.1),
it computed the next-token mask fastest on the default base (numbers and command:
``benchmarks/results/grammar_choice.json``, ``docs/openai.md``). A grammar is compiled once per
(tokenizer, schema) and cached; each request gets its own matcher, advanced on the engine thread.

JSON is generated without free whitespace (``any_whitespace=False``: ``", "`` and ``": "``
separators), so a model cannot spend its tokens on blanks between values.

Vocabulary width: a base's logits may be wider than its tokenizer (padded embedding rows); the
matcher is built for the model's width and ids without a string are never allowed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from orgmem.errors import OrgmemError

CACHE_SIZE = 64  # compiled grammars kept per tokenizer (a schema is a few KB compiled)
_BIT_SHIFTS = torch.arange(32, dtype=torch.int32)


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

    def __init__(self, compiled, vocab_size: int) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self.vocab_size = vocab_size
        self.matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.rejected: int | None = None  # a token the grammar refused (a bug if ever set)

    def allowed(self, vocab_size: int) -> Tensor | None:
        self._xgr.reset_token_bitmask(self._bitmask)
        self.matcher.fill_next_token_bitmask(self._bitmask)
        bits = ((self._bitmask[0][:, None] >> _BIT_SHIFTS) & 1).bool().flatten()
        if bits.numel() >= vocab_size:
            return bits[:vocab_size]
        return torch.cat([bits, torch.zeros(vocab_size - bits.numel(), dtype=torch.bool)])

    def advance(self, token: int) -> None:
        if self.rejected is None and not self.matcher.accept_token(int(token)):
            self.rejected = int(token)  # ends the row rather than the engine (see ``finished``)

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
        self._cache: OrderedDict[GrammarSpec, Any] = OrderedDict()
        self._lock = threading.Lock()

    def constraint(self, spec: GrammarSpec) -> GrammarConstraint:
        """A fresh matcher for ``spec`` (compiled on first use)."""
        return GrammarConstraint(self.compiled(spec), self.vocab_size)

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
