"""Lost replies from Business Central: a write that ran, but whose answer never arrived.

Business Central documents that a ``$batch`` without ``Isolation: snapshot`` commits its
operations one by one ("Using OData transactional $batch requests",
https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/webservices/use-odata-batch:
only with ``Isolation: snapshot`` are the inner requests processed in one transaction), and that
"HTTP response code 504 - Gateway Timeout is returned when a request exceeds 10-minutes execution
time" ("Current API Limits",
https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-current-limits);
the operational limits page documents ``Retry-After`` on 502/503
(https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/administration/operational-limits-online).
So a 502/504 or a dropped connection after a ``$batch`` was sent may mean some or all of its
operations committed. These tests replay that on the wire (``httpx.MockTransport`` with a small
stateful BC that commits first and then loses the answer) and, over the real sandbox, the
scenario of issue #14: CRM accounts whose names equal *blocked* BC customers (outside
CUSTOMER's filter ``blocked eq ' '``) must never be coupled to them when replies are lost.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from nav_crm_ops import WriteOp, open_workspace
from nav_crm_ops.config import write_config
from nav_crm_ops.connectors import BasicAuth, BusinessCentral, ClientCredentials, RetryPolicy
from nav_crm_ops.connectors.http import ServiceClient
from nav_crm_ops.demo import sandbox_workspace_config
from nav_crm_ops.engine.applier import Applier
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import ConcurrencyError, TransientError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.secrets import Secret

BC = "https://api.businesscentral.dynamics.com/v2.0/t/production/api/v2.0/"
COMPANY = "7b3e4f0c-1a7e-4d3f-9f57-0a3c1e2b4d5f"
NO_WAIT = RetryPolicy(max_retries=3, base_delay_s=0.0, max_delay_s=0.0)
CUSTOMER_FILTER = "blocked eq ' '"


def _bc_error(status: int, code: str, message: str) -> httpx.Response:
    """BC's error shape: ``{"error":{"code","message  CorrelationId:  <guid>."}}``."""
    return httpx.Response(status, json={"error": {
        "code": code, "message": f"{message}  CorrelationId:  {uuid.uuid4()}."}})


def _lost_answer(kind: str, request: httpx.Request) -> httpx.Response:
    """What reaches the client of a batch that ran: the gateway's 502/504, or nothing."""
    if kind == "reset":
        raise httpx.ReadError("Connection reset by peer", request=request)
    if kind == "502":
        return httpx.Response(502, headers={"Retry-After": "0"}, text="Bad Gateway")
    return httpx.Response(504, text="Gateway Timeout")


