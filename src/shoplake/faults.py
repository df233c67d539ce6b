"""Named crash points, for proving that a killed run is finished or rolled back by the next one.

`SHOPLAKE_CRASH_AT=<point>[@<n>]` makes the process kill itself (SIGKILL: no cleanup, no finally) the
n-th time (default first) it passes that point; `SHOPLAKE_STOP_AT=<point>[@<n>]` stops it there with
SIGSTOP instead (a real stall: every thread freezes until SIGCONT). `SHOPLAKE_PAUSE_AT=<point>:<seconds>` sleeps there
instead (to signal a process while its batch is in flight). Unset, `crash_point` is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

POINTS = ("after_bronze", "during_silver", "after_silver", "after_gold", "during_archive", "fenced")
_passed: Counter[str] = Counter()
# Held by every state-store transaction of the process (the ledger's `_tx`); a stop point takes it first,
# so a stall never freezes the heartbeat thread inside a transaction holding SQLite's write lock.
STATE_TRANSACTIONS = threading.RLock()


def crash_point(name: str) -> None:
    pause = os.environ.get("SHOPLAKE_PAUSE_AT")
    if pause and pause.partition(":")[0] == name:
        time.sleep(float(pause.partition(":")[2] or 1))
    crash, stop = os.environ.get("SHOPLAKE_CRASH_AT"), os.environ.get("SHOPLAKE_STOP_AT")
    if not crash and not stop:
        return
    _passed[name] += 1
    for wanted, sent in ((crash, signal.SIGKILL), (stop, signal.SIGSTOP)):
        point, _, nth = (wanted or "").partition("@")
        if point == name and _passed[name] == int(nth or 1):
            with STATE_TRANSACTIONS:
                os.kill(os.getpid(), sent)
