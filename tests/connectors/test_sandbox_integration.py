"""Both connectors over real loopback HTTP against the sandbox (msal tokens included)."""

from __future__ import annotations

import time
import uuid

import pytest

from nav_crm_ops.connectors import (
    BusinessCentral,
    ClientCredentials,
    Dataverse,
    F,
    RetryPolicy,
    WriteOp,
)
from nav_crm_ops.exceptions import AuthError, ConnectorError, ValidationError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.secrets import Secret

FAST_RETRY = RetryPolicy(max_retries=12, base_delay_s=0.05, max_delay_s=0.5)


def dv_client(sb: Sandbox, **kwargs: object) -> Dataverse:
    info = sb.info
    auth = ClientCredentials(info.authority, info.client_id, info.client_secret,
                             info.dataverse_scope)
    return Dataverse(info.dataverse_url, auth, retry=FAST_RETRY, **kwargs)  # type: ignore[arg-type]


def bc_client(sb: Sandbox, **kwargs: object) -> BusinessCentral:
    info = sb.info
    auth = ClientCredentials(info.authority, info.client_id, info.client_secret, info.bc_scope)
    return BusinessCentral(info.bc_api_url, info.company_id, auth, retry=FAST_RETRY,
                           **kwargs)  # type: ignore[arg-type]


def account_ops(count: int, prefix: str) -> list[WriteOp]:
    return [WriteOp.create("accounts", {"name": f"{prefix} {n:05d}", "accountnumber":
                                        f"{prefix[:3]}{n:05d}"},
                           key=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}/{n}")))
            for n in range(count)]