@dataclass
class FakeBC:
    """Customers behind a JSON ``$batch`` that commits each operation as it runs (no
    ``Isolation: snapshot``); ``lose`` maps the n-th batch (1-based) to how its answer is lost
    after the commit: ``"502"``, ``"504"`` or ``"reset"``."""

    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    lose: dict[int, str] = field(default_factory=dict)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    after_commit: Any = None
    next_number: int = 90000

    def add(self, number: str, name: str, blocked: str = " ", **more: Any) -> str:
        key = str(uuid.uuid4())
        self.customers[key] = {"id": key, "number": number, "displayName": name,
                               "blocked": blocked, "version": 1, **more}
        return key

    def body(self, key: str) -> dict[str, Any]:
        record = {k: v for k, v in self.customers[key].items() if k != "version"}
        return {"@odata.etag": self.etag(key), **record}

    def etag(self, key: str) -> str:
        return f'W/"JzE5OzE{self.customers[key]["version"]}Oyc="'

    def by_name(self, name: str) -> list[dict[str, Any]]:
        return [c for c in self.customers.values() if c["displayName"] == name]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith("/customers"):
            flt = request.url.params.get("$filter", "")
            self.lookups.append(flt)
            rows = [self.body(k) for k, c in self.customers.items()
                    if f"number eq '{c['number']}'" in flt
                    and (CUSTOMER_FILTER not in flt or c["blocked"] == " ")]
            return httpx.Response(200, json={"value": rows})
        if request.method == "GET":
            key = path.rsplit("(", 1)[1].rstrip(")")
            return httpx.Response(200, json=self.body(key))
        items = json.loads(request.content)["requests"]
        self.batches.append(items)
        responses = [self._run(item) for item in items]
        if self.after_commit is not None:
            self.after_commit(self)
        lost = self.lose.get(len(self.batches))
        if lost is not None:
            return _lost_answer(lost, request)
        return httpx.Response(200, json={"responses": responses})

    def _run(self, item: dict[str, Any]) -> dict[str, Any]:
        body = dict(item.get("body") or {})
        if item["method"] == "POST":
            if any(c["number"] == body.get("number") for c in self.customers.values()):
                return self._reply(item, _bc_error(
                    400, "Internal_EntityWithSameKeyExists",
                    f"The record in table Customer already exists. Identification fields and "
                    f"values: No.='{body['number']}'"))
            if not body.get("number"):
                self.next_number += 10
                body["number"] = str(self.next_number)
            key = self.add(str(body.pop("number")), str(body.pop("displayName", "")),
                           str(body.pop("blocked", " ")), **body)
            return self._reply(item, httpx.Response(201, json=self.body(key)))
        key = item["url"].rsplit("(", 1)[1].rstrip(")")
        if item["headers"].get("If-Match") not in ("*", self.etag(key)):
            return self._reply(item, _bc_error(409, "Request_EntityChanged",
                                               "Another user has already changed the record."))
        self.customers[key].update(body)
        self.customers[key]["version"] += 1
        return self._reply(item, httpx.Response(200, json=self.body(key)))

    @staticmethod
    def _reply(item: dict[str, Any], response: httpx.Response) -> dict[str, Any]:
        return {"id": item["id"], "status": response.status_code,
                "headers": {"content-type": "application/json"}, "body": response.json()}


def _client(fake: FakeBC) -> BusinessCentral:
    client = BusinessCentral(BC, COMPANY, BasicAuth("admin", Secret("key")), retry=NO_WAIT,
                             transport=httpx.MockTransport(fake), max_workers=1)
    client.http._sleep = lambda seconds: None
    return client


def _customer_create(payload: dict[str, Any]) -> WriteOp:
    """The create the engine builds for CUSTOMER (key and table filter as in ``_prepare``)."""
    mapping = MappingSet.load().get("CUSTOMER")
    return WriteOp.create("customers", payload, natural_key=Applier._natural_key(mapping, payload),
                          settle_filter=mapping.nav.filter)


# ---------------------------------------------------------------------------------- wire level
@pytest.mark.parametrize("status", [502, 504])
def test_unsafe_request_answered_502_or_504_is_not_resent(status: int) -> None:
    """A 502/504 may come from a request that ran: without ``retry_unsafe`` it is raised at
    once (the caller settles it), with ``retry_unsafe`` it is retried as before."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status if len(calls) < 3 else 200, json={"ok": True})

    http = ServiceClient(BC, BasicAuth("admin", Secret("key")), service="business_central",
                         retry=NO_WAIT, transport=httpx.MockTransport(handler),
                         sleep=lambda seconds: None)
    with pytest.raises(TransientError):
        http.request("POST", "$batch", json={"requests": []}, retry_unsafe=False)
    assert len(calls) == 1
    assert http.request("POST", "$batch", json={"requests": []}).status_code == 200
    assert len(calls) == 3


@pytest.mark.parametrize("lost", ["504", "502", "reset"])
def test_numbered_create_whose_batch_committed_is_settled_by_its_number(lost: str) -> None:
    """The create sent its number: after the lost answer it is found by that number inside the
    mapping's filter, taken as done, and never sent twice."""
    fake = FakeBC(lose={1: lost})
    op = _customer_create({"number": "C100", "displayName": "Trey Research", "blocked": " "})
    [outcome] = _client(fake).write([op])
    assert len(fake.batches) == 1
    assert outcome.ok and outcome.already_existed
    assert outcome.id == fake.by_name("Trey Research")[0]["id"]
    assert fake.lookups == [f"number eq 'C100' and ({CUSTOMER_FILTER})"]


