"""Named crash points, for proving that a killed run is finished or rolled back by the next one.

`SHOPLAKE_CRASH_AT=<point>[@<n>]` makes the process kill itself (SIGKILL: no cleanup, no finally) the
n-th time (default first) it passes that point. `SHOPLAKE_PAUSE_AT=<point>:<seconds>` sleeps there
instead (to signal a process while its batch is in flight). Unset, `crash_point` is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

POINTS = ("after_bronze", "during_silver", "after_silver", "after_gold", "during_archive")
_passed: Counter[str] = Counter()


def crash_point(name: str) -> None:
    pause = os.environ.get("SHOPLAKE_PAUSE_AT")
    if pause and pause.partition(":")[0] == name:
        time.sleep(float(pause.partition(":")[2] or 1))
    wanted = os.environ.get("SHOPLAKE_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _passed[name] += 1
    if _passed[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