def test_read_12000_accounts_in_pages_of_5000_with_minimum_requests(
        fresh_sandbox: Sandbox) -> None:
    client = dv_client(fresh_sandbox)
    existing = client.read("accounts", select=["accountid"]).height
    before = client.stats.requests
    outcomes = client.write(account_ops(12000 - existing, "Bulk"))
    assert len(outcomes) == 12000 - existing and all(o.ok for o in outcomes)
    assert client.stats.requests - before == -(-(12000 - existing) // 1000)

    reader = dv_client(fresh_sandbox)
    pages = list(reader.read_pages("accounts", select=["accountid", "name", "modifiedon"]))
    assert [p.height for p in pages] == [5000, 5000, 2000]
    assert reader.stats.requests == 3
    assert reader.http.auth.token_requests == 1  # type: ignore[attr-defined]
    frame = reader.read("accounts", select=["accountid", "name"],
                        filter=F("name").startswith("Bulk "))
    assert frame.height == 12000 - existing and frame["accountid"].n_unique() == frame.height


def test_write_2500_with_failures_identified(fresh_sandbox: Sandbox) -> None:
    ops = account_ops(2500, "Write")
    bad = {17, 1203, 2499}
    ops = [WriteOp.create(op.entity_set, {**op.payload, "name": "N" * 161}, key=op.key)
           if i in bad else op for i, op in enumerate(ops)]
    client = dv_client(fresh_sandbox)
    outcomes = client.write(ops)
    assert len(outcomes) == 2500 and client.stats.requests == 3
    assert {i for i, o in enumerate(outcomes) if not o.ok} == bad
    failure = outcomes[1203]
    assert isinstance(failure.error, ValidationError) and failure.error.record_key == ops[1203].key
    assert "160" in failure.error.service_message
    assert [o.op_id for o in outcomes] == [op.op_id for op in ops]


def test_throttled_run_completes_and_counts_waits(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.set_limits(True, requests=20, window_s=1.0)
    client = dv_client(fresh_sandbox, batch_size=10, max_workers=4)
    outcomes = client.write(account_ops(400, "Throttle"))
    assert len(outcomes) == 400 and all(o.ok for o in outcomes)
    assert client.stats.throttled > 0 and client.stats.throttled_wait_s > 0
    assert client.stats.retries >= client.stats.throttled
    fresh_sandbox.set_limits(False)
    names = dv_client(fresh_sandbox).read("accounts", select=["name"],
                                          filter=F("name").startswith("Throttle "))
    assert names.height == 400


def test_faults_never_duplicate_dataverse_creates(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.set_faults("rate=0.2,kinds=503+reset+429,seed=3")
    client = dv_client(fresh_sandbox, batch_size=25, max_workers=2)
    client.http.retry = RetryPolicy(max_retries=15, base_delay_s=0.01, max_delay_s=0.05)
    ops = account_ops(300, "Fault")
    first = client.write(ops)
    second = client.write(ops[:50])
    fresh_sandbox.set_faults(None)
    assert all(o.ok for o in first) and all(o.already_existed for o in second)
    assert client.stats.retries > 0
    rows = dv_client(fresh_sandbox).read("accounts", select=["accountid", "name"],
                                         filter=F("name").startswith("Fault "))
    assert rows.height == 300 and rows["name"].n_unique() == 300


def test_faults_never_duplicate_business_central_creates(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.set_faults("rate=0.2,kinds=503+reset+429,seed=3")
    client = bc_client(fresh_sandbox, batch_size=20, max_workers=2)
    client.http.retry = RetryPolicy(max_retries=15, base_delay_s=0.01, max_delay_s=0.05)
    ops = [WriteOp.create("customers", {"number": f"F{n:05d}", "displayName": f"Fault {n}"},
                          natural_key={"number": f"F{n:05d}"}, op_id=f"F{n:05d}")
           for n in range(120)]
    outcomes = client.write(ops)
    fresh_sandbox.set_faults(None)
    assert len(outcomes) == 120 and all(o.ok for o in outcomes), \
        [str(o.error) for o in outcomes if not o.ok][:3]
    assert client.stats.retries > 0
    rows = bc_client(fresh_sandbox).read("customers", select=["id", "number"],
                                         filter=F("displayName").startswith("Fault "))
    assert rows.height == 120 and rows["number"].n_unique() == 120
    assert sorted(o.id for o in outcomes) == sorted(rows["id"].to_list())


def test_token_expiry_mid_run_is_survived(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.set_token_lifetime(1)
    try:
        client = dv_client(fresh_sandbox)
        client.whoami()
        time.sleep(1.2)
        client.whoami()
        bc = bc_client(fresh_sandbox)
        bc.read("customers", select=["id"])
        time.sleep(1.2)
        bc.read("customers", select=["id"])
    finally:
        fresh_sandbox.set_token_lifetime(3600)
    assert client.http.auth.token_requests == 2  # type: ignore[attr-defined]
    assert bc.http.auth.token_requests == 2  # type: ignore[attr-defined]


def test_wrong_secret_is_a_clear_auth_error(sandbox: Sandbox) -> None:
    info = sandbox.info
    wrong = "definitely-not-the-secret-42"
    auth = ClientCredentials(info.authority, info.client_id, Secret(wrong), info.bc_scope,
                             secret_setting="environment variable BC_CLIENT_SECRET")
    client = BusinessCentral(info.bc_api_url, info.company_id, auth)
    with pytest.raises(AuthError) as raised:
        client.read("customers")
    error = raised.value
    assert "BC_CLIENT_SECRET" in str(error) and info.client_id in str(error)
    for text in (str(error), repr(error), repr(error.args), str(error.to_dict()), repr(auth)):
        assert wrong not in text and info.client_secret.reveal() not in text


def test_dataverse_reads_by_ids_tracks_changes_and_choices(fresh_sandbox: Sandbox) -> None:
    client = dv_client(fresh_sandbox, max_filter_chars=400)
    ids = client.read("accounts", select=["accountid"])["accountid"].to_list()
    frame = client.read_by_ids("accounts", "accountid", ids, select=["accountid", "name"])
    assert sorted(frame["accountid"].to_list()) == sorted(ids)
    _, _, link = client.track_changes("accounts", ["accountid", "name"])
    client.write([WriteOp.update("accounts", ids[0], {"name": "Renamed"}),
                  WriteOp.delete("accounts", ids[1])])
    changed, deleted, _ = client.track_changes("accounts", ["accountid", "name"], link)
    assert changed["name"].to_list() == ["Renamed"] and deleted == [ids[1]]
    options = client.choice_options("account", "customertypecode")
    assert options[3] == "Customer"
    new_value = client.insert_option_value("account", "customertypecode", "Distributor")
    assert client.choice_options("account", "customertypecode")[new_value] == "Distributor"
    before = client.stats.requests
    made = client.insert_option_values([("account", "paymenttermscode", "7 DAYS"),
                                        ("account", "paymenttermscode", "14 DAYS"),
                                        ("account", "no_such_column", "X")])
    assert client.stats.requests - before == 1
    first, second, refused = made
    assert isinstance(first, int) and isinstance(second, int) and first != second
    assert isinstance(refused, ValidationError | ConnectorError)
    labels = client.choice_options("account", "paymenttermscode")
    assert (labels[first], labels[second]) == ("7 DAYS", "14 DAYS")


def test_business_central_custom_api_and_bound_action(fresh_sandbox: Sandbox) -> None:
    bc = bc_client(fresh_sandbox)
    custom = BusinessCentral.custom_api(fresh_sandbox.info.bc_api_url,
                                        fresh_sandbox.info.company_id, bc.http.auth)
    assert custom.read("resources", select=["id", "number"]).height > 0
    customers = bc.read("customers", select=["id", "number"])
    by_number = bc.read_by_ids("customers", "number", customers["number"].to_list()[:3],
                               select=["id", "number"])
    assert sorted(by_number["number"].to_list()) == sorted(customers["number"].to_list()[:3])
    orders = bc.read("salesOrders", select=["id", "number"])
    if orders.height:
        bc.post_action("salesOrders", orders["id"][0], "Microsoft.NAV.shipAndInvoice")
        assert bc.read_by_ids("salesOrders", "id", [orders["id"][0]], select=["id"]).height == 0


def test_business_central_uses_the_minimum_requests(fresh_sandbox: Sandbox) -> None:
    client = bc_client(fresh_sandbox, page_size=100, max_workers=2)
    ops = [WriteOp.create("customers", {"number": f"R{n:05d}", "displayName": f"Count {n}"},
                          natural_key={"number": f"R{n:05d}"}) for n in range(250)]
    outcomes = client.write(ops)
    assert all(o.ok for o in outcomes) and client.stats.requests == 3
    total = client.read("customers", select=["id"]).height
    assert client.stats.requests == 3 + -(-total // 100)
    updates = [WriteOp.update("customers", o.id, {"phoneNumber": "555"}, if_match=o.etag)
               for o in outcomes[:150]]
    assert all(o.ok for o in client.write(updates)) and client.stats.requests == 5 + -(-total // 100)
    assert client.http.auth.token_requests == 1  # type: ignore[attr-defined]


def test_special_characters_survive_filters(fresh_sandbox: Sandbox) -> None:
    name = "O'Bryan + Sons & Co #1 50%"
    key = str(uuid.uuid4())
    client = dv_client(fresh_sandbox)
    assert client.write([WriteOp.create("accounts", {"name": name}, key=key)])[0].ok
    frame = client.read("accounts", select=["accountid", "name"], filter=F("name").eq(name))
    assert frame["accountid"].to_list() == [key] and frame["name"].to_list() == [name]
    bc = bc_client(fresh_sandbox)
    created = bc.write([WriteOp.create("customers", {"displayName": name})])[0]
    found = bc.read("customers", select=["id"], filter=F("displayName").eq(name))
    assert found["id"].to_list() == [created.id]
