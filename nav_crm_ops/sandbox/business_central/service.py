"""The emulated Business Central API v2.0 and the navcrm/sync/v1.0 custom API.

Mounted at ``/bc``: ``/bc/v2.0/{tenant}/{environment}/api/v2.0/companies({id})/customers`` etc.
Requests are handled synchronously (in a worker thread) by :class:`BusinessCentralService`, so
a JSON ``$batch`` can run its operations through the same code inside one store transaction.

Behaviour follows the documented API: server-set ``id``; ``@odata.etag`` on every record;
``If-Match`` required on PATCH/DELETE (400 ``BadRequest_InvalidToken`` without, 409
``Request_EntityChanged`` when stale); validation errors with BC's codes and messages, each
ending in ``  CorrelationId:  <guid>.``; ``or`` across fields rejected in ``$filter``; paging
with ``Prefer: odata.maxpagesize`` (≤ 20000) and ``@odata.nextLink``; documents with lines,
deep insert and the ``Microsoft.NAV.shipAndInvoice`` / ``Microsoft.NAV.post`` bound actions.

Side effects BC has and the sandbox keeps: creating a customer creates its company contact and
the contact business relation (read-only ``contactsInformation``), as BC does when Marketing
Setup names a business relation code for customers (CRONUS does); changing the customer copies
name, address and communication to that contact; deleting the customer removes the relation
and keeps the contact. Contact writes keep the relations' contact number, name and type current.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..bc_schema import COMPUTED_ENTITIES
from ..odata.asgi import catch_all_app
from ..odata.batch import all_or_nothing
from ..odata.replies import JSON_UTF8, Reply
from ..odata.service import ServiceContext
from ..schema import EntityDef
from .common import (
    CUSTOM_API,
    MAX_BATCH_OPERATIONS,
    BCError,
    Target,
    log,
    not_found_uri,
    read_only,
)
from .csdl import metadata_document
from .subscriptions import notify_write, subscription_request
from .writes import BusinessCentralWrites


class BusinessCentralService(BusinessCentralWrites):
    """Synchronous request handling over the sandbox store: dispatch and JSON $batch.

    ``admin`` (the sandbox's own helper, never the HTTP app) may write read-only pages."""

    admin = False

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Reply:
        """Answer one request; ``path`` is relative to the ``/bc`` mount."""
        try:
            if path.rstrip("/").endswith("/$metadata"):
                return self._metadata(method, path)
            subscription = subscription_request(self, method, path, headers, body)
            if subscription is not None:  # webhooks (subscriptions.py)
                return subscription
            target = self._route(path)
            if target.batch:
                if method != "POST":
                    raise BCError(405, "BadRequest_MethodNotAllowed",
                                  "'$batch' only supports POST.")
                return self._batch(target, headers, body)
            return self._dispatch(method, target, query, headers, body)
        except BCError as error:
            return error.reply()
        except Exception:
            log.exception("unexpected error in the Business Central sandbox (%s %s)",
                          method, path)
            return BCError(500, "Unknown", "An unexpected error occurred in the sandbox; "
                                           "see its log.").reply()

    def _metadata(self, method: str, path: str) -> Reply:
        """``GET {api root}$metadata``: the CSDL of that API, without a company (B1)."""
        parts = [unquote(p) for p in path.strip("/").split("/")][:-1]
        api, _root, rest = self._api_root(parts)
        if rest:
            raise not_found_uri("$metadata")
        if method != "GET":
            raise BCError(405, "BadRequest_MethodNotAllowed",
                          f"'{method}' requests for '$metadata' are not allowed.")
        return Reply(200, metadata_document("custom" if api == CUSTOM_API else "v2.0"),
                     {"Content-Type": "application/xml", "OData-Version": "4.0"})

    def _dispatch(self, method: str, target: Target, query: str,
                  headers: Mapping[str, str], body: bytes) -> Reply:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if target.entity_set is None:
            if method != "GET":
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              f"'{method}' requests for 'companies' are not allowed.")
            return self._companies(target, params, headers)
        if target.entity_set in COMPUTED_ENTITIES:
            if method != "GET":
                raise read_only(method, target.entity_set)
            return self._computed(target, params, headers)
        entity = self._entity(target.entity_set)
        if entity.extra.get("read_only"):
            self._check_read_only(entity, method, target)
        if target.action is not None:
            if method != "POST":
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              f"'{method}' is not allowed for the action '{target.action}'.")
            return self._action(entity, target)
        if method == "GET":
            if target.key is None:
                return self._list(entity, target, params, headers)
            return self._get_one(entity, target, params)
        return notify_write(self, method, entity, target,
                            self._write(method, entity, target, headers, body))

    @staticmethod
    def _check_read_only(entity: EntityDef, method: str, target: Target) -> None:
        """A read-only entity answers GET on its collection only."""
        if method != "GET":
            raise read_only(method, entity.name)
        if target.key is not None:
            example = next(c.name for c in entity.columns
                           if c.type == "guid" and c.name != entity.key)
            raise BCError(400, "BadRequest",
                          f"The sandbox does not address one '{entity.name}' record by "
                          f"key; read the collection with $filter={example} eq <id> "
                          "instead.")

    def _write(self, method: str, entity: EntityDef, target: Target,
               headers: Mapping[str, str], body: bytes) -> Reply:
        """POST to a collection, PATCH or DELETE one record."""
        if entity.extra.get("page_read_only") and not self.admin:
            # An API page with Editable = false publishes no insert, modify or delete.
            raise BCError(405, "BadRequest_MethodNotAllowed",
                          f"'{method}' requests for '{entity.name}' of EdmType 'Entity' are not "
                          "allowed within Dynamics 365 Business Central OData web services.")
        payload = self._json_body(body) if method in ("POST", "PATCH") else {}
        if method == "POST":
            if target.key is not None:
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              "'POST' requests for a single entity are not allowed; post to "
                              "the collection.")
            return self._create(entity, target, payload)
        if target.key is None:
            raise BCError(405, "BadRequest_MethodNotAllowed",
                          f"'{method}' requests for a collection are not allowed; address one "
                          "record by its id.")
        if method == "PATCH":
            return self._update(entity, target, payload, headers)
        if method == "DELETE":
            return self._delete(entity, target, headers)
        raise BCError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not supported.")

    def _batch(self, target: Target, headers: Mapping[str, str], body: bytes) -> Reply:
        payload = self._json_body(body)
        requests = payload.get("requests")
        if not isinstance(requests, list):
            raise BCError(400, "BadRequest", "The batch body must be {\"requests\": [...]}.")
        if len(requests) > MAX_BATCH_OPERATIONS:
            raise BCError(400, "BadRequest",
                          f"The batch contains {len(requests)} operations; the maximum is "
                          f"{MAX_BATCH_OPERATIONS}.")
        snapshot = headers.get("isolation", "").strip().lower() == "snapshot"
        if not snapshot:
            responses = [self._batch_item(target, item) for item in requests]
            return Reply(200, {"responses": responses},
                         {"content-type": JSON_UTF8})
        responses, failed = all_or_nothing(
            self.store, requests, lambda item: self._batch_item(target, item),
            lambda response: response["status"] >= 400)
        if failed is not None:
            # Every operation of a snapshot batch answers with the failure.
            responses = [{"id": str(item.get("id", index)) if isinstance(item, dict)
                          else str(index), "status": failed["status"],
                          "headers": {"content-type": JSON_UTF8},
                          "body": failed["body"]}
                         for index, item in enumerate(requests)]
        return Reply(200, {"responses": responses},
                     {"content-type": JSON_UTF8})

    def _batch_item(self, target: Target, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            reply = BCError(400, "BadRequest", "Each batch request must be an object.").reply()
            return {"id": "", "status": reply.status, "headers": reply.headers,
                    "body": reply.body}
        item_id = str(item.get("id", ""))
        method = str(item.get("method", "GET")).upper()
        url = str(item.get("url", ""))
        item_headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        body = item.get("body")
        raw = json.dumps(body).encode() if body is not None else b""
        parts = urlsplit(url)
        if parts.scheme:
            root = urlsplit(target.api_root).path
            path = parts.path
            if not path.startswith(root):
                reply = not_found_uri(path).reply()
                return {"id": item_id, "status": reply.status, "headers": reply.headers,
                        "body": reply.body}
            relative = path[len(root):]
        else:
            relative = parts.path.lstrip("/")
        if relative.startswith("$batch"):
            reply = BCError(400, "BadRequest", "Nested $batch requests are not allowed.").reply()
        else:
            api_path = urlsplit(target.api_root).path
            full = api_path[len("/bc"):] + relative
            reply = self.handle(method, full, parts.query, item_headers, raw)
        headers = {k: v for k, v in reply.headers.items() if k != "content-length"}
        body_out: Any = reply.body
        if isinstance(body_out, bytes):
            body_out = body_out.decode("utf-8", errors="replace") or None
        result: dict[str, Any] = {"id": item_id, "status": reply.status, "headers": headers}
        if body_out is not None:
            result["body"] = body_out
        return result


def build_bc_app(ctx: ServiceContext) -> Starlette:
    """The Business Central APIs as an ASGI app, mounted at ``/bc``: one company's, or, when
    the context serves several (``ctx.companies``), each request routed to the service of the
    company it names (:class:`~nav_crm_ops.sandbox.companies.CompanyRouter`)."""
    service: Any = BusinessCentralService(ctx)
    others = getattr(ctx, "companies", ())
    if others:
        from ..companies import CompanyRouter

        service = CompanyRouter(service, {company.info.company_id:
                                          BusinessCentralService(company)
                                          for company in others})

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers.items())
        reply = await run_in_threadpool(service.handle, request.method,
                                        "/" + request.path_params.get("path", ""),
                                        request.url.query, headers, body)
        out_headers = {"odata-version": "4.0", **reply.headers}
        return Response(reply.encoded(), status_code=reply.status, headers=out_headers)

    return catch_all_app(endpoint)
