"""OpenLineage events as a lineage tool receives them: read back from the file, or from a real HTTP server."""

from __future__ import annotations

import csv
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from deltalake import DeltaTable

from shoplake import pipeline
from shoplake.config import Settings, load_settings
from shoplake.errors import ConfigError
from tests.conftest import FIXTURES, copy_fixture

Event = dict[str, Any]


def settings_in(root: Path, **lineage: Any) -> Settings:
    (root / "landing").mkdir(parents=True)
    return Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive", lineage=lineage)


def read_events(path: Path) -> list[Event]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def of_job(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e["job"]["name"] == name]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Event], str]:
    """One batch of the mini fixture with lineage to a file: its settings, the events, its batch id."""
    root = tmp_path_factory.mktemp("lineage")
    settings = settings_in(root, file=root / "lineage" / "events.jsonl", project="mini")
    copy_fixture("mini", settings.landing)  # type: ignore[arg-type]
    report = pipeline.run(settings)
    assert [b.status for b in report.batches] == ["succeeded"]
    return settings, read_events(root / "lineage" / "events.jsonl"), report.batches[0].batch_id


def test_a_batch_is_one_run_started_then_completed(loaded: tuple[Settings, list[Event], str]) -> None:
    _, events, _ = loaded
    batch = of_job(events, "shoplake.mini.batch")
    assert [e["eventType"] for e in batch] == ["START", "COMPLETE"]
    assert batch[0]["run"]["runId"] == batch[1]["run"]["runId"]
    assert uuid.UUID(batch[0]["run"]["runId"]).version == 5  # derived from the batch id, not random
    assert {e["job"]["namespace"] for e in events} == {"shoplake"}
    # the events come first on the file: START before any stage's events
    assert events[0] is batch[0]


def test_the_inputs_are_the_landed_files_with_their_rows(loaded: tuple[Settings, list[Event], str]) -> None:
    settings, events, _ = loaded
    complete = of_job(events, "shoplake.mini.batch")[1]
    landed = sorted(p.name for p in (FIXTURES / "mini").glob("*.csv"))
    inputs = {Path(i["name"]).name: i for i in complete["inputs"]}
    assert sorted(inputs) == landed
    assert {i["namespace"] for i in complete["inputs"]} == {"file"}
    orders = inputs["orders_2026_01_05.csv"]
    assert orders["name"] == str((Path(settings.landing) / "orders_2026_01_05.csv").resolve())
    with (FIXTURES / "mini" / "orders_2026_01_05.csv").open(newline="") as f:
        rows = sum(1 for _ in csv.DictReader(f))
    assert orders["inputFacets"]["inputStatistics"]["rowCount"] == rows


def test_the_outputs_are_the_tables_written_with_their_delta_versions(
        loaded: tuple[Settings, list[Event], str]) -> None:
    settings, events, _ = loaded
    complete = of_job(events, "shoplake.mini.batch")[1]
    outputs = {o["name"]: o for o in complete["outputs"]}
    for name in ("bronze.orders", "quarantine.orders", "silver.orders", "silver.customers", "gold.fact_sales",
                 "gold.agg_daily_sales"):
        assert name in outputs
    assert "bronze.shipping" not in outputs  # its file is binary: nothing was written for it
    lake = Path(settings.tables_root)
    assert {o["namespace"] for o in outputs.values()} == {lake.as_uri()}
    for name in ("silver.orders", "gold.fact_sales"):
        layer, table = name.split(".")
        version = DeltaTable(str(lake / layer / table)).version()
        assert outputs[name]["facets"]["version"]["datasetVersion"] == str(version)


