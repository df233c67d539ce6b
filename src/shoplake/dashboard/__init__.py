"""The shoplake dashboard: a read-only Streamlit app over the lake's gold tables and its operational store."""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).with_name("app.py")  # what `streamlit run` is given

__all__ = ["APP"]
