"""What every page shares: the lake it reads (from the app's arguments), the date-range and category
filters, a chart with its KPI definition beside it, and tables of numbers written for people."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from shoplake.config import Settings
from shoplake.dashboard.data import Lake, MissingTable
from shoplake.dashboard.kpis import DEFINITIONS


@dataclass(frozen=True)
class Context:
    settings: Settings
    lake: Lake


@st.cache_resource(show_spinner=False)
def _context(argv: tuple[str, ...]) -> Context:
    from shoplake import api

    parser = argparse.ArgumentParser(prog="shoplake dashboard")
    parser.add_argument("--lake", default=None)
    parser.add_argument("--config", default=None)
    args = parser.parse_args(list(argv))
    settings = api.settings(Path(args.config) if args.config else None, lake=args.lake)
    return Context(settings=settings, lake=Lake.of(settings))


def context() -> Context:
    """The lake and settings the app was started with (`streamlit run app.py -- --lake DIR [--config FILE]`)."""
    return _context(tuple(sys.argv[1:]))


def date_range(key: str, first: date, last: date, *, label: str = "Days") -> tuple[date, date]:
    """A date-range filter over [first, last], all days by default; a half-chosen range means one day."""
    chosen = st.sidebar.date_input(label, value=(first, last), min_value=first, max_value=last, key=key)
    if isinstance(chosen, tuple | list):
        start = chosen[0] if chosen else first
        end = chosen[1] if len(chosen) > 1 else start
        return start, end
    return chosen, chosen


def previous_period(start: date, end: date) -> tuple[date, date]:
    """As many days as [start, end], just before it."""
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def categories(key: str, options: Sequence[str]) -> list[str]:
    """A category filter: none chosen means every category."""
    return list(st.sidebar.multiselect("Category", sorted(options), key=key,
                                       placeholder="every category"))


@contextmanager
def beside(*definitions: str) -> Iterator[None]:
    """A chart (the body) with the definitions of its KPIs in a narrow column to its right."""
    chart, text = st.columns([3, 1.3])
    with text:
        for name in definitions:
            st.markdown(DEFINITIONS[name])
    with chart:
        yield


def table(frame: pd.DataFrame, formats: dict[str, Callable[[Any], str]] | None = None, *,
          key: str | None = None) -> None:
    """A small table as HTML (its numbers are text on the page, formatted for people)."""
    shown = frame.copy()
    for column, write in (formats or {}).items():
        if column in shown.columns:
            shown[column] = shown[column].map(write)
    if shown.empty:
        st.caption("no rows")
        return
    shown.columns = [str(c).replace("_", " ") for c in shown.columns]  # headers for people, not identifiers
    st.table(shown.reset_index(drop=True))


def guarded(render: Callable[[Context], None]) -> Callable[[], None]:
    """A page that says which gold tables are missing instead of failing when no batch has built them yet."""
    def page() -> None:
        ctx = context()
        try:
            render(ctx)
        except MissingTable as missing:
            st.info(f"Nothing to show yet: the lake at {ctx.lake.root} has no {', '.join(missing.tables)}. "
                    "Run `shoplake run` to load the landed files.")
    # Streamlit tells pages apart by their function's name: the module's, since every page's is `render`.
    page.__name__ = render.__module__.rsplit(".", 1)[-1]
    return page