def test_the_stages_chain_each_file_through_bronze_and_silver_to_gold(
        loaded: tuple[Settings, list[Event], str]) -> None:
    _, events, _ = loaded
    parent = of_job(events, "shoplake.mini.batch")[0]["run"]["runId"]
    stages = [e for e in events if e["job"]["name"].startswith("shoplake.mini.batch.")]
    assert stages and all(e["run"]["facets"]["parent"]["run"]["runId"] == parent for e in stages)
    completed = [e for e in stages if e["eventType"] == "COMPLETE"]
    assert len(completed) * 2 == len(stages)  # each stage is a START and a COMPLETE
    edges: dict[str, set[str]] = {}
    for e in completed:
        for i in e["inputs"]:
            edges.setdefault(i["name"], set()).update(o["name"] for o in e["outputs"])
    orders_file = next(i["name"] for i in completed[0]["inputs"] if i["name"].endswith("orders_2026_01_05.csv"))
    assert edges[orders_file] == {"bronze.customers", "bronze.order_items", "bronze.orders", "bronze.products"}
    assert "silver.orders" in edges["bronze.orders"] and "quarantine.orders" in edges["bronze.orders"]
    assert "gold.fact_sales" in edges["silver.orders"]
    reached, todo = set(), [orders_file]
    while todo:
        name = todo.pop()
        for nxt in edges.get(name, set()) - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert "gold.agg_daily_sales" in reached
    shipping = next(i["name"] for i in of_job(events, "shoplake.mini.batch")[1]["inputs"]
                    if i["name"].endswith("shipping_2026_01_05.csv"))
    assert shipping not in edges  # an unreadable file is the batch's input, never bronze's


def failing_landing(landing: Path) -> None:
    """An orders file and a trigger file promising an order_items file that never arrives."""
    shutil.copy(FIXTURES / "mini" / "orders_2026_01_05.csv", landing / "orders_2026_01_07.csv")
    (landing / "trigger_2026_01_07.json").write_text(json.dumps({"files": ["order_items_2026_01_07.csv"]}))


def test_a_failed_batch_is_a_run_that_failed_and_wrote_nothing(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, file=tmp_path / "events.jsonl")
    failing_landing(Path(settings.landing))
    report = pipeline.run(settings)
    assert [b.status for b in report.batches] == ["failed"]
    events = read_events(tmp_path / "events.jsonl")
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    assert events[1]["job"]["name"] == "shoplake.lake.batch"  # the lake folder's name without `project`
    assert "order_items_2026_01_07.csv" in events[1]["run"]["facets"]["errorMessage"]["message"]
    assert events[1]["outputs"] == []
    assert [Path(i["name"]).name for i in events[1]["inputs"]] == ["orders_2026_01_07.csv"]


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str | None, Event]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    Receiver.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_events_reach_an_http_endpoint_with_the_api_key(tmp_path: Path, server: ThreadingHTTPServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LINEAGE_KEY", "s3cret-key")
    host, port = server.server_address[:2]
    settings = settings_in(tmp_path, url=f"http://{host!s}:{port}", api_key_env="TEST_LINEAGE_KEY")
    failing_landing(Path(settings.landing))  # a quick batch: it fails before reading a file
    pipeline.run(settings)
    assert [e["eventType"] for _, _, e in Receiver.received] == ["START", "FAIL"]
    assert {path for path, _, _ in Receiver.received} == {"/api/v1/lineage"}
    assert {auth for _, auth, _ in Receiver.received} == {"Bearer s3cret-key"}
    assert len({e["run"]["runId"] for _, _, e in Receiver.received}) == 1


def test_an_endpoint_that_is_down_never_fails_the_batch(tmp_path: Path, server: ThreadingHTTPServer) -> None:
    host, port = server.server_address[:2]
    server.shutdown()
    server.server_close()  # nothing listens on the port any more
    settings = settings_in(tmp_path, url=f"http://{host!s}:{port}", file=tmp_path / "events.jsonl")
    failing_landing(Path(settings.landing))  # a quick batch, failed by its trigger file: never by lineage
    report = pipeline.run(settings)
    assert [b.status for b in report.batches] == ["failed"]
    assert "have not arrived" in (report.batches[0].error or "")
    assert "Lineage" not in (report.batches[0].error or "")
    assert Receiver.received == []
    # the file still has every event: one destination down does not silence the other
    assert [e["eventType"] for e in read_events(tmp_path / "events.jsonl")] == ["START", "FAIL"]


def test_lineage_settings_are_checked_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_LINEAGE_KEY", raising=False)
    config = tmp_path / "shoplake.yml"
    config.write_text("lineage:\n  url: http://localhost:5000\n  api_key_env: NO_SUCH_LINEAGE_KEY\n")
    with pytest.raises(ConfigError, match="NO_SUCH_LINEAGE_KEY is not set"):
        load_settings(config)
    config.write_text("lineage:\n  url: localhost:5000\n")
    with pytest.raises(ConfigError, match="not an http"):
        load_settings(config)
    config.write_text("lineage:\n  file: out/events.jsonl\n")
    assert load_settings(config).lineage.file == tmp_path / "out" / "events.jsonl"  # relative to the file
    assert not Settings().lineage.enabled
