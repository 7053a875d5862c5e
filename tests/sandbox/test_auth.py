"""Token endpoint, OpenID discovery (through msal) and bearer checks of both APIs."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import msal

from nav_crm_ops.sandbox import Sandbox

GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def token_for(sb: Sandbox, scope: str, secret: str | None = None) -> httpx.Response:
    info = sb.info
    return httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal() if secret is None else secret,
        "scope": scope})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LoopbackTls(httpx.BaseTransport):
    """msal insists on https authorities: send https://127.0.0.1 over plain http, as a
    TLS-terminating proxy would, telling the server so with X-Forwarded-Proto."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https" and request.url.host == "127.0.0.1":
            request.url = request.url.copy_with(scheme="http")
            request.headers["X-Forwarded-Proto"] = "https"
        return self.inner.handle_request(request)


def test_token_endpoint_issues_tokens_accepted_by_the_named_api(sandbox: Sandbox) -> None:
    info = sandbox.info
    bc = token_for(sandbox, info.bc_scope)
    dv = token_for(sandbox, info.dataverse_scope)
    assert bc.status_code == dv.status_code == 200
    assert bc.json()["token_type"] == "Bearer" and bc.json()["expires_in"] == 3600
    bc_token, dv_token = bc.json()["access_token"], dv.json()["access_token"]
    assert httpx.get(info.bc_api_url + "companies", headers=bearer(bc_token)).status_code == 200
    assert httpx.get(info.dataverse_url + "WhoAmI", headers=bearer(dv_token)).status_code == 200
    # A token is only good for the audience it names.
    assert httpx.get(info.bc_api_url + "companies", headers=bearer(dv_token)).status_code == 401
    assert httpx.get(info.dataverse_url + "WhoAmI", headers=bearer(bc_token)).status_code == 401


def test_business_central_401_has_bc_error_shape(sandbox: Sandbox) -> None:
    response = httpx.get(sandbox.info.bc_api_url + "companies")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "Authentication_InvalidCredentials"
    assert re.fullmatch(r"The server has rejected the client credentials\.  CorrelationId:  "
                        + GUID + r"\.", error["message"])
    assert "authorization_uri" in response.headers["www-authenticate"]


def test_dataverse_401_carries_bearer_challenge(sandbox: Sandbox) -> None:
    response = httpx.get(sandbox.info.dataverse_url + "accounts",
                         headers=bearer("not-a-token"))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer authorization_uri=")
    assert sandbox.info.tenant in challenge


def test_expired_tokens_are_rejected_by_both_apis(sandbox: Sandbox) -> None:
    info = sandbox.info
    sandbox.set_token_lifetime(1)
    try:
        bc = token_for(sandbox, info.bc_scope).json()
        dv = token_for(sandbox, info.dataverse_scope).json()
    finally:
        sandbox.set_token_lifetime(3600)
    assert bc["expires_in"] == 1
    assert httpx.get(info.bc_api_url + "companies",
                     headers=bearer(bc["access_token"])).status_code == 200
    time.sleep(1.1)
    assert httpx.get(info.bc_api_url + "companies",
                     headers=bearer(bc["access_token"])).status_code == 401
    assert httpx.get(info.dataverse_url + "WhoAmI",
                     headers=bearer(dv["access_token"])).status_code == 401


def test_wrong_secret_is_invalid_client_without_echoing_it(sandbox: Sandbox) -> None:
    response = token_for(sandbox, sandbox.info.bc_scope, secret="wrong-secret-value")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert "wrong-secret-value" not in response.text
    assert sandbox.info.client_secret.reveal() not in response.text


def test_unknown_client_scope_and_tenant_are_refused_like_entra(sandbox: Sandbox) -> None:
    info = sandbox.info
    unknown_client = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": "00000000-0000-0000-0000-000000000001",
        "client_secret": info.client_secret.reveal(), "scope": info.bc_scope})
    assert unknown_client.status_code == 400
    assert unknown_client.json()["error"] == "unauthorized_client"
    bad_scope = token_for(sandbox, "https://graph.microsoft.com/.default")
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"
    other_tenant = httpx.post(info.token_url.replace(info.tenant, "contoso"), data={
        "grant_type": "client_credentials"})
    assert other_tenant.status_code == 400
    assert "AADSTS90002" in other_tenant.json()["error_description"]


def test_msal_acquires_tokens_through_discovery(sandbox: Sandbox) -> None:
    info = sandbox.info
    authority = info.authority.replace("http://", "https://")

    def app(secret: str) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            info.client_id, client_credential=secret, authority=authority,
            validate_authority=False, instance_discovery=False,
            http_client=httpx.Client(transport=LoopbackTls()))

    result = app(info.client_secret.reveal()).acquire_token_for_client([info.bc_scope])
    assert "access_token" in result, result.get("error_description")
    companies = httpx.get(info.bc_api_url + "companies",
                          headers=bearer(result["access_token"]))
    assert companies.status_code == 200
    assert companies.json()["value"][0]["id"] == info.company_id
    dv = app(info.client_secret.reveal()).acquire_token_for_client([info.dataverse_scope])
    assert httpx.get(info.dataverse_url + "WhoAmI",
                     headers=bearer(dv["access_token"])).status_code == 200
    refused = app("nope").acquire_token_for_client([info.bc_scope])
    assert refused.get("error") == "invalid_client"


def test_credentials_survive_a_restart_and_can_be_overridden(tmp_path: Path) -> None:
    with Sandbox(data_dir=tmp_path, seed="cronus", port=0) as first:
        client_id, secret = first.info.client_id, first.info.client_secret
        company = first.info.company_id
    with Sandbox(data_dir=tmp_path, seed="cronus", port=0) as second:
        assert (second.info.client_id, second.info.client_secret) == (client_id, secret)
        assert second.info.company_id == company
        assert token_for(second, second.info.bc_scope).status_code == 200
    with Sandbox(data_dir=tmp_path, port=0, client_secret="chosen-secret") as third:
        assert third.info.client_secret.reveal() == "chosen-secret"
        assert token_for(third, third.info.bc_scope, secret="chosen-secret").status_code == 200
        assert token_for(third, third.info.bc_scope, secret=secret.reveal()).status_code == 401


def test_admin_status_needs_no_token(sandbox: Sandbox) -> None:
    assert httpx.get(sandbox.info.base_url + "/_sandbox/status").status_code == 200