@pytest.mark.parametrize("lost", ["504", "502", "reset"])
def test_unnumbered_create_whose_reply_was_lost_is_unknown_not_a_namesake(lost: str) -> None:
    """Issue #14: a CRM account becomes a BC customer without a number (BC's number series).
    After a lost answer it is not sent again (the batch did commit it) and not settled by
    display name: a blocked customer with the same name is not "already created"."""
    fake = FakeBC(lose={1: lost})
    blocked = fake.add("30000", "Adatum Corporation", blocked="All")
    op = _customer_create({"displayName": "Adatum Corporation", "type": "Company",
                           "blocked": " "})
    assert op.natural_key is None
    [outcome] = _client(fake).write([op])
    assert len(fake.batches) == 1, "a create that may have committed was sent again"
    assert not outcome.ok and outcome.id != blocked
    assert isinstance(outcome.error, TransientError) and outcome.error.transient
    assert "lost" in str(outcome.error) and "unknown" in str(outcome.error)
    assert [c["blocked"] for c in fake.by_name("Adatum Corporation")] == ["All", " "]


def test_found_number_holding_other_values_is_not_taken_for_the_create() -> None:
    """The number the create sent belongs to another record (the create itself failed with a
    duplicate key, but that answer was lost): not "ours", not sent again, outcome unknown."""
    fake = FakeBC(lose={1: "504"})
    other = fake.add("C200", "Fabrikam Inc.")
    [outcome] = _client(fake).write([_customer_create(
        {"number": "C200", "displayName": "Contoso Ltd.", "blocked": " "})])
    assert len(fake.batches) == 1
    assert not outcome.ok and not outcome.already_existed and outcome.id != other
    assert "holds other values" in str(outcome.error)


def test_update_that_committed_before_its_reply_was_lost_is_not_a_false_conflict() -> None:
    """The PATCH ran (new etag) and the gateway answered 504; the re-send with the old
    ``If-Match`` gets 409 ``Request_EntityChanged``. The record holds the values sent, so the
    update succeeded: success with the record's current etag."""
    fake = FakeBC(lose={1: "504"})
    key = fake.add("10000", "The Cannon Group PLC", phoneNumber="")
    etag = fake.etag(key)
    [outcome] = _client(fake).write([WriteOp.update("customers", key,
                                                    {"phoneNumber": "+44 20 7946 0000"},
                                                    if_match=etag)])
    assert len(fake.batches) == 2
    assert outcome.ok, outcome.error
    assert outcome.etag == fake.etag(key) != etag


def test_update_conflict_after_a_lost_reply_stands_when_someone_else_changed_it() -> None:
    fake = FakeBC(lose={1: "504"})
    key = fake.add("10000", "The Cannon Group PLC", phoneNumber="")

    def person_edits(bc: FakeBC) -> None:
        bc.customers[key].update(phoneNumber="+1 555 0100")
        bc.customers[key]["version"] += 1

    fake.after_commit = person_edits
    [outcome] = _client(fake).write([WriteOp.update(
        "customers", key, {"phoneNumber": "+44 20 7946 0000"}, if_match=fake.etag(key))])
    assert not outcome.ok and isinstance(outcome.error, ConcurrencyError)


def test_settle_key_is_what_the_create_sends_never_a_display_name() -> None:
    mappings = MappingSet.load()
    customer = mappings.get("CUSTOMER")
    assert Applier._natural_key(customer, {"displayName": "Adatum Corporation"}) is None
    assert Applier._natural_key(customer, {"number": "C1", "displayName": "X"}) == {"number": "C1"}
    orders = mappings.get("SALES ORDERS")  # the CRM order number is a deterministic id
    assert Applier._natural_key(orders, {"yourReference": "ORD-01001-X", "customerNumber": "1"}
                                ) == {"yourReference": "ORD-01001-X"}


# ------------------------------------------------------------------------- over the sandbox
TWINS = ("Harrow Office Interiors", "Keswick Cycle Hire", "Whitby Print Works",
         "Ely Furniture Rentals", "Truro Bike Workshop", "Hexham Seating Ltd.",
         "Buxton Workspace Co.", "Ludlow Conference Centre", "Penrith Frames",
         "Malton Office Supply", "Skipton Wheelworks")
FAULTS = "rate={rate},kinds=503+reset+slow+429+commit504+commitreset,seed={seed},slow=0.05-0.2"
EVERY_WRITE_LOST = "rate=1,kinds=commit504+commitreset,seed=5"
LOST_CREATE = "the reply to the create was lost"


