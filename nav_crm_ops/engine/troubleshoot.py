"""Failed records as people act on them: named, grouped by cause with advice, retried honestly.

Why: the troubleshooting dashboard showed GUIDs, counted occurrences, pointed at the command
line, and a retry of a skipped record said "done" having done nothing. Here:

* :func:`labelled_status` — records in the retry pass or skipped, each with ``record`` (number
  and name, :func:`~.labels.record_label`) from its latest error or its coupling;
* :func:`groups_for_people` — error groups with ``records`` (distinct records), up to
  :data:`EXAMPLES` example records by name, and the :class:`Advice` for the cause;
* :func:`advice_for` — what to do about one message, with the :class:`Remedy` (which dashboard
  fixes it) when the cause is known;
* :func:`retry_outcomes` — after a retry, each selected record's outcome (:class:`Outcome`):
  done, failed again with the new message, conflict held, still skipped (not retried), or not
  attempted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from ..store import StateStore
from .labels import label_expr
from .report import SyncReport

__all__ = ["EXAMPLES", "LABEL_ROWS", "Advice", "Outcome", "Remedy", "RetryResult",
           "advice_for", "groups_for_people", "labelled_status", "retry_outcomes"]

EXAMPLES = 3
"""How many example records an error group names."""
LABEL_ROWS = 10_000
"""How many of the newest record errors name the records (older ones fall back to couplings)."""


class Remedy(StrEnum):
    """Where a person fixes a known cause (each front end links it its own way)."""

    COUPLE = "couple"
    """Couple the referenced record (Couple records dashboard)."""
    RESOLVE_CONFLICT = "resolve_conflict"
    """Choose the side to keep (Preview changes dashboard)."""
    FIX_SOURCE = "fix_source"
    """Correct the value in the source system, then retry."""
    RETRY = "retry"
    """A passing service failure: retry."""


@dataclass(frozen=True)
class Advice:
    """What to do about one cause; ``remedy`` None when the cause is not known."""

    text: str
    remedy: Remedy | None = None


_QUOTED = r"['\"]?(?P<value>[^'\"]+?)['\"]?"
_RULES: tuple[tuple[re.Pattern[str], Remedy, str], ...] = (
    (re.compile(rf"^(?P<field>\S+) {_QUOTED} is not coupled to a CRM (?P<entity>\w+) "
                r"\(mapping (?P<mapping>[\w ]+?)\)"),
     Remedy.COUPLE,
     "{field} {value} has no matching CRM {entity}: couple it in Couple records (mapping "
     "{mapping}), or run {mapping} first; then retry"),
    (re.compile(r"belongs to BC \w+ record \S+, which is not coupled to a CRM (?P<entity>\w+) "
                r"\(mapping (?P<mapping>\w+)\)"),
     Remedy.COUPLE,
     "the referenced record has no matching CRM {entity}: couple it in Couple records "
     "(mapping {mapping}), or run {mapping} first; then retry"),
    (re.compile(r"CRM (?P<entity>\w+) .* is not coupled to a BC \w+ record "
                r"\(mapping (?P<mapping>[\w ]+?)\)"),
     Remedy.COUPLE,
     "the CRM {entity} it refers to has no BC record: couple it in Couple records (mapping "
     "{mapping}), or run {mapping} first; then retry"),
    (re.compile(r"synchronizes only coupled records|create_when_no_match is off"),
     Remedy.COUPLE, "the record has no partner: couple it by hand in Couple records"),
    (re.compile(r"^held: both sides changed (?P<fields>.+?) to different values"),
     Remedy.RESOLVE_CONFLICT,
     "both sides changed {fields}: choose the value to keep (keep BC value / keep CRM value) "
     "in Preview changes"),
    (re.compile(r"The field (?P<field>[\w/ ]+?) of table (?P<table>[\w/ ]+?) contains a value "
                r"\((?P<value>[^)]*)\) that cannot be found in the related table"),
     Remedy.FIX_SOURCE,
     "{table} {field} {value} does not exist in BC: create it in BC, or correct the value "
     "in CRM; then retry"),
    (re.compile(r"too long|exceeded|StringExceededLength|length of", re.IGNORECASE),
     Remedy.FIX_SOURCE, "a value is longer than the destination allows: shorten it in the "
                        "source system, then retry"),
    (re.compile(r"HTTP (?:429|5\d\d)\b|timed? ?out|temporarily|throttl", re.IGNORECASE),
     Remedy.RETRY, "the service failed for a while: retry (records are retried by the next "
                   "run too)"),
)


_PLACEHOLDER = re.compile(r"['\"]?<(?:value|guid|no|n|id)>['\"]?")
"""The placeholders of a normalized message (``store.normalize``), quotes included."""


def advice_for(message: str | None, *, transient: bool = False) -> Advice:
    """The advice for one error message: tailored when a rule knows the cause, else the
    message's own advice (engine messages end with what to do)."""
    text = message or ""
    for pattern, remedy, template in _RULES:
        found = pattern.search(text)
        if found:
            return Advice(template.format(**found.groupdict()), remedy)
    if transient:
        return Advice("a passing service failure: retry", Remedy.RETRY)
    return Advice("read the full message below; it says what the service refused")


