"""Keep torch's CPU thread pools to the engine's own: other threads run torch single-threaded.

Why: torch's CPU kernels run on GNU OpenMP (libgomp), which gives every thread that starts a
parallel region its own pool of worker threads, kept until that thread exits. Once the process
holds more OpenMP threads than CPUs, libgomp lets idle workers spin only ~100 times before they
sleep (its GOMP_SPINCOUNT rule), so each of the ~200 parallel kernels of a decode step pays a
futex wake-up. Measured here (SmolLM2-135M, bf16, 2 cores, 2 threads): a decode step took
35-44 ms on the engine's thread alone and 63-69 ms while one other thread that had run one
2-thread matmul was alive; with that thread set to 1 thread first, 36-48 ms. (Presumably also
why a decode on a secondary thread was 1.4-1.7x slower: the main thread's pool from loading the
base counted.) So threads that build memories for requests do so with one torch thread
(``single_threaded_torch``), and the engine sets its own count when its loop starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Within the block, torch ops of the calling thread run on that thread alone (no OpenMP pool).

    ``torch.set_num_threads`` sets the calling thread's OpenMP count (and the default that
    threads pick up at their first torch op); the previous count is restored on exit, which
    starts no pool by itself: a pool is only made by a parallel region with more than one thread.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
