"""Scenario 6: what the sandbox itself costs, so its share in the sync scenarios is known.

The sandbox runs as its own process seeded ``scale:N`` (N customers in BC, about 0.38 N
accounts in Dataverse); this process talks to it over loopback HTTP through the connectors,
exactly as a sync does. Per service: full paged reads (Dataverse pages of 5,000 accounts, BC
pages of 20,000 customers) and ``$batch`` creates (Dataverse 1,000 per batch, BC 100 per
batch, through ``client.write``, which sends up to 4 batches in parallel). Baselines in the
same run: one request per record (GET by id, POST of one record), as the reference
integration works. All rows share one client process and one sandbox: their peak memory is that
of the client process (the server's peak is a figure of its own).
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from nav_crm_ops.connectors import BusinessCentral, Dataverse, WriteOp
from nav_crm_ops.connectors.factory import Connections, connect

from ..harness import Context, Measurement, timed
from ..sandbox_process import running_sandbox

__all__ = ["measure"]

ACCOUNT_COLUMNS = ("accountid", "name", "accountnumber", "address1_line1", "address1_city",
                   "address1_postalcode", "address1_country", "telephone1", "emailaddress1",
                   "websiteurl", "creditlimit", "modifiedon")
CUSTOMER_COLUMNS = ("id", "number", "displayName", "addressLine1", "city", "postalCode",
                    "country", "phoneNumber", "email", "website", "creditLimit",
                    "lastModifiedDateTime")


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def _read_rows(client: Dataverse | BusinessCentral, entity: str, columns: tuple[str, ...],
               page: int, ctx: Context, label: str, variant: str) -> tuple[Measurement, list[str]]:
    before = client.stats.requests
    frame, timing = timed(lambda: client.read(entity, select=columns), ctx.repeats)
    requests = (client.stats.requests - before) / timing.runs
    pages = math.ceil(frame.height / page) if frame.height else 1
    key = columns[0]
    row = Measurement(
        variant, f"ours: paged read of {label} ({page:,} per page, {len(columns)} columns)",
        "ours", variant.replace("read_pages", "read_one_by_one"), metric="rate_per_s",
        rate_per_s=_rate(frame.height, timing.median_s), rate_unit="records/s",
        records=frame.height,
        figures={"requests_per_read": requests, "minimum_pages": pages,
                 "pages_per_s": _rate(pages, timing.median_s)},
        notes="client.read: GET with Prefer odata.maxpagesize, @odata.nextLink paging, JSON to "
              "polars").with_timing(timing)
    return row, [str(v) for v in frame.get_column(key).to_list()]


def _read_one_by_one(client: Dataverse | BusinessCentral, entity: str, ids: list[str],
                     ctx: Context, label: str, variant: str) -> Measurement:
    def each() -> int:
        for key in ids:
            client.http.request("GET", f"{client.entity_path(entity)}({key})", entity=entity)
        return len(ids)

    count, timing = timed(each, 1)
    return Measurement(
        variant, f"baseline: one GET per {label} record ({count:,} records)", "baseline",
        variant, metric="rate_per_s", rate_per_s=_rate(count, timing.median_s),
        rate_unit="records/s", records=count,
        figures={"requests_per_s": _rate(count, timing.median_s)},
        notes="one request per record, as the reference integration reads").with_timing(timing)


def _payload(service: str, index: int, tag: str) -> dict[str, Any]:
    if service == "dataverse":
        return {"name": f"Bench {tag} {index}", "address1_city": "London",
                "telephone1": "+44 20 7946 0000", "emailaddress1": f"b{index}@bench.example",
                "customertypecode": 3}
    return {"displayName": f"Bench {tag} {index}", "city": "London",
            "phoneNumber": "+44 20 7946 0000", "email": f"b{index}@bench.example"}


def _ops(service: str, entity: str, count: int, tag: str) -> list[WriteOp]:
    if service == "dataverse":
        return [WriteOp.create(entity, _payload(service, i, tag), key=str(uuid.uuid4()))
                for i in range(count)]
    return [WriteOp.create(entity, _payload(service, i, tag)) for i in range(count)]


def _batch_writes(client: Dataverse | BusinessCentral, service: str, entity: str, count: int,
                  batch: int, variant: str) -> Measurement:
    ops = _ops(service, entity, count, "batch")
    before = client.stats.requests
    outcomes, timing = timed(lambda: client.write(ops), 1)
    failed = sum(1 for o in outcomes if not o.ok)
    batches = math.ceil(count / batch)
    return Measurement(
        variant, f"ours: $batch creates, {batch:,} per batch ({count:,} records)", "ours",
        variant.replace("batch_create", "single_create"), metric="rate_per_s",
        rate_per_s=_rate(count - failed, timing.median_s), rate_unit="records/s", records=count,
        counts={"failed": failed},
        figures={"requests": client.stats.requests - before, "batches": batches,
                 "batches_per_s": _rate(batches, timing.median_s)},
        notes="client.write: multipart (Dataverse) / JSON (BC) $batch, up to 4 in parallel"
        ).with_timing(timing)


def _single_creates(client: Dataverse | BusinessCentral, service: str, entity: str,
                    count: int, variant: str) -> Measurement:
    payloads = [_payload(service, i, "single") for i in range(count)]

    def each() -> int:
        failed = 0
        for body in payloads:
            response = client.http.request("POST", client.entity_path(entity), json=body,
                                           entity=entity, retry_unsafe=False)
            failed += response.status_code >= 400
        return failed

    failed, timing = timed(each, 1)
    return Measurement(
        variant, f"baseline: one POST per record ({count:,} records)", "baseline", variant,
        metric="rate_per_s", rate_per_s=_rate(count - failed, timing.median_s),
        rate_unit="records/s", records=count, counts={"failed": failed},
        notes="one request per record, as the reference integration writes").with_timing(timing)


def _service_rows(connections: Connections, service: str, ctx: Context) -> list[Measurement]:
    single = 100 if ctx.quick else 1000
    if service == "dataverse":
        client: Dataverse | BusinessCentral = connections.dataverse
        read, ids = _read_rows(client, "accounts", ACCOUNT_COLUMNS, client.page_size, ctx,
                               "Dataverse accounts", "dv_read_pages")
        return [read,
                _read_one_by_one(client, "accounts", ids[:single], ctx, "Dataverse account",
                                 "dv_read_one_by_one"),
                _batch_writes(client, "dataverse", "accounts", 1000 if ctx.quick else 5000,
                              client.batch_size, "dv_batch_create"),
                _single_creates(client, "dataverse", "accounts", single, "dv_single_create")]
    client = connections.business_central
    read, ids = _read_rows(client, "customers", CUSTOMER_COLUMNS, client.page_size, ctx,
                           "BC customers", "bc_read_pages")
    return [read,
            _read_one_by_one(client, "customers", ids[:single], ctx, "BC customer",
                             "bc_read_one_by_one"),
            _batch_writes(client, "business_central", "customers", 200 if ctx.quick else 2000,
                          client.batch_size, "bc_batch_create"),
            _single_creates(client, "business_central", "customers", single,
                            "bc_single_create")]


def measure(job: str, ctx: Context) -> list[Measurement]:
    """Start a sandbox seeded ``scale:<size>``; measure both services' reads and writes."""
    with running_sandbox(ctx.workdir / "sandbox", f"scale:{ctx.size}") as sandbox:
        connections = connect(sandbox.workspace_config(ctx.workdir / "ws"))
        rows = [*_service_rows(connections, "dataverse", ctx),
                *_service_rows(connections, "business_central", ctx)]
        server_mb = sandbox.peak_rss_mb()
        for row in rows:
            row.figures["sandbox_server_peak_rss_mb"] = server_mb
            row.figures["sandbox_startup_s"] = sandbox.startup_s
        for client in (connections.dataverse, connections.business_central,
                       connections.business_central_custom):
            client.close()
    return rows
