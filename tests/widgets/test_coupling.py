"""CouplingPanel against the sandbox: search, suggestions, couple, links, uncouple, sync now."""

from __future__ import annotations

import html

import polars as pl
import pytest

from nav_crm_ops.connectors import WriteOp
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import SyncError
from nav_crm_ops.widgets import CouplingPanel


def loaded_panel(ws: Workspace) -> CouplingPanel:
    panel = CouplingPanel(ws, top=500, page_size=250)
    panel.mapping.value = "CUSTOMER"
    panel.search_button.click()
    return panel


def first_match(panel: CouplingPanel) -> tuple[str, str]:
    panel.suggest_button.click()
    matched = panel.suggestions.frame.filter((pl.col("status") == "matched")
                                             & (pl.col("source_side") == "nav"))
    assert matched.height > 0
    return matched.get_column("source_id")[0], matched.get_column("other_id")[0]


def test_search_crm_by_name(sandbox_workspace: Workspace) -> None:
    panel = loaded_panel(sandbox_workspace)
    everything = panel.crm_table.frame
    wanted = everything.get_column("name")[0]
    panel.crm_search.value = wanted
    panel.search_button.click()
    found = panel.crm_table.frame.get_column("name").to_list()
    assert wanted in found
    assert all(wanted.lower() in (value or "").lower() for value in found)
    assert len(found) < everything.height


def test_search_nav_by_number(sandbox_workspace: Workspace) -> None:
    panel = CouplingPanel(sandbox_workspace)
    panel.mapping.value = "CUSTOMER"
    panel.nav_search.value = "10000"
    panel.search_button.click()
    assert "10000" in panel.nav_table.frame.get_column("key").to_list()


def test_suggestions_count_matched_and_unmatched(sandbox_workspace: Workspace) -> None:
    panel = loaded_panel(sandbox_workspace)
    panel.suggest_button.click()
    statuses = panel.suggestions.frame.get_column("status").to_list()
    assert set(statuses) <= {"matched", "unmatched", "ambiguous"}
    assert f"{statuses.count('matched')} matched" in panel.errors.message
    nav_side = panel.suggestions.frame.filter(pl.col("source_side") == "nav")
    assert nav_side.height and all(
        r.split(" ")[0].isdigit() for r in nav_side.get_column("source_record").to_list())
    assert sandbox_workspace.store.couplings_frame("CUSTOMER").height == 0


