"""Reading the formats beyond plain CSV (NDJSON, JSON, Parquet, XLSX, gzip and zip) into the same
staged text columns as a CSV, with the libraries made for them: DuckDB's JSON and Parquet readers,
pyarrow for a Parquet file's schema, python-calamine for workbooks. No format is parsed by hand here.

Both engines share what is decided once per file: its fields (`fields_of`, read with DuckDB and pyarrow on
either engine, so a file lines up with its contract alike), a zip archive's member (`local_file`) and a
sheet's cells as text (`sheet_rows`); each engine then reads the file with its own reader.
"""

from __future__ import annotations

import atexit
import datetime as dt
import gzip
import hashlib
import json
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from python_calamine import CalamineError, CalamineWorkbook
from sqlglot import exp

from shoplake.contracts.formats import Compression, FileKind, FileRead
from shoplake.contracts.model import FileFormat
from shoplake.engines.base import quoted
from shoplake.engines.duckdb_io import short_error
from shoplake.errors import EngineError

ROW_NUMBER = "_row_number"
_NESTED = ("STRUCT", "MAP", "UNION")  # DuckDB types (and lists, `[]`) read as JSON text, as Spark's to_json


# -- shared by both engines ----------------------------------------------------------------------------
_scratch: list[Path] = []


def scratch_dir() -> Path:
    """This process's folder for files made to be read (a zip's member, a sheet as Parquet); removed at exit."""
    if not _scratch:
        _scratch.append(Path(tempfile.mkdtemp(prefix="shoplake-formats-")))
        atexit.register(shutil.rmtree, _scratch[0], True)
    return _scratch[0]


def local_file(path: Path, kind: FileKind) -> Path:
    """The file to read: a zip archive's one member, extracted to scratch (the same copy for the same
    archive), any other file itself (DuckDB and Spark read gzip themselves)."""
    if kind.compression is not Compression.ZIP:
        return path
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = scratch_dir() / key / (path.name.removesuffix(path.suffix) or "member")
    if target.exists():
        return target
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                names = ", ".join(m.filename for m in members[:5]) or "none"
                raise EngineError(f"the zip archive holds {len(members)} files ({names}); shoplake reads an "
                                  "archive of exactly one file: send one archive per file")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(members[0]) as member, target.open("wb") as out:
                shutil.copyfileobj(member, out)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise EngineError(f"not a readable zip archive ({error})") from None
    return target


def fields_of(path: Path, read: FileRead) -> list[str]:
    """The file's field names in file order: a Parquet schema's columns, a sheet's first row, or every key
    of a JSON file's records in the order they first appear. EngineError when the file is unreadable."""
    source = local_file(path, read.kind)
    file_format = read.kind.format
    if file_format is FileFormat.PARQUET:
        try:
            return list(pq.read_schema(source).names)
        except (pa.ArrowException, OSError) as error:
            raise EngineError(f"not a readable Parquet file ({error})") from None
    if file_format is FileFormat.XLSX:
        header, _ = sheet_rows(source, read.sheet, header_only=True)
        return header
    if file_format in (FileFormat.NDJSON, FileFormat.JSON):
        return _json_keys(source, read.kind)
    raise EngineError(f"no field list for {file_format.value} files")  # CSV headers are sniffed in bronze


def _json_keys(source: Path, kind: FileKind) -> list[str]:
    records = _json_records(source, kind)
    con = duckdb.connect()
    try:
        numbered = f"SELECT json, row_number() OVER () AS n FROM {records}"
        wrong = con.execute(f"SELECT n, json_type(json) FROM ({numbered}) WHERE json_type(json) <> 'OBJECT' "
                            "ORDER BY n LIMIT 1").fetchall()
        if wrong:
            raise EngineError(f"record {wrong[0][0]} is a JSON {str(wrong[0][1]).lower()}, not an object of fields")
        keys = con.execute(
            f"SELECT key FROM (SELECT unnest(json_keys(json)) AS key, generate_subscripts(json_keys(json), 1) AS i, "
            f"n FROM ({numbered})) QUALIFY row_number() OVER (PARTITION BY key ORDER BY n, i) = 1 ORDER BY n, i"
        ).fetchall()
    except duckdb.Error as error:
        raise EngineError(_json_error(error, source, kind)) from None
    finally:
        con.close()
    return [str(key) for (key,) in keys]


