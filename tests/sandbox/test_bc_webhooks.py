"""Business Central webhook subscriptions in the sandbox, over real loopback HTTP.

The protocol is the one "Working with webhooks in Dynamics 365 Business Central" documents:
https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
(handshake with ``validationToken`` on create and renew, ``clientState`` in every notification,
three-day expiry, renewal by PATCH with If-Match, ``collection`` notifications, delivery delayed
and aggregated, a non-retryable answer deletes the subscription).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.business_central.subscriptions import webhook_hub
from tests.sandbox.test_businesscentral import error_of


class Receiver:
    """A subscriber: answers the handshake as told (``mode``) and keeps what it received."""

    def __init__(self) -> None:
        self.mode = "echo"  # echo | wrong | status:<n>
        self.handshakes: list[str] = []
        self.notifications: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "validationToken" in query:
                    token = query["validationToken"][0]
                    receiver.handshakes.append(token)
                    text = token if receiver.mode == "echo" else "not-the-token"
                    self._answer(200, text)
                    return
                receiver.notifications.append(json.loads(body))
                status = int(receiver.mode.split(":")[1]) if receiver.mode.startswith(
                    "status:") else 202
                self._answer(status, "")

            def _answer(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bc-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout_s: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            values = [n for body in self.notifications for n in body["value"]]
            if len(values) >= count:
                return values
            time.sleep(0.1)
        return [n for body in self.notifications for n in body["value"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


@pytest.fixture
def api(fresh_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client on the v2.0 API root (where ``subscriptions`` sits), short webhook delay."""
    info = fresh_sandbox.info
    hub = webhook_hub(info)
    hub.delay_s, hub.lifetime = 0.5, timedelta(days=3)
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": info.bc_scope,
    }).json()["access_token"]
    with httpx.Client(base_url=info.bc_api_url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
        for sub in client.get("subscriptions").json()["value"]:  # leave none behind
            client.delete(f"subscriptions('{sub['subscriptionId']}')",
                          headers={"If-Match": "*"})


def _customers(sandbox: Sandbox) -> str:
    return f"/api/v2.0/companies({sandbox.info.company_id})/customers"


def test_handshake_then_notification_with_client_state_after_a_customer_patch(
        api: httpx.Client, receiver: Receiver, fresh_sandbox: Sandbox) -> None:
    created = api.post("subscriptions", json={
        "notificationUrl": receiver.url, "resource": _customers(fresh_sandbox),
        "clientState": "s3cret-state"})
    assert created.status_code == 201, created.text
    sub = created.json()
    assert len(receiver.handshakes) == 1
    assert sub["clientState"] == "s3cret-state" and sub["subscriptionId"]
    assert sub["expirationDateTime"] > sub["lastModifiedDateTime"]

    company = f"companies({fresh_sandbox.info.company_id})/"
    customer = api.get(company + "customers", params={"$top": "1"}).json()["value"][0]
    for name in ("Webhook one", "Webhook two"):  # two changes within the delay: one notice
        etag = api.get(f"{company}customers({customer['id']})").json()["@odata.etag"]
        patched = api.patch(f"{company}customers({customer['id']})",
                            json={"displayName": name}, headers={"If-Match": etag})
        assert patched.status_code == 200, patched.text
    values = receiver.wait_for(1)
    time.sleep(1.0)
    values = receiver.wait_for(1)
    assert len(values) == 1, values
    note = values[0]
    assert note["subscriptionId"] == sub["subscriptionId"]
    assert note["clientState"] == "s3cret-state"
    assert note["changeType"] == "updated"
    assert note["resource"].endswith(f"/customers({customer['id']})")
    assert note["expirationDateTime"] == sub["expirationDateTime"]


def test_a_failed_handshake_creates_no_subscription(
        api: httpx.Client, receiver: Receiver, fresh_sandbox: Sandbox) -> None:
    receiver.mode = "wrong"
    refused = api.post("subscriptions", json={
        "notificationUrl": receiver.url, "resource": _customers(fresh_sandbox)})
    assert "handshake" in error_of(refused, 400, "BadRequest")
    dead = api.post("subscriptions", json={
        "notificationUrl": "http://127.0.0.1:9/nothing", "resource": _customers(fresh_sandbox)})
    assert "handshake" in error_of(dead, 400, "BadRequest")
    assert api.get("subscriptions").json()["value"] == []


def test_bad_resources_and_properties_are_refused(
        api: httpx.Client, receiver: Receiver, fresh_sandbox: Sandbox) -> None:
    company = fresh_sandbox.info.company_id
    contacts = api.post("subscriptions", json={
        "notificationUrl": receiver.url, "resource": f"/api/v2.0/companies({company})/contacts"})
    assert "does not support webhooks" in error_of(contacts, 400, "BadRequest")
    unknown = api.post("subscriptions", json={
        "notificationUrl": receiver.url, "resource": _customers(fresh_sandbox), "color": 1})
    error_of(unknown, 400, "BadRequest_PropertyNotFound")
    assert receiver.handshakes == []


def test_renewal_needs_if_match_and_a_new_handshake_delete_unsubscribes(
        api: httpx.Client, receiver: Receiver, fresh_sandbox: Sandbox) -> None:
    sub = api.post("subscriptions", json={
        "notificationUrl": receiver.url, "resource": _customers(fresh_sandbox),
        "clientState": "a"}).json()
    path = f"subscriptions('{sub['subscriptionId']}')"
    error_of(api.patch(path, json={}), 400, "BadRequest_InvalidToken")
    receiver.mode = "wrong"
    error_of(api.patch(path, json={}, headers={"If-Match": sub["@odata.etag"]}), 400,
             "BadRequest")
    receiver.mode = "echo"
    time.sleep(1.1)
    renewed = api.patch(path, json={"clientState": "b"}, headers={"If-Match": sub["@odata.etag"]})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["expirationDateTime"] > sub["expirationDateTime"]
    assert renewed.json()["clientState"] == "b" and len(receiver.handshakes) == 3
    error_of(api.delete(path, headers={"If-Match": sub["@odata.etag"]}), 409,
             "Request_EntityChanged")
    assert api.delete(path, headers={"If-Match": renewed.json()["@odata.etag"]}).status_code == 204
    error_of(api.get(path), 404, "Internal_RecordNotFound")


def test_subscriptions_expire_and_many_changes_are_one_collection_notification(
        api: httpx.Client, receiver: Receiver, fresh_sandbox: Sandbox) -> None:
    hub = webhook_hub(fresh_sandbox.info)
    hub.max_notifications = 2
    try:
        api.post("subscriptions", json={"notificationUrl": receiver.url,
                                        "resource": _customers(fresh_sandbox)})
        company = f"companies({fresh_sandbox.info.company_id})/"
        for row in api.get(company + "customers", params={"$top": "3"}).json()["value"]:
            api.patch(f"{company}customers({row['id']})", json={"phoneNumber": "0100"},
                      headers={"If-Match": row["@odata.etag"]}).raise_for_status()
        values = receiver.wait_for(1)
        assert [v["changeType"] for v in values] == ["collection"]
        assert "$filter=lastModifiedDateTime%20gt%20" in values[0]["resource"]
    finally:
        hub.max_notifications = 1000
    hub.lifetime = timedelta(seconds=1)
    short = api.post("subscriptions", json={"notificationUrl": receiver.url,
                                            "resource": _customers(fresh_sandbox)}).json()
    assert len(api.get("subscriptions").json()["value"]) == 2
    time.sleep(1.2)
    left = api.get("subscriptions").json()["value"]
    assert short["subscriptionId"] not in {s["subscriptionId"] for s in left} and len(left) == 1


def test_a_subscriber_answering_401_loses_its_subscription(
        api: httpx.Client, receiver: Receiver, fresh_sandbox: Sandbox) -> None:
    api.post("subscriptions", json={"notificationUrl": receiver.url,
                                    "resource": _customers(fresh_sandbox)}).raise_for_status()
    receiver.mode = "status:401"
    company = f"companies({fresh_sandbox.info.company_id})/"
    row = api.get(company + "customers", params={"$top": "1"}).json()["value"][0]
    api.patch(f"{company}customers({row['id']})", json={"phoneNumber": "0101"},
              headers={"If-Match": row["@odata.etag"]}).raise_for_status()
    assert len(receiver.wait_for(1)) == 1
    deadline = time.monotonic() + 5
    while api.get("subscriptions").json()["value"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.get("subscriptions").json()["value"] == []