def _labels(store: StateStore, mapping: str | None) -> pl.DataFrame:
    """``mapping``, ``direction``, ``source_id`` → ``record`` from the newest record errors,
    else from the couplings (the source side's number and name)."""
    errors = store.record_errors_frame(mapping)
    schema = {"mapping": pl.Utf8, "direction": pl.Utf8, "source_id": pl.Utf8,
              "record": pl.Utf8}
    if errors.height == 0 or "source_label" not in errors.columns:
        return pl.DataFrame(schema=schema)
    return (errors.head(LABEL_ROWS)
            .filter(pl.col("source_label").is_not_null() & pl.col("source_id").is_not_null())
            .unique(subset=["mapping", "direction", "source_id"], keep="first")
            .select("mapping", "direction", "source_id", pl.col("source_label").alias("record")))


def _coupling_labels(store: StateStore, status: pl.DataFrame) -> pl.DataFrame:
    """Labels from the couplings for the status rows (source side by direction)."""
    parts = []
    for (mapping,), rows in status.group_by("mapping"):
        for direction, side in (("to_crm", "nav"), ("from_crm", "crm")):
            ids = rows.filter(pl.col("direction") == direction)["source_id"].to_list()
            if not ids:
                continue
            found = (store.couplings_frame(str(mapping), nav_ids=ids) if side == "nav"
                     else store.couplings_frame(str(mapping), crm_ids=ids))
            if found.height == 0:
                continue
            parts.append(found.select(
                pl.lit(str(mapping)).alias("mapping"), pl.lit(direction).alias("direction"),
                pl.col(f"{side}_id").alias("source_id"),
                label_expr(f"{side}_key", f"{side}_name").alias("__coupled")))
    if not parts:
        return pl.DataFrame(schema={"mapping": pl.Utf8, "direction": pl.Utf8,
                                    "source_id": pl.Utf8, "__coupled": pl.Utf8})
    return pl.concat(parts)


def labelled_status(store: StateStore, mapping: str | None = None,
                    states: Sequence[str] | None = None) -> pl.DataFrame:
    """Records in the retry pass or skipped, each with ``record`` (number and name; the id
    when nothing else is known) and ``advice`` (:func:`advice_for` of its message)."""
    status = (store.record_status_frame(mapping) if states is None
              else store.record_status_frame(mapping, states=list(states)))
    if status.height == 0:
        return status.with_columns(pl.lit(None, pl.Utf8).alias("record"),
                                   pl.lit(None, pl.Utf8).alias("advice"))
    keys = ["mapping", "direction", "source_id"]
    named = (status.join(_labels(store, mapping), on=keys, how="left", maintain_order="left")
             .join(_coupling_labels(store, status), on=keys, how="left", maintain_order="left")
             .with_columns(pl.coalesce("record", "__coupled", "source_id").alias("record"))
             .drop("__coupled"))
    advice = [advice_for(m, transient=bool(t)).text
              for m, t in zip(named["message"], named["transient"], strict=True)]
    return named.with_columns(pl.Series("advice", advice, dtype=pl.Utf8))


