"""SCD2 history against a plain-Python model of its semantics: random change streams of a few keys, split
into files and batches in random ways and orders, must give the history the model gives.

Batches go through the production SCD2 apply (`scd2.stage`, as `silver.stage_writes` calls it, then the
engine's Delta writes) on rows staged as a batch's valid rows; the checks before it are tested elsewhere.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from shoplake.contracts import ContractSet, parse_contract
from shoplake.engines import open_engine
from shoplake.layers import scd2, silver
from shoplake.layers.checks import valid_table
from shoplake.layers.sql import alias, cast, lit, select

CONTRACT = """
feed: stock_levels
files: ["stock_levels_*.csv"]
primary_key: [sku]
load: {mode: scd2, sequence: changed_at, tracked: [level], untracked: UNTRACKED, deletes: "is_deleted = 'true'"}
columns:
  sku: {type: string, required: true}
  level: {type: integer, required: true}
  note: {type: string}
  is_deleted: {type: string}
  changed_at: {type: timestamp}
"""
DAY = datetime(2026, 1, 1)


@dataclass(frozen=True)
class Observation:
    sku: str
    level: int
    note: str
    deleted: bool
    hour: int
    file: str = ""
    row: int = 0
    batch: str = ""

    @property
    def state(self) -> tuple[object, ...]:
        return (self.level, self.note, self.deleted)


@dataclass
class Version:
    opener: Observation  # its lineage
    values: Observation  # its untracked values
    valid_from: int
    last_seen: int
    valid_to: int | None = None
    number: int = 0


@dataclass
class Case:
    files: list[list[Observation]] = field(default_factory=list)  # observations by file, in file order
    batches: list[list[int]] = field(default_factory=list)  # files of each batch, in arrival order
    untracked: str = "update"


def reference(observations: list[Observation], untracked: str) -> list[tuple[Any, ...]]:
    """The semantics in plain Python: per key, one state per instant (the last observation there; its
    lineage the first observation of that state there), runs of equal tracked values, deletes closing."""
    out: list[tuple[Any, ...]] = []
    for sku in sorted({o.sku for o in observations}):
        ordered = sorted((o for o in observations if o.sku == sku), key=lambda o: (o.hour, o.file, o.row))
        versions: list[Version] = []
        current: Version | None = None
        for hour in sorted({o.hour for o in ordered}):
            here = [o for o in ordered if o.hour == hour]
            last = here[-1]
            first_alike = next(o for o in here if o.state == last.state)
            if last.deleted:
                if current is not None:
                    current.valid_to = hour
                    current = None
                if versions:
                    versions[-1].last_seen = hour
            elif current is not None and current.values.level == last.level:
                current.last_seen = hour
                if untracked == "update":
                    current.values = last
            else:
                if current is not None:
                    current.valid_to = hour
                current = Version(opener=first_alike, values=first_alike, valid_from=hour, last_seen=hour)
                versions.append(current)
        for number, v in enumerate(versions, 1):
            out.append((sku, v.values.level, v.values.note, "true" if v.values.deleted else "false",
                        at(v.values.hour), v.opener.file, v.opener.row, v.opener.batch, number, at(v.last_seen),
                        at(v.valid_from), at(v.valid_to), v.valid_to is None))
    return sorted(out, key=repr)


def at(hour: int | None) -> datetime | None:
    return None if hour is None else DAY + timedelta(hours=hour)


observation = st.builds(
    Observation, sku=st.sampled_from("ABC"), level=st.integers(1, 3), note=st.sampled_from("xy"),
    deleted=st.sampled_from([False] * 5 + [True]), hour=st.integers(0, 7))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    files = draw(st.lists(st.lists(observation, min_size=1, max_size=4), min_size=1, max_size=6))
    order = draw(st.permutations(range(len(files))))
    cuts = sorted(draw(st.sets(st.integers(1, len(files) - 1)))) if len(files) > 1 else []
    bounds = [0, *cuts, len(files)]
    case = Case(batches=[list(order[a:b]) for a, b in pairwise(bounds)],
                untracked=draw(st.sampled_from(["update", "ignore"])))
    batch_of = {f: j for j, files_of in enumerate(case.batches) for f in files_of}
    case.files = [[Observation(o.sku, o.level, o.note, o.deleted, o.hour, f"f{i}.csv", n, f"b{batch_of[i]}")
                   for n, o in enumerate(rows, 1)] for i, rows in enumerate(files)]
    return case


def staged_rows(batch: list[Observation], batch_number: int) -> exp.Query:
    """The batch's rows as checked rows of the feed: typed columns, then lineage."""
    ingested = lit((DAY + timedelta(days=1, minutes=batch_number)).isoformat(sep=" "))
    rows: list[exp.Query] = [select(
        alias(cast(lit(o.sku), "VARCHAR"), "sku"), alias(cast(lit(o.level), "BIGINT"), "level"),
        alias(cast(lit(o.note), "VARCHAR"), "note"), alias(cast(lit("true" if o.deleted else "false"), "VARCHAR"),
                                                           "is_deleted"),
        alias(cast(lit(at(o.hour).isoformat(sep=" ")), "TIMESTAMP"), "changed_at"),  # type: ignore[union-attr]
        alias(cast(lit(o.file), "VARCHAR"), "_source_file"), alias(cast(lit(o.row), "BIGINT"), "_row_number"),
        alias(cast(lit(o.batch), "VARCHAR"), "_batch_id"), alias(cast(ingested.copy(), "TIMESTAMP"), "_ingested_at"),
    ) for o in batch]
    query = rows[0]
    for row in rows[1:]:
        query = exp.union(query, row, distinct=False)
    return query


