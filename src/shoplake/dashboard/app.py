"""The Streamlit app `shoplake dashboard` runs (`streamlit run app.py -- --lake DIR [--config FILE]`): five pages
over the lake's gold tables and operational store, read-only."""

from __future__ import annotations

import streamlit as st

from shoplake.dashboard import customers, funnel, pipeline, products, sales
from shoplake.dashboard.widgets import guarded

# (module, title, URL path, icon): the order of the navigation.
PAGES = ((sales, "Executive sales", "sales", ":material/monitoring:"),
         (products, "Product performance", "products", ":material/inventory_2:"),
         (funnel, "Funnel", "funnel", ":material/filter_alt:"),
         (customers, "Customer 360", "customers", ":material/person_search:"),
         (pipeline, "Pipeline health", "pipeline", ":material/health_and_safety:"))


def main() -> None:
    st.set_page_config(page_title="shoplake", page_icon=":material/water:", layout="wide")
    pages = [st.Page(guarded(module.render), title=title, url_path=path, icon=icon, default=module is sales)
             for module, title, path, icon in PAGES]
    st.navigation(pages).run()


main()
