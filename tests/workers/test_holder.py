"""``orgmem.jobs.holder``: a lease holder counts as gone only when that is proved on this machine."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import replace

import pytest

from orgmem.jobs import Holder, is_gone, this_process
from tests.workers.procs import exited_pid

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")


def test_this_process_is_alive_and_identified():
    me = this_process()
    assert me.host == socket.gethostname() and me.pid == os.getpid()
    assert me.process is not None and me.process.count("/") == 2, "boot id / pid namespace / start"
    assert not is_gone(me)


def test_an_exited_process_is_gone():
    me = this_process()
    assert is_gone(replace(me, pid=exited_pid()))


def test_a_reused_pid_is_gone():
    me = this_process()
    namespace = me.process.rsplit("/", 1)[0]
    assert is_gone(replace(me, process=f"{namespace}/1")), "same pid, another start time"


def test_a_zombie_is_gone():
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{child.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)
        me = this_process()
        assert is_gone(Holder(me.host, child.pid, f"{me.process.rsplit('/', 1)[0]}/0"))
    finally:
        child.wait()


def test_what_cannot_be_checked_counts_as_alive():
    me, dead = this_process(), exited_pid()
    assert not is_gone(replace(me, host="db-7", pid=dead)), "another machine"
    assert not is_gone(replace(me, pid=dead, process=f"other-boot/4026531836/{dead}")), "another boot"
    boot = me.process.split("/", 1)[0]
    assert not is_gone(replace(me, pid=dead, process=f"{boot}/1/5")), "another pid namespace"
    assert not is_gone(replace(me, pid=dead, process=None)), "recorded without /proc"
    assert not is_gone(replace(me, pid=0)) and not is_gone(replace(me, pid=-1)), "process groups"
