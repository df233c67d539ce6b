"""shoplake: an online shop's file drops in, validated and historised Delta tables and KPIs out.

    import shoplake
    report = shoplake.run(landing="landing", lake="lake")
"""

from shoplake.api import contracts, replay_quarantine, reprocess, run, settings, status, watch, watcher

__version__ = "0.1.0"
__all__ = ["contracts", "replay_quarantine", "reprocess", "run", "settings", "status", "watch", "watcher"]
