"""Fixtures the sandbox tests share."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from nav_crm_ops.sandbox import Sandbox


@pytest.fixture
def bc(fresh_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client on the company's v2.0 URL with a valid BC token."""
    info = fresh_sandbox.info
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": info.bc_scope,
    }).json()["access_token"]
    with httpx.Client(base_url=f"{info.bc_api_url}companies({info.company_id})/",
                      headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


@pytest.fixture
def dv(fresh_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client on the Dataverse root, with a client-credentials token."""
    info = fresh_sandbox.info
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": info.dataverse_scope,
    }, timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
               "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
    with httpx.Client(base_url=info.dataverse_url, headers=headers, timeout=60) as client:
        yield client
