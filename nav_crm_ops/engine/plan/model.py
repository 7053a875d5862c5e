"""The :class:`Plan`: what a sync run would do (see :mod:`nav_crm_ops.engine.plan`)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from ...exceptions import PlanError
from ..diff import DiffResult
from ..vocabulary import (
    PlanAction,
    Side,
    action_is,
    changes_to,
    inserts_to,
    same_value,
    shown_change,
    writes_to,
)
from .io import read_plan, write_plan
from .render import heading, summary_html, summary_text
from .schema import (
    DIRECTION_DTYPE,
    FIELD_CHANGE_SCHEMA,
    PLAN_ACTIONS,
    RECORD_SCHEMA,
    PlanMetadata,
    direction_of_action,
)

__all__ = ["Plan", "plan_rows_from_diff"]

_REQUIRED_RECORD_COLUMNS = ("mapping", "record_id", "action")
_REQUIRED_FIELD_COLUMNS = ("mapping", "record_id", "field")


def _normalized(
    frame: pl.DataFrame,
    schema: Mapping[str, pl.DataType],
    required: Iterable[str],
    label: str,
    defaults: Mapping[str, Any],
) -> pl.DataFrame:
    """``frame`` with exactly ``schema``'s columns: missing optional ones null (or defaulted)."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PlanError(f"plan {label} lack required column(s) {missing}")
    unknown = [c for c in frame.columns if c not in schema]
    if unknown:
        raise PlanError(f"plan {label} have unknown column(s) {unknown}; allowed: {list(schema)}")
    if not frame.columns:
        return pl.DataFrame(schema=dict(schema))
    columns = []
    for name, dtype in schema.items():
        if name in frame.columns:
            column = pl.col(name)
            if isinstance(dtype, pl.Enum):
                allowed = set(dtype.categories.to_list())
                found = set(frame.get_column(name).drop_nulls().cast(pl.Utf8).unique().to_list())
                if found - allowed:
                    raise PlanError(
                        f"plan {label}: column {name!r} has invalid value(s) "
                        f"{sorted(found - allowed)}; allowed: {sorted(allowed)}"
                    )
                column = column.cast(pl.Utf8)
            columns.append(column.cast(dtype))
        else:
            default = defaults.get(name)
            columns.append(pl.lit(default).cast(dtype).alias(name))
        if name in defaults and name in frame.columns:
            columns[-1] = columns[-1].fill_null(defaults[name])
    return frame.select(columns)