def _sandbox_bc(sandbox: Sandbox) -> BusinessCentral:
    info = sandbox.info
    return BusinessCentral(info.bc_api_url, info.company_id,
                           ClientCredentials(info.authority, info.client_id, info.client_secret,
                                             info.bc_scope), retry=NO_WAIT)


def test_sandbox_commit504_commits_the_batch_then_answers_504(fresh_sandbox: Sandbox) -> None:
    """The sandbox is as strict as BC: the write runs and commits, the client gets a 504 (or no
    answer with ``commitreset``); reads and snapshot batches are left alone."""
    client = _sandbox_bc(fresh_sandbox)
    batch = {"requests": [{"method": "POST", "id": "1", "url": client.entity_path("customers"),
                           "headers": {"Content-Type": "application/json"},
                           "body": {"displayName": "Keswick Cycle Hire"}}]}
    for kind, number in (("commit504", 1), ("commitreset", 2)):
        fresh_sandbox.set_faults(f"rate=1,kinds={kind},seed=1")
        with pytest.raises(TransientError) as lost:
            client.http.request("POST", "$batch", json=batch, entity="$batch",
                                retry_unsafe=False)
        assert lost.value.status == (504 if kind == "commit504" else None)
        assert client.read("customers", filter="displayName eq 'Keswick Cycle Hire'").height \
            == number, "the batch did not commit before its answer was lost"
    fresh_sandbox.set_faults("rate=1,kinds=commit504,seed=1")
    snapshot = client.http.request("POST", "$batch", json=batch, entity="$batch",
                                   headers={"Isolation": "snapshot"}, retry_unsafe=False)
    assert snapshot.json()["responses"][0]["status"] == 201
    injected = fresh_sandbox.context.status()["faults"]["injected"]
    fresh_sandbox.set_faults(None)
    assert injected == {"commit504": 0}  # drawn for the snapshot batch, which it leaves alone


def _seed_twins(ws: Workspace, names: tuple[str, ...]) -> set[str]:
    """Blocked BC customers, and active CRM accounts of type Customer entered by a salesperson
    with the same names; returns the blocked customers' ids."""
    outcomes = ws.connections.business_central.write([
        WriteOp.create("customers", {"displayName": name, "type": "Company", "blocked": "All"})
        for name in names])
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes if not o.ok]
    people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                           filter="accessmode ne 4 and isdisabled eq false",
                                           top=1)
    with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
        accounts = person.write([WriteOp.create("accounts", {
            "name": name, "customertypecode": 3, "telephone1": f"+44 20 7946 {n:04d}"},
            key=str(uuid.uuid4())) for n, name in enumerate(names)])
    assert all(o.ok for o in accounts), [str(o.error) for o in accounts if not o.ok]
    return {o.id for o in outcomes}


def lost_reply_scenario(sandbox: Sandbox, workspace: Path, *, names: tuple[str, ...],
                        faults: list[str]) -> dict[str, int]:
    """Issue #14 over a fresh CRONUS sandbox with limits on: CUSTOMER's first sync (which
    matches and creates) and further runs, one under each fault spec, then runs without faults
    until nothing fails; every coupling is checked. Returns what happened."""
    sandbox.reset("cronus")
    write_config(sandbox_workspace_config(sandbox.info, workspace), workspace)
    figures = {"faults": 0, "failed": 0, "unknown": 0}
    with open_workspace(workspace) as ws:
        for client in (ws.connections.business_central, ws.connections.dataverse):
            client.http.retry = RetryPolicy(max_retries=4, base_delay_s=0.01, max_delay_s=0.05)
        ws.connections.business_central.batch_size = 3  # more batches: more lost answers
        ws.sync_all(["SALESPEOPLE", "CURRENCY"])
        blocked = _seed_twins(ws, names)
        sandbox.set_limits(True)
        try:
            for spec in faults:
                sandbox.set_faults(spec)
                figures["failed"] += ws.sync_all(["CUSTOMER"]).counts["failed"]
                figures["faults"] += sum((sandbox.context.status()["faults"] or {})
                                         .get("injected", {}).values())
        finally:
            sandbox.set_faults(None)
            sandbox.set_limits(False)
        errors = ws.store.record_errors_frame("CUSTOMER")
        figures["unknown"] = errors.filter(pl.col("message").str.contains(LOST_CREATE)).height
        for _ in range(3):
            if ws.sync_all(["CUSTOMER"]).counts["failed"] == 0:
                break
        _check_couplings(ws, names, blocked)
    return figures


