"""Generated feeds with defects, end to end: every file reconciles and every defect ends where it should.

The generator reports what it injected into each file; these tests hold the pipeline's results to those
counts. Generation and the run happen once for the module; the re-run test comes last because it runs
the pipeline a second time over the same lake.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.contracts.model import LoadMode
from shoplake.generate import GenerateReport, generate
from shoplake.pipeline import FileOutcome, RunReport, run
from shoplake.tables import query_table

pytestmark = pytest.mark.integration

SCALE = 0.003
DAYS = 2
DEFECT_RATE = 0.05
SEED = 42
FEEDS = ("customers", "products", "orders", "order_items", "inventory", "shipping", "events", "fx_rates")
CONTRACTS = load_contracts()

# Defect kind, feed, the rules a row carrying it must fail (any of them), and whether the count is exact.
# Exact where nothing but the injected copies can fail the rule: every defect sits on a copy of a clean row
# with a fresh key, one defect per row. Orphans are only a lower bound: the child rows of any parent row
# that is quarantined for another reason (here the truncated last line) are orphans too.
EXPECTED_RULES: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("bad_email", "customers", ("email.format",), True),
    ("bad_phone", "customers", ("phone.format",), True),
    ("null_key", "customers", ("customer_id.required",), True),
    ("non_positive_price", "products", ("retail_price_positive",), True),
    ("cost_above_retail", "products", ("cost_within_retail_price",), True),
    ("null_key", "products", ("product_id.required",), True),
    ("orphan_reference", "orders", ("customer_id.references",), False),
    ("null_key", "orders", ("order_id.required",), True),
    ("future_date", "orders", ("created_not_in_future",), True),
    ("unknown_status", "orders", ("status.accepted_values",), True),
    ("non_positive_price", "order_items", ("sale_price_positive",), True),
    ("orphan_reference", "order_items", ("order_id.references", "product_id.references"), False),
    ("null_key", "order_items", ("order_item_id.required",), True),
    ("future_date", "order_items", ("created_not_in_future",), True),
    ("unknown_status", "order_items", ("status.accepted_values",), True),
    ("null_key", "inventory", ("product_id.required",), True),
    ("orphan_reference", "shipping", ("order_id.references",), False),
    ("null_key", "shipping", ("tracking_number.required",), True),
    ("unknown_status", "shipping", ("status.accepted_values",), True),
    ("null_key", "events", ("event_id.required",), True),
    ("future_date", "events", ("event_not_in_future",), True),
    ("null_key", "fx_rates", ("currency.required",), True),
]
# Integer ids written as "1050.0" (the float_id defect), per feed: normalised, never a type failure.
FLOAT_ID_COLUMNS = {"orders": ("customer_id",), "order_items": ("order_id", "product_id")}
KEYS = {"orders": "order_id", "order_items": "order_item_id"}


@dataclass
class Loaded:
    """One generated landing folder and the run that loaded it, with the lake's tables read on demand."""

    settings: Settings
    source: Path  # a copy of every generated file, untouched by the run
    generated: GenerateReport
    report: RunReport
    _tables: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def table(self, layer: str, name: str) -> list[dict[str, Any]]:
        if (layer, name) not in self._tables:
            self._tables[layer, name] = read_table(self.settings, layer, name)
        return self._tables[layer, name]

    @property
    def files(self) -> dict[str, FileOutcome]:
        return {f.file: f for b in self.report.batches for f in b.files}

    def file_names(self, feed: str) -> list[str]:
        return [f.name for f in self.generated.files if f.feed == feed]

    def with_defect(self, kind: str) -> list[str]:
        return [name for name, kinds in self.generated.defects.items() if kinds.get(kind)]


def read_table(settings: Settings, layer: str, name: str) -> list[dict[str, Any]]:
    """Every row of a lake table as a dict, column names taken from the Delta schema."""
    names = [f.name for f in DeltaTable(str(settings.lake / layer / name)).schema().fields]
    return [dict(zip(names, row, strict=True)) for row in query_table(settings, layer, name)]


def csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and data rows as the csv module reads them; data row n (1-based) is rows[n - 1]."""
    with path.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def raw(value: str | None) -> str | None:
    """A CSV field as bronze keeps it: text, with an empty field read as NULL."""
    return value or None


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    root = tmp_path_factory.mktemp("generated")
    source = root / "generated"
    generated = generate(source, days=DAYS, scale=SCALE, defect_rate=DEFECT_RATE, seed=SEED)
    landing = root / "landing"
    landing.mkdir()
    for path in source.iterdir():
        shutil.copy(path, landing / path.name)
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive")
    return Loaded(settings, source, generated, run(settings))


def truncated_rows(loaded: Loaded) -> set[tuple[str, int]]:
    """The files with a truncated last line (one a day), each with that line's data-row number."""
    return {(name, loaded.generated.rows[name]) for name in loaded.with_defect("truncated_last_line")}


