"""Resolver caches: reference tables read once per run and cached an hour; CRM descriptions."""

from __future__ import annotations

from typing import Any, cast

import polars as pl

from nav_crm_ops.engine.mapping import FieldMapping, MappingSet
from nav_crm_ops.engine.resolve import REFERENCE_TTL_S, Resolver
from nav_crm_ops.engine.vocabulary import Side
from nav_crm_ops.exceptions import ConnectorError


class _Store:
    """The two cache calls of the state store, with a settable age."""

    def __init__(self, cached: dict[str, dict[str, str | None]] | None = None,
                 age: float = 0.0) -> None:
        self.cached = dict(cached or {})
        self.age = age
        self.puts: list[str] = []

    def cached_map(self, scope: str) -> tuple[dict[str, str | None], float] | None:
        return (self.cached[scope], self.age) if scope in self.cached else None

    def put_cached_map(self, scope: str, table: dict[str, str | None]) -> None:
        self.cached[scope] = dict(table)
        self.puts.append(scope)


class _Service:
    """A connector returning fixed frames and counting reads."""

    def __init__(self, frame: pl.DataFrame, fail: bool = False) -> None:
        self.frame, self.fail, self.reads = frame, fail, 0

    def read(self, entity: str, **_: Any) -> pl.DataFrame:
        self.reads += 1
        return self.frame

    def read_by_ids(self, entity: str, key: str, ids: list[str], **_: Any) -> pl.DataFrame:
        self.reads += 1
        if self.fail:
            raise ConnectorError("down")
        return self.frame


class _Connections:
    def __init__(self, business_central: _Service | None = None,
                 dataverse: _Service | None = None) -> None:
        self.business_central = business_central
        self.dataverse = dataverse


SCOPE = "nav:paymentTerms:id:code"
TERMS = pl.DataFrame({"id": ["G-1", "G-2"], "code": ["30 DAYS", "14 DAYS"]})


def _resolver(store: _Store, connections: _Connections) -> tuple[Resolver, FieldMapping]:
    mappings = MappingSet.load()
    fld = next(f for f in mappings.get("CUSTOMER").enabled_fields()
               if f.nav_reference is not None and f.nav_reference.entity == "paymentTerms")
    return Resolver(mappings, cast(Any, store), cast(Any, connections)), fld


def test_a_reference_table_is_read_once_per_run_and_cached_in_the_store() -> None:
    service, store = _Service(TERMS), _Store()
    resolver, fld = _resolver(store, _Connections(business_central=service))
    assert resolver.reference_codes(fld) == {"g-1": "30 DAYS", "g-2": "14 DAYS"}
    assert resolver.reference_id(fld, "14 DAYS") == "g-2"
    assert resolver.reference_id(fld, "60 DAYS") is None  # unknown: at most one read per run
    assert resolver.reference_id(fld, "90 DAYS") is None
    assert service.reads == 1 and store.puts == [SCOPE]


def test_a_fresh_store_cache_saves_the_read_and_a_stale_or_incomplete_one_does_not() -> None:
    cached = {SCOPE: {"g-1": "30 DAYS", "": None}}
    service = _Service(TERMS)
    resolver, fld = _resolver(_Store(cached), _Connections(business_central=service))
    assert resolver.reference_codes(fld) == {"g-1": "30 DAYS"} and service.reads == 0
    assert resolver.reference_id(fld, "14 DAYS") == "g-2" and service.reads == 1

    stale = _Store(cached, age=REFERENCE_TTL_S + 1)
    service = _Service(TERMS)
    resolver, fld = _resolver(stale, _Connections(business_central=service))
    assert resolver.reference_codes(fld) == {"g-1": "30 DAYS", "g-2": "14 DAYS"}
    assert service.reads == 1


def test_a_crm_record_is_described_by_name_and_natural_key_read_once() -> None:
    frame = pl.DataFrame({"name": ["Adatum Corporation"], "accountnumber": ["10000"]})
    service = _Service(frame)
    resolver, _ = _resolver(_Store(), _Connections(dataverse=service))
    described = resolver.describe_crm("CUSTOMER", "abc")
    assert described == "'Adatum Corporation' (accountnumber 10000, id abc)"
    assert resolver.describe_crm("CUSTOMER", "abc") == described and service.reads == 1


def test_a_crm_record_that_cannot_be_read_is_described_by_its_id() -> None:
    resolver, _ = _resolver(_Store(), _Connections(dataverse=_Service(pl.DataFrame(), fail=True)))
    assert resolver.describe_crm("CUSTOMER", "abc") == "id abc"


def test_lookup_failures_take_the_side_as_enum_or_text() -> None:
    resolver, _ = _resolver(_Store(), _Connections())
    fld = next(f for f in MappingSet.load().get("CUSTOMER").enabled_fields()
               if f.lookup is not None and f.lookup.crm_child is None and f.lookup.via is None)
    for side in Side:
        assert resolver.lookup_failure(fld, "JR", to=side) == resolver.lookup_failure(
            fld, "JR", to=side.value)
    assert "is not coupled to a CRM" in resolver.lookup_failure(fld, "JR", to=Side.CRM)
    assert "has no" in resolver.lookup_failure(fld, "JR", to=Side.NAV)
