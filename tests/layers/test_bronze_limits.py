"""Bronze at the edges of what a reader takes: rows near the limit on a row's length, and headers wider
than the bytes a first sniff reads. A file either reads every row it holds or fails alone, with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import FileRejected
from shoplake.landing.ledger import FAILED, LOADED, SUCCEEDED
from shoplake.layers.bronze import MAX_HEADER_BYTES, SNIFF_BYTES, sniff
from shoplake.layers.sql import select, table
from shoplake.pipeline import FileOutcome, RunReport, run
from shoplake.tables import query_table
from tests.conftest import FIXTURES, copy_fixture

ORDERS = "orders_2026_01_05.csv"
HEADER = "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at"
ROW_LIMIT = 2_000_000  # bytes: a row this long or longer fails its file, on every engine
TOO_LONG = f"is too long (the reader's limit is {ROW_LIMIT:,} bytes per row)"


def order(order_id: int, status: str = "delivered") -> str:
    return f"{order_id},1,{status},2,40.00,USD,2026-01-05 09:00:00,2026-01-05 10:00:00"


def order_of_length(order_id: int, length: int) -> str:
    """An order row exactly `length` bytes long, its status padded out (a value silver will quarantine)."""
    padding = length - len(order(order_id, ""))
    return order(order_id, "x" * padding)


def outcome(report: RunReport, name: str) -> FileOutcome:
    return next(f for b in report.batches for f in b.files if f.file == name)


def landed_mini(workspace: Settings, orders: bytes) -> None:
    """The mini fixture's feeds, with `orders` as the orders file (and without the binary shipping file)."""
    copy_fixture("mini", workspace.landing)
    (workspace.landing / "shipping_2026_01_05.csv").unlink()
    (workspace.landing / ORDERS).write_bytes(orders)


def assert_failed_alone(workspace: Settings, report: RunReport, content: bytes, reason: str) -> None:
    failed = outcome(report, ORDERS)
    assert failed.status == FAILED
    assert failed.rows_read == 0
    assert reason in str(failed.error)
    assert "\n" not in str(failed.error) and len(str(failed.error)) < 400, "one short line, not the row's text"
    assert (workspace.archive_dir / "failed" / "2026-01-05" / ORDERS).read_bytes() == content
    assert report.batches[0].status == SUCCEEDED
    for name, read in (("customers_2026_01_05.csv", 3), ("products_2026_01_05.csv", 3)):
        assert (outcome(report, name).status, outcome(report, name).rows_read) == (LOADED, read), name


# -- rows longer than the limit ---------------------------------------------------------------------------
def test_a_40_mb_last_line_fails_its_file_on_every_engine(on_engine: Settings) -> None:
    # DuckDB's parallel reader used to drop this row without a word (read 10, loaded 10); Spark read it.
    content = "\n".join([HEADER, *(order(200 + i) for i in range(10)), order_of_length(999, 40_000_000)]).encode()
    landed_mini(on_engine, content)
    report = run(on_engine)
    assert_failed_alone(on_engine, report, content, TOO_LONG)


@pytest.mark.parametrize(
    ("size", "rows_after", "line_break", "where"),
    [
        (40_000_000, 0, True, "the last line"),  # a last row past DuckDB's 32 MB buffer, with its line break
        (40_000_000, 10, True, "line 12"),  # past the buffer mid-file: the parallel reader gives up on it
        (3_000_000, 10, True, "line 12"),  # over the limit but within the buffer
        (3_000_000, 0, False, "the last line"),
        (ROW_LIMIT, 10, True, "line 12"),  # the limit itself is one byte too many
    ],
    ids=["40mb-last-with-break", "40mb-middle", "3mb-middle", "3mb-last", "at-the-limit"],
)
def test_a_row_over_the_limit_is_named_wherever_it_is(
    workspace: Settings, size: int, rows_after: int, line_break: bool, where: str
) -> None:
    lines = [HEADER, *(order(200 + i) for i in range(10)), order_of_length(999, size),
             *(order(300 + i) for i in range(rows_after))]
    content = ("\n".join(lines) + ("\n" if line_break else "")).encode()
    landed_mini(workspace, content)
    report = run(workspace)
    assert_failed_alone(workspace, report, content, f"{where} {TOO_LONG}")


