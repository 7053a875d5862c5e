"""The sales-order follow-up: what happens to an order after it was handed to the back office.

The SALES ORDERS mapping creates a BC sales order from a submitted CRM order once and couples
the two (``create_only``). From then on BC owns the order, and this step, run after every
sync of that mapping, reports back what BC did with it, as the reference integration does:

* the BC order is gone and a posted sales invoice names it (``orderNumber``): it was shipped
  and invoiced, so the CRM order becomes *Invoiced* (and the CRM invoice created by
  POSTEDSALESINV-INV, when it is already there, is linked to it);
* the BC order is gone and no invoice names it: it was deleted, so the coupling goes and the
  CRM order returns to *Active* (not submitted), ready to be submitted again;
* a posted invoice for a NAV sales order of a coupled customer adds a post to the CRM
  account's wall (``posts``) saying so. Invoices posted before the first run are history and
  get no post; each post has a deterministic id, so a repeated run never posts twice.

Everything goes to the job log (one ``sync`` run, direction ``to_crm``) and the record error
log like any mapping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import polars as pl

from ..connectors.factory import Connections
from ..connectors.models import WriteOp, WriteOutcome
from ..exceptions import ConnectorError
from ..store import RecordFailure, StateStore
from .ids import crm_id_for
from .mapping import MappingSet, TableMapping
from .planner import format_moment, parse_moment
from .report import MappingResult

__all__ = ["INVOICED", "REOPENED", "SalesOrderFollowUp"]

INVOICED = {"statecode": 4, "statuscode": 100003}
"""CRM order state and status after BC posted (shipped and invoiced) the order."""
REOPENED = {"statecode": 0, "statuscode": 1, "nav_submittedtobackoffice": False}
"""CRM order state after the BC order was deleted: active, not submitted."""

_INVOICE_COLUMNS = ["id", "number", "orderNumber", "customerId", "customerNumber",
                    "totalAmountIncludingTax", "currencyCode", "lastModifiedDateTime"]
_POSTED_FILTER = "orderNumber ne '' and status ne 'Draft'"


class SalesOrderFollowUp:
    """Runs the follow-up of one ``follow_up: sales_order_status`` mapping (module docstring)."""

    def __init__(self, mappings: MappingSet, store: StateStore, connections: Connections, *,
                 customer_mapping: str = "CUSTOMER",
                 invoice_mapping: str = "POSTEDSALESINV-INV") -> None:
        self.mappings = mappings
        self.store = store
        self.connections = connections
        self.customer_mapping = customer_mapping
        self.invoice_mapping = invoice_mapping

    def run(self, mapping: TableMapping, *, job_name: str = "") -> MappingResult:
        started = time.monotonic()
        run_id = self.store.start_run(mapping.name, "to_crm", "sync", job_name=job_name)
        counts: dict[str, int] = {}
        failures: list[tuple[str, str, str]] = []
        before = self._requests()
        status, message = "finished", ""
        try:
            invoices, mark = self._posted_invoices(mapping)
            self._settle_orders(mapping, invoices, counts, failures)
            self._post_to_walls(mapping, invoices, mark, counts, failures)
        except ConnectorError as error:
            status, message = "failed", f"stopped: {error}"
        counts["requests"] = self._requests() - before
        if failures:
            self.store.add_record_errors([
                {"mapping": mapping.name, "direction": "to_crm", "message": text,
                 "run_id": run_id, "source_id": source, "destination_id": destination,
                 "transient": False} for source, destination, text in failures])
            self.store.record_outcomes(mapping.name, "to_crm", run_id=run_id, failed=[
                RecordFailure(source, text, False, destination)
                for source, destination, text in failures])
            counts["failed"] = counts.get("failed", 0) + len(failures)
            status = "failed"
            message = message or (f"{len(failures)} follow-up write(s) failed: see "
                                  f"`nav-crm-ops errors {mapping.name}`")
        self.store.finish_run(run_id, status, counts, message=message)
        return MappingResult(mapping.name, status, counts, (run_id,), message,
                             time.monotonic() - started)

    def _requests(self) -> int:
        c = self.connections
        return sum(client.stats.requests for client in (c.dataverse, c.business_central))

    def _posted_invoices(self, mapping: TableMapping) -> tuple[pl.DataFrame, str | None]:
        """Invoices of sales orders posted since the last run (one read), and that mark."""
        mark = self.store.watermarks(self._posts_scope(mapping)).get("nav")
        if mark is None:
            return pl.DataFrame(schema=dict.fromkeys(_INVOICE_COLUMNS, pl.Utf8)), None
        since = parse_moment(mark)
        invoices = self.connections.business_central.read(
            "salesInvoices", select=_INVOICE_COLUMNS, filter=_POSTED_FILTER,
            changed_since=since)
        return invoices, mark

    @staticmethod
    def _posts_scope(mapping: TableMapping) -> str:
        return f"{mapping.name} POSTS"

    # -- orders handed to BC -------------------------------------------------------------------
    def _settle_orders(self, mapping: TableMapping, invoices: pl.DataFrame,
                       counts: dict[str, int], failures: list[tuple[str, str, str]]) -> None:
        couplings = self.store.couplings_frame(mapping.name,
                                               columns=["nav_id", "crm_id", "nav_key"])
        if couplings.height == 0:
            return
        bc = self.connections.business_central_for(mapping.nav.api)
        present = bc.read_by_ids(mapping.nav.entity, mapping.nav.key,
                                 couplings["nav_id"].to_list(), select=[mapping.nav.key])
        alive = {str(i).lower() for i in present[mapping.nav.key].to_list()}
        gone = couplings.filter(~pl.col("nav_id").str.to_lowercase().is_in(list(alive)))
        if gone.height == 0:
            return
        posted = {str(o): str(i).lower() for i, o in
                  invoices.select("id", "orderNumber").iter_rows() if o}
        unknown = [n for n in gone["nav_key"].to_list() if n and n not in posted]
        if unknown:
            older = bc.read_by_ids("salesInvoices", "orderNumber", unknown,
                                   select=["id", "orderNumber"], filter="status ne 'Draft'")
            posted.update({str(o): str(i).lower() for i, o in older.iter_rows() if o})
        ops: list[WriteOp] = []
        meaning: list[tuple[str, str, str, str | None]] = []
        for nav_id, crm_id, number in gone.select("nav_id", "crm_id", "nav_key").iter_rows():
            if number in posted:
                ops.append(WriteOp.update(mapping.crm.entity, crm_id, dict(INVOICED)))
                meaning.append((nav_id, crm_id, "invoiced", posted[number]))
            else:
                ops.append(WriteOp.update(mapping.crm.entity, crm_id,
                                          {**REOPENED, "nav_bcordernumber": None}))
                meaning.append((nav_id, crm_id, "reopened", None))
        outcomes = self.connections.dataverse.write(ops)
        links: list[WriteOp] = []
        for (nav_id, crm_id, kind, invoice_id), outcome in zip(meaning, outcomes, strict=True):
            if not outcome.ok:
                failures.append((nav_id, crm_id, self._failure(outcome, kind)))
                continue
            counts["modified"] = counts.get("modified", 0) + 1
            counts["uncoupled"] = counts.get("uncoupled", 0) + self.store.uncouple(
                mapping.name, nav_id=nav_id)
            if kind == "invoiced" and invoice_id:
                links += self._invoice_link(invoice_id, crm_id, mapping)
        if links:
            for op, outcome in zip(links, self.connections.dataverse.write(links), strict=True):
                if not outcome.ok:
                    failures.append((op.key, op.key, f"linking the CRM invoice to its order "
                                                     f"failed: {outcome.error}"))

    def _invoice_link(self, invoice_id: str, order_crm_id: str,
                      mapping: TableMapping) -> list[WriteOp]:
        if self.invoice_mapping not in self.mappings:
            return []
        invoices = self.mappings.get(self.invoice_mapping)
        coupled = self.store.couplings_frame(invoices.name, columns=["nav_id", "crm_id"],
                                             nav_ids=[invoice_id])
        if coupled.height == 0:
            return []
        return [WriteOp.update(invoices.crm.entity, coupled["crm_id"][0], {}, binds={
            "salesorderid": f"/{mapping.crm.entity}({order_crm_id})"})]

    @staticmethod
    def _failure(outcome: WriteOutcome, kind: str) -> str:
        what = ("set the CRM order to Invoiced (BC posted it)" if kind == "invoiced" else
                "return the CRM order to Active (the BC order was deleted)")
        return f"could not {what}: {outcome.error or f'HTTP {outcome.status}'}"

    # -- posts on the account wall ---------------------------------------------------------------
    def _post_to_walls(self, mapping: TableMapping, invoices: pl.DataFrame, mark: str | None,
                       counts: dict[str, int], failures: list[tuple[str, str, str]]) -> None:
        scope = self._posts_scope(mapping)
        now = format_moment(datetime.now(UTC))
        if mark is None:
            self.store.set_watermark(scope, "nav", now)
            return
        accounts = dict(self.store.couplings_frame(
            self.customer_mapping, columns=["nav_id", "crm_id"]).iter_rows())
        ops: list[WriteOp] = []
        sources: list[tuple[str, str]] = []
        for row in invoices.iter_rows(named=True):
            account = accounts.get(str(row["customerId"]).lower())
            if account is None:
                continue
            amount = row.get("totalAmountIncludingTax")
            text = (f"Sales order {row['orderNumber']} was shipped and invoiced in Business "
                    f"Central: posted invoice {row['number']}"
                    + (f", {amount:,.2f} {row.get('currencyCode') or ''}".rstrip()
                       if isinstance(amount, int | float) else "") + ".")
            post_id = crm_id_for(scope, str(row["id"]))
            ops.append(WriteOp.create("posts", {"text": text, "source": 1, "type": 7},
                                      key=post_id,
                                      binds={"regardingobjectid_account": f"/accounts({account})"}))
            sources.append((str(row["id"]).lower(), post_id))
        if ops:
            for (source, post_id), outcome in zip(sources, self.connections.dataverse.write(ops),
                                                  strict=True):
                if outcome.ok:
                    if not outcome.already_existed:
                        counts["inserted"] = counts.get("inserted", 0) + 1
                else:
                    failures.append((source, post_id, f"could not add the post to the CRM "
                                                      f"account's wall: {outcome.error}"))
        self.store.set_watermark(scope, "nav", min(self._newest(invoices, mark), now))

    @staticmethod
    def _newest(invoices: pl.DataFrame, mark: str) -> str:
        column = invoices.get_column("lastModifiedDateTime") if invoices.height else None
        if column is None or column.drop_nulls().len() == 0:
            return mark
        latest: Any = column.max()
        if isinstance(latest, datetime):
            return format_moment(latest if latest.tzinfo else latest.replace(tzinfo=UTC))
        return max(mark, str(latest))
