"""The Airflow integration with real Airflow: the example DAG (sensor, then operator) run with `dag.test()`
on a generated day, in its own process with a throwaway AIRFLOW_HOME and SQLite metadata database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.generate import generate

pytestmark = pytest.mark.orchestrators

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "airflow_shoplake_dag.py"

# Runs inside Airflow's process: the metadata tables, the sensor on an empty folder and on a file still being
# written, then the DAG; prints one line of JSON for the test to read.
DRIVER = """
import json, sys
from pathlib import Path
from airflow.utils import db
db.initdb()
from shoplake.integrations.airflow import ShoplakeLandingSensor
empty, partial = sys.argv[1], sys.argv[2]
polls = {name: ShoplakeLandingSensor(task_id="poke_" + name, landing=folder, required_feeds=["orders"]).poke({})
         for name, folder in (("empty", empty), ("partial", partial))}
sys.path.insert(0, str(Path(sys.argv[3])))
import airflow_shoplake_dag as example
run = example.dag.test()
tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("RESULT " + json.dumps({"state": str(run.state), "tasks": tasks,
                              "polls": {k: [v.is_done, v.xcom_value] for k, v in polls.items()}}))
"""


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("airflow")
    generate(root / "landing", days=1, scale=0.001)
    (root / "empty").mkdir()
    (root / "partial").mkdir()
    (root / "partial" / "orders_2026_01_05.csv.tmp").write_text("order_id\n1\n")  # still being written
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    env = {**os.environ, "AIRFLOW_HOME": str(root / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow' / 'airflow.db'}",
           "SHOPLAKE_LANDING": str(root / "landing"), "SHOPLAKE_LAKE": str(root / "lake"),
           "SHOPLAKE_ARCHIVE": str(root / "archive")}
    env.pop("SHOPLAKE_CONFIG", None)
    (root / "airflow").mkdir()
    done = subprocess.run([sys.executable, "-c", DRIVER, str(root / "empty"), str(root / "partial"), str(dags)],
                          capture_output=True, text=True, timeout=180, env=env, cwd=root)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return root, json.loads(lines[-1].removeprefix("RESULT "))


def test_the_example_dag_waits_for_files_then_loads_them(dag_run: tuple[Path, dict[str, Any]]) -> None:
    root, result = dag_run
    assert result["state"] == "success"
    assert result["tasks"] == {"wait_for_files": "success", "load": "success"}
    for table in ("silver/orders", "silver/order_items", "gold/fact_sales"):
        assert DeltaTable(f"{root / 'lake'}/{table}").to_pyarrow_table().num_rows > 0
    assert not any(p.is_file() and not p.name.startswith("_") for p in (root / "landing").iterdir())


def test_the_operator_writes_the_run_summary(dag_run: tuple[Path, dict[str, Any]]) -> None:
    root, _ = dag_run
    [path] = (root / "lake" / "_state" / "runs").glob("*.json")
    summary = json.loads(path.read_text())
    assert summary["status"] == "succeeded" and summary["exit_code"] == 0
    assert summary["command"] == "airflow shoplake_daily.load"
    orders = DeltaTable(f"{root / 'lake'}/silver/orders").to_pyarrow_table().num_rows
    [batch] = summary["batches"]
    assert sum(f["rows_loaded"] for f in batch["files_detail"] if f["feed"] == "orders") == orders
    assert summary["totals"]["rows_read"] == sum(
        summary["totals"][k] for k in ("rows_loaded", "rows_quarantined", "rows_duplicate"))


def test_the_sensor_waits_on_an_empty_folder_and_on_a_file_still_being_written(
        dag_run: tuple[Path, dict[str, Any]]) -> None:
    _, result = dag_run
    assert result["polls"] == {"empty": [False, None], "partial": [False, None]}
