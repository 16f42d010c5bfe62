"""Torch work off the engine thread runs single-threaded, so it leaves no OpenMP pool behind."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import torch

from orgmem.serving.threads import single_threaded_torch

TASKS = Path(f"/proc/{os.getpid()}/task")


def _threads_left_by(work, *, single: bool) -> int:
    """OS threads that a helper thread's torch ``work`` leaves in the process while it is alive."""
    done, release = threading.Event(), threading.Event()
    before = _settled_thread_count()

    def helper() -> None:
        with torch.inference_mode():
            if single:
                with single_threaded_torch():
                    work()
            else:
                work()
        done.set()
        release.wait(30)

    thread = threading.Thread(target=helper)
    thread.start()
    try:
        assert done.wait(60)
        return len(list(TASKS.iterdir())) - before - 1  # minus the helper itself
    finally:
        release.set()
        thread.join()


def _settled_thread_count() -> int:
    """The process's thread count once pools of threads that ended have finished exiting."""
    count = len(list(TASKS.iterdir()))
    for _ in range(50):
        time.sleep(0.02)
        now = len(list(TASKS.iterdir()))
        if now == count:
            break
        count = now
    return count


def _matmuls() -> None:
    a = torch.randn(512, 512)
    for _ in range(4):
        a = (a @ a).clamp(-1, 1)


@pytest.mark.skipif(not TASKS.is_dir(), reason="needs /proc/<pid>/task (Linux)")
@pytest.mark.skipif(torch.get_num_threads() < 2, reason="torch runs one thread here")
def test_a_helper_thread_inside_the_block_starts_no_openmp_workers():
    assert _threads_left_by(_matmuls, single=True) == 0
    assert _threads_left_by(_matmuls, single=False) >= 1  # the control: without the block a pool appears


def test_the_thread_count_is_restored_and_other_threads_keep_theirs():
    main = torch.get_num_threads()
    inside, leave = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def helper() -> None:
        seen["before"] = torch.get_num_threads()
        with single_threaded_torch():
            seen["inside"] = torch.get_num_threads()
            inside.set()
            leave.wait(30)
        seen["after"] = torch.get_num_threads()

    thread = threading.Thread(target=helper)
    thread.start()
    assert inside.wait(30)
    assert torch.get_num_threads() == main  # this thread's count is its own
    leave.set()
    thread.join()
    assert seen["inside"] == 1
    assert seen["after"] == seen["before"]