def json_lines(source: Path, kind: FileKind) -> Path:
    """A JSON file's records as NDJSON in scratch, one minified record per line (for a reader of lines)."""
    target = scratch_dir() / f"records-{uuid.uuid4().hex}.ndjson"
    con = duckdb.connect()
    try:
        result = con.execute(f"SELECT CAST(json(json) AS VARCHAR) FROM {_json_records(source, kind)}")
        with target.open("w", encoding="utf-8") as out:
            while batch := result.fetchmany(10_000):
                out.writelines(str(record) + "\n" for (record,) in batch)
    except duckdb.Error as error:
        raise EngineError(_json_error(error, source, kind)) from None
    finally:
        con.close()
    return target


def _json_records(source: Path, kind: FileKind) -> str:
    """DuckDB's reader of a JSON file's records, each as its JSON text, in file order (blank lines skipped)."""
    layout = "newline_delimited" if kind.format is FileFormat.NDJSON else "auto"
    compression = "gzip" if kind.compression is Compression.GZIP else "none"
    return f"read_json_objects({_literal(str(source))}, format='{layout}', compression='{compression}')"


def _json_error(error: duckdb.Error, source: Path, kind: FileKind) -> str:
    text = short_error(error)
    if "GZIP" in text.upper():
        return f"truncated or corrupt gzip ({text}): ask the sender for the file again"
    if "Malformed JSON" not in text:
        return text
    # DuckDB's message counts lines off by one (its record number plus one): the line at fault is found
    # again with Python's json module, which names line and column.
    return _bad_json(source, kind) or "malformed JSON: " + text.partition(": ")[2]


def _text(source: Path, kind: FileKind) -> TextIO:
    if kind.compression is Compression.GZIP:
        return gzip.open(source, "rt", encoding="utf-8")
    return source.open(encoding="utf-8")


def _bad_json(source: Path, kind: FileKind) -> str | None:
    """Where a JSON file first fails to parse, or None when Python's parser reads it (DuckDB is stricter)."""
    try:
        with _text(source, kind) as handle:
            if kind.format is FileFormat.JSON:
                json.load(handle)
                return None
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        json.loads(line)
                    except json.JSONDecodeError as bad:
                        return f"line {number} is not valid JSON ({bad.msg} at column {bad.colno})"
    except json.JSONDecodeError as bad:
        return f"not valid JSON ({bad.msg} at line {bad.lineno}, column {bad.colno})"
    except (OSError, EOFError, UnicodeDecodeError) as error:
        return f"not readable as UTF-8 JSON ({error})"
    return None


def json_path(keys: tuple[str, ...], *, spark: bool = False) -> str:
    """A JSON path of quoted keys, as DuckDB (`$."context"."device"`) or Spark (`$['context']['device']`)
    reads it: a key may hold dots and spaces."""
    if spark:
        return "$" + "".join("['" + key.replace("'", "\\'") + "']" for key in keys)
    return "$" + "".join('."' + key.replace('"', '\\"') + '"' for key in keys)


