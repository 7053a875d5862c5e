"""The plan artifact: what a sync run would do, saved for review before it is applied.

Why: the reference engine has no preview; you learn what a sync did after it did it. Here a
run is split into *preview* (read both sides, diff, write a :class:`Plan`) and *apply* (replay
exactly the included records of a plan). A plan records, per record, the action, the direction,
the version of each side as read (``nav_version`` / ``crm_version``: etag or modifiedon; apply
refuses records that changed since) and, per field, the base / NAV / CRM values and the value to
write. An analyst can exclude records before applying. Plans hold record data only, never
credentials or tokens.

File layout (one Parquet file): one table whose ``row_type`` column says whether a row is a
``record`` or a ``field_change``; each row type fills its own columns and leaves the others
null (``mapping`` and ``record_id`` are shared and link field changes to their record). The
plan metadata is JSON under the Parquet key-value metadata key ``nav_crm_ops.plan``, with a
SHA-256 digest of the metadata and every row, so :meth:`Plan.load` refuses a file that was
damaged after it was saved, and the workspace's signature of that digest (HMAC-SHA256 with a
key only its state database holds), so :meth:`Workspace.load_plan` refuses a file edited by
someone who recomputed the digest, or made by another workspace.

Action vocabulary (:data:`PLAN_ACTIONS` documents each): the diff's ``update_crm``,
``update_nav``, ``update_both``, ``unchanged``, ``conflict``, plus the engine's ``insert_crm``,
``insert_nav``, ``skip``, ``deletion_conflict`` and ``fail``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import PlanError
from .diff import CHANGED_SIDES, RESOLUTIONS, TARGETS, DiffResult

__all__ = [
    "DIRECTIONS",
    "FIELD_CHANGE_SCHEMA",
    "METADATA_KEY",
    "PLAN_ACTIONS",
    "PLAN_FORMAT_VERSION",
    "RECORD_SCHEMA",
    "SKIP_REASONS",
    "Plan",
    "PlanAction",
    "PlanDirection",
    "PlanMetadata",
    "SkipReason",
    "line_field",
    "plan_rows_from_diff",
    "read_plan_metadata",
    "signed_text",
    "split_line_field",
]

PLAN_FORMAT_VERSION = 3
METADATA_KEY = b"nav_crm_ops.plan"

PlanAction = Literal[
    "update_crm",
    "update_nav",
    "update_both",
    "unchanged",
    "conflict",
    "insert_crm",
    "insert_nav",
    "skip",
    "deletion_conflict",
    "fail",
]
PLAN_ACTIONS: dict[str, str] = {
    "update_crm": "coupled pair: write NAV's changed fields to the CRM record",
    "update_nav": "coupled pair: write CRM's changed fields to the NAV record",
    "update_both": "coupled pair: different fields changed on each side; write both ways",
    "unchanged": "coupled pair: nothing to write (at most the stored base is refreshed)",
    "conflict": "coupled pair: the same field changed differently on both sides; held",
    "insert_crm": "uncoupled NAV record: create it in CRM and couple the two",
    "insert_nav": "uncoupled CRM record: create it in NAV and couple the two",
    "skip": "not synchronized; skip_reason says why",
    "deletion_conflict": "coupled record missing on one side; the deletion policy decides",
    "fail": "cannot be synchronized as is (e.g. a lookup to an uncoupled record); see message",
}
"""Every action a plan record can carry, with what it means."""

PlanDirection = Literal["to_crm", "from_crm", "both", "none"]
DIRECTIONS: tuple[str, ...] = ("to_crm", "from_crm", "both", "none")
"""Which way a record's writes go: ``both`` for ``update_both``, ``none`` when nothing is written."""

SkipReason = Literal["only_coupled", "skipped_coupling", "filtered_out", "create_only"]
SKIP_REASONS: dict[str, str] = {
    "only_coupled": "uncoupled record and the mapping synchronizes only coupled records",
    "create_only": "written once when it was created (an order sent to the back office); "
                   "later changes are not synchronized",
    "skipped_coupling": "the coupling is marked skipped until a person restores it",
    "filtered_out": "the record no longer matches the mapping's table filter",
}

ACTION_DTYPE = pl.Enum(list(PLAN_ACTIONS))
DIRECTION_DTYPE = pl.Enum(DIRECTIONS)
SKIP_REASON_DTYPE = pl.Enum(list(SKIP_REASONS))

