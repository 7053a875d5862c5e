"""Advice and next steps link to the dashboard that fixes the cause, never to the CLI."""

from __future__ import annotations

from nav_crm_ops.engine.report import MappingResult, SyncReport
from nav_crm_ops.engine.troubleshoot import Remedy, advice_for
from nav_crm_ops.widgets.dashboard_links import advice_html, next_steps_html, without_cli_hints
from nav_crm_ops.widgets.landing import DASHBOARDS


def test_known_causes_get_tailored_advice_and_a_link() -> None:
    lookup = advice_for("salespersonCode 'BD' is not coupled to a CRM systemuser (mapping "
                        "SALESPEOPLE): run SALESPEOPLE first, or couple salespeoplePurchasers "
                        "'BD' by hand")
    assert lookup == advice_for("salespersonCode 'BD' is not coupled to a CRM systemuser "
                                "(mapping SALESPEOPLE)")
    assert lookup.remedy is Remedy.COUPLE
    assert lookup.text.startswith("salespersonCode BD has no matching CRM systemuser: couple "
                                  "it in Couple records")
    shown = advice_html(lookup.text, lookup.remedy)
    assert "href='couple_records.ipynb'" in shown and "nav-crm-ops" not in shown
    relation = advice_for("business_central customers: HTTP 400 Internal_InvalidTableRelation: "
                          "The field Country/Region Code of table Customer contains a value "
                          "(Atlantis) that cannot be found in the related table "
                          "(Country/Region).")
    assert relation.remedy is Remedy.FIX_SOURCE
    assert relation.text.startswith("Customer Country/Region Code Atlantis does not exist in BC")
    assert advice_for("something new", transient=True).remedy is Remedy.RETRY
    assert advice_for("something new").remedy is None
    assert "href" not in advice_html("fix it", None)


def test_next_steps_link_the_troubleshooting_and_preview_dashboards() -> None:
    report = SyncReport((MappingResult("CUSTOMER", "failed", {"failed": 2, "conflicts": 1}),))
    steps = next_steps_html(report)
    troubleshoot = next(d for d in DASHBOARDS if d.notebook == "analyse_logs.ipynb"
                        and d.view == "view=errors")
    # one mapping failed: the links open the dashboards on it
    assert f"href='{troubleshoot.notebook}?{troubleshoot.view}&amp;mapping=CUSTOMER'" in steps
    assert "2 record(s) failed or are skipped" in steps
    assert "1 conflict(s) held" in steps
    assert "href='preview_changes.ipynb?mapping=CUSTOMER'" in steps
    assert next_steps_html(SyncReport((MappingResult("CUSTOMER", "finished", {}),))) == ""
    two = next_steps_html(SyncReport((MappingResult("CUSTOMER", "failed", {"failed": 1}),
                                      MappingResult("CONTACT", "failed", {"failed": 1}))))
    assert f"href='{troubleshoot.notebook}?{troubleshoot.view}'" in two  # several: all shown


def test_run_messages_lose_their_command_line_hints() -> None:
    assert without_cli_hints("30 record(s) failed or conflict: see `nav-crm-ops errors "
                             "CUSTOMER`") == "30 record(s) failed or conflict"
    assert without_cli_hints("3 skipped; why: `nav-crm-ops errors C --groups`, restore: "
                             "`nav-crm-ops unskip C`") == "3 skipped"
    assert without_cli_hints(None) == ""