def load_batches(engine_name: str, case: Case, work: Path) -> list[tuple[Any, ...]]:
    contract = parse_contract(yaml.safe_load(CONTRACT.replace("UNTRACKED", case.untracked)), "property test")
    contracts = ContractSet({contract.feed: contract})
    lake = str(work / "lake")
    engine = open_engine(engine_name, temp_dir=work / "tmp")
    try:
        for number, files in enumerate(case.batches):
            engine.clear()
            batch = [o for f in files for o in case.files[f]]
            engine.create_table(valid_table(contract.feed), staged_rows(batch, number))
            in_silver = silver.attach_silver(engine, contracts, lake)
            history = silver.table(silver.history_view(contract.feed), silver.SILVER) if in_silver else None
            jobs = scd2.stage(engine, contract, lake, silver.silver_path(lake, contract.feed), history=history,
                              sequence=silver.sequence_value(contract), replaced=False)
            engine.write(jobs, tag=f"b{number}")
    finally:
        engine.close()
    logged = DeltaTable(scd2.observations_path(lake, contract.feed)).to_pyarrow_table().num_rows
    assert logged == sum(len(rows) for rows in case.files), "every observation is in the log"
    names = ("sku", "level", "note", "is_deleted", "changed_at", "_source_file", "_row_number", "_batch_id",
             "_version", "_last_seen", "_valid_from", "_valid_to", "_is_current")
    table = DeltaTable(silver.silver_path(lake, contract.feed)).to_pyarrow_table()
    return sorted((tuple(r[n] for n in names) for r in table.to_pylist()), key=repr)


def check_streams(engine_name: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases())
    def history_matches_the_model(case: Case) -> None:
        with tempfile.TemporaryDirectory() as work:
            got = load_batches(engine_name, case, Path(work))
        everything = [o for rows in case.files for o in rows]
        assert got == reference(everything, case.untracked)

    history_matches_the_model()


def test_history_matches_the_reference_model() -> None:
    check_streams("duckdb", 30)


@pytest.mark.spark
@pytest.mark.integration
def test_history_matches_the_reference_model_on_spark() -> None:
    check_streams("spark", 3)


def test_the_model_splits_a_period_for_a_late_change() -> None:
    """The model itself, on the brief's example: A@1, A@3, then a late B@2."""
    a1, a3 = Observation("K", 1, "x", False, 1, "f1.csv", 1), Observation("K", 1, "x", False, 3, "f2.csv", 1)
    b2 = Observation("K", 2, "x", False, 2, "f3.csv", 1)
    assert [(r[1], r[10], r[11]) for r in sorted(reference([a1, a3, b2], "update"), key=lambda r: r[8])] == [
        (1, at(1), at(2)), (2, at(2), at(3)), (1, at(3), None)]
