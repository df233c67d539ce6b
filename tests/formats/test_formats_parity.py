"""Engine parity for the formats beyond CSV: one feed in each format, loaded on DuckDB and on Spark, gives
the same bronze, silver and quarantine tables. NDJSON is covered by the JSON array: Spark reads an array as
its records, one per line, with the same reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoplake.pipeline import run
from tests.formats.test_formats import AS_FORMATS, MINI, counts, rows_of, workspace_at

FEEDS = ("customers", "products", "orders")  # csv.gz, xlsx, parquet; events below is JSON

EVENTS = [  # a JSON array, with a nested object and numbers, as a tracker's export
    {"event_id": "e1", "session_id": "s1", "customer_id": 1, "event_type": "View", "product_id": 10,
     "event_at": "2026-01-05 10:00:00", "page_url": "/p/10", "device": "Mobile", "context": {"ip": "10.0.0.1"}},
    {"event_id": "e2", "session_id": "s1", "customer_id": 1.0, "event_type": "purchase", "product_id": 10,
     "event_at": "2026-01-05 10:05:00", "device": "tablet", "score": 0.25},
]


@pytest.mark.spark
@pytest.mark.integration
def test_each_format_lands_alike_on_duckdb_and_spark(tmp_path: Path) -> None:
    tables = {}
    for engine in ("duckdb", "spark"):
        settings = workspace_at(tmp_path / engine)
        settings.engine = engine
        settings.gold_models = []  # the tables compared are bronze, silver and quarantine
        for feed in FEEDS:
            name, converter = AS_FORMATS[feed]
            converter(MINI / f"{feed}_2026_01_05.csv", settings.landing / name)
        (settings.landing / "events_2026_01_05.json").write_text(json.dumps(EVENTS, indent=2))
        report = run(settings)
        assert all(status == "loaded" for status, *_ in counts(report).values()), counts(report)
        layers = ("bronze", "silver", "quarantine")
        tables[engine] = (counts(report), {(layer, feed): rows_of(settings, layer, feed)
                                           for feed in (*FEEDS, "events") for layer in layers})
    assert tables["spark"][0] == tables["duckdb"][0]
    for key, rows in tables["duckdb"][1].items():
        assert tables["spark"][1][key] == rows, key
    bronze_events = {r["event_id"]: r for r in tables["duckdb"][1][("bronze", "events")]}
    assert json.loads(bronze_events["e1"]["_rescued"]) == {"context": '{"ip":"10.0.0.1"}', "score": None}
