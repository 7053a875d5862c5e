"""HTML bar charts: bars scale to the largest value; labels are escaped."""

from __future__ import annotations

import re

from nav_crm_ops.widgets.charts import bar_chart_html, stacked_bars_html


def widths(markup: str) -> list[int]:
    return [int(w) for w in re.findall(r"width:(\d+)px", markup)]


def test_bars_scale_to_the_largest_value() -> None:
    markup = bar_chart_html([("insert_crm", 6), ("update_crm", 3), ("<b>", 0)], width_px=300)
    assert widths(markup) == [300, 150, 0]
    assert "<td style='padding-right:8px'>&lt;b&gt;</td>" in markup
    assert "<td style='padding-right:8px'><b></td>" not in markup


def test_stacked_bars_skip_zero_parts_and_total() -> None:
    markup = stacked_bars_html([("#1", [2, 0, 2]), ("#2", [1, 1, 0])], ["inserted", "modified",
                                                                        "failed"], width_px=100)
    assert widths(markup) == [50, 50, 25, 25]
    assert "#1</td><td>" in markup and "> 4</td>" in markup and "> 2</td>" in markup


def test_empty_charts_say_so() -> None:
    assert "nothing to show" in bar_chart_html([])
    assert "nothing to show" in stacked_bars_html([], ["failed"])


def test_small_values_keep_two_decimals() -> None:
    markup = bar_chart_html([("run 1", 0.06), ("run 2", 0.03), ("run 3", 12.345)], unit=" s")
    assert "0.06 s" in markup and "0.03 s" in markup and "12.3 s" in markup