def test_a_large_file_with_rows_just_under_the_limit_reads_every_row(workspace: Settings) -> None:
    # About 45 MB: more than one of DuckDB's 32 MB buffers, so the parallel reader splits the file; rows one
    # byte under the limit mid-file and last, the last one for the check on the file's end to let through.
    body = [order(100_000 + i) for i in range(600_000)]
    lines = [HEADER, *body[:300_000], order_of_length(1, ROW_LIMIT - 1), *body[300_000:],
             order_of_length(2, ROW_LIMIT - 1)]
    landed_mini(workspace, "\n".join(lines).encode())  # its customers: order rows of customer 1 load
    report = run(workspace)
    read = outcome(report, ORDERS)
    assert (read.status, read.error) == (LOADED, None)
    assert read.rows_read == len(lines) - 1 == 600_002
    assert read.rows_loaded == 600_000 and read.rows_quarantined == 2, "the padded statuses are not valid"
    quarantined = sorted(query_table(workspace, "quarantine", "orders",
                                     select("order_id", "_row_number").from_(table("orders", "quarantine"))))
    assert quarantined == [("1", 300_001), ("2", 600_002)], "rows keep their place in the file"


# -- headers wider than the sniffed bytes -----------------------------------------------------------------
def widened(text: str, extra: int) -> str:
    """The file with `extra` more columns, named vendor_attribute_NNNNN and valued vNNNNN in every row (so
    that the fixture's duplicate row stays one)."""
    header, *rows = text.splitlines()
    names = ",".join(f"vendor_attribute_{j:05d}" for j in range(extra))
    values = ",".join(f"v{j:05d}" for j in range(extra))
    return "\n".join([f"{header},{names}", *(f"{row},{values}" for row in rows)]) + "\n"


def test_a_header_of_5000_columns_is_read_whole_and_the_file_loads(workspace: Settings) -> None:
    content = widened((FIXTURES / "mini" / ORDERS).read_text(), 4_992)
    assert len(content.splitlines()[0]) > SNIFF_BYTES
    landed_mini(workspace, content.encode())
    report = run(workspace)
    wide = outcome(report, ORDERS)
    assert (wide.status, wide.error) == (LOADED, None)
    # The mini fixture's own outcome: read, loaded, quarantined, duplicates.
    assert (wide.rows_read, wide.rows_loaded, wide.rows_quarantined, wide.rows_duplicate) == (6, 2, 3, 1)
    query = select("_row_number", "order_id", "customer_id", "status", "_rescued").from_(table("orders", "bronze"))
    bronze = {r[0]: r[1:] for r in query_table(workspace, "bronze", "orders", query)}
    assert bronze[1][:3] == ("100", "1", "delivered"), "contract columns are matched by name"
    rescued = json.loads(str(bronze[1][3]))
    assert len(rescued) == 4_992
    assert (rescued["vendor_attribute_00000"], rescued["vendor_attribute_04991"]) == ("v00000", "v04991")
    assert {r[0] for r in query_table(workspace, "silver", "orders")} == {100, 103}


def test_a_header_without_a_line_break_in_its_first_mebibyte_fails_its_file(workspace: Settings) -> None:
    names = ",".join(f"vendor_attribute_{j:06d}" for j in range(MAX_HEADER_BYTES // 20))
    content = f"{HEADER},{names}\n{order(100)}\n".encode()
    assert len(content) > MAX_HEADER_BYTES
    landed_mini(workspace, content)
    report = run(workspace)
    assert_failed_alone(workspace, report, content, f"no line break in the first {MAX_HEADER_BYTES:,} bytes")


def test_sniff_reads_a_header_up_to_the_limit_and_not_beyond(tmp_path: Path) -> None:
    contract = load_contracts()["orders"]
    path = tmp_path / ORDERS
    names = [f"vendor_{j:08d}" for j in range((MAX_HEADER_BYTES - len(HEADER)) // 16)]  # 15 bytes and a comma
    names[-1] += "z" * (MAX_HEADER_BYTES - len(",".join([HEADER, *names])))  # the header is now exactly the limit
    header = ",".join([HEADER, *names])
    assert len(header) == MAX_HEADER_BYTES
    path.write_text(f"{header}\n{order(100)}\n")
    layout = sniff(path, contract)
    assert len(layout.targets) == 8 + len(names) and layout.extra[-1] == (8 + len(names) - 1, names[-1])
    path.write_text(f"{header}z\n{order(100)}\n")
    with pytest.raises(FileRejected, match="no line break in the first"):
        sniff(path, contract)


def test_a_header_name_longer_than_the_csv_module_reads_fails_its_file(tmp_path: Path) -> None:
    path = tmp_path / ORDERS
    path.write_text(f"{HEADER},{'z' * 200_000}\n{order(100)}\n")
    with pytest.raises(FileRejected, match="the header row cannot be read as CSV: field larger than field limit"):
        sniff(path, load_contracts()["orders"])
