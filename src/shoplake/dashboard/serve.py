"""The dashboard's server process: imports every page's modules, then hands over to Streamlit's own CLI
(`python -m shoplake.dashboard.serve run app.py ...` is `streamlit run app.py ...`), so that the first
person to open a page does not wait for pandas, Altair, DuckDB and the pages to be imported."""

from __future__ import annotations

import importlib

# The pages, and what they import only when first used (the monitor's alerts, the quarantine browser).
WARM = ("shoplake.dashboard.sales", "shoplake.dashboard.products", "shoplake.dashboard.funnel",
        "shoplake.dashboard.customers", "shoplake.dashboard.pipeline", "shoplake.monitor", "shoplake.tables")


def main() -> None:
    for name in WARM:
        importlib.import_module(name)
    from streamlit.web.cli import main as streamlit

    streamlit()


if __name__ == "__main__":
    main()
