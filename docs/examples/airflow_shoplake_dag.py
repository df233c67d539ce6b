"""An example Airflow DAG: wait until a day's files are in the landing folder, then load them with shoplake.

Copy it into Airflow's dags folder. The settings come from the shoplake.yml named by SHOPLAKE_CONFIG, else
from SHOPLAKE_* variables (SHOPLAKE_LANDING, SHOPLAKE_LAKE, ...), as for the CLI.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from shoplake.integrations.airflow import ShoplakeLandingSensor, ShoplakeRunOperator

CONFIG = os.environ.get("SHOPLAKE_CONFIG") or None

with DAG("shoplake_daily", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         tags=["shoplake"]) as dag:
    wait = ShoplakeLandingSensor(task_id="wait_for_files", config_file=CONFIG,
                                 required_feeds=["orders", "order_items", "products"],
                                 poke_interval=60, timeout=6 * 3600, mode="reschedule")
    load = ShoplakeRunOperator(task_id="load", config_file=CONFIG)
    wait >> load

if __name__ == "__main__":
    dag.test()
