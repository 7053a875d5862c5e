"""Dataverse connector against replays of the *documented* Web API answers (httpx.MockTransport).

Each test replays what Microsoft Learn documents for the real service where our sandbox used to
be kinder; each failed on the connector before the fix (issue #14, item 5).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from nav_crm_ops.connectors import BasicAuth, Dataverse, RetryPolicy, WriteOp
from nav_crm_ops.exceptions import ValidationError
from nav_crm_ops.secrets import Secret

DV = "https://org.crm.dynamics.com/api/data/v9.2/"
GUIDS = [f"00000000-0000-0000-0000-{n:012d}" for n in range(1, 30)]
NO_WAIT = RetryPolicy(max_retries=3, base_delay_s=0.0, max_delay_s=0.0)
EXISTS = {"error": {"code": "", "message": "A record with matching key values already exists."}}
DUPLICATE_KEY = {"error": {"code": "0x80040237",
                           "message": "A record with matching key values already exists."}}


def dataverse(handler: object, **kwargs: object) -> Dataverse:
    return Dataverse(DV, BasicAuth("admin", Secret("key")),
                     transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
                     retry=NO_WAIT, max_workers=1, **kwargs)  # type: ignore[arg-type]


@dataclass
class Part:
    """One request inside a multipart ``$batch`` body, as the service would read it."""

    method: str
    url: str
    headers: dict[str, str]
    body: str

    @property
    def key(self) -> str:
        match = re.search(r"\(([0-9a-f-]{36})\)", self.url)
        return match.group(1) if match else ""

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)


def parts_of(request: httpx.Request) -> list[Part]:
    boundary = re.search(r'boundary="?([^";]+)', request.headers["Content-Type"])
    assert boundary is not None
    out: list[Part] = []
    for chunk in request.content.decode().split(f"--{boundary.group(1)}")[1:]:
        if chunk.startswith("--"):
            break
        _mime_headers, _, http = chunk.partition("\r\n\r\n")
        head, _, body = http.partition("\r\n\r\n")
        line, *header_lines = head.split("\r\n")
        method, url, _ = line.split(" ")
        headers = {n.strip().lower(): v.strip() for n, _, v in
                   (h.partition(":") for h in header_lines) if n}
        out.append(Part(method, url, headers, body.strip()))
    return out


def batch_reply(answers: list[tuple[int, dict[str, str], object]],
                status: int = 200) -> httpx.Response:
    """A ``multipart/mixed`` batch response in the documented shape."""
    reasons = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
               404: "Not Found", 412: "Precondition Failed"}
    chunks = []
    for code, headers, body in answers:
        lines = [f"HTTP/1.1 {code} {reasons[code]}", "OData-Version: 4.0",
                 *[f"{k}: {v}" for k, v in headers.items()]]
        if body is not None:
            lines.append("Content-Type: application/json; odata.metadata=minimal")
        text = "\r\n".join(lines) + "\r\n\r\n" + (json.dumps(body) if body is not None else "")
        chunks.append("--batchresponse_1\r\nContent-Type: application/http\r\n"
                      f"Content-Transfer-Encoding: binary\r\n\r\n{text}\r\n")
    content = ("".join(chunks) + "--batchresponse_1--\r\n").encode()
    return httpx.Response(status, content=content, headers={
        "Content-Type": "multipart/mixed; boundary=batchresponse_1", "OData-Version": "4.0"})


def documented_write(part: Part, version: str) -> tuple[int, dict[str, str], object]:
    """A create/update as documented: ``204`` with ``OData-EntityId`` and no ``ETag``; with
    ``Prefer: return=representation`` ``201``/``200`` with the (``$select``-ed) record and no
    ``OData-EntityId``."""
    if part.headers.get("prefer") == "return=representation":
        body = {"@odata.context": f"{DV}$metadata#accounts/$entity",
                "@odata.etag": f'W/"{version}"', "accountid": part.key}
        return (201 if "if-none-match" in part.headers else 200), {
            "Preference-Applied": "return=representation"}, body
    return 204, {"OData-EntityId": f"{DV}accounts({part.key})"}, None


def test_a_limited_read_sends_top_alone() -> None:
    """*Page results using OData* (learn.microsoft.com/power-apps/developer/data-platform/
    webapi/query/page-results): "Don't use $top with the Prefer: odata.maxpagesize request
    header. If you include both, $top is ignored." The replay ignores $top exactly so; before
    the fix the probe read sent both and pulled the whole table (here: 3 pages)."""
    seen: list[httpx.Request] = []
    table = [{"@odata.etag": f'W/"{n}"', "accountid": g, "name": f"A{n}"}
             for n, g in enumerate(GUIDS)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        params = dict(request.url.params)
        prefer = request.headers.get("Prefer", "")
        size = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        start = int(params.get("$skiptoken", "0"))
        if size is None:  # no paging preference: $top applies, no nextLink
            rows = table[:int(params.get("$top", "5000"))]
            return httpx.Response(200, json={"value": rows})
        end = start + int(size.group(1))  # $top ignored while paging
        payload: dict[str, object] = {"value": table[start:end]}
        if end < len(table):
            payload["@odata.nextLink"] = f"{DV}accounts?$select=accountid&$skiptoken={end}"
        return httpx.Response(200, headers={"Preference-Applied": prefer}, json=payload)

    client = dataverse(handler, page_size=10)
    probe = client.read("accounts", select=["accountid"], top=1)
    assert probe.height == 1 and len(seen) == 1
    assert seen[0].url.params["$top"] == "1" and "Prefer" not in seen[0].headers

    seen.clear()
    more = client.read("accounts", select=["accountid", "name"], top=15)
    assert more["name"].to_list() == [f"A{n}" for n in range(15)]
    assert len(seen) == 2 and all("$top" not in r.url.params for r in seen)


def test_the_version_of_a_write_comes_from_the_returned_body() -> None:
    """*Update and delete table rows using the Web API* / *Create a table row using the Web
    API* (learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-
    using-web-api, .../create-entity-web-api): a create or update answers ``204 No Content``
    with ``OData-Version`` (and ``OData-EntityId`` on create), no ``ETag``; the new
    ``@odata.etag`` comes only with ``Prefer: return=representation`` (201/200, ``$select``
    keeps it small). Before the fix every version read here was empty."""
    sent: list[Part] = []

    def handler(request: httpx.Request) -> httpx.Response:
        parts = parts_of(request)
        sent.extend(parts)
        return batch_reply([documented_write(p, str(40 + n)) for n, p in enumerate(parts)])

    outcomes = dataverse(handler).write([
        WriteOp.create("accounts", {"name": "The Cannon Group PLC"}, key=GUIDS[0],
                       key_column="accountid"),
        WriteOp.update("accounts", GUIDS[1], {"telephone1": "555"}, if_match='W/"3"')])
    assert [(o.ok, o.etag, o.id) for o in outcomes] == [
        (True, 'W/"40"', GUIDS[0]), (True, 'W/"41"', GUIDS[1])]
    assert all(p.headers["prefer"] == "return=representation" for p in sent)
    assert [p.query["$select"] for p in sent] == [["accountid"], ["telephone1"]]
    assert sent[1].headers["if-match"] == 'W/"3"'


def test_a_write_answered_without_a_version_is_read_back() -> None:
    """Same pages: a ``204`` has no ``ETag``. Should a part come back without the body, the
    version is read back (one ``$batch`` of GETs) instead of being stored empty, which the
    engine would later send as ``If-Match: *`` and so overwrite concurrent edits."""
    batches: list[list[Part]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        parts = parts_of(request)
        batches.append(parts)
        if parts[0].method == "GET":
            return batch_reply([(200, {}, {"@odata.etag": 'W/"77"', "accountid": p.key})
                                for p in parts])
        return batch_reply([(204, {"OData-EntityId": f"{DV}accounts({p.key})"}, None)
                            for p in parts])

    outcomes = dataverse(handler).write([
        WriteOp.update("accounts", GUIDS[2], {"name": "Selangorian Ltd."}),
        WriteOp.delete("accounts", GUIDS[3])])
    assert [(o.ok, o.etag) for o in outcomes] == [(True, 'W/"77"'), (True, "")]
    assert [(p.method, p.key) for p in batches[1]] == [("GET", GUIDS[2])]
    assert batches[1][0].query["$select"] == ["name"]


def test_a_412_on_create_is_already_existed_only_when_the_id_exists() -> None:
    """*Perform conditional operations using the Web API* (.../webapi/perform-conditional-
    operations-using-web-api, "Prevent update in upsert"): ``If-None-Match: *`` answers ``412``
    "A record with matching key values already exists." when the id exists. An alternate-key
    or duplicate clash answers 412 too: *Troubleshoot Dataverse client errors*
    (learn.microsoft.com/troubleshoot/power-platform/dataverse/user-permissions/client-errors,
    "Cannot insert duplicate key", -2147220937 = 0x80040237). Before the fix both records were
    reported as already created with our id, and the engine coupled to a row that does not
    exist."""
    batches: list[list[Part]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        parts = parts_of(request)
        batches.append(parts)
        if parts[0].method == "GET":
            return batch_reply([
                (200, {}, {"@odata.etag": 'W/"5"', "accountid": p.key}) if p.key == GUIDS[4]
                else (404, {}, {"error": {"code": "0x80040217", "message":
                                          f"account With Id = {p.key} Does Not Exist"}})
                for p in parts])
        return batch_reply([(412, {}, EXISTS), (412, {}, DUPLICATE_KEY)])

    existing, clash = dataverse(handler).write([
        WriteOp.create("accounts", {"name": "Deerfield Graphics Company"}, key=GUIDS[4]),
        WriteOp.create("accounts", {"name": "Guildford Water Department",
                                    "accountnumber": "50000"}, key=GUIDS[5])])
    assert (existing.ok, existing.already_existed, existing.etag) == (True, True, 'W/"5"')
    assert (clash.ok, clash.already_existed) == (False, False)
    assert isinstance(clash.error, ValidationError) and clash.error.code == "0x80040237"
    assert "matching key values already exists" in str(clash.error)
    assert "no record with this id exists" in str(clash.error)
    assert [(p.method, p.key) for p in batches[1]] == [("GET", GUIDS[4]), ("GET", GUIDS[5])]


def test_new_choice_values_are_sent_so_that_each_answers_for_itself() -> None:
    """*Execute batch operations using the Web API* (.../webapi/execute-batch-operations-using-
    web-api, "Handling errors"): without ``Prefer: odata.continue-on-error`` the batch fails on
    the first failing request and answers the whole batch with that error (``400``). Before the
    fix one refused label failed every option of the call."""
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"error": {"code": "0x80040203", "message": "The option value already exists."}}
        refused: tuple[int, dict[str, str], object] = (400, {}, error)
        if "odata.continue-on-error" not in request.headers.get("Prefer", ""):
            return batch_reply([refused], status=400)
        return batch_reply([refused, (200, {}, {"NewOptionValue": 100000001})])

    values = dataverse(handler).insert_option_values([
        ("account", "customertypecode", "Distributor"),
        ("account", "customertypecode", "Wholesaler")])
    assert isinstance(values[0], ValidationError) and values[1] == 100000001


def test_an_impersonating_connection_keeps_the_stated_timeout() -> None:
    """`[http] timeout_s` applies to every connection of a workspace; the connection that acts
    as a person (``MSCRMCallerID``, *Impersonate another user using the Web API*) used to wait
    the default 60 s instead."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"value": []})

    client = dataverse(handler)
    client.http.set_timeout(7.0)
    person = "0e8c8a1c-0000-4000-8000-000000000001"
    with client.acting_as(person) as as_person:
        assert as_person.http.timeout_s == 7.0
        as_person.read("accounts", select=["accountid"], top=1)
    assert seen[0].headers["MSCRMCallerID"] == person
    assert seen[0].extensions["timeout"]["read"] == 7.0
