"""Fault injection for bench/faults.py: a run stops its own process (SIGSTOP) at a named
point, so the bench can kill it (kill -9) exactly there. Off unless IDR_FAULT_STOP_AT
names a point; points are ``stage:<stage>`` (a stage's start), ``sql:<file.statement>``
(before a named statement of a stage), ``publish:half`` (publish's change set half
written, app/platforms), ``publish:commit`` (all written, the fence passed, before the
commit; on Spark before the table swaps) and ``spark:replace`` (Spark's publish, after
its first table swap)."""

from __future__ import annotations

import os
import signal
import sys

_armed: str | None = None


def arm(point: str | None) -> None:
    global _armed
    _armed = point or None


def armed(point: str) -> bool:
    """Whether a run will stop at ``point`` (where reaching it needs work sent first)."""
    return _armed is not None and point == _armed


def reached(point: str) -> None:
    if _armed is not None and point == _armed:
        print(f"idr-fault: stopped at {point} (pid {os.getpid()})", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
