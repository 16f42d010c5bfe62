"""Make the engine's scheduling part of a test's setup instead of a race it hopes to win.

Serving tests assert things like "these requests shared one batch" or "this stream was still
decoding when the pin landed". Left to the clock, each holds only if the machine is slow or fast
enough. These helpers fix the order of events through the engine's public seams (``submit``,
``GenerationRequest.on_event``, the ``on_step`` callback), so the assertion follows from the code
under test; every wait has a generous deadline that only guards against a hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from orgmem.serving.engine import Failed, Finished, GenerationEngine, GenerationRequest
from orgmem.serving.sampling import SamplingParams

HANG_GUARD_S = 60.0


@contextmanager
def held_admission(engine: GenerationEngine, base, until_waiting: int) -> Iterator[dict[str, bool]]:
    """Keep the engine from admitting anything until ``until_waiting`` requests are queued.

    A one-token request goes first; its first event, called on the engine thread, waits there for
    the queue to fill, so the engine takes all of them at its next step. The yielded dict's
    ``timed_out`` says whether the hang guard, not the queue, ended the hold.
    """
    outcome = {"held": False, "timed_out": False}

    def hold(event) -> None:
        if outcome["held"]:
            return
        outcome["held"] = True
        deadline = time.monotonic() + HANG_GUARD_S
        while engine.waiting < until_waiting:
            if time.monotonic() > deadline:
                outcome["timed_out"] = True
                return
            time.sleep(0.005)

    ids = base.tokenizer("hold", add_special_tokens=False)["input_ids"]
    engine.submit(GenerationRequest(prompt_ids=ids, params=SamplingParams(max_tokens=1, temperature=0),
                                    memory=None, on_event=hold, request_id="test-hold"))
    yield outcome


class StreamPause:
    """While armed, the first request submitted (the stream) decodes only alongside another one.

    Installed on the engine's ``submit`` and ``on_step`` (both public): after each forward once the
    stream is decoding, while it is the only request in flight and ``release()`` has not been
    called, the engine thread waits for another request to arrive. The stream therefore cannot finish before a
    request sent during it has been answered, however fast the machine decodes.
    """

    def __init__(self, engine: GenerationEngine, monkeypatch) -> None:
        self.engine = engine
        self.stream_done = False
        self.timed_out = False
        self._stream_id: int | None = None
        self._others = 0
        self._released = False
        self._cond = threading.Condition()
        monkeypatch.setattr(engine, "submit", self._submit(engine.submit))
        monkeypatch.setattr(engine, "on_step", self._on_step(engine.on_step))

    def release(self) -> None:
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def _submit(self, submit):
        def wrapped(req: GenerationRequest) -> None:
            with self._cond:
                first = self._stream_id is None
                if first:
                    self._stream_id = id(req)
                else:
                    self._others += 1
                self._cond.notify_all()
            req.on_event = self._track(req.on_event, first)
            submit(req)
        return wrapped

    def _track(self, on_event, is_stream: bool):
        def wrapped(event) -> None:
            if isinstance(event, Finished | Failed):
                with self._cond:
                    if is_stream:
                        self.stream_done = True
                    else:
                        self._others -= 1
            on_event(event)
        return wrapped

    def _on_step(self, on_step):
        def wrapped(rows: int, seconds: float) -> None:
            if on_step is not None:
                on_step(rows, seconds)
            with self._cond:
                if self._stream_id is None or self.stream_done or not self.engine.active:
                    return  # not yet, or no longer, decoding (its prefill has not added its row yet)
                ok = self._cond.wait_for(lambda: self._others > 0 or self._released, HANG_GUARD_S)
                self.timed_out |= not ok
        return wrapped
