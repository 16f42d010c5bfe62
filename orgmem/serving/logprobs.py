"""Token ids as OpenAI's logprobs name them: the token's text and its exact bytes.

Why not ``decode([id])``: a byte-level BPE token can be part of a UTF-8 character, which decodes to
U+FFFD; OpenAI gives the token's bytes (``bytes``) so a client can join them. Byte-level tokens
(GPT-2/SmolLM2/Llama-3 style) map back to bytes through the byte-to-symbol table; SentencePiece
byte tokens (``<0xE2>``) are their byte. A token that is not valid UTF-8 alone is named with
backslash escapes (``\\xe2\\x80``), the bytes being exact either way.
"""

from __future__ import annotations

import re
from functools import lru_cache

_SP_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_SP_SPACE = "\u2581"
LOGPROB_FLOOR = -9999.0  # JSON has no -Infinity (vLLM reports the same floor)


@lru_cache(maxsize=1)
def _byte_symbols() -> dict[str, int]:
    """GPT-2's byte-level alphabet, symbol -> byte (``bytes_to_unicode`` inverted)."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)}
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[chr(b)] = b
        else:
            symbols[chr(256 + extra)] = b
            extra += 1
    return symbols


def _is_byte_level(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    return type(decoder).__name__ == "ByteLevel" or "ByteLevel" in repr(decoder)


class TokenTexts:
    """``texts(token_id) -> (text, bytes)``, cached per id (only reported tokens are looked up)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.byte_level = _is_byte_level(tokenizer)
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def __call__(self, token_id: int) -> tuple[str, list[int]]:
        hit = self._cache.get(token_id)
        if hit is None:
            hit = self._cache[token_id] = self._lookup(token_id)
        return hit

    def text(self, token_id: int) -> str:
        return self(token_id)[0]

    def _lookup(self, token_id: int) -> tuple[str, list[int]]:
        in_tokenizer = 0 <= token_id < len(self.tokenizer)
        piece = self.tokenizer.convert_ids_to_tokens(int(token_id)) if in_tokenizer else None
        if piece is None:
            return "", []
        raw = self._bytes(piece)
        return raw.decode("utf-8", errors="backslashreplace"), list(raw)

    def _bytes(self, piece: str) -> bytes:
        if self.byte_level:
            symbols = _byte_symbols()
            if all(ch in symbols for ch in piece):
                return bytes(symbols[ch] for ch in piece)
            return piece.encode()
        byte = _SP_BYTE.match(piece)
        if byte:
            return bytes([int(byte.group(1), 16)])
        return piece.replace(_SP_SPACE, " ").encode()


def floor(logprob: float) -> float:
    return max(float(logprob), LOGPROB_FLOOR)
