"""Token ids -> text deltas for streaming, with OpenAI ``stop`` sequences.

Two things make this more than ``decode`` per token: byte-level tokens can end in the middle of
a UTF-8 character (hold the text until it is complete), and a stop sequence may arrive split
over several tokens (hold back any tail that could still become a stop sequence, and never send
the stop sequence itself). Decoding uses a sliding window (as text-generation-inference does),
so the cost per token does not grow with the reply's length.
"""

from __future__ import annotations


class TextStream:
    """Feed token ids with ``push``; it returns the text that is now safe to send."""

    def __init__(self, tokenizer, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(stop)
        self.ids: list[int] = []
        self.text = ""  # everything decoded so far (complete characters only)
        self.sent = 0  # characters of ``text`` already released
        self.stopped = False
        self._prefix_offset = 0
        self._read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _new_text(self) -> str:
        prefix = self._decode(self.ids[self._prefix_offset:self._read_offset])
        full = self._decode(self.ids[self._prefix_offset:])
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self._prefix_offset, self._read_offset = self._read_offset, len(self.ids)
            return full[len(prefix):]
        return ""

    def push(self, token_id: int) -> str:
        """Add one generated token; returns the newly releasable text ('' if none yet)."""
        if self.stopped:
            return ""
        self.ids.append(int(token_id))
        self.text += self._new_text()
        hit = self._find_stop()
        if hit is not None:
            self.stopped = True
            self.text = self.text[:hit]
            return self._release(hit)
        return self._release(len(self.text) - self._held_back())

    def finish(self) -> str:
        """Generation ended without a stop sequence: release whatever was held back."""
        if self.stopped:
            return ""
        return self._release(len(self.text))

    def _release(self, end: int) -> str:
        end = max(end, self.sent)
        out, self.sent = self.text[self.sent:end], end
        return out

    def _find_stop(self) -> int | None:
        """Index of the earliest stop sequence in the unreleased text, if any."""
        best = None
        for s in self.stop:
            i = self.text.find(s, max(0, self.sent - len(s) + 1))
            if i != -1 and (best is None or i < best):
                best = i
        return best

    def _held_back(self) -> int:
        """Length of the longest tail of ``text`` that is a proper prefix of a stop sequence."""
        longest = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.text)), longest, -1):
                if self.text.endswith(s[:n]):
                    longest = n
                    break
        return longest
