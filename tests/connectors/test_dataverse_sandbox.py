"""The Dataverse connector against the sandbox, which is as strict as the documented service
where the connector once relied on kindness (issue #14, item 5): a relapse fails here too."""

from __future__ import annotations

import uuid

from nav_crm_ops.connectors import ClientCredentials, Dataverse, RetryPolicy, WriteOp
from nav_crm_ops.exceptions import ValidationError
from nav_crm_ops.sandbox import Sandbox

FAST_RETRY = RetryPolicy(max_retries=6, base_delay_s=0.05, max_delay_s=0.5)


def dv_client(sb: Sandbox, **kwargs: object) -> Dataverse:
    info = sb.info
    auth = ClientCredentials(info.authority, info.client_id, info.client_secret,
                             info.dataverse_scope)
    return Dataverse(info.dataverse_url, auth, retry=FAST_RETRY, **kwargs)  # type: ignore[arg-type]


def test_a_limited_read_gets_only_its_rows_in_one_request(fresh_sandbox: Sandbox) -> None:
    """The sandbox ignores ``$top`` next to ``Prefer: odata.maxpagesize`` as the service does,
    so a probe that sent both would read the whole table here too."""
    client = dv_client(fresh_sandbox)
    frame = client.read("accounts", select=["accountid", "name"], top=2)
    assert frame.height == 2 and client.stats.requests == 1
    paged = dv_client(fresh_sandbox, page_size=3).read("accounts", select=["accountid"], top=7)
    assert paged.height == 7


def test_written_versions_are_the_rows_versions(fresh_sandbox: Sandbox) -> None:
    """A 204 carries no ETag: the versions come from ``return=representation`` bodies, in the
    same single request per batch."""
    client = dv_client(fresh_sandbox)
    key = str(uuid.uuid4())
    created = client.write([WriteOp.create("accounts", {"name": "Versioned Ltd."}, key=key,
                                           key_column="accountid")])[0]
    updated = client.write([WriteOp.update("accounts", key, {"telephone1": "0123"},
                                           if_match=created.etag)])[0]
    assert created.ok and updated.ok and client.stats.requests == 2
    assert created.etag and updated.etag and created.etag != updated.etag
    row = client.read_by_ids("accounts", "accountid", [key], select=["accountid"], etag=True)
    assert row["@odata.etag"].to_list() == [updated.etag]


def test_a_412_on_create_is_told_apart(fresh_sandbox: Sandbox) -> None:
    """Our id exists → already created (with its version); another record holds the alternate
    key value (accountnumber) → a failed create naming the clash, no coupling to a ghost."""
    client = dv_client(fresh_sandbox)
    number = f"N{uuid.uuid4().hex[:7]}"
    first = str(uuid.uuid4())
    assert client.write([WriteOp.create("accounts", {"name": "Holder", "accountnumber": number},
                                        key=first)])[0].ok
    again, clash = client.write([
        WriteOp.create("accounts", {"name": "Holder"}, key=first),
        WriteOp.create("accounts", {"name": "Newcomer", "accountnumber": number},
                       key=str(uuid.uuid4()))])
    assert (again.ok, again.already_existed) == (True, True) and again.etag
    assert (clash.ok, clash.already_existed) == (False, False)
    assert isinstance(clash.error, ValidationError) and clash.error.code == "0x80040237"
    assert "accountnumber" in str(clash.error) and "no record with this id" in str(clash.error)
