"""httpx clients for Dataverse and Business Central that work unchanged against the real services.

Reads return polars DataFrames (paged by ``@odata.nextLink``); writes return one
:class:`WriteOutcome` per :class:`WriteOp`, in input order (through ``$batch``, or one request
per record for NAV page web services: :class:`NavODataV4`).
"""

from .auth import Auth, BasicAuth, ClientCredentials, MsalHttpClient, NtlmAuth
from .business_central import CUSTOM_API_PATH, BusinessCentral
from .dataverse import Dataverse
from .errors import error_from_response
from .frames import DATETIME, records_to_frame
from .http import AdaptivePool, RequestStats, RetryPolicy, ServiceClient
from .models import WriteKind, WriteOp, WriteOutcome
from .multipart import BatchPart, PartResponse, decode_batch_response, encode_batch
from .nav_odata import NavODataV4, key_segment
from .odata import F, Filter, Guid, ODataQuery, RawFilter, encode_query, literal

__all__ = [
    "CUSTOM_API_PATH",
    "DATETIME",
    "AdaptivePool",
    "Auth",
    "BasicAuth",
    "BatchPart",
    "BusinessCentral",
    "ClientCredentials",
    "Dataverse",
    "F",
    "Filter",
    "Guid",
    "MsalHttpClient",
    "NavODataV4",
    "NtlmAuth",
    "ODataQuery",
    "PartResponse",
    "RawFilter",
    "RequestStats",
    "RetryPolicy",
    "ServiceClient",
    "WriteKind",
    "WriteOp",
    "WriteOutcome",
    "decode_batch_response",
    "encode_batch",
    "encode_query",
    "error_from_response",
    "key_segment",
    "literal",
    "records_to_frame",
]
