"""The sales-order job: its own notebook, run through papermill, sends the submitted CRONUS
orders to BC and leaves an output notebook that shows them."""

from __future__ import annotations

import json
from pathlib import Path

from nav_crm_ops.demo import run_demo
from nav_crm_ops.jobs import sync_job_name

PREREQUISITES = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "ITEM-PRODUCT"]


def test_sales_order_job_sends_submitted_orders_and_shows_them(tmp_path: Path) -> None:
    runs = run_demo(tmp_path, echo=lambda _: None, mappings=[*PREREQUISITES, "SALES ORDERS"])
    by_job = {r.job: r for r in runs}
    orders = by_job[sync_job_name("SALES ORDERS")]
    assert orders.outcome == "succeeded", orders.error
    assert orders.counts["inserted"] == 3, orders.counts  # ORD-1001..1003 are submitted
    assert orders.counts["failed"] == 0
    assert orders.output_notebook is not None
    notebook = json.loads(orders.output_notebook.read_text(encoding="utf-8"))
    assert notebook["cells"][0]["source"][0].startswith("# Sales orders job report")
    text = json.dumps(notebook)
    assert orders.output_html is not None
    report = orders.output_html.read_text(encoding="utf-8")
    for number in ("ORD-1001", "ORD-1002", "ORD-1003"):  # each order sent, by its number
        assert number in report
    assert "create in BC" in report and "succeeded" in report
    secret = json.loads((tmp_path / "sandbox" / "sandbox.json").read_text())["client_secret"]
    assert secret not in text
