"""Dataverse (Dynamics 365 Sales) Web API v9.2 client."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import httpx
import polars as pl

from ..exceptions import ConnectorError, TransientError, ValidationError
from .auth import Auth
from .errors import error_from_response
from .frames import records_to_frame
from .http import AdaptivePool, RetryPolicy, RetryRound, ServiceClient
from .models import WriteOp, WriteOutcome, unknown_outcomes
from .multipart import (
    BatchPart,
    PartResponse,
    Request,
    decode_batch_response,
    encode_batch,
    encode_requests,
)
from .odata import ODataQuery, encode_query, field_name, literal
from .reader import ETAG, PagedReader

__all__ = ["Dataverse"]

SERVICE = "dataverse"
MAX_PAGE = 5000
MAX_BATCH = 1000
RETURN_REPRESENTATION = "return=representation"
CODE_DUPLICATE = "0x80040237"
"""DuplicateRecord, "Cannot insert duplicate key": the id *or* another key value is taken."""
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")


class Dataverse(PagedReader):
    """Reads as polars frames (paged by ``@odata.nextLink``), writes through multipart
    ``$batch`` with one outcome per record, in input order."""

    def __init__(self, url: str, auth: Auth, *, page_size: int = MAX_PAGE,
                 batch_size: int = MAX_BATCH, max_workers: int = 4,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 max_filter_chars: int = 6000, acting_as: str | None = None) -> None:
        """``acting_as``: a systemuser id to impersonate (``MSCRMCallerID``; the application
        user needs the *Act on behalf of another user* privilege): its changes are that
        person's, so the engine, which ignores its own changes, reads them."""
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE} (Dataverse maximum)")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH} (Dataverse $batch maximum)")
        self.page_size = page_size
        self.batch_size = batch_size
        self.max_filter_chars = max_filter_chars
        self.pool = AdaptivePool(max_workers)
        headers = {"Accept": "application/json", "OData-MaxVersion": "4.0",
                   "OData-Version": "4.0"}
        if acting_as:
            headers["MSCRMCallerID"] = str(uuid.UUID(acting_as))
        self.http = ServiceClient(url, auth, service=SERVICE, retry=retry, transport=transport,
                                  default_headers=headers)
        self._url, self._auth, self._retry, self._transport = url, auth, retry, transport
        self._max_workers = max_workers
        self.http.on_throttle = self.pool.throttled
        self.modified_field = "modifiedon"
        self._api_path = urlparse(self.http.base_url).path

    def entity_path(self, entity_set: str) -> str:
        return field_name(entity_set)

    def acting_as(self, systemuser_id: str) -> Dataverse:
        """A second connection with the same settings (the stated timeout too) that
        impersonates ``systemuser_id``."""
        clone = Dataverse(self._url, self._auth, page_size=self.page_size,
                          batch_size=self.batch_size, max_workers=self._max_workers,
                          retry=self._retry, transport=self._transport,
                          max_filter_chars=self.max_filter_chars, acting_as=systemuser_id)
        clone.http.set_timeout(self.http.timeout_s)
        return clone

    def track_changes(self, entity_set: str, select: Sequence[str],
                      delta_link: str | None = None, schema: dict[str, Any] | None = None,
                      ) -> tuple[pl.DataFrame, list[str], str]:
        """Changed rows, deleted ids and the delta link to pass next time."""
        if delta_link is None:
            path = f"{field_name(entity_set)}?{encode_query(ODataQuery(select=tuple(select)).params())}"
        else:
            path = delta_link
        changed: list[dict[str, Any]] = []
        deleted: list[str] = []
        next_link = ""
        prefer = f"odata.track-changes,odata.maxpagesize={self.page_size}"
        for payload in self.pages(path, entity=entity_set, prefer=prefer):
            for row in payload.get("value", []):
                if row.get("reason") == "deleted" or "$deletedEntity" in str(
                        row.get("@odata.context", "")):
                    deleted.append(str(row.get("id")))
                else:
                    changed.append(row)
            next_link = payload.get("@odata.deltaLink", next_link)
        if not next_link:
            raise TransientError(f"dataverse {entity_set}: no @odata.deltaLink returned; is "
                                 "change tracking enabled for the table?", service=SERVICE,
                                 entity=entity_set)
        return records_to_frame(changed, select, schema), deleted, next_link

    def whoami(self) -> dict[str, Any]:
        return dict(self.http.request("GET", "WhoAmI", entity="WhoAmI").json())

    def choice_options(self, entity: str, attribute: str) -> dict[int, str]:
        path = (f"EntityDefinitions(LogicalName={literal(field_name(entity))})/Attributes("
                f"LogicalName={literal(field_name(attribute))})/Microsoft.Dynamics.CRM."
                "PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet")
        body = self.http.request("GET", path, entity="EntityDefinitions").json()
        options = (body.get("OptionSet") or {}).get("Options", [])
        return {int(o["Value"]): str(((o.get("Label") or {}).get("UserLocalizedLabel") or {})
                                     .get("Label", "")) for o in options}

    @staticmethod
    def _option_body(entity: str, attribute: str, label: str, value: int | None,
                     language_code: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "EntityLogicalName": entity, "AttributeLogicalName": attribute,
            "Label": {"LocalizedLabels": [{"Label": label, "LanguageCode": language_code}]}}
        if value is not None:
            body["Value"] = value
        return body

    def insert_option_value(self, entity: str, attribute: str, label: str,
                            value: int | None = None, language_code: int = 1033) -> int:
        reply = self.http.request(
            "POST", "InsertOptionValue", entity="InsertOptionValue",
            json=self._option_body(entity, attribute, label, value, language_code))
        return int(reply.json()["NewOptionValue"])

    def insert_option_values(self, options: Sequence[tuple[str, str, str]],
                             language_code: int = 1033) -> list[int | ConnectorError]:
        """``InsertOptionValue`` for each (entity, attribute, label) in one ``$batch``: the new
        value, or the error of an option the service refused, in order."""
        parts = [BatchPart("POST", f"{self._api_path}InsertOptionValue", {},
                           self._option_body(e, a, label, None, language_code))
                 for e, a, label in options]
        content_type, body = encode_batch(parts)
        # Without odata.continue-on-error the service stops at the first refused option and
        # answers the whole batch with its error (*Execute batch operations*, Handling errors).
        response = self.http.request(
            "POST", "$batch", content=body, entity="InsertOptionValue",
            headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
            retry_unsafe=False)
        answers = decode_batch_response(response.headers.get("content-type", ""),
                                        response.content)
        values: list[int | ConnectorError] = []
        for (entity, attribute, label), part in zip(options, answers, strict=True):
            if part.status >= 400 or not isinstance(part.body, dict):
                values.append(error_from_response(
                    part.status, part.body, part.headers, service=SERVICE,
                    entity=f"{entity}.{attribute}", record_key=label))
            else:
                values.append(int(part.body["NewOptionValue"]))
        return values

    # writes ----------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[WriteOutcome]:
        """Apply ``ops`` through ``$batch`` (parallel batches); outcomes in input order."""
        prepared = [_with_key(op) for op in ops]
        chunks = [prepared[i:i + self.batch_size]
                  for i in range(0, len(prepared), self.batch_size)]
        results = self.pool.map(self._write_batch, chunks)
        return [outcome for chunk in results for outcome in chunk]

    def _part(self, op: WriteOp) -> Request:
        """The batch part of one op. Creates and updates ask for ``return=representation``
        with a one-column ``$select``: a ``204`` carries no ``ETag`` on the real service, the
        new ``@odata.etag`` comes only in the returned body (*Update and delete table rows*,
        *Create table rows using the Web API*). A :data:`~.multipart.Request` tuple: a batch
        holds a thousand parts."""
        entity_set = _entity_path(op.entity_set)
        target = f"{self._api_path}{entity_set}({_guid(op.key)})"
        body = dict(op.payload)
        for nav, path in op.binds.items():
            body[f"{nav}@odata.bind"] = path
        returning = _select_query(op)
        if op.kind == "create" and op.key_column and _has_list(body):
            body[op.key_column] = _guid(op.key)
            return ("POST", f"{self._api_path}{entity_set}{returning}",
                    {"Prefer": RETURN_REPRESENTATION}, body)
        if op.kind == "create":
            return ("PATCH", target + returning,
                    {"If-None-Match": "*", "Prefer": RETURN_REPRESENTATION}, body)
        if op.kind == "update":
            return ("PATCH", target + returning,
                    {"If-Match": op.if_match or "*", "Prefer": RETURN_REPRESENTATION}, body)
        headers = {"If-Match": op.if_match} if op.if_match and op.if_match != "*" else {}
        return ("DELETE", target, headers, None)

    def _write_batch(self, ops: list[WriteOp]) -> list[WriteOutcome]:
        outcomes: dict[int, WriteOutcome] = {}
        pending = list(range(len(ops)))
        attempt = 0
        while pending:
            content_type, body = encode_requests([self._part(ops[i]) for i in pending])
            try:
                response = self.http.request(
                    "POST", "$batch", content=body, entity="$batch",
                    headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"})
            except TransientError as error:
                return unknown_outcomes(ops, pending, error, outcomes)
            parts = decode_batch_response(response.headers.get("content-type", ""),
                                          response.content)
            if len(parts) != len(pending):
                raise TransientError(f"dataverse $batch answered {len(parts)} parts for "
                                     f"{len(pending)} requests", service=SERVICE,
                                     entity="$batch")
            retry: list[int] = []
            round_ = RetryRound(self.http, attempt)
            for index, part in zip(pending, parts, strict=True):
                if round_.should_retry(part.status, part.headers.get("retry-after")):
                    retry.append(index)
                    continue
                outcomes[index] = _outcome(ops[index], part)
            if retry:
                attempt += 1
                round_.wait()
            pending = retry
        self._settle(ops, outcomes)
        return [outcomes[i] for i in range(len(ops))]

    def _settle(self, ops: list[WriteOp], outcomes: dict[int, WriteOutcome]) -> None:
        """Confirm each create refused with 412 and fetch the version a write did not return.

        A 412 on a create (``If-None-Match: *``) means "a row with this id exists" only when it
        does: an alternate-key or duplicate-detection clash answers 412 too. One GET per
        record, all in one ``$batch``, tells them apart and reads the missing versions."""
        clashes = [i for i, o in outcomes.items() if _is_clash(ops[i], o)]
        unversioned = [i for i, o in outcomes.items()
                       if o.ok and not o.etag and ops[i].kind in ("create", "update")]
        lookups = clashes + unversioned
        if not lookups:
            return
        answers = self._read_back([ops[i] for i in lookups])
        for index, answer in zip(lookups, answers, strict=True):
            outcomes[index] = _settled(ops[index], outcomes[index], answer,
                                       unversioned=index in unversioned)

    def _read_back(self, ops: list[WriteOp]) -> list[PartResponse | ConnectorError]:
        """``GET <set>(<id>)?$select=<one column>`` for each op, in ``$batch`` requests; a
        request that fails gives its error for each of its records."""
        parts = [BatchPart("GET", f"{self._api_path}{field_name(op.entity_set)}("
                                  f"{uuid.UUID(op.key)}){_select_query(op)}") for op in ops]
        answers: list[PartResponse | ConnectorError] = []
        for start in range(0, len(parts), self.batch_size):
            chunk = parts[start:start + self.batch_size]
            content_type, body = encode_batch(chunk)
            try:
                response = self.http.request(
                    "POST", "$batch", content=body, entity="$batch",
                    headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"})
                decoded = decode_batch_response(response.headers.get("content-type", ""),
                                                response.content)
            except (ConnectorError, ValueError) as error:
                failure = error if isinstance(error, ConnectorError) else TransientError(
                    f"dataverse $batch: unreadable answer ({error})", service=SERVICE,
                    entity="$batch")
                answers.extend([failure] * len(chunk))
                continue
            if len(decoded) != len(chunk):
                answers.extend([TransientError(
                    f"dataverse $batch answered {len(decoded)} parts for {len(chunk)} reads",
                    service=SERVICE, entity="$batch")] * len(chunk))
                continue
            answers.extend(decoded)
        return answers


def _is_clash(op: WriteOp, outcome: WriteOutcome) -> bool:
    """A create refused as "matching key values exist" (our id, or another key: see _settle)."""
    if op.kind != "create" or outcome.ok:
        return False
    code = outcome.error.code.lower() if outcome.error is not None else ""
    return outcome.status == 412 or code == CODE_DUPLICATE


def _settled(op: WriteOp, outcome: WriteOutcome, answer: PartResponse | ConnectorError, *,
             unversioned: bool) -> WriteOutcome:
    """``outcome`` once the row was read back: its version filled in, or a 412 create told
    apart (our row exists: already created; it does not: the clash is another record's)."""
    found = answer if isinstance(answer, PartResponse) and answer.status == 200 else None
    etag = _body_etag(found.body) if found else ""
    if unversioned:
        return replace(outcome, etag=etag) if etag else outcome
    if found is not None:
        return WriteOutcome(op.op_id, True, outcome.status, op.key, etag,
                            already_existed=True, body=found.body)
    return _clash_outcome(op, outcome, answer)


def _with_key(op: WriteOp) -> WriteOp:
    if op.kind == "create" and not op.key:
        key = str(uuid.uuid4())
        return replace(op, key=key, op_id=op.op_id or key)
    if not op.key:
        raise ValidationError(f"dataverse {op.entity_set}: {op.kind} needs the record id",
                              service=SERVICE, entity=op.entity_set)
    return op


def _select_query(op: WriteOp) -> str:
    """``?$select=<column>``: the key column when known, else a plain column being written
    (the primary key and ``@odata.etag`` always come back); empty when there is none."""
    column = op.key_column or next(
        (name for name, value in op.payload.items()
         if "@" not in name and not isinstance(value, (list, dict))), "")
    return _select_of(column) if column else ""


@lru_cache(maxsize=1024)
def _select_of(column: str) -> str:
    """``?$select=<column>`` (validated once per column name, not once per record)."""
    return f"?$select={field_name(column)}"


@lru_cache(maxsize=1024)
def _entity_path(entity_set: str) -> str:
    """:func:`field_name` of an entity set, validated once per name, not once per record."""
    return field_name(entity_set)


def _has_list(body: dict[str, Any]) -> bool:
    """True when some value of ``body`` is a list (the lines of a deep insert)."""
    for value in body.values():  # noqa: SIM110 - a plain loop: no generator per create
        if isinstance(value, list):
            return True
    return False


_CANONICAL_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def _guid(key: str) -> str:
    """``str(uuid.UUID(key))``: the key in canonical form (a ValueError when it is no GUID);
    a key already canonical, as the engine's are, is taken as it is without parsing."""
    return key if _CANONICAL_GUID.match(key) else str(uuid.UUID(key))


def _body_etag(body: Any) -> str:
    return str(body.get(ETAG) or "") if isinstance(body, dict) else ""


def _outcome(op: WriteOp, part: PartResponse) -> WriteOutcome:
    """The outcome of one part; the version comes from the returned body (a ``204`` has no
    ``ETag``); a create refused with 412 stays unsettled until :meth:`Dataverse._settle`."""
    entity_id = part.headers.get("odata-entityid", "")
    match = _ENTITY_ID.search(entity_id) if entity_id else None
    new_id = match.group(1) if match else op.key
    etag = _body_etag(part.body) or part.headers.get("etag", "")
    if part.status < 400:
        return WriteOutcome(op.op_id, True, part.status, new_id, etag, body=part.body)
    if op.kind == "delete" and part.status == 404:
        return WriteOutcome(op.op_id, True, part.status, op.key, body=part.body)
    error: ConnectorError = error_from_response(part.status, part.body, part.headers,
                                                service=SERVICE, entity=op.entity_set,
                                                record_key=op.key)
    return WriteOutcome(op.op_id, False, part.status, op.key, error=error, body=part.body)


def _clash_outcome(op: WriteOp, refused: WriteOutcome,
                   answer: PartResponse | ConnectorError) -> WriteOutcome:
    """A create refused as a duplicate whose id does not exist (or could not be checked)."""
    original = refused.error
    service_message = original.service_message if original else ""
    code = original.code if original else ""
    status = refused.status or 412
    what = f"dataverse {op.entity_set}({op.key})"
    if isinstance(answer, PartResponse) and answer.status == 404:
        message = (f"{what}: HTTP {status}{f' {code}' if code else ''}: "
                   f"{service_message or '(no message)'} — no record with this id exists, so "
                   "the new record clashes with another record's key values (an alternate key "
                   "or a duplicate detection rule): change the clashing value or couple the "
                   "existing record")
        error: ConnectorError = ValidationError(
            message, service=SERVICE, entity=op.entity_set, record_key=op.key, status=status,
            code=code, service_message=service_message, response_body=refused.body)
    else:
        reason = str(answer) if isinstance(answer, ConnectorError) else \
            f"HTTP {answer.status}"
        error = TransientError(
            f"{what}: HTTP {status} on create and the record could not be read back to tell "
            f"an existing id from a key clash ({reason}); the create is retried later",
            service=SERVICE, entity=op.entity_set, record_key=op.key, status=status, code=code,
            service_message=service_message, response_body=refused.body)
    return WriteOutcome(op.op_id, False, status, op.key, error=error, body=refused.body)
