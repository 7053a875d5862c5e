"""``changed_couplings`` (apply's re-check of every coupling seen by the preview) against a plain
reading that looks every record up by both of its ids: the NAV lookup's CRM ids are not asked
for again, and the answer is the same whatever was coupled, re-coupled or uncoupled since."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops.engine.freshness import changed_couplings, with_couplings_seen
from nav_crm_ops.store import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state.db")
    yield opened
    opened.close()


def _plain(mapping: str, records: pl.DataFrame, store: StateStore) -> pl.DataFrame:
    """Every coupling of each record's NAV id and of its CRM id, then the same comparison."""
    nav_now = {n: c for n, c in store.couplings_frame(mapping, columns=["nav_id", "crm_id"])
               .iter_rows()}
    crm_now = {c: n for n, c in nav_now.items()}
    rows = []
    for row in records.iter_rows(named=True):
        was_nav, was_crm = row["nav_coupled_to"], row["crm_coupled_to"]
        if was_nav != nav_now.get(row["nav_id"]) or was_crm != crm_now.get(row["crm_id"]):
            rows.append(row["record_id"])
    return pl.DataFrame({"record_id": rows}, schema={"record_id": pl.Utf8})


def _records(pairs: list[tuple[str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"record_id": [f"r{i}" for i in range(len(pairs))],
         "nav_id": [n for n, _ in pairs], "crm_id": [c for _, c in pairs],
         "nav_key": [n for n, _ in pairs], "crm_key": [None] * len(pairs),
         "action": ["update"] * len(pairs)},
        schema={"record_id": pl.Utf8, "nav_id": pl.Utf8, "crm_id": pl.Utf8,
                "nav_key": pl.Utf8, "crm_key": pl.Utf8, "action": pl.Utf8})


@pytest.mark.parametrize("seed", range(6))
def test_changed_couplings_as_a_plain_reading(store: StateStore, seed: int) -> None:
    rng = random.Random(seed)
    navs, crms = [f"n{i}" for i in range(40)], [f"c{i}" for i in range(40)]
    rng.shuffle(crms)
    for nav, crm in zip(navs[:30], crms[:30], strict=True):
        store.couple("M", nav, crm)
    pairs: list[tuple[str | None, str | None]] = [
        (rng.choice([*navs[:20], None]), rng.choice([*crms, None])) for _ in range(40)]
    pairs += [(n, c) for n, c in zip(navs[:15], crms[:15], strict=True)]
    pairs += [(None, c) for c in crms]  # records known by their CRM id alone
    seen = with_couplings_seen(_records(pairs), store.couplings_frame("M"))
    # After the preview: some uncoupled, some re-coupled to other records, some newly coupled.
    for nav in rng.sample(navs[:30], 8):
        store.uncouple("M", nav_id=nav)
    coupled = store.couplings_frame("M", columns=["nav_id", "crm_id"])
    free_nav = [n for n in navs if n not in set(coupled["nav_id"].to_list())]
    free_crm = [c for c in crms if c not in set(coupled["crm_id"].to_list())]
    rng.shuffle(free_crm)
    for nav, crm in zip(free_nav[:6], free_crm[:6], strict=False):
        store.couple("M", nav, crm)
    refused = changed_couplings("M", seen, store)
    expected = _plain("M", seen, store)
    assert sorted(refused["record_id"].to_list()) == sorted(expected["record_id"].to_list())
    assert refused.height > 0
    assert refused["message"].str.contains("after the preview").all()
