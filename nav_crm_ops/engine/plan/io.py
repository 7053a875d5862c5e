"""Plan files: one Parquet table plus signed, digested metadata (see
:mod:`nav_crm_ops.engine.plan` for the layout and why)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ...exceptions import PlanError
from .schema import (
    FIELD_CHANGE_SCHEMA,
    METADATA_KEY,
    PLAN_FORMAT_VERSION,
    RECORD_SCHEMA,
    PlanMetadata,
)

__all__ = ["read_plan", "read_plan_metadata", "replace_atomically", "signed_text",
           "write_plan"]

T = TypeVar("T")


def replace_atomically(target: Path, write: Callable[[Path], T], what: str) -> T:
    """``write`` a temporary file beside ``target``, then put it in ``target``'s place: a
    reader never sees half a file. PlanError naming ``what`` when it cannot be written."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        result = write(partial)
        os.replace(partial, target)
    except OSError as error:
        raise PlanError(f"cannot write {what} {target}: {error}; pick a writable path") \
            from error
    finally:
        partial.unlink(missing_ok=True)
    return result


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



def _content(records: pl.DataFrame, field_changes: pl.DataFrame) -> pl.DataFrame:
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

    return pl.concat([stored(records, "record"), stored(field_changes, "field_change")])


def write_plan(path: str | os.PathLike[str], records: pl.DataFrame, field_changes: pl.DataFrame,
               metadata: dict[str, Any], sign: Callable[[str], str] | None) -> Path:
    """Write a plan's rows and metadata to one Parquet file (atomically), with the digest of
    both and, given ``sign``, the workspace's signature of it."""
    target = Path(path)
    content = _content(records, field_changes)
    metadata["content_sha256"] = _digest(metadata, content)
    if sign is not None:
        metadata["signature"] = sign(_signed_text(metadata))
    table = content.to_arrow()
    table = table.replace_schema_metadata(
        (table.schema.metadata or {}) | {METADATA_KEY: json.dumps(metadata).encode()}
    )
    replace_atomically(target, lambda partial: pq.write_table(table, partial), "plan file")
    return target


def _stored_content(source: Path, table: pa.Table) -> pl.DataFrame:
    """The plan table with its stored column types, or why the file is no plan."""
    content = pl.DataFrame(pl.from_arrow(table.replace_schema_metadata(None)))
    expected = _content_columns()
    if content.columns != list(expected):
        raise PlanError(
            f"plan file {source} does not have the plan columns (has {content.columns}): "
            "re-run preview"
        )
    try:
        return content.cast(expected)  # type: ignore[arg-type]
    except pl.exceptions.PolarsError as error:
        raise PlanError(f"plan file {source} has columns of the wrong type: {error}") from error


def _metadata(source: Path, stored: Mapping[str, Any], claimed: Any, signature: Any,
              version: Any) -> PlanMetadata:
    try:
        return PlanMetadata(
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


def read_plan(path: str | os.PathLike[str]) -> tuple[pl.DataFrame, pl.DataFrame, PlanMetadata]:
    """A saved plan's records, field changes and (unverified) metadata, refusing missing,
    corrupt, foreign, outdated or edited files."""
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
    content = _stored_content(source, table)
    claimed = stored.pop("content_sha256", None)
    signature = stored.pop("signature", "")
    if claimed != _digest(stored, content):
        raise PlanError(f"plan file {source} was modified after it was saved: re-run preview")
    metadata = _metadata(source, stored, claimed, signature, version)
    records = content.filter(pl.col("row_type") == "record").select(
        pl.col(n).cast(d) for n, d in RECORD_SCHEMA.items()
    )
    changes = content.filter(pl.col("row_type") == "field_change").select(
        pl.col(n).cast(d) for n, d in FIELD_CHANGE_SCHEMA.items()
    )
    return records, changes, metadata