RECORD_SCHEMA: dict[str, pl.DataType] = {
    "mapping": pl.Utf8(),
    "record_id": pl.Utf8(),
    "pair_id": pl.Utf8(),
    "nav_id": pl.Utf8(),
    "crm_id": pl.Utf8(),
    "nav_key": pl.Utf8(),
    "crm_key": pl.Utf8(),
    "action": ACTION_DTYPE,
    "direction": DIRECTION_DTYPE,
    "skip_reason": SKIP_REASON_DTYPE,
    "nav_version": pl.Utf8(),
    "crm_version": pl.Utf8(),
    "nav_coupled_to": pl.Utf8(),
    "crm_coupled_to": pl.Utf8(),
    "message": pl.Utf8(),
    "included": pl.Boolean(),
}
"""Columns of :attr:`Plan.records`; ``record_id`` is unique within a mapping; ``nav_key`` /
``crm_key`` are the natural keys (customer number, currency code ...) people recognise;
``nav_coupled_to`` / ``crm_coupled_to`` the coupling each side's record had when the preview
read it (apply refuses a record whose coupling changed since: ``engine.freshness``)."""

FIELD_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "mapping": pl.Utf8(),
    "record_id": pl.Utf8(),
    "field": pl.Utf8(),
    "base_value": pl.Utf8(),
    "nav_value": pl.Utf8(),
    "crm_value": pl.Utf8(),
    "changed_side": pl.Enum(CHANGED_SIDES),
    "target": pl.Enum(TARGETS),
    "new_value": pl.Utf8(),
    "conflict": pl.Boolean(),
    "resolution": pl.Enum(RESOLUTIONS),
}
"""Columns of :attr:`Plan.field_changes` (the diff's field changes plus mapping/record_id)."""

LINE_PREFIX = "lines["
"""Field changes of a document's lines are named ``lines[<position>].<line field>``."""


def line_field(position: int, name: str) -> str:
    """The field-change name of a document line's field (``lines[2].quantity``)."""
    return f"{LINE_PREFIX}{position}].{name}"


def split_line_field(name: str) -> tuple[int, str] | None:
    """(position, line field) of a :func:`line_field` name; None for header fields."""
    if not name.startswith(LINE_PREFIX):
        return None
    position, _, field_name = name[len(LINE_PREFIX):].partition("].")
    return int(position), field_name


_REQUIRED_RECORD_COLUMNS = ("mapping", "record_id", "action")
_REQUIRED_FIELD_COLUMNS = ("mapping", "record_id", "field")
_DIRECTION_OF_ACTION = {
    "update_crm": "to_crm",
    "update_nav": "from_crm",
    "update_both": "both",
    "insert_crm": "to_crm",
    "insert_nav": "from_crm",
}


@dataclass(frozen=True)
class PlanMetadata:
    """Who made the plan, when, for which workspace and mappings, from which watermarks.

    ``watermarks`` maps a mapping name to the per-side watermarks read by the preview
    (``{"CUSTOMER": {"nav": "...", "crm": "..."}}``); apply advances them only on success.

    ``content_sha256`` and ``signature`` are filled by :meth:`Plan.load`: the digest of the
    file and the workspace's signature of it (HMAC-SHA256 with a key only its state database
    holds). ``verified`` is false for a plan read from a file whose signature nobody checked
    yet: :meth:`Workspace.load_plan` checks it, and :meth:`Workspace.apply` refuses unverified
    plans. None of the three is part of the plan's identity (``==``).
    """

    plan_id: str
    created_at: str
    workspace_fingerprint: str
    mappings: tuple[str, ...]
    watermarks: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    format_version: int = PLAN_FORMAT_VERSION
    content_sha256: str = field(default="", compare=False)
    signature: str = field(default="", compare=False, repr=False)
    verified: bool = field(default=True, compare=False)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "workspace_fingerprint": self.workspace_fingerprint,
            "mappings": list(self.mappings),
            "watermarks": {m: dict(w) for m, w in self.watermarks.items()},
        }


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
    direction = (
        pl.col("action")
        .cast(pl.Utf8)
        .replace_strict(_DIRECTION_OF_ACTION, default="none", return_dtype=pl.Utf8)
    )
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


