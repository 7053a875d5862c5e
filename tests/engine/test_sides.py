"""Reading one side: with ``ignore_own_changes`` the CRM changed-read leaves out the rows the
integration user changed last."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import polars as pl
import pytest

from nav_crm_ops import open_workspace
from nav_crm_ops.connectors import BasicAuth, Dataverse, RetryPolicy, WriteOp
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.planner import parse_moment
from nav_crm_ops.engine.sides import MODIFIED_BY, SideReader, integration_user_id
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.secrets import Secret

OVERLAP = timedelta(seconds=30)
DV = "https://org.crm.dynamics.com/api/data/v9.2/"
USER = "8d2c2f5e-3b1a-4f7e-9c0d-1e2f3a4b5c6d"


@pytest.fixture
def ws(workspace_dir: Path) -> Iterator[Workspace]:
    with open_workspace(workspace_dir) as opened:
        yield opened


def _readers(ws: Workspace) -> tuple[SideReader, SideReader]:
    mapping = ws.mappings.get("CUSTOMER")
    client = ws.connections.dataverse
    return (SideReader(mapping, "crm", client, ignore_own_changes=True),
            SideReader(mapping, "crm", client))


def test_the_run_after_a_first_sync_reads_no_crm_record_back(ws: Workspace) -> None:
    ws.sync("CUSTOMER")
    since = parse_moment(ws.store.watermarks("CUSTOMER")["crm"])
    reader, with_ours = _readers(ws)
    client = ws.connections.dataverse
    user = str(integration_user_id(client))
    last_change_by = dict(client.read("accounts", select=["accountid", MODIFIED_BY]).iter_rows())
    unfiltered = set(with_ours.changed(since, OVERLAP)["accountid"].to_list())
    written = {i for i in unfiltered if last_change_by[i] == user}
    assert written  # the sync's own creates and updates: what the next run used to read back
    before = client.stats.reads
    read = set(reader.changed(since, OVERLAP)["accountid"].to_list())
    assert read == unfiltered - written  # only people's changes within the overlap remain
    assert not reader.probe(since)
    assert client.stats.reads - before == 2  # the read and the probe: WhoAmI was asked above
    assert with_ours.probe(since)
    report = ws.sync("CUSTOMER")
    assert report.result("CUSTOMER").count("modified") == 0


def test_a_person_changing_a_row_after_the_sync_wrote_it_is_read(ws: Workspace) -> None:
    ws.sync("CUSTOMER")
    since = parse_moment(ws.store.watermarks("CUSTOMER")["crm"])
    reader, _ = _readers(ws)
    client = ws.connections.dataverse
    person = client.read("systemusers", select=["systemuserid"],
                         filter="accessmode eq 0 and isdisabled eq false")["systemuserid"][0]
    account = ws.store.couplings_frame("CUSTOMER")["crm_id"][0]
    assert account not in reader.changed(since, OVERLAP)["accountid"].to_list()
    with client.acting_as(person) as as_person:
        [outcome] = as_person.write(
            [WriteOp.update("accounts", account, {"telephone1": "+44 20 7946 0999"})])
    assert outcome.ok, outcome.error
    assert account in reader.changed(since, OVERLAP)["accountid"].str.to_lowercase().to_list()
    assert reader.probe(since)


def test_rows_a_person_changed_last_are_still_read(ws: Workspace) -> None:
    ws.sync("CUSTOMER")
    reader, _ = _readers(ws)
    client = ws.connections.dataverse
    user = integration_user_id(client)
    assert user is not None
    everything = client.read("accounts", select=["accountid", MODIFIED_BY],
                             filter=reader.table_filter)
    by_person = everything.filter(pl.col(MODIFIED_BY) != str(user))
    by_us = everything.filter(pl.col(MODIFIED_BY) == str(user))
    assert by_person.height > 0 and by_us.height > 0  # seeded rows and the sync's writes
    read = reader.changed(datetime(2000, 1, 1, tzinfo=UTC), OVERLAP)
    assert set(read["accountid"].str.to_lowercase().to_list()) == set(
        by_person["accountid"].str.to_lowercase().to_list())


def test_the_first_sync_and_reads_by_id_are_never_filtered(ws: Workspace) -> None:
    reader, with_ours = _readers(ws)
    assert reader.changed(None, OVERLAP).height == with_ours.changed(None, OVERLAP).height > 0
    ws.sync("CUSTOMER")
    ids = with_ours.changed(None, OVERLAP)["accountid"].to_list()
    assert reader.by_ids(ids).height == len(ids)


def _replayed(who_am_i: httpx.Response, seen: list[httpx.Request]) -> Dataverse:
    """A Dataverse connection replaying a WhoAmI reply and an empty accounts page."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/WhoAmI"):
            return who_am_i
        return httpx.Response(200, json={"value": []})

    return Dataverse(DV, BasicAuth("admin", Secret("key")), transport=httpx.MockTransport(handler),
                     retry=RetryPolicy(max_retries=0, base_delay_s=0.0, max_delay_s=0.0),
                     max_workers=1)