def test_every_file_reconciles_loads_and_is_archived(loaded: Loaded) -> None:
    report, files, archive = loaded.report, loaded.files, loaded.settings.archive_dir
    assert [b.status for b in report.batches] == ["succeeded"] * DAYS
    assert report.unrecognised == [] and report.skipped_duplicates == []
    assert sorted(files) == sorted(loaded.generated.rows)
    for written in loaded.generated.files:
        f = files[written.name]
        assert f.status == "loaded", (written.name, f.error)
        # The truncated last line is a row too: read with its missing fields NULL, so it still counts.
        assert f.rows_read == written.rows, written.name
        assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate, written.name
        target = archive / "processed" / written.business_date.isoformat() / written.name
        assert f.archived_to == str(target)
        assert target.read_bytes() == (loaded.source / written.name).read_bytes()
    for trigger in loaded.generated.triggers:
        day = datetime.strptime(trigger, "trigger_%Y_%m_%d.json").date()
        assert (archive / "processed" / day.isoformat() / trigger).is_file(), trigger
    assert not any(loaded.settings.landing.iterdir()), "every file leaves the landing folder"


def test_a_truncated_last_line_is_read_with_its_missing_fields_null(loaded: Loaded) -> None:
    assert len(truncated_rows(loaded)) == DAYS
    for name, row_number in truncated_rows(loaded):
        feed = loaded.files[name].feed
        assert feed is not None
        header, rows = csv_rows(loaded.source / name)
        cut = rows[row_number - 1]
        assert 0 < len(cut) < len(header), f"{name}: the generator cut the last line short"
        [bronze] = [r for r in loaded.table("bronze", feed)
                    if r["_source_file"] == name and r["_row_number"] == row_number]
        expected = [raw(v) for v in cut] + [None] * (len(header) - len(cut))
        assert [bronze[c] for c in header] == expected, name


def test_exact_duplicate_rows_are_counted_per_file(loaded: Loaded) -> None:
    for name, kinds in loaded.generated.defects.items():
        _, rows = csv_rows(loaded.source / name)
        copies = len(rows) - len({tuple(r) for r in rows})
        assert copies == kinds.get("duplicate_row", 0), f"{name}: the generator's own count"
        assert loaded.files[name].rows_duplicate == copies, name


@pytest.mark.parametrize(("kind", "feed", "rules", "exact"), EXPECTED_RULES,
                         ids=[f"{feed}-{kind}" for kind, feed, _, _ in EXPECTED_RULES])
def test_each_quarantine_defect_fails_its_rule(loaded: Loaded, kind: str, feed: str, rules: tuple[str, ...],
                                              exact: bool) -> None:
    truncated = truncated_rows(loaded)
    quarantine = loaded.table("quarantine", feed)
    for name in loaded.file_names(feed):
        injected = loaded.generated.defects[name].get(kind, 0)
        assert injected > 0, f"{name}: every kind that applies to a file appears in it"
        failing = [r for r in quarantine if r["_source_file"] == name and set(rules) & set(r["_failed_rules"])
                   and (name, r["_row_number"]) not in truncated]
        if exact:
            assert len(failing) == injected, f"{name}: {kind} -> {rules}"
        else:
            assert len(failing) >= injected, f"{name}: {kind} -> {rules}"


def test_the_quarantine_agrees_with_the_reported_rule_failures(loaded: Loaded) -> None:
    for feed in FEEDS:
        in_table = Counter(rule for r in loaded.table("quarantine", feed) for rule in r["_failed_rules"])
        reported: Counter[str] = Counter()
        for batch in loaded.report.batches:
            reported.update(batch.rule_failures.get(feed, {}))
        assert in_table, f"{feed}: defects were injected, so rows were quarantined"
        assert {rule: reported[rule] for rule in in_table} == dict(in_table), feed
        quarantined = sum(f.rows_quarantined for f in loaded.files.values() if f.feed == feed)
        assert len(loaded.table("quarantine", feed)) == quarantined, feed
        assert all(r["_failed_rules"] for r in loaded.table("quarantine", feed)), feed