def _digest(metadata: Mapping[str, Any], content: pl.DataFrame) -> str:
    """SHA-256 of the metadata and every cell, exact and independent of the file's encoding.

    Per column: its name, then each cell's byte length (-1 for null) and the cells' bytes, so
    null, empty text and any edit of a value all change the digest.
    """
    hasher = hashlib.sha256()
    hasher.update(json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode())
    for name in content.columns:
        column = content.get_column(name)
        hasher.update(b"\0" + name.encode() + b"\0")
        if column.dtype == pl.Boolean:
            cells = column.cast(pl.Int8).fill_null(-1).to_numpy().astype("<i1")
            hasher.update(cells.tobytes())
            continue
        text = column.cast(pl.Utf8)
        lengths = text.str.len_bytes().cast(pl.Int64).fill_null(-1).to_numpy().astype("<i8")
        hasher.update(lengths.tobytes())
        hasher.update(str(text.fill_null("").str.join("").item()).encode())
    return hasher.hexdigest()


def _signed_text(metadata: Mapping[str, Any]) -> str:
    """What a workspace signs: the plan's id, its workspace and the digest of everything."""
    return f"{metadata['plan_id']}|{metadata['workspace_fingerprint']}|{metadata['content_sha256']}"


def signed_text(metadata: PlanMetadata) -> str:
    """The text a loaded plan's ``signature`` must sign (see :meth:`Plan.save`)."""
    return _signed_text({"plan_id": metadata.plan_id,
                         "workspace_fingerprint": metadata.workspace_fingerprint,
                         "content_sha256": metadata.content_sha256})


def _content_columns() -> dict[str, pl.DataType]:
    """The stored table: row_type + record and field-change columns, enums stored as text."""
    columns: dict[str, pl.DataType] = {"row_type": pl.Utf8()}
    for name, dtype in (*RECORD_SCHEMA.items(), *FIELD_CHANGE_SCHEMA.items()):
        columns.setdefault(name, pl.Utf8() if isinstance(dtype, pl.Enum) else dtype)
    return columns


def _existing(source: Path) -> Path:
    if not source.is_file():
        raise PlanError(f"plan file {source} does not exist: run preview to create a plan")
    return source


def _unreadable(source: Path, error: Exception) -> PlanError:
    return PlanError(
        f"plan file {source} is not readable Parquet ({error}); it is corrupt or not a plan: "
        "re-run preview"
    )


