"""The ``reconcile_runs`` table on SQLite and PostgreSQL: a reconcile stored and read back,
healed later, each company's own, the couplings walked in id chunks, and the ``drift`` alert
rule reading the latest reconcile of each mapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nav_crm_ops.config import AlertSettings
from nav_crm_ops.engine.alerts import AlertFacts, AlertRule, evaluate
from nav_crm_ops.store import StateStore


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    with StateStore.open(state_url, company="CRONUS") as opened:
        yield opened


def _result(mapping: str, **counts: int) -> dict[str, Any]:
    full = {"in_step": 0, "pending": 0, "missed": 0, "diverged": 0, "partner_gone": 0, **counts}
    pairs = [{"nav_id": f"n{i}", "crm_id": f"c{i}", "nav_key": str(i), "class": "missed",
              "why": "BC changed behind its watermark"} for i in range(full["missed"])]
    return {"mapping": mapping, "counts": full, "pairs": pairs, "requests": 12, "pages": 3,
            "duration_s": 1.25, "started_at": "2026-12-03T10:00:00.000000Z",
            "advice": "", "healed": 0}


def _drift(store: StateStore) -> list[tuple[str, str]]:
    facts = AlertFacts(**store.alerts.facts())
    return [(f.subject, f.message) for f in evaluate(facts, AlertSettings())
            if f.rule is AlertRule.DRIFT]


def test_a_reconcile_is_stored_healed_and_drives_the_drift_alert(store: StateStore,
                                                                 state_url: str) -> None:
    assert store.reconcile_runs.latest("CUSTOMER") is None and _drift(store) == []
    store.reconcile_runs.record(_result("CUSTOMER", in_step=40))
    run = store.reconcile_runs.record(_result("CUSTOMER", in_step=36, missed=3, partner_gone=1))
    store.reconcile_runs.record(_result("CONTACT", in_step=5, pending=2))
    latest = store.reconcile_runs.latest("customer")
    assert latest is not None and latest["id"] == run
    assert (latest["missed"], latest["partner_gone"], latest["requests"], latest["pages"],
            latest["duration_ms"]) == (3, 1, 12, 3, 1250)
    assert [p["nav_id"] for p in latest["pairs"]] == ["n0", "n1", "n2"]
    [(subject, message)] = _drift(store)  # CONTACT's pending pairs are no drift
    assert subject == "CUSTOMER" and "found 4 of 40 coupled pairs out of step" in message

    store.reconcile_runs.set_healed(run, 3)
    [(_, message)] = _drift(store)  # the gone pair still needs a person
    assert "found 1 of 40" in message and "3 healed" in message
    store.reconcile_runs.record(_result("CUSTOMER", in_step=40))
    assert _drift(store) == []

    with StateStore.open(state_url, company="CRONUS UK") as other:
        assert other.reconcile_runs.latest("CUSTOMER") is None
        assert AlertFacts(**other.alerts.facts()).reconciles == []


def test_couplings_are_walked_in_id_chunks(store: StateStore) -> None:
    store.couplings.upsert("CUSTOMER", [{"nav_id": f"n{i:02d}", "crm_id": f"c{i:02d}"}
                                        for i in range(7)])
    store.couplings.upsert("CONTACT", [{"nav_id": "x", "crm_id": "y"}])
    chunks = list(store.reconcile_runs.coupled_ids("CUSTOMER", size=3))
    assert chunks == [["n00", "n01", "n02"], ["n03", "n04", "n05"], ["n06"]]