def groups_for_people(store: StateStore, mapping: str | None = None) -> pl.DataFrame:
    """:meth:`StateStore.error_groups` with ``examples`` (up to :data:`EXAMPLES` records by
    name, from the newest errors), ``advice`` and ``remedy`` (:class:`Remedy` value or null)."""
    groups = store.error_groups(mapping)
    errors = store.record_errors_frame(mapping).head(LABEL_ROWS)
    if errors.height:
        named = errors.with_columns(
            pl.coalesce("source_label", "source_id").alias("__label")).filter(
            pl.col("__label").is_not_null())
        examples = named.group_by("mapping", "normalized_message").agg(
            pl.col("__label").unique(maintain_order=True).head(EXAMPLES).str.join(", ")
            .alias("examples"), pl.col("message").n_unique().alias("__messages"))
        groups = groups.join(examples, on=["mapping", "normalized_message"], how="left",
                             maintain_order="left")
    else:
        groups = groups.with_columns(pl.lit(None, pl.Utf8).alias("examples"),
                                     pl.lit(None, pl.UInt32).alias("__messages"))
    # one message: its own advice (names the value); several: the cause's, values as "…"
    advice = [advice_for(example if messages == 1 else _PLACEHOLDER.sub("…", normalized))
              for example, normalized, messages in
              groups.select("example", "normalized_message", "__messages").iter_rows()]
    return groups.drop("__messages").with_columns(
        pl.Series("advice", [a.text for a in advice], dtype=pl.Utf8),
        pl.Series("remedy", [a.remedy.value if a.remedy else None for a in advice],
                  dtype=pl.Utf8))


class Outcome(StrEnum):
    """What a retry did to one selected record."""

    DONE = "done"
    FAILED_AGAIN = "failed again"
    CONFLICT = "conflict held"
    NOW_SKIPPED = "failed again, now skipped"
    STILL_SKIPPED = "skipped: not retried (unskip first)"
    NOT_ATTEMPTED = "not attempted"


@dataclass(frozen=True)
class RetryResult:
    """A retry's report and each selected record's outcome (``outcomes``: ``mapping``,
    ``direction``, ``source_id``, ``record``, ``outcome``, ``message``)."""

    report: SyncReport
    outcomes: pl.DataFrame

    def count(self, outcome: Outcome) -> int:
        return int((self.outcomes["outcome"] == outcome.value).sum()) if \
            self.outcomes.height else 0

    def summary(self) -> str:
        """``2 done, 1 failed again`` (outcomes that occurred, in :class:`Outcome` order)."""
        parts = [f"{self.count(o)} {o.value}" for o in Outcome if self.count(o)]
        return ", ".join(parts) or "no records selected"


def _outcome(before: dict[str, object], after: dict[str, object] | None,
             retried: bool) -> tuple[Outcome, str]:
    if not retried:
        return Outcome.STILL_SKIPPED, str(before.get("message") or "")
    if after is None:
        return Outcome.DONE, ""
    message = str(after.get("message") or "")
    if after.get("updated_at") == before.get("updated_at"):
        return Outcome.NOT_ATTEMPTED, (
            "the retry did not reach this record (it is no longer read on its side, or its "
            "partner was not selected); the last failure: " + message)
    state = after.get("state")
    if state == "skipped":
        return Outcome.NOW_SKIPPED, message
    if state == "conflict":
        return Outcome.CONFLICT, message
    return Outcome.FAILED_AGAIN, message


def retry_outcomes(before: pl.DataFrame, after: pl.DataFrame, *,
                   retried_skipped: bool) -> pl.DataFrame:
    """Each record of ``before`` (:func:`labelled_status` rows of the selection, taken before
    the retry) with its outcome, comparing with ``after`` (the status rows taken after)."""
    keys = ("mapping", "direction", "source_id")
    now = {tuple(r[k] for k in keys): r for r in after.iter_rows(named=True)}
    rows = []
    for row in before.iter_rows(named=True):
        retried = retried_skipped or row["state"] != "skipped"
        outcome, message = _outcome(row, now.get(tuple(row[k] for k in keys)), retried)
        rows.append((row["mapping"], row["direction"], row["source_id"], row["record"],
                     outcome.value, message))
    return pl.DataFrame(rows, orient="row", schema={
        "mapping": pl.Utf8, "direction": pl.Utf8, "source_id": pl.Utf8, "record": pl.Utf8,
        "outcome": pl.Utf8, "message": pl.Utf8})
