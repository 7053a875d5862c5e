"""``crm_ids_for`` (column-wise) gives exactly the GUIDs of ``crm_id_for`` (one per record)."""

from __future__ import annotations

import random

from nav_crm_ops.engine.ids import crm_id_for, crm_ids_for

ALPHABET = "abcXYZ019 -_./|:ÄöüßİıΣσςéñ中文\u00a0\U0001f600"


def _random_ids(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 24)))
            for _ in range(count)]


def test_same_guids_as_one_by_one_for_random_ids() -> None:
    rng = random.Random(19)
    for mapping, salt, scope in (("CUSTOMER", "", ""), ("contact", "restore:x", ""),
                                 ("Customer", "", "CRONUS İ"), ("ITEM", "s", "c2")):
        ids = _random_ids(rng, 3000) + [str(n) for n in range(2000)]
        ids += [f"{rng.getrandbits(128):032x}" for _ in range(500)]
        column = crm_ids_for(mapping, ids, salt, scope=scope)
        assert column.name == "crm_id"
        assert column.to_list() == [crm_id_for(mapping, i, salt, scope=scope) for i in ids]


def test_no_ids_is_an_empty_text_column() -> None:
    column = crm_ids_for("CUSTOMER", [])
    assert column.len() == 0
    assert str(column.dtype) == "String"
