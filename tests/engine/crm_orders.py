"""Sales orders as a CRM salesperson makes them, for the tests of SALES ORDERS on Business
Central (test_order_status.py) and on NAV 2018 (test_nav_orders.py)."""

from __future__ import annotations

from typing import Any

import polars as pl

from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.engine.workspace import Workspace

SUBMITTED = {"statecode": 1, "statuscode": 3}
"""A CRM order's state and status once a salesperson submitted it."""


def crm_id(ws: Workspace, mapping: str, nav_key: str) -> str:
    """The CRM id coupled in ``mapping`` to the ERP record of natural key ``nav_key``."""
    coupled = ws.store.couplings_frame(mapping).filter(pl.col("nav_key") == nav_key)
    return str(coupled["crm_id"].item())


def base_unit(ws: Workspace, unit_code: str) -> str:
    """The base CRM unit of the unit group coupled to the ERP unit ``unit_code``."""
    group = crm_id(ws, "UNIT OF MEASURE", unit_code)
    units = ws.connections.dataverse.read(
        "uoms", filter=f"_uomscheduleid_value eq {group} and isschedulebaseuom eq true")
    return str(units["uomid"].item())


def submit_order(ws: Workspace, person: Dataverse, account: str, name: str,
                 lines: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    """Create a CRM order for ``account`` (a CRM account id) with its lines ``(item number,
    unit code, quantity, price)`` in one request (deep insert) and submit it."""
    details = [{"productid@odata.bind": f"/products({crm_id(ws, 'ITEM-PRODUCT', item)})",
                "uomid@odata.bind": f"/uoms({base_unit(ws, unit)})",
                "quantity": quantity, "priceperunit": price, "lineitemnumber": index + 1}
               for index, (item, unit, quantity, price) in enumerate(lines)]
    order = person.http.request(
        "POST", "salesorders", headers={"Prefer": "return=representation"},
        json={"name": name, "customerid_account@odata.bind": f"/accounts({account})",
              "order_details": details}).json()
    person.http.request("PATCH", f"salesorders({order['salesorderid']})", json=SUBMITTED,
                        headers={"If-Match": "*"})
    return dict(order)


def crm_order(ws: Workspace, order_id: str) -> dict[str, Any]:
    """The CRM order as stored now."""
    return dict(ws.connections.dataverse.read_by_ids(
        "salesorders", "salesorderid", [order_id]).row(0, named=True))
