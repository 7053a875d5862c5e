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

Which fields it reads depends on the ERP (:class:`ErpFields`): Business Central's API
(``salesInvoices`` with ``orderNumber``, GUID ids compared without case) or NAV 2018's page 132
Posted Sales Invoice (``Order_No``; ids are the invoice and order numbers, kept as NAV writes
them). NAV's posted invoices carry no modified-on: invoices are read by ``Posting_Date`` from
the day before the last run (the cost of a date: a day read twice; an invoice posted with a
posting date more than a day before the run that sees it gets no wall post, while its order is
still found Invoiced, by the one read of older invoices).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from ..connectors.business_central import BusinessCentral
from ..connectors.factory import Connections
from ..connectors.models import WriteOp, WriteOutcome
from ..connectors.nav_odata import NavODataV4
from ..exceptions import ConnectorError
from ..store import RecordFailure, StateStore
from .ids import crm_id_for, record_id, record_id_expr
from .mapping import MappingSet, TableMapping
from .report import MappingResult
from .sync.snapshot import format_moment, parse_moment

__all__ = ["BC_FIELDS", "INVOICED", "NAV2018_FIELDS", "REOPENED", "ErpFields",
           "SalesOrderFollowUp", "erp_fields"]

INVOICED = {"statecode": 4, "statuscode": 100003}
"""CRM order state and status after BC posted (shipped and invoiced) the order."""
REOPENED = {"statecode": 0, "statuscode": 1, "nav_submittedtobackoffice": False}
"""CRM order state after the BC order was deleted: active, not submitted."""


@dataclass(frozen=True)
class ErpFields:
    """What the follow-up reads posted sales invoices by, in one ERP's names.

    ``invoice_id`` is the id the POSTEDSALESINV-INV couplings carry and the wall post's id is
    made from; ``customer`` the invoice field holding the customer's CUSTOMER coupling id;
    ``modified`` the field a read since the last run filters on (``modified_is_date``: a date,
    read from the day before); ``posted`` the filter of this run's invoices of sales orders,
    ``older`` of invoices looked up by order number; ``guid_ids``: ids are GUIDs, compared
    without case (else kept as the ERP writes them, :func:`~.ids.record_id`)."""

    erp: str
    """How messages name the ERP (``Business Central``); ``short`` in short ones (``BC``)."""
    short: str
    entity: str
    invoice_id: str
    number: str
    order_number: str
    customer: str
    amount: str
    currency: str
    modified: str
    modified_is_date: bool
    posted: str
    older: str
    guid_ids: bool

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([self.invoice_id, self.number, self.order_number,
                                   self.customer, self.amount, self.currency, self.modified]))

    def same_id(self, value: object) -> str:
        """An id as couplings hold it."""
        return str(value).lower() if self.guid_ids else record_id(value)


BC_FIELDS = ErpFields(
    erp="Business Central", short="BC", entity="salesInvoices", invoice_id="id",
    number="number", order_number="orderNumber", customer="customerId",
    amount="totalAmountIncludingTax", currency="currencyCode",
    modified="lastModifiedDateTime", modified_is_date=False,
    posted="orderNumber ne '' and status ne 'Draft'", older="status ne 'Draft'",
    guid_ids=True)
"""Business Central API v2.0: ``salesInvoices`` (posted ones are not Draft)."""
NAV2018_FIELDS = ErpFields(
    erp="NAV", short="NAV", entity="salesInvoices", invoice_id="No", number="No",
    order_number="Order_No", customer="Sell_to_Customer_No", amount="Amount_Including_VAT",
    currency="Currency_Code", modified="Posting_Date", modified_is_date=True,
    posted="Order_No ne ''", older="", guid_ids=False)
"""NAV 2018: page 132 Posted Sales Invoice (only posted invoices; keys are numbers)."""


