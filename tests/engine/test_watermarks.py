"""Watermarks on the sandbox, as a scheduled job meets them.

After a first sync nobody but the integration may edit CRM for days. The change read leaves
our own writes out (``_modifiedby_value ne``), so it finds nothing newer, and the watermark
used to stay where the last person's edit left it: every later read asked Dataverse for all
of our writes since. It now moves to :data:`~nav_crm_ops.engine.sync.snapshot.QUIET_LAG`
before the preview's start. What that must never cost: an edit stamped shortly before a read
but committed after it (a long transaction, a slow import) is still carried by the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nav_crm_ops import Workspace, open_workspace
from nav_crm_ops.connectors import Dataverse
from nav_crm_ops.engine.sync.snapshot import QUIET_LAG, format_moment, parse_moment
from nav_crm_ops.sandbox import Sandbox

MAPPINGS = ["CURRENCY", "SALESPEOPLE", "CUSTOMER"]


def _person_id(ws: Workspace) -> str:
    people = ws.connections.dataverse.read(
        "systemusers", select=["systemuserid"],
        filter="accessmode ne 4 and isdisabled eq false", top=1)
    return str(people["systemuserid"][0])


def test_a_side_only_we_write_moves_its_watermark_and_a_late_commit_is_not_lost(
        workspace_dir: Path, fresh_sandbox: Sandbox,
        crm_person: Callable[[Workspace], Dataverse]) -> None:
    ws = open_workspace(workspace_dir)
    ws.sync_all(MAPPINGS)  # the first sync writes every account: all modified by us
    started = datetime.now(UTC)
    ws.sync("CUSTOMER")  # an incremental whose CRM read finds nothing of anyone else's
    marks = ws.store.watermarks("CUSTOMER")
    floor = started - QUIET_LAG - timedelta(seconds=1)
    assert parse_moment(marks["crm"]) >= floor, marks
    assert parse_moment(marks["nav"]) >= floor, marks

    # A person's edit stamped two minutes before that read, committed after it (written as
    # the service itself, so its modified-on stays where the transaction began).
    pair = ws.store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id"]).row(0, named=True)
    fresh_sandbox.context.store.update("dataverse:account", pair["crm_id"], {
        "address1_city": "Latecommit", "modifiedby": _person_id(ws),
        "modifiedon": format_moment(started - timedelta(minutes=2))})
    ws.sync("CUSTOMER")
    nav = ws.connections.business_central.read("customers", select=["city"],
                                               filter=f"id eq {pair['nav_id']}")
    assert nav["city"][0] == "Latecommit"
    crm = crm_person(ws).read("accounts", select=["address1_city"],
                              filter=f"accountid eq {pair['crm_id']}")
    assert crm["address1_city"][0] == "Latecommit"
    ws.close()
