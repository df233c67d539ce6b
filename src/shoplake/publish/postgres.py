"""One lake table into PostgreSQL in one transaction: created (key, foreign keys, indexes, comments) or
brought up to its Delta version by replacing only the partitions that changed, with `publish_state`
recording the version each table holds; a failure rolls the whole table back.

SQL is composed with psycopg's `sql` module: every schema, table and column name is a quoted
`Identifier`, every value a parameter; the only literal fragments are type names this module chose.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shoplake.engines import postgres_io
from shoplake.engines.postgres_io import DeltaSnapshot, PartitionValue
from shoplake.publish.plan import TableSpec

if TYPE_CHECKING:
    import psycopg

CREATED, REPLACED, PARTITIONS, UNCHANGED = "created", "replaced", "partitions", "unchanged"
_NAME_LIMIT = 63  # PostgreSQL truncates longer identifiers; names built here stay below it


@dataclass(frozen=True)
class TableOutcome:
    schema: str
    table: str
    version: int
    action: str  # created | replaced | partitions | unchanged
    rows_copied: int
    partitions: int | None  # partitions replaced (PARTITIONS), else None
    seconds: float


def _name(*parts: str) -> str:
    """A constraint or index name from its table and columns, cut to PostgreSQL's limit."""
    joined = "_".join(parts)
    digest = hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest()[:8]
    return joined if len(joined) <= _NAME_LIMIT else f"{joined[:54]}_{digest}"


def ensure_state_table(conn: psycopg.Connection, schema: str) -> None:
    from psycopg import sql

    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.publish_state (target_schema text NOT NULL, target_table text NOT NULL, "
            "source text NOT NULL, delta_version bigint NOT NULL, rows_copied bigint NOT NULL, "
            "published_at timestamp with time zone NOT NULL DEFAULT now(), "
            "PRIMARY KEY (target_schema, target_table))").format(sql.Identifier(schema)))


def published_versions(conn: psycopg.Connection, state_schema: str) -> dict[tuple[str, str], int]:
    from psycopg import sql

    rows = conn.execute(sql.SQL("SELECT target_schema, target_table, delta_version FROM {}.publish_state")
                        .format(sql.Identifier(state_schema))).fetchall()
    conn.commit()
    return {(str(s), str(t)): int(v) for s, t, v in rows}


def _existing_columns(conn: psycopg.Connection, spec: TableSpec) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (spec.schema, spec.name)).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def _constraints(conn: psycopg.Connection, spec: TableSpec) -> set[str]:
    rows = conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s)",
                        (f'"{spec.schema}"."{spec.name}"',)).fetchall()
    return {str(r[0]) for r in rows}


def _create(conn: psycopg.Connection, spec: TableSpec, snap: DeltaSnapshot) -> None:
    """The table and its comments; its key and indexes are built once its rows are in (`_key_and_indexes`)."""
    from psycopg import sql

    table = sql.Identifier(spec.schema, spec.name)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema)))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))  # its old shape (columns changed)
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                                 for name, kind in snap.columns)
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, columns))
    names = {name for name, _ in snap.columns}
    if spec.comment:
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(spec.comment)))
    for name, note in spec.column_comments.items():
        if name in names:
            conn.execute(sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                sql.Identifier(spec.schema, spec.name, name), sql.Literal(note)))


def _key_and_indexes(conn: psycopg.Connection, spec: TableSpec, snap: DeltaSnapshot) -> None:
    """A new table's key and indexes, built over its rows at once (faster than kept up row by row)."""
    from psycopg import sql

    table = sql.Identifier(spec.schema, spec.name)
    names = {name for name, _ in snap.columns}
    key = [c for c in spec.key if c in names]
    if key and len(key) == len(spec.key):
        # A key column holding NULLs (a mart's level without a category) cannot be a primary key; one row
        # per key still holds, NULL equal to NULL.
        nullable = postgres_io.key_has_nulls(snap.path, key)
        kind = "UNIQUE NULLS NOT DISTINCT" if nullable else "PRIMARY KEY"
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + kind + " ({})").format(
            table, sql.Identifier(_name(spec.name, "key")), sql.SQL(", ").join(map(sql.Identifier, key))))
    leading = key[0] if key else None
    indexed = [n for n, kind in snap.columns if kind == "date" and n != leading]
    indexed += [fk.column for fk in spec.foreign_keys if fk.column in names and fk.column not in indexed]
    indexed += [c for c in key[1:] if c not in indexed]
    for column in indexed:
        conn.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
            sql.Identifier(_name(spec.name, column, "idx")), table, sql.Identifier(column)))


