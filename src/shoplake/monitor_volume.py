"""Volume anomalies: rows per feed per business date against a robust trailing baseline that knows weekdays.

A day's baseline is the median of the feed's rows on the same weekday over the `volume_weeks` weeks before
it; with fewer than `volume_min_points` such days (a young lake), the median of every day of those weeks,
and with fewer still the day is not judged. Spread is the median absolute deviation (MAD, scaled by
1.4826 to match a standard deviation on normal data): one odd day in the baseline moves neither. A day is
an anomaly when its robust z-score reaches `volume_z` and its rows are `volume_warn_change` off the median
(warning), or at most `volume_critical_low` / at least `volume_critical_high` times it (critical). The
share floor keeps a feed that never varies (MAD 0) from alarming on a one-row difference.

Rows are the rows read from the feed's loaded files: what the sender delivered, before validation; a day
whose rows went to quarantine is the quarantine check's finding, not a second one here.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, timedelta

from shoplake.config import Monitoring
from shoplake.monitor_findings import Check, Code, Finding, Level
from shoplake.monitor_store import FeedHistory, Snapshot

MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normally distributed data
SAME_WEEKDAY = "same_weekday"
RECENT_DAYS = "recent_days"


@dataclass(frozen=True)
class Baseline:
    median: float
    mad: float  # scaled (comparable to a standard deviation)
    points: int
    basis: str  # SAME_WEEKDAY or RECENT_DAYS

    def z(self, rows: int) -> float:
        """The robust z-score of `rows`; infinite when the baseline never varied and `rows` differs."""
        if self.mad > 0:
            return (rows - self.median) / self.mad
        return 0.0 if rows == self.median else math.copysign(math.inf, rows - self.median)


def baseline(history: dict[date, int], day: date, settings: Monitoring) -> Baseline | None:
    """The baseline of `day` from the days before it (see the module's docstring); None: too few days."""
    start = day - timedelta(days=7 * settings.volume_weeks)
    earlier = {d: rows for d, rows in history.items() if start <= d < day}
    same = [rows for d, rows in earlier.items() if d.weekday() == day.weekday()]
    points, basis = (same, SAME_WEEKDAY) if len(same) >= settings.volume_min_points else (list(earlier.values()),
                                                                                       RECENT_DAYS)
    if len(points) < settings.volume_min_points:
        return None
    median = statistics.median(points)
    mad = statistics.median(abs(rows - median) for rows in points) * MAD_SCALE
    return Baseline(median=float(median), mad=float(mad), points=len(points), basis=basis)


def volume(snapshot: Snapshot, settings: Monitoring) -> list[Finding]:
    """Every judged date of every feed with loaded rows, against its baseline."""
    findings: list[Finding] = []
    judged = snapshot.judged(settings.check_days)
    for _, feed in sorted(snapshot.feeds.items()):
        history = {day: rows.rows_read for day, rows in feed.loaded.items()}
        for day in judged:
            if day in history:
                finding = _judge(feed, day, history[day], baseline(history, day, settings), settings)
                if finding is not None:
                    findings.append(finding)
    return findings


def _judge(feed: FeedHistory, day: date, rows: int, base: Baseline | None, settings: Monitoring) -> Finding | None:
    if base is None or base.median <= 0:
        return None
    ratio = rows / base.median
    z = base.z(rows)
    if abs(z) < settings.volume_z or abs(ratio - 1) < settings.volume_warn_change:
        return None
    critical = ratio <= settings.volume_critical_low or ratio >= settings.volume_critical_high
    code = Code.VOLUME_LOW if ratio < 1 else Code.VOLUME_HIGH
    usual = "the same weekday" if base.basis == SAME_WEEKDAY else "recent days"
    return Finding(Check.VOLUME, code, Level.CRITICAL if critical else Level.WARNING,
                   f"{feed.feed} {day}: {rows:,} rows, {ratio:.0%} of the usual {base.median:,.0f} "
                   f"(median of {base.points} {usual})",
                   feed=feed.feed, business_date=day,
                   numbers={"rows": rows, "baseline_median": base.median, "baseline_mad": round(base.mad, 2),
                            "baseline_points": base.points, "baseline_basis": base.basis,
                            "ratio": round(ratio, 4), "z": round(z, 2) if math.isfinite(z) else None})
