"""DataTable: paging, choice filters, search and selection over 50,000 rows."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops.widgets.table import ALL, DataTable

CITIES = ["Oslo", "Lyon", "Graz", "Porto", "Turku", "Cork", "Brno"]
ROWS = 50_000


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
    assert "Customer 00050" in table.html.value and "Customer 00049" not in table.html.value
    table.last_button.click()
    assert table.page_rows.get_column("id").to_list() == [r["id"] for r in rows[-25:]]
    assert table.next_button.disabled
    table.page_size.value = 100
    assert table.page == 0 and table.page_count == ROWS // 100
    assert table.page_rows.height == 100
    # only the page is rendered, never all rows
    assert table.html.value.count("<tr") == 101


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
    assert 0 < len(expected) < 1000
    assert time.perf_counter() - started < 2.0
    assert f"of {len(expected)} (filtered from {ROWS})" in table.page_label.value
    table.choices["city"].value = ALL
    table.choices["status"].value = ALL
    table.search.value = "customer 4999"
    assert table.view.get_column("id").to_list() == [f"id-{i:05d}" for i in range(49990, 50000)]


def test_search_without_hits_shows_an_empty_page(table: DataTable) -> None:
    table.search.value = "no such customer"
    assert table.view.height == 0
    assert "no rows" in table.html.value
    assert table.selector.options == ()


def test_selection_reports_keys_and_rows(table: DataTable) -> None:
    seen: list[list[object]] = []
    table.on_select(seen.append)
    table.choices["city"].value = "Cork"
    first_two = table.page_rows.get_column("id").to_list()[:2]
    table.select(first_two)
    assert seen[-1] == first_two
    assert table.selected_rows.get_column("city").unique().to_list() == ["Cork"]
    with pytest.raises(KeyError, match="not on the current page"):
        table.select(["id-00000"])


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