def _plan_metadata(source: Path, schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise PlanError(f"{source} is a Parquet file but not a nav-crm-ops plan (no plan metadata)")
    try:
        stored = json.loads(raw)
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        raise PlanError(f"plan file {source} has unreadable plan metadata: re-run preview")
    return stored


def read_plan_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved plan's metadata (ids, time, mappings, watermarks, counts) without its rows.

    Cheap (reads the Parquet footer only) and for listing plans; it is not verified: use
    :meth:`Plan.load` before applying.
    """
    source = Path(path)
    try:
        schema = pq.read_schema(_existing(source))
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(source, error) from error
    return _plan_metadata(source, schema)


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
                pl.col("action")
                .cast(pl.Utf8)
                .replace_strict(_DIRECTION_OF_ACTION, default="none", return_dtype=pl.Utf8)
                .cast(DIRECTION_DTYPE),
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

    def writes(self, target: Literal["crm", "nav"]) -> pl.DataFrame:
        """Field values to write to one side, for included records only.

        One row per record and field: ``mapping``, ``record_id``, ``pair_id``, ``nav_id``,
        ``crm_id``, the version read on the target side (``expected_version``: apply refuses
        the record when the side changed since), ``field`` and ``new_value``.
        """
        if target not in ("crm", "nav"):
            raise PlanError(f"writes() target must be 'crm' or 'nav', not {target!r}")
        records = self.records.filter(pl.col("included")).select(
            "mapping",
            "record_id",
            "pair_id",
            "nav_id",
            "crm_id",
            pl.col(f"{target}_version").alias("expected_version"),
        )
        changes = self.field_changes.filter(pl.col("target") == target).select(
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
        included = self.records.filter(pl.col("included")).select("mapping", "record_id")
        updates = self.field_changes.filter(
            (pl.col("target") != "none") | (pl.col("resolution") == "same_value")
        ).select("mapping", "record_id", "field", pl.col("new_value").alias("value"))
        return updates.join(
            included, on=["mapping", "record_id"], how="semi", maintain_order="left"
        )

    def _content(self) -> pl.DataFrame:
        columns = _content_columns()

        def stored(frame: pl.DataFrame, row_type: str) -> pl.DataFrame:
            return frame.select(
                pl.lit(row_type).alias("row_type"),
                *[
                    (pl.col(n) if n in frame.columns else pl.lit(None)).cast(d).alias(n)
                    for n, d in columns.items()
                    if n != "row_type"
                ],
            )

        return pl.concat(
            [stored(self.records, "record"), stored(self.field_changes, "field_change")]
        )

    def _stored_metadata(self) -> dict[str, Any]:
        return self.metadata.to_json_dict() | {"counts": self.counts()}

    def save(self, path: str | os.PathLike[str], *,
             sign: Callable[[str], str] | None = None) -> Path:
        """Write the plan to one Parquet file (atomically) and return its path.

        ``sign`` (the workspace's :meth:`WorkspaceIdentity.sign`) signs the content digest; an
        unsigned plan can be read but not applied (use :meth:`Workspace.save_plan`)."""
        target = Path(path)
        content = self._content()
        metadata = self._stored_metadata()
        metadata["content_sha256"] = _digest(metadata, content)
        if sign is not None:
            metadata["signature"] = sign(_signed_text(metadata))
        table = content.to_arrow()
        table = table.replace_schema_metadata(
            (table.schema.metadata or {}) | {METADATA_KEY: json.dumps(metadata).encode()}
        )
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            pq.write_table(table, partial)
            os.replace(partial, target)
        except OSError as error:
            raise PlanError(f"cannot write plan file {target}: {error}") from error
        finally:
            partial.unlink(missing_ok=True)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plan:
        """Read a saved plan, refusing missing, corrupt, foreign, outdated or edited files."""
        source = Path(path)
        try:
            table = pq.read_table(_existing(source))
        except (pa.ArrowException, OSError) as error:
            raise _unreadable(source, error) from error
        stored = _plan_metadata(source, table.schema)
        version = stored.get("format_version")
        if version != PLAN_FORMAT_VERSION:
            raise PlanError(
                f"plan file {source} has format version {version!r}; this version of "
                f"nav-crm-ops reads version {PLAN_FORMAT_VERSION}: re-run preview"
            )
        content = pl.DataFrame(pl.from_arrow(table.replace_schema_metadata(None)))
        expected = _content_columns()
        if content.columns != list(expected):
            raise PlanError(
                f"plan file {source} does not have the plan columns (has {content.columns}): "
                "re-run preview"
            )
        claimed = stored.pop("content_sha256", None)
        signature = stored.pop("signature", "")
        try:
            content = content.cast(expected)  # type: ignore[arg-type]
        except pl.exceptions.PolarsError as error:
            raise PlanError(f"plan file {source} has columns of the wrong type: {error}") from error
        if claimed != _digest(stored, content):
            raise PlanError(f"plan file {source} was modified after it was saved: re-run preview")
        try:
            metadata = PlanMetadata(
                plan_id=str(stored["plan_id"]),
                created_at=str(stored["created_at"]),
                workspace_fingerprint=str(stored["workspace_fingerprint"]),
                mappings=tuple(stored["mappings"]),
                watermarks=stored.get("watermarks") or {},
                format_version=int(version),
                content_sha256=str(claimed),
                signature=str(signature or ""),
                verified=False,
            )
        except (KeyError, TypeError) as error:
            raise PlanError(f"plan file {source} lacks plan metadata {error}") from error
        records = content.filter(pl.col("row_type") == "record").select(
            pl.col(n).cast(d) for n, d in RECORD_SCHEMA.items()
        )
        changes = content.filter(pl.col("row_type") == "field_change").select(
            pl.col(n).cast(d) for n, d in FIELD_CHANGE_SCHEMA.items()
        )
        return cls(records, changes, metadata)

    def equals(self, other: Plan) -> bool:
        """Same metadata, records and field changes (row order included)."""
        return (
            self.metadata == other.metadata
            and self.records.equals(other.records)
            and self.field_changes.equals(other.field_changes)
        )

    def _heading(self) -> str:
        m = self.metadata
        return (
            f"Plan {m.plan_id} created {m.created_at} for mappings "
            f"{', '.join(m.mappings) or '(none)'}: {self.records.height} records, "
            f"{int(self.records.get_column('included').sum())} included, "
            f"{self.field_changes.height} field changes"
        )

    def __str__(self) -> str:
        summary = self.summary()
        header = ["mapping", "action", "direction", "records", "included"]
        rows = [header] + [[str(v) for v in row] for row in summary.iter_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.rjust(w) if i >= 3 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([self._heading(), *lines])

    def __repr__(self) -> str:
        return f"<{self._heading()}>"

    def _repr_html_(self) -> str:
        summary = self.summary()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in summary.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
            for row in summary.iter_rows()
        )
        return (
            f"<p>{html.escape(self._heading())}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
