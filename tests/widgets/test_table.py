"""DataTable: the itables grid over 100,000 rows: paging, choice filters, search and sort in
Python over every row, the grid holding one page, rows selected in the grid."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops.widgets.table import ALL, DataTable

CITIES = ["Oslo", "Lyon", "Graz", "Porto", "Turku", "Cork", "Brno"]
ROWS = 100_000


def customer_rows() -> list[dict[str, object]]:
    return [{"id": f"id-{i:05d}", "name": f"Customer {i:05d}", "city": CITIES[i % 7],
             "status": "failed" if i % 11 == 0 else "ok",
             "note": None if i % 5 else f"Needs REVIEW {i}"} for i in range(ROWS)]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    return customer_rows()


@pytest.fixture
def table(rows: list[dict[str, object]]) -> DataTable:
    return DataTable(pl.DataFrame(rows), key_column="id", label_columns=("name", "city"),
                     choice_columns=("city", "status"), page_size=25)


def test_pages_show_the_right_slice(table: DataTable, rows: list[dict[str, object]]) -> None:
    assert table.page_count == ROWS // 25
    table.next_button.click()
    table.next_button.click()
    assert table.page == 2
    assert table.page_rows.get_column("id").to_list() == [r["id"] for r in rows[50:75]]
    assert "Customer 00050" in table.rendered_page
    assert "Customer 00049" not in table.rendered_page
    assert table.page_label.value == f"rows 51-75 of {ROWS:,} · page 3 of {ROWS // 25:,}"
    table.last_button.click()
    assert table.page_rows.get_column("id").to_list() == [r["id"] for r in rows[-25:]]
    assert table.next_button.disabled
    table.page_size.value = 100
    assert table.page == 0 and table.page_count == ROWS // 100
    assert table.page_rows.height == 100
    # only the page is in the grid, never all rows
    assert len(table.rendered_rows) == 100
    assert len(table.rendered_rows[0]) == 5


def test_sort_orders_every_row_not_only_the_page(table: DataTable,
                                                 rows: list[dict[str, object]]) -> None:
    table.choices["status"].value = "failed"
    table.sort_by.value = "name"
    table.descending.value = True
    failed = [r for r in rows if r["status"] == "failed"]
    expected = sorted((str(r["name"]) for r in failed), reverse=True)
    assert table.view.get_column("name").to_list() == expected
    assert table.page_rows.get_column("name").to_list() == expected[:25]
    assert expected[0] in table.rendered_rows[0][1]
    table.last_button.click()
    assert table.page_rows.get_column("name").to_list()[-1] == expected[-1]
    table.sort_by.value = "note"  # nulls go last, whatever the direction
    assert table.view.get_column("note").to_list()[-1] is None
    assert table.view.get_column("note").to_list()[0] is not None


def test_choice_filters_and_search_match_a_plain_scan(
        table: DataTable, rows: list[dict[str, object]]) -> None:
    started = time.perf_counter()
    table.choices["city"].value = "Graz"
    table.choices["status"].value = "failed"
    expected = [r["id"] for r in rows if r["city"] == "Graz" and r["status"] == "failed"]
    assert table.view.get_column("id").to_list() == expected
    table.search.value = "review"
    expected = [r["id"] for r in rows if r["city"] == "Graz" and r["status"] == "failed"
                and r["note"] is not None and "review" in str(r["note"]).lower()]
    assert table.view.get_column("id").to_list() == expected
    assert 0 < len(expected) < 2000
    assert time.perf_counter() - started < 2.0
    assert f"of {len(expected)} (filtered from {ROWS:,})" in table.page_label.value
    table.choices["city"].value = ALL
    table.choices["status"].value = ALL
    table.search.value = "customer 4999"
    assert table.view.get_column("id").to_list() == [f"id-{i:05d}" for i in range(49990, 50000)]
    assert table.page_label.value == f"rows 1-10 of 10 (filtered from {ROWS:,}) · page 1 of 1"


def test_search_without_hits_shows_an_empty_page(table: DataTable) -> None:
    table.search.value = "no such customer"
    assert table.view.height == 0
    assert table.rendered_rows == []
    assert table.page_label.value.startswith("rows 0-0 of 0")
    assert table.selected_keys == []


def test_selection_reports_keys_and_rows(table: DataTable) -> None:
    seen: list[list[object]] = []
    table.on_select(seen.append)
    table.choices["city"].value = "Cork"
    first_two = table.page_rows.get_column("id").to_list()[:2]
    table.select(first_two)
    assert table.grid.selected_rows == [0, 1]  # what the grid highlights
    assert seen[-1] == first_two
    assert table.selected_rows.get_column("city").unique().to_list() == ["Cork"]
    assert table.selected_labels == [f"{n} · Cork" for n in
                                     table.selected_rows.get_column("name").to_list()]
    with pytest.raises(KeyError, match="not on the current page"):
        table.select(["id-00000"])
    # a click in the browser sets the grid's selected_rows: it reaches the listeners as keys
    table.grid.selected_rows = [3]
    assert seen[-1] == table.selected_keys == [table.page_rows.get_column("id")[3]]
    table.next_button.click()  # a new page starts without a selection
    assert table.selected_keys == [] and table.grid.selected_rows == []
    assert table.select_present([*first_two, table.page_rows.get_column("id")[0]]) == [
        table.page_rows.get_column("id")[0]]


def test_cells_are_escaped_whole_and_styled_per_row() -> None:
    message = "<b>Salesperson BD</b> has no matching CRM user: " + "couple it first. " * 8
    table = DataTable(pl.DataFrame({"id": ["a", "b"], "message": [message, "short"]}),
                      key_column="id", row_style=lambda r: "color:red" if r["id"] == "b" else "")
    first, second = table.rendered_rows
    assert "&lt;b&gt;Salesperson BD&lt;/b&gt;" in first[1] and "<b>" not in first[1]
    assert first[1].endswith("couple it first. </div>")  # never cut before the advice
    assert "max-width" in first[1] and first[0] == "a"
    assert second == ["<div class='nco-cell' style='color:red'>b</div>",
                      "<div class='nco-cell' style='color:red'>short</div>"]
    stamps = DataTable(pl.DataFrame({"at": ["2026-12-03T15:54:58.069875Z", "2026-12-03"]}))
    assert stamps.rendered_rows == [["2026-12-03 15:54:58 UTC"], ["2026-12-03"]]
    assert stamps.view.get_column("at")[0] == "2026-12-03T15:54:58.069875Z"  # data unchanged


def test_extra_filter_and_export(table: DataTable, tmp_path: Path) -> None:
    table.set_filter("every 1000th", pl.col("id").str.ends_with("000"))
    assert table.view.height == ROWS // 1000
    target = table.export(tmp_path / "view.csv")
    exported = pl.read_csv(target)
    assert exported.get_column("id").to_list() == [f"id-{i:05d}" for i in range(0, ROWS, 1000)]
    table.set_filter("every 1000th", None)
    assert table.view.height == ROWS
    with pytest.raises(ValueError, match=r"\.csv or \.xlsx"):
        table.export(tmp_path / "view.json")
    table.set_filter("every 1000th", pl.col("id").str.ends_with("000"))
    workbook = table.export(tmp_path / "view.xlsx")
    assert workbook.read_bytes()[:2] == b"PK"  # an Office Open XML (zip) workbook
