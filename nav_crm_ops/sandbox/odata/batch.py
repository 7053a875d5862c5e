"""``$batch`` plumbing both services share: all-or-nothing groups of parts (a Dataverse change
set, a Business Central ``Isolation: snapshot`` batch) and relative part URLs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from .errors import Rollback

Item = TypeVar("Item")
Result = TypeVar("Result")


class Transactional(Protocol):
    def transaction(self) -> Any: ...


def all_or_nothing(store: Transactional, items: Iterable[Item], run: Callable[[Item], Result],
                   failed: Callable[[Result], bool]) -> tuple[list[Result], Result | None]:
    """Run ``items`` in one store transaction, stopping and rolling back at the first result
    ``failed`` accepts: → (the results, None) or (the results before it, that result)."""
    results: list[Result] = []
    try:
        with store.transaction():
            for item in items:
                result = run(item)
                if failed(result):
                    raise Rollback(result)
                results.append(result)
    except Rollback as rollback:
        return results, rollback.failed
    return results, None
