"""Typed form of a feed contract: what a YAML file may say, checked field by field."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"


# The SQL type silver casts each column to (DuckDB's dialect); rules and derived columns see these types.
SQL_TYPES = {
    ColumnType.STRING: "VARCHAR",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.DECIMAL: "DECIMAL(18, 2)",
    ColumnType.DOUBLE: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "TIMESTAMP",
}


class Severity(StrEnum):
    QUARANTINE = "quarantine"  # the row goes to quarantine, the batch goes on
    WARN = "warn"  # the row loads, the failure is counted in the quality results
    FAIL_BATCH = "fail_batch"  # any failing row stops the whole batch before it writes


class LoadMode(StrEnum):
    APPEND = "append"
    UPSERT = "upsert"
    SCD2 = "scd2"


class Untracked(StrEnum):
    """scd2: what the columns outside `tracked` hold in a version."""

    UPDATE = "update"  # the values of the version's last observation: the current version is updated in place
    IGNORE = "ignore"  # the values of the observation that opened the version


class DriftPolicy(StrEnum):
    RESCUE = "rescue"  # extra columns kept as JSON in _rescued, missing ones read as NULL
    QUARANTINE = "quarantine"  # rows of a drifted file go to quarantine
    FAIL = "fail"  # a drifted file is rejected


class FileFormat(StrEnum):
    """How a feed's files are read (contracts/formats.py tells it from a file's name when not declared)."""

    CSV = "csv"
    NDJSON = "ndjson"  # one JSON object per line
    JSON = "json"  # a JSON array of objects (or one object)
    PARQUET = "parquet"
    XLSX = "xlsx"  # one sheet of an Excel workbook, its first row the header


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: str = ""
    type: ColumnType = ColumnType.STRING
    required: bool = False
    source: str | None = None  # header name in the file, when it differs from the column name
    accepted_values: tuple[str, ...] | None = None
    format: Literal["email", "phone"] | None = None
    references: str | None = None  # "<feed>.<column>"
    case: Literal["lower", "upper"] | None = None
    map: dict[str, str] | None = None  # normalisation of known aliases, applied after case
    description: str | None = None

    @property
    def header(self) -> str:
        return self.source or self.name

    @field_validator("map", mode="before")
    @classmethod
    def _map_as_text(cls, value: object) -> object:
        """YAML reads `1: one` with an int key: a mapped value is text, so numbers are taken as written."""
        if not isinstance(value, dict):
            return value
        return {_map_text(k, "key"): _map_text(v, "value") for k, v in value.items()}

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: object) -> object:
        if isinstance(value, str) and value not in {t.value for t in ColumnType}:
            known = ", ".join(t.value for t in ColumnType)
            raise ValueError(f"unknown type {value!r} (known: {known})")
        return value


def _map_text(value: object, what: str) -> object:
    if isinstance(value, bool):  # YAML 1.1 reads yes/no/on/off as booleans: what was written is lost
        raise ValueError(f"map {what} {value!r} was read as a boolean; quote it (\"yes\": ...)")
    if isinstance(value, int | float):
        return str(value)
    return value


class Derived(_Strict):
    """A column computed from the row: an expression over the file's columns and earlier derived columns."""

    expr: str
    type: ColumnType | None = None  # cast to this type; without it the expression's own type is kept
    description: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: object) -> object:
        return Column._known_type(value)


class Rule(_Strict):
    name: str
    expr: str
    severity: Severity = Severity.QUARANTINE
    message: str | None = None


class Load(_Strict):
    mode: LoadMode = LoadMode.APPEND
    sequence: str | None = None  # latest value wins among versions of one key
    tracked: tuple[str, ...] = ()  # scd2: a change in these columns opens a new version
    untracked: Untracked = Untracked.UPDATE  # scd2: the other columns' values in a version
    deletes: str | None = None  # scd2: a row rule (SQL boolean) marking a row as the key's deletion


class Freshness(_Strict):
    max_age_hours: float


class Contract(_Strict):
    feed: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str | None = None
    files: tuple[str, ...]
    grain: str | None = None
    primary_key: tuple[str, ...]
    load: Load = Load()
    schema_drift: DriftPolicy = DriftPolicy.RESCUE
    format: FileFormat | None = None  # None: told by each file's extension (csv when it has no known one)
    sheet: str | None = None  # xlsx: the sheet holding the rows (None: the workbook's first sheet)
    null_values: tuple[str, ...] = ("",)
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...] = ()
    derived: dict[str, Derived] = Field(default_factory=dict)
    freshness: Freshness | None = None
    # A file with a larger share of its rows quarantined is flagged and fails the run (exit 1).
    max_quarantine_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    source: str = ""  # where the contract was loaded from, for messages

    @field_validator("derived", mode="before")
    @classmethod
    def _derived_shorthand(cls, value: object) -> object:
        """`name: <expr>` is short for `name: {expr: <expr>}`."""
        if not isinstance(value, dict):
            return value
        return {k: {"expr": v} if isinstance(v, str) else v for k, v in value.items()}

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def type_of(self, name: str) -> ColumnType | None:
        """The type of a column or a derived column (None: a derived column that keeps its expression's)."""
        if name in self.derived:
            return self.derived[name].type
        return self.column(name).type

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def references(self) -> list[tuple[Column, str, str]]:
        """(column, parent feed, parent column) for every reference of this feed."""
        out = []
        for column in self.columns:
            if column.references:
                feed, _, parent_column = column.references.partition(".")
                out.append((column, feed, parent_column))
        return out