def test_couple_show_links_and_uncouple(sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    panel = loaded_panel(ws)
    nav_id, crm_id = first_match(panel)
    panel.nav_table.select([nav_id])
    panel.crm_table.select([crm_id])
    panel.couple_button.click()
    coupling = ws.store.get_coupling_by_nav("CUSTOMER", nav_id)
    assert coupling is not None and coupling.crm_id == crm_id
    assert panel.nav_table.frame.filter(pl.col("id") == nav_id).get_column("coupled_to")[0] \
        == crm_id
    assert f"id={crm_id}" in panel.links.value and "Open in Dynamics 365 Sales" in \
        panel.links.value
    panel.crm_table.select([])
    panel.nav_table.select([nav_id])
    panel.uncouple_button.click()
    assert ws.store.get_coupling_by_nav("CUSTOMER", nav_id) is None
    assert "1 coupling(s) removed" in panel.errors.message


def test_coupling_a_taken_record_is_refused_in_plain_words(
        sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    panel = loaded_panel(ws)
    nav_id, crm_id = first_match(panel)
    ws.couple("CUSTOMER", nav_id, crm_id)
    other_nav = next(i for i in panel.nav_table.frame.get_column("id").to_list() if i != nav_id)
    panel.search_button.click()
    panel.nav_table.select([other_nav])
    panel.crm_table.select([crm_id])
    with pytest.raises(SyncError):
        panel.couple_button.click()
    assert panel.errors.message.startswith("Could not couple the records: ")
    assert "already coupled" in panel.errors.message
    assert ws.store.get_coupling_by_nav("CUSTOMER", other_nav) is None


def test_couple_suggested_then_sync_now(sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    ws.sync_all(["SALESPEOPLE"])
    panel = loaded_panel(ws)
    nav_id, crm_id = first_match(panel)
    panel.suggestions.select([f"nav:{nav_id}"])
    panel.couple_suggestions_button.click()
    coupling = ws.store.get_coupling_by_nav("CUSTOMER", nav_id)
    assert coupling is not None and coupling.crm_id == crm_id
    assert panel.errors.message.startswith("Coupled 1 pair(s)")
    assert nav_id not in panel.suggestions.frame.get_column("source_id").to_list()
    panel.search_button.click()
    panel.nav_table.select([nav_id])
    panel.direction.value = "to_crm"
    panel.confirm_overwrite.value = True
    panel.sync_button.click()
    report = panel.progress.wait()
    assert report is not None and report.results[0].mapping == "CUSTOMER"
    assert report.failed == 0
    assert "Synchronized" in panel.result.value
    assert ws.runs("CUSTOMER").height >= 2


def test_sync_now_warns_when_the_destination_is_newer(sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    ws.sync_all(["SALESPEOPLE"])
    panel = loaded_panel(ws)
    nav_id, crm_id = first_match(panel)
    ws.couple("CUSTOMER", nav_id, crm_id)
    outcome = ws.connections.dataverse.write(
        [WriteOp.update("accounts", crm_id, {"telephone1": "+44 20 7946 0000"})])
    assert outcome[0].ok
    panel.search_button.click()
    panel.nav_table.select([nav_id])
    panel.direction.value = "to_crm"
    assert "The destination holds newer data" in panel.warning.value
    runs_before = ws.runs("CUSTOMER").height
    panel.sync_button.click()
    assert "Not synchronized" in panel.errors.message
    assert ws.runs("CUSTOMER").height == runs_before
    panel.direction.value = "merge"
    assert panel.warning.value == ""
    panel.direction.value = "to_crm"
    panel.confirm_overwrite.value = True
    panel.sync_button.click()
    report = panel.progress.wait()
    assert report is not None and report.failed == 0
    assert ws.runs("CUSTOMER").height > runs_before
    crm = ws.records("CUSTOMER", "crm", top=500).filter(pl.col("id") == crm_id)
    assert crm.get_column("telephone1")[0] != "+44 20 7946 0000"


def test_create_and_couple_unmatched(sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    panel = CouplingPanel(ws)
    panel.mapping.value = "CURRENCY"
    panel.suggest_button.click()
    suggested = panel.suggestions.frame
    unmatched_nav = suggested.filter((pl.col("status") == "unmatched")
                                     & (pl.col("source_side") == "nav"))
    assert unmatched_nav.height > 0
    panel.create_button.click()
    panel.progress.wait()
    statuses = dict(panel.suggestions.frame.filter(pl.col("source_side") == "nav")
                    .select("source_id", "status").rows())
    for nav_id in unmatched_nav.get_column("source_id").to_list():
        assert statuses[nav_id] == "created"
        assert ws.store.get_coupling_by_nav("CURRENCY", nav_id) is not None
    assert panel.report is not None and panel.report.counts["inserted"] >= unmatched_nav.height


def test_coupled_customer_shows_crm_opportunities_cases_and_quotes(
        sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    dataverse = ws.connections.dataverse
    related = {name: dataverse.read(entity, select=["_customerid_value", column])
               for name, entity, column in (("Opportunities", "opportunities", "name"),
                                            ("Cases", "incidents", "title"),
                                            ("Quotes", "quotes", "name"))}
    panel = loaded_panel(ws)
    panel.suggest_button.click()
    matched = panel.suggestions.frame.filter((pl.col("status") == "matched")
                                             & (pl.col("source_side") == "nav"))
    with_activity = set(related["Opportunities"].get_column("_customerid_value").to_list())
    pair = matched.filter(pl.col("other_id").is_in(list(with_activity))).row(0, named=True)
    nav_id, crm_id = pair["source_id"], pair["other_id"]
    panel.nav_table.select([nav_id])
    assert panel.related.value == ""  # not coupled yet: nothing shown
    ws.couple("CUSTOMER", nav_id, crm_id)
    panel.search_button.click()
    panel.nav_table.select([nav_id])
    shown = panel.related.value
    assert "In Dynamics 365 Sales (read-only)" in shown
    for title, frame in related.items():
        mine = frame.filter(pl.col("_customerid_value") == crm_id)
        assert f"{title}: {mine.height}" in shown
        for value in mine.get_column(mine.columns[1]).to_list():
            assert html.escape(value) in shown


def test_buttons_without_a_selection_explain_what_to_do(sandbox_workspace: Workspace) -> None:
    panel = CouplingPanel(sandbox_workspace)
    panel.couple_suggestions_button.click()
    assert panel.errors.message == "Select one or more suggestions with status 'matched'."
    panel.couple_button.click()
    assert panel.errors.message.startswith("Select exactly one NAV/BC record and one CRM record")
    panel.sync_button.click()
    assert panel.errors.message == "Select the records to synchronize first."
    assert sandbox_workspace.store.couplings_frame("CUSTOMER").height == 0


def test_the_integrations_own_write_is_not_newer_data(sandbox_workspace: Workspace) -> None:
    """After a sync wrote CRM, CRM's modified-on is later than BC's — but it is the
    integration's own write (the version the sync stored): no warning. A person's edit after
    it does warn, in amber, never in a green box."""
    ws = sandbox_workspace
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == "10000")
    nav_id, crm_id = coupling["nav_id"].item(), coupling["crm_id"].item()
    panel = loaded_panel(ws)
    nav_row = panel.nav_table.frame.filter(pl.col("id") == nav_id).row(0, named=True)
    crm_row = panel.crm_table.frame.filter(pl.col("id") == crm_id).row(0, named=True)
    assert str(crm_row["modified"]) > str(nav_row["modified"])
    assert crm_row["version"] == crm_row["synced_version"]
    assert nav_row["record"] == "10000 The Cannon Group PLC"
    assert nav_row["coupled_record"] == crm_row["record"]
    shown = panel.nav_table.columns or ()
    assert shown[0] == "record" and not {"id", "version", "coupled_to"} & set(shown)
    panel.nav_table.select([nav_id])
    assert f"NAV/BC 10000 The Cannon Group PLC (id {nav_id})" in panel.links.value
    panel.direction.value = "to_crm"
    assert panel.newer_destination() == "" and panel.warning.value == ""
    people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                           filter="accessmode ne 4 and isdisabled eq false")
    with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
        [edit] = person.write([WriteOp.update("accounts", crm_id, {"telephone1": "+1 555"})])
    assert edit.ok
    panel.search_button.click()
    panel.nav_table.select([nav_id])
    panel.direction.value = "from_crm"
    panel.direction.value = "to_crm"
    assert f"{crm_row['record']} was changed at" in panel.warning.value
    panel.sync_button.click()
    assert panel.errors.kind == "warning" and "Not synchronized" in panel.errors.message