def _foreign_keys(conn: psycopg.Connection, spec: TableSpec, columns: set[str], *, drop: bool) -> None:
    """Declare each foreign key whose column the table has and whose dimension is published; with `drop`,
    drop them instead (before a load: one query validating every row afterwards is far cheaper than the
    check per copied row a declared key costs)."""
    from psycopg import sql

    present = _constraints(conn, spec)
    for fk in spec.foreign_keys:
        name = _name(spec.name, fk.column, "fkey")
        if drop and name in present:
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(spec.schema, spec.name), sql.Identifier(name)))
            present.discard(name)
        if drop or fk.column not in columns or name in present:
            continue
        parent = conn.execute("SELECT to_regclass(%s)", (f'"{spec.schema}"."{fk.table}"',)).fetchone()
        if parent is None or parent[0] is None:
            continue  # the dimension is not published (yet): declared when this table is next published
        # Deferred: a dimension republished in its own transaction may delete and copy its rows back.
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) "
                             "DEFERRABLE INITIALLY DEFERRED").format(
            sql.Identifier(spec.schema, spec.name), sql.Identifier(name), sql.Identifier(fk.column),
            sql.Identifier(spec.schema, fk.table), sql.Identifier(fk.parent_column)))


def _copy(conn: psycopg.Connection, spec: TableSpec, snap: DeltaSnapshot,
          values: list[PartitionValue] | None) -> int:
    from psycopg import sql

    names = [name for name, _ in snap.columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(spec.schema, spec.name), sql.SQL(", ").join(map(sql.Identifier, names)))
    copied = 0
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk, rows in postgres_io.csv_chunks(snap.path, snap.version, names, partition=snap.partition,
                                                  values=values):
            copy.write(chunk)
            copied += rows
    return copied


def _delete_partitions(conn: psycopg.Connection, spec: TableSpec, snap: DeltaSnapshot,
                       values: list[PartitionValue]) -> None:
    from psycopg import sql

    assert snap.partition is not None
    kind = dict(snap.columns)[snap.partition]
    column = sql.Identifier(snap.partition)
    present = [v for v in values if v is not None]
    condition = sql.SQL("{} = ANY(%s::" + kind + "[])").format(column)
    if len(present) < len(values):
        condition = sql.SQL("({} OR {} IS NULL)").format(condition, column)
    conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(spec.schema, spec.name), condition),
                 (present,))


def publish_table(conn: psycopg.Connection, spec: TableSpec, snap: DeltaSnapshot, state_schema: str) -> TableOutcome:
    """Bring one PostgreSQL table to the Delta version `snap`, in one transaction."""
    from psycopg import sql

    started = time.perf_counter()
    with conn.transaction():
        # One publisher per table at a time; the state row is read again under the lock.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"shoplake.publish:{spec.qualified}",))
        row = conn.execute(sql.SQL("SELECT delta_version FROM {}.publish_state WHERE target_schema = %s "
                                   "AND target_table = %s").format(sql.Identifier(state_schema)),
                           (spec.schema, spec.name)).fetchone()
        published = None if row is None else int(row[0])
        existing = _existing_columns(conn, spec)
        columns = {name for name, _ in snap.columns}
        if published == snap.version and existing == list(snap.columns):
            _foreign_keys(conn, spec, columns, drop=False)  # a dimension recreated since dropped them
            return TableOutcome(spec.schema, spec.name, snap.version, UNCHANGED, 0, None,
                                time.perf_counter() - started)
        values: list[PartitionValue] | None = None
        if existing != list(snap.columns):
            _create(conn, spec, snap)
            action = CREATED
        else:
            if published is not None and snap.partition is not None:
                values = postgres_io.changed_partitions(snap.path, published, snap.partition)
            action = REPLACED if values is None else PARTITIONS
            _foreign_keys(conn, spec, columns, drop=True)
            if values is None:
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(spec.schema, spec.name)))
            else:
                _delete_partitions(conn, spec, snap, values)
        copied = _copy(conn, spec, snap, values) if values != [] else 0
        if action == CREATED:
            _key_and_indexes(conn, spec, snap)
        _foreign_keys(conn, spec, columns, drop=False)
        conn.execute(sql.SQL(
            "INSERT INTO {}.publish_state (target_schema, target_table, source, delta_version, rows_copied, "
            "published_at) VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (target_schema, target_table) DO UPDATE "
            "SET source = excluded.source, delta_version = excluded.delta_version, "
            "rows_copied = excluded.rows_copied, published_at = excluded.published_at").format(
            sql.Identifier(state_schema)), (spec.schema, spec.name, snap.path, snap.version, copied))
    return TableOutcome(spec.schema, spec.name, snap.version, action, copied,
                        None if values is None else len(values), time.perf_counter() - started)