def erp_fields(client: BusinessCentral) -> ErpFields:
    """The field names of the ERP ``client`` talks to (NAV page web services or BC's API)."""
    return NAV2018_FIELDS if isinstance(client, NavODataV4) else BC_FIELDS


@dataclass
class _Tally:
    """What one follow-up run did: the counts for the job log and the failed writes
    ``(source id, destination id, message)`` for the record error log."""

    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, key: str, number: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + number

    def fail(self, source: str, destination: str, message: str) -> None:
        self.failures.append((source, destination, message))


@dataclass(frozen=True)
class _Settlement:
    """What became of one coupled order that BC no longer has: posted (``invoice_id`` names
    the posted sales invoice) or deleted (``invoice_id`` is None)."""

    nav_id: str
    crm_id: str
    invoice_id: str | None

    @property
    def invoiced(self) -> bool:
        return self.invoice_id is not None

    def write(self, entity_set: str) -> WriteOp:
        """The CRM order update: Invoiced, or back to Active without its BC order number."""
        if self.invoiced:
            return WriteOp.update(entity_set, self.crm_id, dict(INVOICED))
        return WriteOp.update(entity_set, self.crm_id, {**REOPENED, "nav_bcordernumber": None})

    def failure(self, outcome: WriteOutcome, erp: str) -> str:
        what = (f"set the CRM order to Invoiced ({erp} posted it)" if self.invoiced else
                f"return the CRM order to Active (the {erp} order was deleted)")
        return f"could not {what}: {outcome.error or f'HTTP {outcome.status}'}"


