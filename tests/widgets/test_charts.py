"""matplotlib charts as PNG images: a real time axis (newest right), colours by meaning, and
alt text that says what the chart shows. The PNGs are decoded and their pixels read."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import polars as pl
from matplotlib.image import imread

from nav_crm_ops.widgets.charts import (
    RUN_SERIES,
    Meaning,
    bar_chart_html,
    runs_over_time_html,
    stacked_bars_html,
)


def pixels(markup: str) -> np.ndarray:
    found = re.search(r"src='data:image/png;base64,([^']+)'", markup)
    assert found is not None, markup[:200]
    return imread(io.BytesIO(base64.b64decode(found.group(1))), format="png")[:, :, :3]


def columns_of(image: np.ndarray, meaning: Meaning) -> np.ndarray:
    """The x positions of the pixels drawn in ``meaning``'s colour."""
    rgb = np.array([int(meaning.colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    mask = np.all(np.abs(image - rgb) < 0.02, axis=2)
    return np.nonzero(mask)[1]


def alt_text(markup: str) -> str:
    found = re.search(r"alt='([^']*)'", markup)
    assert found is not None
    return found.group(1)


def run(started: str, **counts: object) -> dict[str, object]:
    row: dict[str, object] = {"id": 0, "mapping": "CUSTOMER", "direction": "to_crm",
                              "started_at": started, "status": "finished", "message": "",
                              "inserted": 0, "modified": 0, "deleted": 0, "failed": 0,
                              "conflicts": 0, "skipped": 0, "requests": 3, "duration_s": 1.5}
    row.update(counts)
    return row


def test_runs_sit_on_a_time_axis_newest_right_coloured_by_meaning() -> None:
    # the job log comes newest first; the chart must still put the newest run on the right
    runs = pl.DataFrame([
        run("2026-12-03T10:30:00.000000Z", failed=4, status="failed", id=2),
        run("2026-12-03T10:00:00.000000Z", inserted=6, id=1),
    ])
    markup = runs_over_time_html(runs, title="changes and failures per run")
    image = pixels(markup)
    written, failed = columns_of(image, Meaning.WRITTEN), columns_of(image, Meaning.FAILED)
    assert written.size > 50 and failed.size > 50
    assert np.median(failed) > np.median(written) + 100  # 30 minutes later: far to the right
    text = alt_text(markup)
    assert text.startswith("2 runs, oldest left, newest right: CUSTOMER to_crm at "
                           "2026-12-03 10:30:00 UTC: 0 written, 4 failed")
    assert "#1" not in text and "#2" not in text
    assert "changes and failures per run" in markup


def test_bars_are_coloured_by_meaning_and_labels_escaped() -> None:
    markup = bar_chart_html([("insert_crm (to_crm)", 6, Meaning.WRITTEN),
                             ("<b>conflict</b>", 2, Meaning.CONFLICT)], title="by action")
    image = pixels(markup)
    assert columns_of(image, Meaning.WRITTEN).size > columns_of(image, Meaning.CONFLICT).size > 50
    assert columns_of(image, Meaning.FAILED).size == 0
    assert "&lt;b&gt;conflict&lt;/b&gt;: 2" in markup and "<b>conflict" not in markup


def test_stacked_bars_total_and_describe_each_part() -> None:
    markup = stacked_bars_html([("CUSTOMER", [5, 0, 2, 1]), ("CONTACT", [3, 1, 0, 0])],
                               RUN_SERIES, title="records per mapping")
    image = pixels(markup)
    for meaning in (Meaning.WRITTEN, Meaning.FAILED, Meaning.CONFLICT, Meaning.SKIPPED):
        assert columns_of(image, meaning).size > 0, meaning
    assert alt_text(markup) == ("CUSTOMER: 5 written (inserted, modified, deleted), 2 failed, "
                                "1 skipped; CONTACT: 3 written (inserted, modified, deleted), "
                                "1 held conflicts")


def test_empty_charts_say_so_without_an_image() -> None:
    assert "nothing to show" in bar_chart_html([], title="x")
    assert "nothing to show" in stacked_bars_html([], RUN_SERIES, title="x")
    empty = runs_over_time_html(pl.DataFrame(), title="runs")
    assert "no runs yet" in empty and "<img" not in empty


def test_runs_that_started_together_share_one_bar() -> None:
    """A mapping's two directions start within milliseconds: one stacked bar, not two bars
    drawn over each other (the alt text still names each run)."""
    runs = pl.DataFrame([
        run("2026-12-03T10:00:00.100000Z", inserted=6, direction="to_crm"),
        run("2026-12-03T10:00:00.300000Z", failed=4, status="failed", direction="from_crm"),
    ])
    markup = runs_over_time_html(runs, title="runs")
    image = pixels(markup)
    written, failed = columns_of(image, Meaning.WRITTEN), columns_of(image, Meaning.FAILED)
    assert set(written) & set(failed)  # the same columns: stacked in one bar
    text = alt_text(markup)
    assert "CUSTOMER from_crm at 2026-12-03 10:00:00 UTC: 0 written, 4 failed" in text
    assert "CUSTOMER to_crm at 2026-12-03 10:00:00 UTC: 6 written, 0 failed" in text
