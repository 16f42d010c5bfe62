"""Which process holds a job's lease, and proof that a holder on this machine is gone.

A lease expires on its own (``lease_seconds``), which is the only way to learn that a holder on
another machine died. On the holder's own machine death can be proved at once, so a killed
``--inline`` run need not lock its org until its lease runs out. The lease therefore records the
holder's host name, pid and an identity token: the kernel's boot id, the pid namespace and the
process's start time (``/proc`` on Linux). A holder is *gone* when it was recorded on this host,
in this boot and pid namespace, and no process has its pid, or that process is a zombie, or a
different process reuses the pid (another start time). The boot id and namespace keep a
container that shares the host name (host networking) from reading another namespace's pids.
Everything else counts as alive: orgmem never frees a lease it cannot prove abandoned.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from orgmem.db.models import Job

_PROC = Path("/proc")


@dataclass(frozen=True)
class Holder:
    """The process that holds a lease. ``process``: ``boot/pidns/start`` token, None without /proc."""

    host: str
    pid: int
    process: str | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _namespace() -> str | None:
    """``<boot id>/<pid namespace>`` of this process, or None where /proc does not tell."""
    boot = _read(_PROC / "sys/kernel/random/boot_id")
    try:
        pidns = os.readlink(_PROC / "self/ns/pid")
    except OSError:
        return None
    if not boot:
        return None
    return f"{boot}/{pidns.removeprefix('pid:[').removesuffix(']')}"


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from /proc, None if unreadable."""
    text = _read(_PROC / str(pid) / "stat")
    if not text or ")" not in text:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may contain spaces and parentheses
    return (fields[0], fields[19]) if len(fields) > 19 else None


def this_process() -> Holder:
    """The holder record of the calling process (read on each claim: forks get their own)."""
    pid, namespace = os.getpid(), _namespace()
    stat = _stat(pid) if namespace is not None else None
    token = f"{namespace}/{stat[1]}" if namespace is not None and stat is not None else None
    return Holder(socket.gethostname(), pid, token)


def is_gone(holder: Holder) -> bool:
    """True only when the holder provably no longer runs (see module docstring)."""
    if holder.pid <= 0 or holder.host != socket.gethostname():
        return False  # pid 0 / -1 would address process groups; another host cannot be checked
    here = _namespace()
    started = None
    if holder.process is not None:
        namespace, _, started = holder.process.rpartition("/")
        if here is None or namespace != here:
            return False  # another boot or pid namespace: its pids mean nothing here
    elif here is not None:
        return False  # recorded without /proc, checked with it: not the same kind of machine
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    if here is None:
        return False
    stat = _stat(holder.pid)
    if stat is None:
        return True  # exited between the two looks
    state, start = stat
    return state in ("Z", "X") or (started is not None and start != started)


def holder_of(job: Job) -> Holder | None:
    """The recorded holder of ``job``'s lease (None: no lease, or written before holders were)."""
    if job.lease_owner is None or job.lease_host is None or job.lease_pid is None:
        return None
    return Holder(job.lease_host, job.lease_pid, job.lease_process)


def stamp(job: Job, owner: str, holder: Holder) -> None:
    """Write the lease's owner and holder fields (the caller sets the expiry)."""
    job.lease_owner = owner
    job.lease_host, job.lease_pid, job.lease_process = holder.host, holder.pid, holder.process


def clear(job: Job) -> None:
    """Drop the lease: no owner, no holder, no expiry."""
    job.lease_owner = job.lease_host = job.lease_pid = job.lease_process = None
    job.lease_expires_at = None


def lease_text(job: Job) -> str:
    """``worker W, pid P on H, started S, lease until E``: who holds ``job`` and for how long."""
    holder = holder_of(job)
    parts = [f"worker {job.lease_owner}"] if job.lease_owner else []
    if holder is not None:
        parts.append(holder.describe())
    if job.started_at is not None:
        parts.append(f"started {job.started_at.isoformat(timespec='seconds')}")
    if job.lease_expires_at is not None:
        parts.append(f"lease until {job.lease_expires_at.isoformat(timespec='seconds')}")
    return ", ".join(parts) or "no lease"