class SalesOrderFollowUp:
    """Runs the follow-up of one ``follow_up: sales_order_status`` mapping (module docstring)."""

    def __init__(self, mappings: MappingSet, store: StateStore, connections: Connections, *,
                 customer_mapping: str = "CUSTOMER",
                 invoice_mapping: str = "POSTEDSALESINV-INV",
                 fields: ErpFields | None = None) -> None:
        self.mappings = mappings
        self.store = store
        self.connections = connections
        self.customer_mapping = customer_mapping
        self.invoice_mapping = invoice_mapping
        self.fields = fields or erp_fields(connections.business_central)

    def run(self, mapping: TableMapping, *, job_name: str = "") -> MappingResult:
        """One logged run: settle the orders, post to the walls; a BC/CRM error stops it."""
        started = time.monotonic()
        run_id = self.store.start_run(mapping.name, "to_crm", "sync", job_name=job_name)
        tally = _Tally()
        before = self._requests()
        status, message = "finished", ""
        try:
            invoices, mark = self._posted_invoices(mapping)
            self._settle_orders(mapping, invoices, tally)
            self._post_to_walls(mapping, invoices, mark, tally)
        except ConnectorError as error:
            status, message = "failed", f"stopped: {error}"
        tally.counts["requests"] = self._requests() - before
        if tally.failures:
            self._log_failures(mapping, run_id, tally)
            status = "failed"
            message = message or (f"{len(tally.failures)} follow-up write(s) failed: see "
                                  f"`nav-crm-ops errors {mapping.name}`")
        self.store.finish_run(run_id, status, tally.counts, message=message)
        return MappingResult(mapping.name, status, tally.counts, (run_id,), message,
                             time.monotonic() - started)

    def _log_failures(self, mapping: TableMapping, run_id: int, tally: _Tally) -> None:
        """Failed follow-up writes go to the record error log and the record outcomes like
        any mapping's, so ``errors`` and skip-after-failures treat them alike."""
        failures = tally.failures
        self.store.add_record_errors([
            {"mapping": mapping.name, "direction": "to_crm", "message": text,
             "run_id": run_id, "source_id": source, "destination_id": destination,
             "transient": False} for source, destination, text in failures])
        self.store.record_outcomes(mapping.name, "to_crm", run_id=run_id, failed=[
            RecordFailure(source, text, False, destination)
            for source, destination, text in failures])
        tally.add("failed", len(failures))

    def _requests(self) -> int:
        c = self.connections
        return sum(client.stats.requests for client in (c.dataverse, c.business_central))

    def _posted_invoices(self, mapping: TableMapping) -> tuple[pl.DataFrame, str | None]:
        """Invoices of sales orders posted since the last run (one read), and that mark."""
        fields = self.fields
        mark = self.store.watermarks(self._posts_scope(mapping)).get("nav")
        if mark is None:
            return pl.DataFrame(schema=dict.fromkeys(fields.columns, pl.Utf8)), None
        since = parse_moment(mark)
        invoices = self.connections.business_central.read(
            fields.entity, select=fields.columns, filter=fields.posted or None,
            changed_since=since, modified_field=fields.modified)
        return invoices, mark

    @staticmethod
    def _posts_scope(mapping: TableMapping) -> str:
        return f"{mapping.name} POSTS"

    # -- orders handed to BC -------------------------------------------------------------------
    def _settle_orders(self, mapping: TableMapping, invoices: pl.DataFrame,
                       tally: _Tally) -> None:
        """Report back what became of the coupled orders BC no longer has (module docstring):
        find them, tell posted from deleted, update the CRM orders, then link the invoices."""
        bc = self.connections.business_central_for(mapping.nav.api)
        gone = self._gone_orders(mapping, bc)
        if gone.height == 0:
            return
        posted = self._posted_orders(bc, invoices, [record_id(n) for n in gone["nav_key"]
                                                     if n is not None])
        settlements = [_Settlement(nav_id, crm_id, posted.get(number))
                       for nav_id, crm_id, number in gone.select("nav_id", "crm_id", "nav_key")
                       .iter_rows()]
        outcomes = self.connections.dataverse.write(
            [s.write(mapping.crm.entity) for s in settlements])
        links: list[WriteOp] = []
        for settlement, outcome in zip(settlements, outcomes, strict=True):
            links += self._settled(mapping, settlement, outcome, tally)
        self._link_invoices(links, tally)

    def _gone_orders(self, mapping: TableMapping, bc: BusinessCentral) -> pl.DataFrame:
        """Couplings (``nav_id``, ``crm_id``, ``nav_key``) whose BC order no longer exists."""
        couplings = self.store.couplings_frame(mapping.name,
                                               columns=["nav_id", "crm_id", "nav_key"])
        if couplings.height == 0:
            return couplings
        present = bc.read_by_ids(mapping.nav.entity, mapping.nav.key,
                                 couplings["nav_id"].to_list(), select=[mapping.nav.key])
        alive = [self.fields.same_id(i) for i in present[mapping.nav.key].to_list()]
        ids = (pl.col("nav_id").str.to_lowercase() if self.fields.guid_ids
               else record_id_expr(pl.col("nav_id")))
        return couplings.filter(~ids.is_in(alive))

    def _posted_orders(self, bc: BusinessCentral, invoices: pl.DataFrame,
                       numbers: list[str]) -> dict[str, str]:
        """Order number -> posted invoice id for the gone orders that were posted: from this
        run's invoices, and one read for orders posted before (deleted orders stay out)."""
        fields = self.fields
        columns = [fields.invoice_id, fields.order_number]
        posted = {str(o): fields.same_id(i) for i, o in
                  invoices.select(columns).iter_rows() if o}
        unknown = [n for n in numbers if n and n not in posted]
        if unknown:
            older = bc.read_by_ids(fields.entity, fields.order_number, unknown,
                                   select=list(dict.fromkeys(columns)),
                                   filter=fields.older or None)
            posted.update({str(o): fields.same_id(i)
                           for i, o in older.select(columns).iter_rows() if o})
        return posted

    def _settled(self, mapping: TableMapping, settlement: _Settlement, outcome: WriteOutcome,
                 tally: _Tally) -> list[WriteOp]:
        """Count one CRM order update and drop its coupling (BC's order is gone); the write
        linking the CRM invoice to the order, when the order was posted."""
        if not outcome.ok:
            tally.fail(settlement.nav_id, settlement.crm_id,
                       settlement.failure(outcome, self.fields.short))
            return []
        tally.add("modified")
        tally.add("uncoupled", self.store.uncouple(mapping.name, nav_id=settlement.nav_id))
        if settlement.invoice_id:
            return self._invoice_link(settlement.invoice_id, settlement.crm_id, mapping)
        return []

    def _link_invoices(self, links: list[WriteOp], tally: _Tally) -> None:
        """Link the CRM invoices to their orders; a failed link is a record failure."""
        if not links:
            return
        for op, outcome in zip(links, self.connections.dataverse.write(links), strict=True):
            if not outcome.ok:
                tally.fail(op.key, op.key,
                           f"linking the CRM invoice to its order failed: {outcome.error}")

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

    # -- posts on the account wall ---------------------------------------------------------------
    def _post_to_walls(self, mapping: TableMapping, invoices: pl.DataFrame, mark: str | None,
                       tally: _Tally) -> None:
        scope = self._posts_scope(mapping)
        now = format_moment(datetime.now(UTC))
        if mark is None:
            self.store.set_watermark(scope, "nav", now)
            return
        sources, ops = self._wall_posts(scope, invoices, mapping.id_scope)
        if ops:
            for (source, post_id), outcome in zip(sources, self.connections.dataverse.write(ops),
                                                  strict=True):
                if outcome.ok:
                    if not outcome.already_existed:
                        tally.add("inserted")
                else:
                    tally.fail(source, post_id, f"could not add the post to the CRM "
                                                f"account's wall: {outcome.error}")
        # A date field is read from the day before the mark: the run's moment is safe.
        newest = now if self.fields.modified_is_date else self._newest(invoices, mark)
        self.store.set_watermark(scope, "nav", min(newest, now))

    def _wall_posts(self, scope: str, invoices: pl.DataFrame, id_scope: str = "",
                    ) -> tuple[list[tuple[str, str]], list[WriteOp]]:
        """The posts for this run's invoices of coupled customers: ``(invoice id, post id)``
        and the creates (each post's id made from its invoice, so it is never posted twice)."""
        fields = self.fields
        customers = [fields.same_id(c) for c in invoices[fields.customer].to_list()
                     if c is not None] if invoices.height else []
        accounts = {fields.same_id(n): c for n, c in self.store.couplings_frame(
            self.customer_mapping, columns=["nav_id", "crm_id"], nav_ids=customers).iter_rows()}
        ops: list[WriteOp] = []
        sources: list[tuple[str, str]] = []
        for row in invoices.iter_rows(named=True):
            account = accounts.get(fields.same_id(row[fields.customer]))
            if account is None:
                continue
            amount = row.get(fields.amount)
            text = (f"Sales order {row[fields.order_number]} was shipped and invoiced in "
                    f"{fields.erp}: posted invoice {row[fields.number]}"
                    + (f", {amount:,.2f} {row.get(fields.currency) or ''}".rstrip()
                       if isinstance(amount, int | float) else "") + ".")
            post_id = crm_id_for(scope, str(row[fields.invoice_id]), scope=id_scope)
            ops.append(WriteOp.create("posts", {"text": text, "source": 1, "type": 7},
                                      key=post_id,
                                      binds={"regardingobjectid_account": f"/accounts({account})"}))
            sources.append((fields.same_id(row[fields.invoice_id]), post_id))
        return sources, ops

    def _newest(self, invoices: pl.DataFrame, mark: str) -> str:
        modified = self.fields.modified
        column = invoices.get_column(modified) if invoices.height else None
        if column is None or column.drop_nulls().len() == 0:
            return mark
        latest: Any = column.max()
        if isinstance(latest, datetime):
            return format_moment(latest if latest.tzinfo else latest.replace(tzinfo=UTC))
        return max(mark, str(latest))
