"""The subscriptions client against Business Central's documented answers (httpx.MockTransport).

The bodies are the documented examples:
- create: https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_subscriptions_create
- update (renew): https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_subscriptions_update
- delete: https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_subscriptions_delete
- the protocol: https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nav_crm_ops.connectors import BusinessCentral
from nav_crm_ops.connectors.auth import BasicAuth
from nav_crm_ops.connectors.bc_subscriptions import BCSubscriptions, Subscription
from nav_crm_ops.connectors.http import RetryPolicy
from nav_crm_ops.exceptions import ConnectorError, NotFoundError
from nav_crm_ops.jobs.listen import resource_entity
from nav_crm_ops.secrets import Secret

BC = "https://api.businesscentral.dynamics.com/v2.0/t/production/api/v2.0/"
COMPANY = "f64eba74-dacd-4854-a584-1834f68cfc3a"
DOCUMENTED = {  # the "Response" example of the create and update pages
    "subscriptionId": "c670ea73cacb459bb51dc1740da2f1db",
    "notificationUrl": "https://contoso.com/myCallbacks",
    "resource": "/api/v1.0/companies(f64eba74-dacd-4854-a584-1834f68cfc3a)/customers",
    "userId": "00000000-0000-0000-0000-000000000001",
    "lastModifiedDateTime": "2018-10-12T12:32:35Z",
    "clientState": "optionalvalueof2048",
    "expirationDateTime": "2021-10-15T12:32:35Z",
    "systemCreatedAt": "2017-01-23T00:24:31.766Z",
    "systemCreatedBy": "f2a5738a-44e3-ea11-bb43-000d3a2feca1",
    "systemModifiedAt": "2020-08-21T00:24:31.777Z",
    "systemModifiedBy": "f2a5738a-44e3-ea11-bb43-000d3a2feca1",
}


def _client(seen: list[httpx.Request], answer: Any) -> BCSubscriptions:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    bc = BusinessCentral(BC, COMPANY, BasicAuth("admin", Secret("key")),
                         transport=httpx.MockTransport(handler),
                         retry=RetryPolicy(max_retries=3, base_delay_s=0.0, max_delay_s=0.0))
    return BCSubscriptions(bc)


def test_create_posts_the_documented_body_and_reads_the_documented_answer() -> None:
    seen: list[httpx.Request] = []
    subs = _client(seen, lambda _r: httpx.Response(201, json=DOCUMENTED))
    sub = subs.create("customers", "https://contoso.com/myCallbacks", "optionalvalueof2048")
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", BC + "subscriptions")
    assert json.loads(request.content) == {
        "notificationUrl": "https://contoso.com/myCallbacks",
        "resource": f"/api/v2.0/companies({COMPANY})/customers",
        "clientState": "optionalvalueof2048"}
    assert sub.id == "c670ea73cacb459bb51dc1740da2f1db"
    assert sub.expires.isoformat() == "2021-10-15T12:32:35+00:00"
    assert "clientState" not in sub.wire  # the secret is not kept with the subscription
    assert sub.seconds_left() < 0  # 2021: long expired


def test_a_failed_create_is_never_re_sent() -> None:
    """Creating makes BC call the subscriber back: a 5xx is raised, not retried."""
    seen: list[httpx.Request] = []
    subs = _client(seen, lambda _r: httpx.Response(504, json={"error": {
        "code": "GatewayTimeout", "message": "timed out"}}))
    with pytest.raises(ConnectorError):
        subs.create("customers", "https://contoso.com/myCallbacks", "x")
    assert len(seen) == 1


def test_renew_patches_with_if_match_and_delete_tolerates_a_gone_subscription() -> None:
    seen: list[httpx.Request] = []
    renewed = {**DOCUMENTED, "expirationDateTime": "2021-10-18T12:32:35Z",
               "@odata.etag": 'W/"JzQ0O0dTa3ZJMDsn"'}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            return httpx.Response(200, json=renewed)
        if request.method == "DELETE" and "gone" in str(request.url):
            return httpx.Response(404, json={"error": {
                "code": "Internal_RecordNotFound", "message": "does not exist"}})
        return httpx.Response(204)

    subs = _client(seen, answer)
    sub = Subscription.from_wire({**DOCUMENTED, "@odata.etag": 'W/"JzE7MTsn"'})
    after = subs.renew(sub, "optionalvalueof2048")
    patch = seen[0]
    assert patch.method == "PATCH"
    assert str(patch.url) == BC + "subscriptions('c670ea73cacb459bb51dc1740da2f1db')"
    assert patch.headers["If-Match"] == 'W/"JzE7MTsn"'
    assert after.expires > sub.expires and after.etag == 'W/"JzQ0O0dTa3ZJMDsn"'
    assert subs.delete(sub.id, after.etag) is True
    assert seen[1].headers["If-Match"] == after.etag
    assert subs.delete("gone") is False


def test_list_reads_the_collection() -> None:
    seen: list[httpx.Request] = []
    subs = _client(seen, lambda _r: httpx.Response(200, json={"value": [DOCUMENTED]}))
    assert [s.id for s in subs.list()] == ["c670ea73cacb459bb51dc1740da2f1db"]
    with pytest.raises(NotFoundError):
        _client([], lambda _r: httpx.Response(404, json={"error": {
            "code": "BadRequest_NotFound", "message": "no"}})).list()


@pytest.mark.parametrize(("resource", "expected"), [
    # the notification sample of the Learn page (dynamics-subscriptions)
    ("api/v2.0/companies(b18aed47-c385-49d2-b954-dbdf8ad71780)/items("
     "26814998-936a-401c-81c1-0e848a64971d)", ("v2.0", "items")),
    ("api/v2.0/companies(b18aed47-c385-49d2-b954-dbdf8ad71780)/customers("
     "130bbd17-dbb9-4790-9b12-2b0e9c9d22c3)", ("v2.0", "customers")),
    ("/api/v2.0/companies(7dbba574-5f69-4167-a43e-fb975045de15)/salesInvoices?$filter="
     "lastDateTimeModified%20gt%202018-10-15T11:00:00Z", ("v2.0", "salesInvoices")),
    ("/api/navcrm/sync/v1.0/companies(7dbba574-5f69-4167-a43e-fb975045de15)/salesPrices",
     ("navcrm/sync/v1.0", "salesPrices")),
    ("https://contoso.com/nothing", None),
])
def test_notification_resources_name_their_table(resource: str,
                                                  expected: tuple[str, str] | None) -> None:
    assert resource_entity(resource) == expected
