"""Test helpers: the mini fixture's CSV files written again in the other formats, value for value as text
(converted with DuckDB's CSV reader, pyarrow and xlsxwriter), so a run on them must equal a run on the CSVs."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter


def csv_rows(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A CSV's header and rows as text, read as the engine reads it (empty fields NULL, short rows padded)."""
    con = duckdb.connect()
    relation = con.sql(f"SELECT * FROM read_csv('{path}', all_varchar=true, header=true, null_padding=true)")
    return list(relation.columns), relation.fetchall()


def to_parquet(source: Path, target: Path) -> None:
    header, rows = csv_rows(source)
    columns = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    pq.write_table(pa.table(columns, schema=pa.schema([(name, pa.string()) for name in header])), target)


def to_ndjson(source: Path, target: Path, *, gzipped: bool = False) -> None:
    header, rows = csv_rows(source)
    text = "".join(json.dumps(dict(zip(header, row, strict=True))) + "\n" for row in rows)
    target.write_bytes(gzip.compress(text.encode()) if gzipped else text.encode())


def to_json_array(source: Path, target: Path) -> None:
    header, rows = csv_rows(source)
    target.write_text(json.dumps([dict(zip(header, row, strict=True)) for row in rows], indent=2))


def to_xlsx(source: Path, target: Path, *, sheet: str = "Sheet1", values: bool = False) -> None:
    """Every cell as a string (values=True: numbers as numbers, as a spreadsheet user would type them)."""
    header, rows = csv_rows(source)
    workbook = xlsxwriter.Workbook(str(target))
    worksheet = workbook.add_worksheet(sheet)
    for j, name in enumerate(header):
        worksheet.write_string(0, j, name)
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            if value is None:
                continue
            if values and _number(value) is not None:
                worksheet.write_number(i, j, _number(value))
            else:
                worksheet.write_string(i, j, value)
    workbook.close()


def _number(text: str) -> float | None:
    try:
        return float(text) if text.strip() and text.replace(".", "", 1).lstrip("-").isdigit() else None
    except ValueError:
        return None


def to_gzip(source: Path, target: Path) -> None:
    target.write_bytes(gzip.compress(source.read_bytes()))


def to_zip(source: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(source, source.name)