def sheet_rows(path: Path, sheet: str | None, *, header_only: bool = False) -> tuple[list[str], pa.Table]:
    """A workbook sheet's header (its first row) and its other rows as text columns c0, c1... plus
    `_row_number` (1 = the row after the header, counted in the sheet: a blank row is left out, not renumbered)."""
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = list(workbook.sheet_names)
        if sheet is not None and sheet not in names:
            raise EngineError(f"the workbook has no sheet {sheet!r} (its sheets: {', '.join(names)}): "
                              "fix the contract's `sheet:` or the workbook")
        if not names:
            raise EngineError("the workbook has no sheet")
        cells = workbook.get_sheet_by_name(sheet or names[0]).to_python(skip_empty_area=True,
                                                                        nrows=1 if header_only else None)
    except CalamineError as error:
        raise EngineError(f"not a readable XLSX workbook ({error})") from None
    if not cells:
        raise EngineError(f"sheet {sheet or names[0]!r} is empty: no header row")
    header = [cell_text(cell) or "" for cell in cells[0]]
    width = len(header)
    rows = [(number, row) for number, row in enumerate(cells[1:], start=1)
            if any(cell_text(cell) is not None for cell in row)]
    columns: dict[str, list[Any]] = {
        f"c{i}": [cell_text(row[i]) if i < len(row) else None for _, row in rows] for i in range(width)}
    columns[ROW_NUMBER] = [number for number, _ in rows]
    schema = pa.schema([*(pa.field(f"c{i}", pa.string()) for i in range(width)), pa.field(ROW_NUMBER, pa.int64())])
    return header, pa.Table.from_pydict(columns, schema=schema)


def cell_text(cell: object) -> str | None:
    """A cell's value as the text a CSV export would hold: whole numbers without `.0` (a workbook keeps
    every number as a float), dates and times in ISO form, booleans as true/false, empty as None."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float):
        return str(int(cell)) if cell.is_integer() and abs(cell) < 1e15 else repr(cell)
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date | dt.time):
        return cell.isoformat()
    return str(cell)


# -- the DuckDB engine's readers ------------------------------------------------------------------------
def stage_duckdb(con: duckdb.DuckDBPyConnection, path: str, table: str, columns: list[str], read: FileRead) -> int:
    """Stage a file as the table `table` of text columns `columns` (reading `read.fields` by position)
    plus `_row_number`; returns its rows. EngineError when it cannot be read."""
    source = local_file(Path(path), read.kind)
    data = quoted(table + "__rows")
    numbered = f"SELECT *, rowid + 1 AS {ROW_NUMBER} FROM {data}"
    try:
        if read.kind.format is FileFormat.XLSX:
            _, rows = sheet_rows(source, read.sheet)
            registered = table + "__sheet"
            con.register(registered, rows)
            try:
                picked = ", ".join(f"c{i} AS {quoted(name)}" for i, name in enumerate(columns))
                con.execute(f"CREATE OR REPLACE TABLE {data} AS SELECT {picked}, {ROW_NUMBER} "
                            f"FROM {quoted(registered)} ORDER BY {ROW_NUMBER}").fetchall()
            finally:
                con.unregister(registered)
            numbered = f"SELECT * FROM {data}"
        elif read.kind.format is FileFormat.PARQUET:
            parquet = f"read_parquet({_literal(str(source))})"
            types = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {parquet}").fetchall()}
            picked = ", ".join(f"{_as_text(quoted(keys[0]), types.get(keys[0], ''))} AS {quoted(name)}"
                               for keys, name in zip(read.fields, columns, strict=True))
            con.execute(f"CREATE OR REPLACE TABLE {data} AS SELECT {picked} FROM {parquet}").fetchall()
        else:
            picked = ", ".join(f"json_extract_string(json, {_literal(json_path(keys))}) AS {quoted(name)}"
                               for keys, name in zip(read.fields, columns, strict=True))
            records = _json_records(source, read.kind)
            con.execute(f"CREATE OR REPLACE TABLE {data} AS SELECT {picked} FROM {records}").fetchall()
    except duckdb.Error as error:
        raise EngineError(_json_error(error, source, read.kind)) from None
    con.execute(f"CREATE OR REPLACE VIEW {quoted(table)} AS {numbered}").fetchall()
    return int(con.execute(f"SELECT count(*) FROM {data}").fetchall()[0][0])


def _as_text(column: str, duckdb_type: str) -> str:
    if duckdb_type.endswith("]") or duckdb_type.upper().startswith(_NESTED):
        return f"CAST(to_json({column}) AS VARCHAR)"
    return f"CAST({column} AS VARCHAR)"


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql(dialect="duckdb")
