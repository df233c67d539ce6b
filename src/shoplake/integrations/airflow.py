"""Airflow (3.x, `airflow.sdk`): `ShoplakeRunOperator` runs shoplake once (a batch per business date) and
`ShoplakeLandingSensor` waits until the landing folder holds files of the feeds a run needs.

    from shoplake.integrations.airflow import ShoplakeLandingSensor, ShoplakeRunOperator
    wait = ShoplakeLandingSensor(task_id="wait_for_files", config_file="/srv/shop/shoplake.yml",
                                 required_feeds=["orders", "order_items", "products"], mode="reschedule")
    load = ShoplakeRunOperator(task_id="load", config_file="/srv/shop/shoplake.yml")
    wait >> load

The operator writes the run's JSON summary (as `shoplake --log-format json run` does; see jsonlog.py) and
returns a short form of it as its XCom. A failed batch or a rejected file fails the task without retries
(someone has to fix a file or a contract); a retryable error (a lock held, a network blip) lets Airflow
retry; a configuration error fails without retries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from shoplake import api, jsonlog
from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import ShoplakeError
from shoplake.landing.files import classify, in_progress
from shoplake.landing.ledger import SUCCEEDED
from shoplake.landing.storage import open_store


def _settings(config_file: str | None, **overrides: Any) -> Settings:
    """shoplake.yml (if given), SHOPLAKE_* variables, then the task's own options (None: not given)."""
    return api.settings(Path(config_file) if config_file else None, **overrides)


class ShoplakeRunOperator(BaseOperator):
    """`shoplake run` as a task: every waiting file loaded; XCom: run id, status, exit code, summary path, totals."""

    template_fields: Sequence[str] = ("config_file", "landing", "lake", "archive", "engine")

    def __init__(self, *, config_file: str | None = None, landing: str | None = None, lake: str | None = None,
                 archive: str | None = None, engine: str | None = None, fail_on_rejected_files: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_file = config_file
        self.landing = landing
        self.lake = lake
        self.archive = archive
        self.engine = engine
        self.fail_on_rejected_files = fail_on_rejected_files

    def execute(self, context: Any) -> dict[str, Any]:
        settings = _settings(self.config_file, landing=self.landing, lake=self.lake, archive=self.archive,
                             engine=self.engine)
        run = jsonlog.start_run(f"airflow {self.dag_id}.{self.task_id}", settings=settings)
        exit_code, error = 0, None
        try:
            report = api.run(settings)
            batch_failed = any(b.status != SUCCEEDED for b in report.batches)
            exit_code = 1 if batch_failed or (self.fail_on_rejected_files and report.failed) else 0
        except BaseException as failure:
            exit_code, error = jsonlog.exit_status(failure)
            retry = run.retryable = isinstance(failure, ShoplakeError) and failure.retryable
            if isinstance(failure, ShoplakeError):
                raise (AirflowException if retry else AirflowFailException)(str(failure)) from failure
            raise
        finally:
            path = jsonlog.finish_run(run, exit_code, error)
        summary = json.loads(path.read_text(encoding="utf-8")) if path else {}
        result = {"run_id": run.run_id, "status": summary.get("status"), "exit_code": exit_code,
                  "summary": str(path) if path else None, "totals": summary.get("totals", {}),
                  "batches": [b["batch_id"] for b in summary.get("batches", [])]}
        if exit_code:
            rejected = ", ".join(Path(f["file"]).name for f in summary.get("files_rejected", []))
            raise AirflowFailException(f"shoplake run {result['status']} (exit {exit_code})"
                                       + (f"; rejected: {rejected}" if rejected else "") + f"; summary: {path}")
        return result


class ShoplakeLandingSensor(BaseSensorOperator):
    """Done when the landing store holds at least `min_files` data files (or, with `trigger`, a trigger
    file), and a file of every feed in `required_feeds`; XCom: the files and feeds it saw."""

    template_fields: Sequence[str] = ("config_file", "landing")

    def __init__(self, *, config_file: str | None = None, landing: str | None = None, min_files: int = 1,
                 required_feeds: Sequence[str] = (), trigger: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_file = config_file
        self.landing = landing
        self.min_files = min_files
        self.required_feeds = list(required_feeds)
        self.trigger = trigger

    def poke(self, context: Any) -> PokeReturnValue:
        settings = _settings(self.config_file, landing=self.landing)
        contracts = load_contracts(settings.contracts)
        files: list[str] = []
        triggers: list[str] = []
        feeds: set[str] = set()
        for entry in open_store(settings.landing).list():
            if in_progress(entry.relative):  # still being written: not there yet
                continue
            recognised, feed = classify(entry.relative, contracts)
            if feed is not None:
                files.append(entry.relative)
                feeds.add(feed)
            elif recognised:
                triggers.append(entry.relative)
        enough = bool(triggers) if self.trigger else len(files) >= self.min_files
        done = enough and set(self.required_feeds) <= feeds
        self.log.info("landing %s: %d data file(s) of %s, %d trigger(s)%s", settings.landing, len(files),
                      ", ".join(sorted(feeds)) or "no feed", len(triggers), "" if done else "; waiting")
        return PokeReturnValue(is_done=done, xcom_value={"files": sorted(files), "feeds": sorted(feeds),
                                                         "triggers": sorted(triggers)} if done else None)
