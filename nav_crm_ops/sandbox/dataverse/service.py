"""The emulated Dataverse Web API (v9.2): entity sets, writes, $batch, change tracking, metadata.

Every request goes through :meth:`DataverseService.handle`, a synchronous function of
(method, path, query, headers, body) → :class:`Reply`; the Starlette app runs it in a worker
thread and ``$batch`` calls it once per part, so a batch part behaves exactly like the same
request sent alone. Status codes, headers, error codes and messages follow
the wire-protocols reference (Dataverse section); where it is silent the choice is noted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..multipart import (
    BatchFormatError,
    BatchRequest,
    BatchResponse,
    ChangeSet,
    ChangeSetResponse,
    format_batch_response,
    parse_batch,
)
from ..odata.asgi import catch_all_app, joined_headers, request_client_id
from ..odata.batch import all_or_nothing
from ..odata.replies import Reply
from ..odata.service import ServiceContext
from ..schema import EntityDef
from .common import (
    API_PATH,
    CODE_ODATA,
    CODE_PAYLOAD,
    CODE_SEGMENT,
    MAX_BATCH_REQUESTS,
    UNSUPPORTED_OPTIONS,
    DataverseError,
    error_reply,
    log,
    parse_prefer,
)
from .definitions import DataverseDefinitions

# Compiled once: every part of a $batch is routed through them.
_RESOURCE_PATH = re.compile(r"([A-Za-z_]\w*)(?:\((.*)\))?(/.*)?")
_CONTENT_ID_URL = re.compile(r"\$([^/?(]+)(.*)")


_NOT_PLAIN = re.compile(r"[#\t\r\n]")
"""What makes ``urlsplit`` do more with a path than split it at its first ``?``."""


def _split_url(url: str) -> tuple[str, str]:
    """A part's URL as ``urlsplit`` gives its path and query. An absolute path without a
    fragment or a character ``urlsplit`` removes (``/api/data/v9.2/accounts(<id>)?...``, as
    every part of a batch of updates is) is only split at its first ``?``: no scheme, no
    network location (``urlsplit`` cost more than the rest of a part's routing)."""
    if url[:1] == "/" and url[1:2] != "/" and _NOT_PLAIN.search(url) is None:
        path, _, query = url.partition("?")
        return path, query
    parts = urlsplit(url)
    return parts.path, parts.query


@functools.lru_cache(maxsize=256)
def _query_pairs(query: str) -> tuple[tuple[str, str], ...]:
    """A query string's options, parsed once per text (the parts of a ``$batch`` of updates
    share one, ``$select=<key>``)."""
    return tuple(parse_qsl(query, keep_blank_values=True))


class DataverseService(DataverseDefinitions):
    """The Web API's behaviour, independent of the HTTP server: routing and $batch."""

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes, client_id: str | None,
               content_ids: Mapping[str, str] | None = None) -> Reply:
        """Answer one request; ``headers`` have lower-case names."""
        try:
            client_id = self._acting_caller(headers, client_id)
            return self._dispatch(method.upper(), path.strip("/"), query, headers, body,
                                  client_id, content_ids or {})
        except DataverseError as exc:
            return error_reply(exc)
        except Exception:
            log.exception("Dataverse sandbox failed on %s %s", method, path)
            return error_reply(DataverseError(500, "0x80040216",
                                               "An unexpected error occurred."))

    def _dispatch(self, method: str, path: str, query: str, headers: Mapping[str, str],
                  body: bytes, client_id: str | None, content_ids: Mapping[str, str]) -> Reply:
        params = dict(_query_pairs(query))
        special = self._service_path(method, path, params, headers, body, client_id)
        if special is not None:
            return special
        match = _RESOURCE_PATH.fullmatch(path)
        if match is None:
            raise DataverseError(404, CODE_SEGMENT, f"Resource not found for the segment "
                                                    f"'{path.split('/')[0]}'.")
        entity_set, key_text, rest = match.groups()
        entity = self.entities.get(entity_set)
        if entity is None:
            raise DataverseError(404, CODE_SEGMENT,
                                 f"Resource not found for the segment '{entity_set}'.")
        self._check_privilege(method, entity, client_id)
        if rest:
            raise DataverseError(501, CODE_ODATA, f"The sandbox does not implement the path "
                                                  f"'{path}'; address records as "
                                                  f"{entity_set}(<id>).")
        tracking = "odata.track-changes" in headers.get("prefer", "")
        for option in UNSUPPORTED_OPTIONS:
            if option in params and not tracking:
                raise DataverseError(501, CODE_ODATA, f"The query option '{option}' is not "
                                                      "emulated by the sandbox; read related "
                                                      "rows with a $filter on their lookup "
                                                      "(_x_value eq <id>).")
        q = self._query_options(entity, params, headers)
        if key_text is None:
            if method == "GET":
                return self._list(entity, params, headers, q)
            if method == "POST":
                return self._create(entity, body, q, client_id, content_ids)
            raise DataverseError(405, CODE_ODATA, f"The HTTP method '{method}' is not allowed "
                                                  f"on the entity set '{entity_set}'.")
        key = self._parse_key(entity, key_text)
        if method == "GET":
            return self._get(entity, key, headers, q)
        if method == "PATCH":
            self._check_upsert_create(entity, key, client_id)
            return self._upsert(entity, key, body, headers, q, client_id, content_ids)
        if method == "DELETE":
            return self._delete(entity, key, headers)
        raise DataverseError(405, CODE_ODATA, f"The HTTP method '{method}' is not allowed on "
                                              f"a single {entity.name} record.")

    def _check_upsert_create(self, entity: EntityDef, key: tuple[str, str],
                             client_id: str | None) -> None:
        """An upsert that creates needs Create, too. The row is looked up only when Create is
        revoked: the lookup cost every batched update a primary-key read for nothing."""
        if self._privilege_revoked("POST", entity) and self._find(entity, key) is None:
            self._check_privilege("POST", entity, client_id)

    def _service_path(self, method: str, path: str, params: Mapping[str, str],
                      headers: Mapping[str, str], body: bytes, client_id: str | None,
                      ) -> Reply | None:
        """The answer for the service document, ``$metadata``, ``$batch``, functions and
        metadata; None for an entity set path."""
        if path == "":
            return self._service_document()
        if path == "$metadata":
            self._require(method, "GET")
            return Reply(200, self._metadata_document(),
                         {"Content-Type": "application/xml", "OData-Version": "4.0"})
        if path == "$batch":
            self._require(method, "POST")
            return self._batch(headers, body, client_id)
        if path in ("WhoAmI", "WhoAmI()"):
            self._require(method, "GET")
            return self._who_am_i(client_id)
        if path == "InsertOptionValue":
            self._require(method, "POST")
            return self._insert_option_value(body)
        return self._definitions_path(method, path, params, body)

    def _batch(self, headers: Mapping[str, str], body: bytes, client_id: str | None) -> Reply:
        try:
            items = parse_batch(body, headers.get("content-type", ""))
        except BatchFormatError as exc:
            raise DataverseError(400, CODE_PAYLOAD, str(exc)) from None
        total = sum(len(i.requests) if isinstance(i, ChangeSet) else 1 for i in items)
        if total > MAX_BATCH_REQUESTS:
            raise DataverseError(400, CODE_ODATA,
                                 f"The $batch contains {total} requests; the maximum is "
                                 f"{MAX_BATCH_REQUESTS}. Split it into smaller batches.")
        continue_on_error = "odata.continue-on-error" in parse_prefer(headers.get("prefer",
                                                                                   ""))
        results: list[BatchResponse | ChangeSetResponse] = []
        content_ids: dict[str, str] = {}
        status = 200
        with self.store.transaction():
            # One commit per batch (each part still succeeds or fails on its own savepoint):
            # per-part commits made large batches crawl.
            for item in items:
                if isinstance(item, ChangeSet):
                    failure = self._run_change_set(item, content_ids, client_id, results)
                else:
                    reply = self._run_part(item, content_ids, client_id)
                    results.append(BatchResponse(reply.status, reply.headers, reply.encoded()))
                    failure = reply.status >= 400
                if failure and not continue_on_error:
                    # "The batch fails on the first request ... The batch error represents
                    # the error of the first failing request" (Execute batch operations).
                    last = results[-1]
                    status = last.status if isinstance(last, BatchResponse) else 400
                    break
        payload, content_type = format_batch_response(results)
        reply_headers = {"Content-Type": content_type, "OData-Version": "4.0"}
        if continue_on_error:
            reply_headers["Preference-Applied"] = "odata.continue-on-error"
        return Reply(status, payload, reply_headers)

    def _run_change_set(self, change_set: ChangeSet, content_ids: dict[str, str],
                        client_id: str | None,
                        results: list[BatchResponse | ChangeSetResponse]) -> bool:
        """Run a change set all or nothing; True when it failed (its failed part answers)."""
        local_ids: dict[str, str] = {}

        def run(request: BatchRequest) -> BatchResponse:
            if request.method.upper() == "GET":
                reply = error_reply(DataverseError(
                    400, CODE_ODATA, "GET requests are not allowed inside a change "
                                     "set; send them as separate batch parts."))
            else:
                reply = self._run_part(request, {**content_ids, **local_ids}, client_id)
            if reply.status < 400 and request.content_id and reply.entity_url:
                local_ids[request.content_id] = reply.entity_url
            return BatchResponse(reply.status, reply.headers, reply.encoded(),
                                 request.content_id)

        responses, failed = all_or_nothing(self.store, change_set.requests, run,
                                           lambda response: response.status >= 400)
        if failed is not None:
            results.append(failed)
            return True
        content_ids.update(local_ids)
        results.append(ChangeSetResponse(responses))
        return False

    def _run_part(self, request: BatchRequest, content_ids: Mapping[str, str],
                  client_id: str | None) -> Reply:
        url = request.url
        if url.startswith("$"):
            match = _CONTENT_ID_URL.match(url)
            target = content_ids.get(match.group(1)) if match else None
            if match is None or target is None:
                return error_reply(DataverseError(400, CODE_ODATA,
                                                   f"The Content-ID reference in '{url}' does "
                                                   "not name an earlier part of this change "
                                                   "set."))
            url = target + match.group(2)
        path, query = _split_url(url)
        if API_PATH in path:
            path = path.split(API_PATH, 1)[1]
        elif path.startswith("/"):
            return error_reply(DataverseError(404, CODE_SEGMENT, f"Resource not found for "
                                                                  f"the segment '{path}'."))
        return self.handle(request.method, path, query, request.headers, request.body,
                           client_id, content_ids)


def build_dataverse_app(ctx: ServiceContext) -> Starlette:
    """The Dataverse Web API as an ASGI app, to be mounted at ``/crm/api/data/v9.2``."""
    service = DataverseService(ctx)

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        reply = await run_in_threadpool(
            service.handle, request.method, request.path_params.get("path", ""),
            request.url.query, joined_headers(request), body, request_client_id(request))
        return Response(reply.encoded(), status_code=reply.status, headers=reply.headers)

    return catch_all_app(endpoint)