def _filters(seen: list[httpx.Request]) -> list[str]:
    return [parse_qs(urlparse(str(r.url)).query).get("$filter", [""])[0] for r in seen
            if not r.url.path.endswith("/WhoAmI")]


def test_whoami_is_asked_once_per_connection_and_filters_by_the_user_it_names() -> None:
    seen: list[httpx.Request] = []
    client = _replayed(httpx.Response(200, json={
        "@odata.context": f"{DV}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": "1b2c3d4e-0000-0000-0000-000000000001", "UserId": USER,
        "OrganizationId": "1b2c3d4e-0000-0000-0000-000000000002"}), seen)
    mapping = MappingSet.load().get("CUSTOMER")
    since = datetime(2026, 1, 1, tzinfo=UTC)
    SideReader(mapping, "crm", client, ignore_own_changes=True).changed(since, OVERLAP)
    SideReader(mapping, "crm", client, ignore_own_changes=True).probe(since)
    assert sum(r.url.path.endswith("/WhoAmI") for r in seen) == 1
    assert all(f"{MODIFIED_BY} ne {USER}" in text for text in _filters(seen))


def _reader_after(whoami: httpx.Response, seen: list[httpx.Request]) -> SideReader:
    """A CUSTOMER CRM reader whose WhoAmI answers ``whoami`` (replayed on the wire)."""
    return SideReader(MappingSet.load().get("CUSTOMER"), "crm", _replayed(whoami, seen),
                      ignore_own_changes=True)


def test_a_failing_whoami_falls_back_to_every_change_since_the_watermark() -> None:
    seen: list[httpx.Request] = []
    reader = _reader_after(httpx.Response(403, json={"error": {
        "code": "0x80072560", "message": "The user is not a member of the organization."}}), seen)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert reader.changed(since, OVERLAP).height == 0
    assert not reader.probe(since)
    assert sum(r.url.path.endswith("/WhoAmI") for r in seen) == 1  # the failure is remembered
    texts = _filters(seen)
    assert len(texts) == 2 and all("modifiedon" in t and MODIFIED_BY not in t for t in texts)


def test_a_transient_whoami_failure_is_asked_again_on_the_next_read() -> None:
    seen: list[httpx.Request] = []
    reader = _reader_after(httpx.Response(503, json={"error": {
        "code": "0x80040216", "message": "An unexpected error occurred."}}), seen)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    reader.changed(since, OVERLAP)
    reader.changed(since, OVERLAP)
    assert sum(r.url.path.endswith("/WhoAmI") for r in seen) == 2
    assert all(MODIFIED_BY not in text for text in _filters(seen))


def test_business_central_reads_are_never_filtered_by_user(ws: Workspace) -> None:
    mapping = ws.mappings.get("CUSTOMER")
    client = ws.connections.business_central_for(mapping.nav.api)
    assert integration_user_id(client) is None
    nav = SideReader(mapping, "nav", client, ignore_own_changes=True)
    assert nav.changed(datetime(2000, 1, 1, tzinfo=UTC), OVERLAP).height > 0


def test_the_integration_user_is_asked_once_and_remembered_across_processes(
        workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as first:
        first.sync("CURRENCY")
        asked = first.connections.dataverse.stats.requests
        first.sync("CURRENCY")
        again = first.connections.dataverse.stats.requests - asked
    with open_workspace(workspace_dir) as second:  # a new process: a new connection
        second.sync("CURRENCY")
        requests = second.connections.dataverse.stats.requests
    assert again == requests == 1  # one changed-read each; no WhoAmI after the first
    cached = second.store.cached_map(f"whoami:{second.connections.dataverse.http.base_url}")
    assert cached is not None
    with open_workspace(workspace_dir) as third:
        assert str(integration_user_id(third.connections.dataverse)) == cached[0]["user"]


def test_a_long_read_reports_the_rows_read_after_each_page(fresh_sandbox: Sandbox,
                                                           workspace_dir: Path) -> None:
    """The preview's "read crm" stage counts rows as pages arrive (Dataverse pages by
    ``Prefer: odata.maxpagesize``), instead of showing 0 until the read ends."""
    from nav_crm_ops.engine.progress import ProgressEvent

    events: list[ProgressEvent] = []
    with open_workspace(workspace_dir) as ws:
        ws.connections.dataverse.page_size = 2
        ws.preview("CUSTOMER", progress=events.append)
    reads = [e.done for e in events if e.stage == "read crm"]
    assert reads[0] == 0 and len(reads) > 3 and reads == sorted(reads)
    assert reads[-1] > 4
