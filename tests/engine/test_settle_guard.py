"""A create settled after a lost reply is never coupled to a record coupled to another one.

The scenario: an administrator re-creates a CRM user (same name, e-mail, phone and title, a new
login) while the old one is still enabled. SALESPEOPLE creates a BC salesperson for the new
user with the code it derives from the name ("AH"); BC refuses the code (Annette Hill's
salesperson has it) but the reply is lost — a 504 after the batch ran, as Business Central's
gateway answers a batch cut off after it ran. Settling the create by the code it sent finds
Annette Hill's salesperson with the very values sent. Without the guard the engine took it as
"already created" and coupled it to the new user too; now the record fails, saying so, and the
existing coupling stays.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from nav_crm_ops import Workspace, WriteOp, open_workspace
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.sandbox import Sandbox

COPIED = ("firstname", "lastname", "fullname", "internalemailaddress", "address1_telephone1",
          "title", "isdisabled", "islicensed", "accessmode")


def test_a_settled_create_never_takes_a_record_coupled_to_another(
        workspace_dir: Path, fresh_sandbox: Sandbox,
        crm_person: Callable[[Workspace], Dataverse]) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["SALESPEOPLE"])
        pair = ws.store.couplings_frame("SALESPEOPLE").filter(pl.col("nav_key") == "AH")
        nav_id, crm_id = pair["nav_id"].item(), pair["crm_id"].item()
        original = ws.connections.dataverse.read_by_ids(
            "systemusers", "systemuserid", [crm_id], select=list(COPIED)).row(0, named=True)
        payload = {k: v for k, v in original.items() if v is not None}
        payload["domainname"] = "annette.hill.new@cronus.example"
        created = crm_person(ws).write([WriteOp.create("systemusers", payload)])[0]
        assert created.ok, created.error
        copy_id = created.id.lower()
        fresh_sandbox.set_faults("rate=1.0,kinds=commit504,seed=1")
        try:
            report = ws.sync("SALESPEOPLE")
        finally:
            fresh_sandbox.set_faults(None)

        assert report.result("SALESPEOPLE").count("failed") == 1
        still = ws.store.get_coupling_by_nav("SALESPEOPLE", nav_id)
        assert still is not None and still.crm_id == crm_id
        assert ws.store.get_coupling_by_crm("SALESPEOPLE", copy_id) is None
        message = ws.errors("SALESPEOPLE").filter(pl.col("source_id") == copy_id)["message"]
        assert message.len() == 1 and "is already coupled to" in message.item(), message
        assert crm_id in message.item()
