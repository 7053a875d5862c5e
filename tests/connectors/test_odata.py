"""Filter building, literals and URL encoding (no service needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from nav_crm_ops.connectors import F, ODataQuery, RawFilter, encode_query, literal
from nav_crm_ops.exceptions import ConfigError


def test_literals_are_typed() -> None:
    guid = uuid.UUID("5211afc4-1c42-5a97-a62e-b088f7000001")
    assert literal("O'Bryan") == "'O''Bryan'"
    assert literal(guid) == "5211afc4-1c42-5a97-a62e-b088f7000001"
    assert literal(datetime(2024, 11, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == \
        "2024-11-01T00:00:00.000Z"
    assert literal(datetime(2024, 11, 1)) == "2024-11-01T00:00:00.000Z"
    assert (literal(None), literal(True), literal(3), literal(2.5)) == ("null", "true", "3", "2.5")


def test_filters_compose_with_precedence() -> None:
    flt = (F("name").eq("A&B + C") | F("name").startswith("x")) & ~F("statecode").eq(1)
    assert flt.render() == ("(name eq 'A&B + C' or startswith(name,'x')) and "
                            "not (statecode eq 1)")
    assert F("number").is_in(["10000", "20000"]).render() == \
        "number eq '10000' or number eq '20000'"


def test_field_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="not a valid OData field name"):
        F("name eq 'x' or 1")


@pytest.mark.parametrize("text", ["name eq 'x", "(a eq 1", "a eq 1)", "a eq 1 & b", ""])
def test_raw_filter_rejects_broken_text(text: str) -> None:
    with pytest.raises(ConfigError, match="not valid OData"):
        RawFilter(text)


def test_encoding_survives_a_round_trip_through_a_real_url() -> None:
    query = ODataQuery(select=("name",), filter=F("name").eq("A+B & C#1 50%"),
                       orderby=("name desc",), top=5, count=True)
    url = httpx.URL("https://x.example/api/data/v9.2/accounts?" + encode_query(query.params()))
    raw = url.raw_path.decode()
    assert "+" not in raw.split("?", 1)[1] and "%2B" in raw and "%26" in raw and "%23" in raw
    params = dict(url.params)
    assert params["$filter"] == "name eq 'A+B & C#1 50%'"
    assert params == {"$select": "name", "$filter": "name eq 'A+B & C#1 50%'",
                      "$orderby": "name desc", "$top": "5", "$count": "true"}


def test_watermark_literal_is_unquoted_utc() -> None:
    when = datetime(2019, 8, 18, 20, 5, 51, 603000, tzinfo=UTC)
    assert F("lastModifiedDateTime").gt(when).render() == \
        "lastModifiedDateTime gt 2019-08-18T20:05:51.603Z"