def _check_couplings(ws: Workspace, names: tuple[str, ...], blocked: set[str]) -> None:
    """No duplicate on either side, no coupling outside CUSTOMER's filter or to a record with
    another number, and every CRM account has its own new BC customer."""
    customers = ws.connections.business_central.read(
        "customers", select=["id", "number", "displayName", "blocked"])
    accounts = ws.connections.dataverse.read(
        "accounts", select=["accountid", "name", "accountnumber"])
    couplings = ws.store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id", "nav_key"])
    assert customers.filter(pl.col("number").is_duplicated()).height == 0
    numbered = accounts.filter(pl.col("accountnumber").is_not_null())
    assert numbered.filter(pl.col("accountnumber").is_duplicated()).height == 0
    for name in names:
        twins = customers.filter(pl.col("displayName") == name)
        assert twins.filter(pl.col("blocked") == "All").height == 1, name
        assert twins.filter(pl.col("blocked") != "All").height == 1, f"{name}: BC duplicate"
        assert accounts.filter(pl.col("name") == name).height == 1, f"{name}: CRM duplicate"
    nav = {r["id"]: r for r in customers.iter_rows(named=True)}
    crm = {r["accountid"]: r for r in accounts.iter_rows(named=True)}
    for nav_id, crm_id, nav_key in couplings.iter_rows():
        record = nav[nav_id]
        assert nav_id not in blocked and record["blocked"].strip() == "", (
            f"{crm[crm_id]['name']} coupled to BC {record['number']} outside the filter")
        assert nav_key == record["number"] == crm[crm_id]["accountnumber"], (
            f"{crm[crm_id]['name']} coupled to BC {record['number']} (key {nav_key})")
    partner = {crm[c]["name"]: nav[n] for n, c, _ in couplings.iter_rows() if c in crm}
    for name in names:
        assert name in partner, f"{name} never got its own BC customer"
        assert partner[name]["displayName"] == name and partner[name]["id"] not in blocked


def test_every_lost_create_reply_leaves_no_wrong_coupling_and_no_duplicate(
        workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    """Every BC write commits and then loses its answer (504 or reset) during CUSTOMER's first
    sync: nothing is coupled by guess (the run reports the records as failed, saying the reply
    was lost), and the next runs find each created customer by matching, never a blocked one."""
    figures = lost_reply_scenario(fresh_sandbox, workspace_dir, names=TWINS[:6],
                                  faults=[EVERY_WRITE_LOST])
    assert figures["unknown"] >= 6 and figures["failed"] >= 6, figures


@pytest.mark.parametrize("seed", [2, 4, 11])
def test_random_faults_never_couple_crm_accounts_to_blocked_namesakes(
        workspace_dir: Path, fresh_sandbox: Sandbox, seed: int) -> None:
    """Issue #14 as reported: faults 503+reset+slow+429 plus commit-then-lose, limits on. (With
    today's request pattern each of these seeds loses the answer of some committed creates.)"""
    figures = lost_reply_scenario(
        fresh_sandbox, workspace_dir, names=TWINS[:8],
        faults=[FAULTS.format(rate=0.2, seed=seed * 10 + k) for k in range(3)])
    print(f"seed {seed}:", figures)
    assert figures["faults"] > 0, figures


@pytest.mark.slow
def test_lost_replies_soak(workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    names = tuple(f"{name} {n}" for n in range(6) for name in TWINS)
    totals = {"faults": 0, "failed": 0, "unknown": 0}
    for seed in range(20, 30):
        figures = lost_reply_scenario(
            fresh_sandbox, workspace_dir.parent / f"soak-{seed}", names=names,
            faults=[FAULTS.format(rate=0.25, seed=seed * 10 + k) for k in range(4)])
        totals = {k: totals[k] + figures[k] for k in totals}
    print("lost reply figures:", totals)
    assert totals["faults"] > 0 and totals["unknown"] > 0