def test_float_ids_are_normalised_and_loaded(loaded: Loaded) -> None:
    for feed, columns in FLOAT_ID_COLUMNS.items():
        type_rules = {f"{c}.type" for c in columns}
        assert not [r for r in loaded.table("quarantine", feed) if type_rules & set(r["_failed_rules"])], feed
        silver = {r[KEYS[feed]]: r for r in loaded.table("silver", feed)}
        for name in loaded.file_names(feed):
            header, rows = csv_rows(loaded.source / name)
            at = {c: header.index(c) for c in (KEYS[feed], *columns)}
            spoiled = [r for r in rows if any(r[at[c]].endswith(".0") for c in columns)]
            assert len(spoiled) == loaded.generated.defects[name]["float_id"], name
            for row in spoiled:
                loaded_row = silver[int(row[at[KEYS[feed]]])]
                for column in columns:
                    assert loaded_row[column] == int(float(row[at[column]])), (name, row)


def test_view_aliases_load_as_page_view(loaded: Loaded) -> None:
    silver = {r["event_id"]: r for r in loaded.table("silver", "events")}
    event_types = {r["event_type"] for r in silver.values()}
    assert "view" not in event_types
    assert all(t == t.lower() for t in event_types)
    assert "page_view" in event_types
    for name in loaded.file_names("events"):
        header, rows = csv_rows(loaded.source / name)
        event_id, event_type = header.index("event_id"), header.index("event_type")
        aliased = [r for r in rows if r[event_type] != "page_view" and r[event_type].lower() in ("view", "page_view")]
        assert len(aliased) == loaded.generated.defects[name]["view_alias"], name
        assert all(silver[r[event_id]]["event_type"] == "page_view" for r in aliased), name


def test_an_extra_column_is_rescued_as_json(loaded: Loaded) -> None:
    names = loaded.with_defect("extra_column")
    assert names, "the generator drifts a schema from the second day"
    for name in names:
        feed = loaded.files[name].feed
        assert feed is not None
        header, rows = csv_rows(loaded.source / name)
        extra = [c for c in header if c not in CONTRACTS[feed].column_names]
        assert len(extra) == 1, name
        bronze = [r for r in loaded.table("bronze", feed) if r["_source_file"] == name]
        assert len(bronze) == loaded.files[name].rows_read
        at = header.index(extra[0])
        for r in bronze:
            assert json.loads(r["_rescued"]) == {extra[0]: rows[r["_row_number"] - 1][at]}, (name, r["_row_number"])
        assert not [r for r in loaded.table("quarantine", feed) if "file.schema_drift" in r["_failed_rules"]]
        assert loaded.files[name].rows_loaded > 0


def test_a_missing_column_is_loaded_as_null(loaded: Loaded) -> None:
    names = loaded.with_defect("missing_column")
    assert names, "the generator drifts a schema from the second day"
    for name in names:
        feed = loaded.files[name].feed
        assert feed is not None
        header, _ = csv_rows(loaded.source / name)
        contract = CONTRACTS[feed]
        [missing] = [c for c in contract.column_names if c not in header]
        bronze = [r for r in loaded.table("bronze", feed) if r["_source_file"] == name]
        assert len(bronze) == loaded.files[name].rows_read
        assert all(r[missing] is None for r in bronze), name
        silver = [r for r in loaded.table("silver", feed) if r["_source_file"] == name]
        assert silver and all(r[missing] is None for r in silver), name
        if contract.load.mode is LoadMode.APPEND:
            assert len(silver) == loaded.files[name].rows_loaded, name


@pytest.mark.parametrize("feed", FEEDS)
def test_a_quarantined_row_keeps_its_file_row_number_and_raw_values(loaded: Loaded, feed: str) -> None:
    first = min(loaded.table("quarantine", feed), key=lambda r: (r["_source_file"], r["_row_number"]))
    assert first["_source_file"] in loaded.file_names(feed)
    header, rows = csv_rows(loaded.source / first["_source_file"])
    line = rows[first["_row_number"] - 1]
    line += [""] * (len(header) - len(line))
    columns = [c for c in header if c in CONTRACTS[feed].column_names]
    assert [first[c] for c in columns] == [raw(line[header.index(c)]) for c in columns]


def test_running_the_same_files_again_loads_nothing(loaded: Loaded) -> None:
    """Last in the module: it runs the pipeline a second time over the same lake."""
    before = {(layer, feed): len(read_table(loaded.settings, layer, feed))
              for layer in ("bronze", "silver", "quarantine") for feed in FEEDS}
    for written in loaded.generated.files:
        shutil.copy(loaded.source / written.name, loaded.settings.landing / written.name)
    again = run(loaded.settings)
    assert again.batches == []
    assert sorted(f.file for f in again.skipped_duplicates) == sorted(loaded.generated.rows)
    assert {f.status for f in again.skipped_duplicates} == {"duplicate"}
    after = {(layer, feed): len(read_table(loaded.settings, layer, feed))
             for layer in ("bronze", "silver", "quarantine") for feed in FEEDS}
    assert after == before
    assert not any(loaded.settings.landing.iterdir())
