"""PreviewPanel: table, filters, field diff, include/exclude, save; preview → apply end to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops import WriteOp
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.demo import SANDBOX_SECRET_ENV
from nav_crm_ops.engine.diff import DiffField, three_way_diff
from nav_crm_ops.engine.plan import Plan, plan_rows_from_diff
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.widgets import PreviewPanel

FIELDS = [DiffField("name", "bidirectional"), DiffField("phone", "bidirectional")]


def customer_plan(workspace: Workspace) -> Plan:
    """p1: NAV renamed; p2: CRM changed the phone; p3: both renamed (conflict, NAV wins)."""
    base = pl.DataFrame({"pair_id": ["p1", "p2", "p3"], "name": ["Alpha", "Beta", "Gamma"],
                         "phone": ["1", "2", "3"]})
    nav = pl.DataFrame({"pair_id": ["p1", "p2", "p3"], "name": ["Alpha Ltd", "Beta", "Gamma NAV"],
                        "phone": ["1", "2", "3"]})
    crm = pl.DataFrame({"pair_id": ["p1", "p2", "p3"], "name": ["Alpha", "Beta", "Gamma CRM"],
                        "phone": ["1", "22", "3"]})
    diff = three_way_diff(nav, crm, base, FIELDS, conflict_policy="nav_wins")
    identities = pl.DataFrame({"pair_id": ["p1", "p2", "p3"], "nav_id": ["n1", "n2", "n3"],
                               "crm_id": ["c1", "c2", "c3"]})
    records, changes = plan_rows_from_diff("CUSTOMER", diff, identities)
    records = records.with_columns(pl.Series("nav_key", ["10000", "20000", "30000"]))
    return Plan.create(records, changes, workspace_fingerprint=workspace.fingerprint)


def test_table_filters_by_action_field_and_text(offline_workspace: Workspace) -> None:
    panel = PreviewPanel(offline_workspace)
    panel.show_plan(customer_plan(offline_workspace))
    table = panel.table
    assert table.view.height == 3
    table.choices["action"].value = "update_nav"
    assert table.view.get_column("record_id").to_list() == ["p2"]
    table.choices["action"].value = "(all)"
    panel.field_filter.value = "name"
    assert sorted(table.view.get_column("record_id").to_list()) == ["p1", "p3"]
    table.search.value = "30000"
    assert table.view.get_column("record_id").to_list() == ["p3"]
    assert "update_crm (to_crm)" in panel.summary.value


def test_selecting_a_conflict_shows_both_values_and_the_policy(
        offline_workspace: Workspace) -> None:
    panel = PreviewPanel(offline_workspace)
    panel.show_plan(customer_plan(offline_workspace))
    panel.table.select(["CUSTOMER|p3"])
    diff = panel.diff.value
    assert "CONFLICT" in diff and "background:#fdecea" in diff
    assert "NAV/BC: Gamma NAV<br>CRM: Gamma CRM" in diff
    assert "policy: NAV/BC wins → write CRM: Gamma NAV" in diff
    panel.table.select(["CUSTOMER|p2"])
    assert "2 → 22" in panel.diff.value and "write NAV/BC" in panel.diff.value
    assert "CONFLICT" not in panel.diff.value


def test_exclude_include_and_save(offline_workspace: Workspace, tmp_path: Path) -> None:
    panel = PreviewPanel(offline_workspace, plans_dir=tmp_path)
    panel.show_plan(customer_plan(offline_workspace))
    panel.table.select(["CUSTOMER|p1", "CUSTOMER|p3"])
    panel.exclude_button.click()
    assert panel.plan is not None
    included = dict(panel.plan.records.select("record_id", "included").rows())
    assert included == {"p1": False, "p2": True, "p3": False}
    assert "text-decoration:line-through" in panel.table.rendered_page
    panel.table.select(["CUSTOMER|p3"])
    panel.include_button.click()
    panel.plan_path.value = str(tmp_path / "reviewed.parquet")
    panel.save_button.click()
    saved = Plan.load(tmp_path / "reviewed.parquet")
    assert dict(saved.records.select("record_id", "included").rows()) == {
        "p1": False, "p2": True, "p3": True}
    assert "Plan saved to" in panel.errors.message
    panel.exclude_shown_button.click()
    assert not panel.plan.records.get_column("included").any()
    assert panel.apply_button.disabled


def test_failing_preview_is_shown_and_raised(offline_workspace: Workspace,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SANDBOX_SECRET_ENV)
    panel = PreviewPanel(offline_workspace)
    panel.mapping_picker.value = ("CURRENCY",)
    panel.preview_button.click()
    with pytest.raises(ConfigError):
        panel.progress.wait()
    assert panel.errors.message.startswith("Could not preview CURRENCY: ")
    assert SANDBOX_SECRET_ENV in panel.errors.message
    assert panel.apply_button.disabled


def test_preview_exclude_apply_end_to_end(sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    panel = PreviewPanel(ws)
    panel.mapping_picker.value = ("CURRENCY",)
    panel.preview_button.click()
    panel.progress.wait()
    assert panel.plan is not None and panel.progress.events > 0
    panel.table.choices["action"].value = "insert_crm"
    inserts = panel.table.view
    assert inserts.height >= 2
    excluded = inserts.row(0, named=True)
    panel.table.select([excluded["row_key"]])
    panel.exclude_button.click()
    kept = inserts.get_column("nav_id").to_list()[1:]
    panel.apply_button.click()
    report = panel.progress.wait()
    assert report is panel.report and report is not None
    assert report.counts["inserted"] == len(kept)
    assert ws.store.get_coupling_by_nav("CURRENCY", excluded["nav_id"]) is None
    for nav_id in kept:
        assert ws.store.get_coupling_by_nav("CURRENCY", nav_id) is not None
    crm_codes = ws.records("CURRENCY", "crm", top=500).get_column("key").to_list()
    assert excluded["nav_key"] not in crm_codes
    assert set(inserts.get_column("nav_key").to_list()[1:]) <= set(crm_codes)
    assert "<h4>Result</h4>" in panel.result.value


def test_buttons_before_a_preview_explain_what_to_do(offline_workspace: Workspace) -> None:
    panel = PreviewPanel(offline_workspace)
    panel.exclude_button.click()
    assert panel.errors.message == "Run a preview first."
    panel.save_button.click()
    assert panel.errors.message == "Run a preview first; there is no plan to save."
    panel.show_plan(customer_plan(offline_workspace))
    panel.exclude_button.click()
    assert panel.errors.message == "Select one or more records in the table first."
    assert panel.plan is not None and panel.plan.records.get_column("included").all()


def test_fifty_thousand_records_stay_fast(offline_workspace: Workspace) -> None:
    count, fields = 50_000, ["name", "phone", "city", "email"]
    records = pl.DataFrame({
        "mapping": ["CUSTOMER"] * count, "record_id": [f"r{i}" for i in range(count)],
        "nav_key": [str(100_000 + i) for i in range(count)],
        "action": ["insert_crm" if i % 3 == 0 else "update_crm" for i in range(count)]})
    changes = pl.DataFrame({
        "mapping": ["CUSTOMER"] * (count * 2),
        "record_id": [f"r{i}" for i in range(count) for _ in range(2)],
        "field": [fields[(i + k) % 4] for i in range(count) for k in range(2)],
        "nav_value": ["new"] * (count * 2), "crm_value": ["old"] * (count * 2),
        "changed_side": ["nav"] * (count * 2), "target": ["crm"] * (count * 2),
        "new_value": ["new"] * (count * 2), "resolution": ["none"] * (count * 2)})
    plan = Plan.create(records, changes, workspace_fingerprint=offline_workspace.fingerprint)
    panel = PreviewPanel(offline_workspace)
    started = time.perf_counter()
    panel.show_plan(plan)
    panel.field_filter.value = "email"
    with_email = {i for i in range(count) if "email" in (fields[i % 4], fields[(i + 1) % 4])}
    assert panel.table.view.height == len(with_email)
    panel.table.choices["action"].value = "insert_crm"
    panel.table.search.value = "10999"
    expected = sorted(f"r{i}" for i in with_email if i % 3 == 0 and "10999" in str(100_000 + i))
    assert sorted(panel.table.view.get_column("record_id").to_list()) == expected
    panel.exclude_shown_button.click()
    assert panel.plan is not None
    assert int((~panel.plan.records.get_column("included")).sum()) == len(expected)
    assert time.perf_counter() - started < 5.0
    assert len(panel.table.rendered_rows) <= panel.table.page_size.value


def _conflict_on_customer(ws: Workspace, number: str) -> tuple[str, str]:
    """Customer ``number`` synchronized, then its city changed on both sides (NAV York, CRM
    Leeds, by a person: the engine ignores its own changes)."""
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == number)
    nav_id, crm_id = coupling["nav_id"].item(), coupling["crm_id"].item()
    people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                           filter="accessmode ne 4 and isdisabled eq false")
    with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
        [crm] = person.write([WriteOp.update("accounts", crm_id, {"address1_city": "Leeds"})])
    [nav] = ws.connections.business_central.write([WriteOp.update("customers", nav_id,
                                                                  {"city": "York"})])
    assert crm.ok and nav.ok
    return nav_id, crm_id


def test_a_held_conflict_is_resolved_from_the_preview(sandbox_workspace: Workspace) -> None:
    """The diff of a held conflict says what each choice writes (never "→ empty"); Keep CRM
    value writes CRM's city to BC, the record leaves the plan, and the next preview finds
    both sides agreeing."""
    ws = sandbox_workspace
    nav_id, _crm_id = _conflict_on_customer(ws, "20000")
    panel = PreviewPanel(ws)
    panel.mapping_picker.value = ("CUSTOMER",)
    panel.preview_button.click()
    panel.progress.wait()
    key = f"CUSTOMER|{nav_id}"
    row = panel.table.frame.filter(pl.col("row_key") == key).row(0, named=True)
    assert row["action"] == "conflict" and row["nav_record"] == "20000 Selangorian Ltd."
    panel.table.search.value = "20000"
    panel.table.select([key])
    diff = panel.diff.value
    assert "→ <i>empty</i>" not in diff and "conflict_policy" not in diff
    assert ("Keep BC value writes to CRM 20000 Selangorian Ltd.: address1_city: &#x27;Leeds&#x27;"
            " → &#x27;York&#x27; (the conflict)") in diff
    assert ("Keep CRM value writes to BC 20000 Selangorian Ltd.: address1_city: "
            "&#x27;York&#x27; → &#x27;Leeds&#x27; (the conflict)") in diff
    assert panel.resolve_box.layout.display == "flex"
    panel.keep_crm_button.click()
    report = panel.progress.wait()
    assert report is panel.report and report.failed == 0 and report.counts["modified"] == 1
    customer = ws.connections.business_central.read("customers", filter="number eq '20000'")
    assert customer["city"].item() == "Leeds"
    resolved = panel.table.frame.filter(pl.col("row_key") == key).row(0, named=True)
    assert resolved["included"] == "false"
    assert resolved["message"].startswith("resolved: keep crm value")
    assert "Keep CRM value" in panel.result.value and panel.resolve_box.layout.display == "none"
    again = ws.preview("CUSTOMER").records.filter(pl.col("nav_id") == nav_id)
    assert again["action"].cast(pl.Utf8).item() == "unchanged"


def test_skip_rows_name_their_records(sandbox_workspace: Workspace,
                                      crm_person: Callable[[Workspace], Dataverse]) -> None:
    """Records skipped after failing twice show up in the preview by number and name when
    someone edits them again (the watermark has moved past them: a skipped record nobody
    touches is not read again, as in Business Central)."""
    ws = sandbox_workspace
    ws.sync_all(["CUSTOMER"])
    ws.sync_all(["CUSTOMER"])
    poseidon = ws.connections.dataverse.read(
        "accounts", select=["accountid"], filter="name eq 'Poseidon Marine Supplies'")
    with crm_person(ws) as person:
        [edit] = person.write([WriteOp.update("accounts", str(poseidon["accountid"][0]),
                                              {"telephone1": "+1 555 0100"})])
    assert edit.ok
    panel = PreviewPanel(ws)
    panel.mapping_picker.value = ("CUSTOMER",)
    panel.preview_button.click()
    panel.progress.wait()
    skips = panel.table.frame.filter(pl.col("action") == "skip")
    assert skips.height > 0
    guid = r"^[0-9a-f]{8}-[0-9a-f]{4}-"
    labels = skips.select("nav_record", "crm_record").rows()
    assert not skips.filter(pl.col("nav_record").str.contains(guid)
                            & pl.col("crm_record").str.contains(guid)).height, labels
    assert ("(none)", "Poseidon Marine Supplies") in labels