def plan_rows_from_diff(
    mapping: str, diff: DiffResult, identities: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plan records and field changes for one mapping's diff.

    ``identities`` has ``pair_id`` plus any of ``nav_id``, ``crm_id``, ``nav_version``,
    ``crm_version`` (the couplings and the versions read); ``record_id`` is the pair id.
    """
    key = diff.key
    optional = [c for c in ("nav_id", "crm_id", "nav_version", "crm_version") if c in identities]
    direction = direction_of_action(pl.col("action"))
    records = diff.records.join(
        identities.select(pl.col(key).cast(pl.Utf8), *optional), on=key, how="left"
    ).select(
        pl.lit(mapping).alias("mapping"),
        pl.col(key).alias("record_id"),
        pl.col(key).alias("pair_id"),
        *optional,
        pl.col("action").cast(pl.Utf8),
        direction.alias("direction"),
        pl.col("conflict_message").alias("message"),
    )
    changes = diff.field_changes.select(
        pl.lit(mapping).alias("mapping"),
        pl.col(key).alias("record_id"),
        pl.exclude(key),
    )
    return records, changes


@dataclass(frozen=True, eq=False)
class Plan:
    """A previewed sync run: records, field changes and metadata (see the module docstring).

    Plans are immutable: :meth:`include`, :meth:`exclude` and :meth:`for_mapping` return new
    plans. Build one with :meth:`create`; persist with :meth:`save` / :meth:`load`.
    """

    records: pl.DataFrame
    field_changes: pl.DataFrame
    metadata: PlanMetadata

    @classmethod
    def create(
        cls,
        records: pl.DataFrame,
        field_changes: pl.DataFrame | None = None,
        *,
        workspace_fingerprint: str,
        watermarks: Mapping[str, Mapping[str, str]] | None = None,
        mappings: Iterable[str] | None = None,
        plan_id: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> Plan:
        """Validate and normalize engine output into a plan with a fresh id and timestamp.

        Records need ``mapping``, ``record_id`` and ``action``; ``direction`` defaults from the
        action and ``included`` to true. Field changes must belong to records of the plan.
        """
        records = _normalized(
            records, RECORD_SCHEMA, _REQUIRED_RECORD_COLUMNS, "records", {"included": True}
        )
        records = records.with_columns(
            pl.coalesce(
                pl.col("direction"),
                direction_of_action(pl.col("action")).cast(DIRECTION_DTYPE),
            ).alias("direction")
        )
        changes = _normalized(
            field_changes if field_changes is not None else pl.DataFrame(),
            FIELD_CHANGE_SCHEMA,
            _REQUIRED_FIELD_COLUMNS if field_changes is not None else (),
            "field changes",
            {"conflict": False},
        )
        moment = (created_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        mapping_names = tuple(
            mappings
            if mappings is not None
            else records.get_column("mapping").unique(maintain_order=True).to_list()
        )
        metadata = PlanMetadata(
            plan_id=plan_id or str(uuid.uuid4()),
            created_at=moment.isoformat().replace("+00:00", "Z"),
            workspace_fingerprint=workspace_fingerprint,
            mappings=mapping_names,
            watermarks={m: dict(w) for m, w in (watermarks or {}).items()},
        )
        plan = cls(records, changes, metadata)
        plan._validate()
        return plan

    def _validate(self) -> None:
        ids = self.records.select("mapping", "record_id")
        if ids.select(pl.col("record_id").is_null().any()).item():
            raise PlanError("every plan record needs a record_id (the pair id, or a side's id)")
        if ids.is_duplicated().any():
            dupes = ids.filter(ids.is_duplicated()).unique().head(5).rows()
            raise PlanError(f"plan records repeat (mapping, record_id) pairs, e.g. {dupes}")
        orphans = self.field_changes.select("mapping", "record_id").join(
            ids, on=["mapping", "record_id"], how="anti", nulls_equal=True
        )
        if orphans.height:
            raise PlanError(
                "plan field changes refer to records the plan does not hold, e.g. "
                f"{orphans.unique().head(5).rows()}"
            )
        unknown = set(self.records.get_column("mapping").unique().to_list()) - set(
            self.metadata.mappings
        )
        if unknown:
            raise PlanError(
                f"plan records name mapping(s) {sorted(unknown)} missing from the plan's "
                f"mapping list {list(self.metadata.mappings)}"
            )

    def counts(self) -> dict[str, int]:
        """Records per action (every action listed, zero when absent)."""
        found = dict(self.records.group_by("action").len().iter_rows())
        return {action: int(found.get(action, 0)) for action in PLAN_ACTIONS}

    def summary(self) -> pl.DataFrame:
        """Counts by mapping x action x direction: all records and those still included."""
        return (
            self.records.group_by("mapping", "action", "direction")
            .agg(
                pl.len().cast(pl.UInt32).alias("records"),
                pl.col("included").sum().cast(pl.UInt32).alias("included"),
            )
            .sort("mapping", "action", "direction")
        )

    def _selected(self, ids: Iterable[str], mapping: str | None) -> pl.Expr:
        wanted = sorted({str(i) for i in ids})
        scope = pl.lit(True) if mapping is None else pl.col("mapping") == mapping
        hits = scope & pl.any_horizontal(
            pl.col(c).is_in(wanted) for c in ("record_id", "pair_id", "nav_id", "crm_id")
        )
        found: set[str] = set()
        for column in ("record_id", "pair_id", "nav_id", "crm_id"):
            found |= set(
                self.records.filter(scope).get_column(column).drop_nulls().to_list()
            ) & set(wanted)
        missing = sorted(set(wanted) - found)
        if missing:
            where = f" of mapping {mapping!r}" if mapping else ""
            raise PlanError(
                f"id(s) {missing[:10]} are not records{where} in this plan; use a record_id, "
                "pair_id, nav_id or crm_id from plan.records"
            )
        return hits

    def include(self, ids: Iterable[str], *, mapping: str | None = None) -> Plan:
        """A plan in which the given records (by record, pair, NAV or CRM id) are included."""
        hits = self._selected(ids, mapping)
        records = self.records.with_columns(
            pl.when(hits).then(pl.lit(True)).otherwise(pl.col("included")).alias("included")
        )
        return replace(self, records=records)

    def exclude(self, ids: Iterable[str], *, mapping: str | None = None) -> Plan:
        """A plan in which the given records are excluded: apply will not touch them."""
        hits = self._selected(ids, mapping)
        records = self.records.with_columns(
            pl.when(hits).then(pl.lit(False)).otherwise(pl.col("included")).alias("included")
        )
        return replace(self, records=records)

    def for_mapping(self, name: str) -> Plan:
        """The part of this plan that belongs to one mapping."""
        if name not in self.metadata.mappings:
            raise PlanError(
                f"mapping {name!r} is not in this plan; it holds {list(self.metadata.mappings)}"
            )
        watermarks = {m: w for m, w in self.metadata.watermarks.items() if m == name}
        return Plan(
            self.records.filter(pl.col("mapping") == name),
            self.field_changes.filter(pl.col("mapping") == name),
            replace(self.metadata, mappings=(name,), watermarks=watermarks),
        )

    def writes(self, target: Side | str) -> pl.DataFrame:
        """Field values to write to one side, for included records only.

        One row per record and field: ``mapping``, ``record_id``, ``pair_id``, ``nav_id``,
        ``crm_id``, the version read on the target side (``expected_version``: apply refuses
        the record when the side changed since), ``field`` and ``new_value``.
        """
        if target not in tuple(Side):
            raise PlanError(f"writes() target must be 'crm' or 'nav', not {target!r}")
        side = Side(target)
        records = self.included().select(
            "mapping",
            "record_id",
            "pair_id",
            "nav_id",
            "crm_id",
            pl.col(side.column("version")).alias("expected_version"),
        )
        changes = self.field_changes.filter(changes_to(side)).select(
            "mapping", "record_id", "field", "new_value"
        )
        return records.join(
            changes, on=["mapping", "record_id"], how="inner", maintain_order="right"
        )

    def base_updates(self) -> pl.DataFrame:
        """New last-synced values per included record and field (``mapping``, ``record_id``,
        ``field``, ``value``): written values and fields both sides changed alike.

        The engine applies them to its stored base for the records whose writes succeeded;
        fields not listed keep their stored base.
        """
        included = self.included().select("mapping", "record_id")
        updates = self.field_changes.filter(
            (pl.col("target").cast(pl.Utf8) != "none") | same_value()
        ).select("mapping", "record_id", "field", pl.col("new_value").alias("value"))
        return updates.join(
            included, on=["mapping", "record_id"], how="semi", maintain_order="left"
        )

    # -- selections (the applier and the preview widget use these) ------------------------------
    def included(self) -> pl.DataFrame:
        """The records apply carries out."""
        return self.records.filter(pl.col("included"))

    def with_action(self, *actions: PlanAction | str) -> pl.DataFrame:
        """All records (included or not) whose action is one of ``actions``."""
        return self.records.filter(action_is(*actions))

    def writing_to(self, target: Side | str) -> pl.DataFrame:
        """Included records that write to ``target`` (creates and updates)."""
        return self.included().filter(writes_to(target))

    def inserts(self, target: Side | str) -> pl.DataFrame:
        """Included records that create a record on ``target``."""
        return self.included().filter(inserts_to(target))

    def changes_to(self, target: Side | str) -> pl.DataFrame:
        """Field changes written to ``target`` (included or not)."""
        return self.field_changes.filter(changes_to(target))

    def same_value_changes(self) -> pl.DataFrame:
        """Field changes both sides made alike: not written, but the base moves."""
        return self.field_changes.filter(same_value())

    def shown_changes(self) -> pl.DataFrame:
        """Field changes a person reviews: written somewhere, or in conflict."""
        return self.field_changes.filter(shown_change())

    def save(self, path: str | os.PathLike[str], *,
             sign: Callable[[str], str] | None = None) -> Path:
        """Write the plan to one Parquet file (atomically) and return its path.

        ``sign`` (the workspace's :meth:`WorkspaceIdentity.sign`) signs the content digest; an
        unsigned plan can be read but not applied (use :meth:`Workspace.save_plan`)."""
        metadata = self.metadata.to_json_dict() | {"counts": self.counts()}
        return write_plan(path, self.records, self.field_changes, metadata, sign)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        """Read a saved plan, refusing missing, corrupt, foreign, outdated or edited files."""
        return cls(*read_plan(path))

    def equals(self, other: Plan) -> bool:
        """Same metadata, records and field changes (row order included)."""
        return (
            self.metadata == other.metadata
            and self.records.equals(other.records)
            and self.field_changes.equals(other.field_changes)
        )

    def _heading(self) -> str:
        return heading(self.metadata, self.records, self.field_changes)

    def __str__(self) -> str:
        return summary_text(self._heading(), self.summary())

    def __repr__(self) -> str:
        return f"<{self._heading()}>"

    def _repr_html_(self) -> str:
        return summary_html(self._heading(), self.summary())
