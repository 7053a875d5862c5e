"""Scenario 1: the three-way diff of a plan, ours (polars) against pandas and datacompy.

Data: ``size`` coupled pairs x 12 fields, seeded. Each side changes 1% of the pairs: 0.1% of
all pairs conflict (the same field changed to different values on both sides), 0.05% change
different fields on both sides (they merge), the rest change 1-3 fields on one side only.
Values are canonical text already, so the pandas baseline may compare raw strings (it skips
the canonicalization our diff does: that favours the baseline).

Jobs (one process each): ``ours_full`` / ``pandas_full`` / ``datacompy_full`` get complete side
frames (every pair on both sides, as a compare or a first diff after matching sees them);
``ours_changed`` / ``pandas_changed`` get only the changed rows of each side (what an
incremental sync reads) plus the complete base. datacompy compares two frames only: it finds
the pairs whose NAV and CRM rows differ, it cannot say which side changed, what to write where,
or what conflicts; its row is there for scale, and its count check is "pairs that differ".
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nav_crm_ops.engine.diff import DiffField, three_way_diff

from ..harness import Context, JobSkipped, Measurement, proc_status_mb, timed

__all__ = ["FIELDS", "expected_counts", "generate", "measure", "pandas_three_way", "prepare"]

KEY = "pair_id"
FIELDS: tuple[DiffField, ...] = (
    DiffField("name", "bidirectional", "text", case_sensitive=False),
    DiffField("address", "bidirectional"),
    DiffField("city", "bidirectional"),
    DiffField("postal_code", "bidirectional"),
    DiffField("country", "bidirectional"),
    DiffField("phone", "bidirectional"),
    DiffField("email", "bidirectional", "text", case_sensitive=False),
    DiffField("website", "bidirectional", "text", case_sensitive=False),
    DiffField("salesperson", "bidirectional"),
    DiffField("currency", "bidirectional"),
    DiffField("credit_limit", "bidirectional", "number", decimals=2),
    DiffField("blocked", "bidirectional", "bool"),
)
_CONFLICT_FIELDS = tuple(i for i, f in enumerate(FIELDS) if f.kind != "bool")
_CITIES = ("London", "Manchester", "Leeds", "Hamburg", "München", "Amsterdam", "Antwerpen",
           "København", "Stockholm", "Oslo", "Chicago", "Toronto", "Paris", "Bristol")
_COUNTRIES = ("GB", "DE", "NL", "BE", "DK", "SE", "NO", "US", "CA", "FR")
_WORDS = ("Northwind", "Fourth Coffee", "Lucerne", "Trey", "Wide World", "Humongous",
          "Southridge", "Woodgrove", "Tailwind", "VanArsdel", "Fincher", "Harbour")
_SALES = ("AH", "JR", "PS", "HR", "BD")
_CURRENCIES = ("GBP", "EUR", "USD", "DKK", "SEK", "NOK", "CAD")


def _shares(size: int) -> tuple[int, int, int]:
    """(conflicting, merging on both sides, one-side-only) pair counts for ``size`` pairs."""
    conflicts, both = max(1, size // 1000), max(1, size // 2000)
    return conflicts, both, max(1, size // 100 - conflicts - both)


def expected_counts(size: int) -> dict[str, int]:
    """Record actions the generator plants (our diff and the baselines must find these)."""
    conflicts, both, only = _shares(size)
    return {"update_crm": only, "update_nav": only, "update_both": both,
            "conflict": conflicts, "unchanged": size - conflicts - both - 2 * only}


def _pick(rng: np.random.Generator, choices: Sequence[str], size: int) -> pl.Series:
    return pl.Series(np.asarray(choices)[rng.integers(0, len(choices), size)])


def _base(size: int, rng: np.random.Generator) -> pl.DataFrame:
    index = pl.int_range(size, eager=True)
    number = index.cast(pl.Utf8)
    frame = pl.DataFrame({
        KEY: "00000000-0000-4000-8000-" + number.str.zfill(12),
        "__word": _pick(rng, _WORDS, size),
        "__n": number,
        "__street": pl.Series(rng.integers(1, 400, size)).cast(pl.Utf8),
        "city": _pick(rng, _CITIES, size),
        "country": _pick(rng, _COUNTRIES, size),
        "__phone": pl.Series(rng.integers(0, 10_000_000, size)).cast(pl.Utf8).str.zfill(7),
        "__web": pl.Series(rng.random(size) < 0.8),
        "salesperson": _pick(rng, _SALES, size),
        "currency": _pick(rng, _CURRENCIES, size),
        "credit_limit": (pl.Series(rng.integers(0, 200, size)) * 500).cast(pl.Float64)
        .cast(pl.Utf8),
        "blocked": pl.Series(rng.random(size) < 0.005).cast(pl.Utf8).str.to_lowercase(),
    })
    slug = pl.col("__word").str.to_lowercase().str.replace_all(" ", "") + pl.col("__n")
    return frame.select(
        KEY,
        (pl.col("__word") + " Ltd. " + pl.col("__n")).alias("name"),
        (pl.col("__street") + " High Street").alias("address"),
        "city",
        pl.format("PC {}", pl.col("__n").str.slice(0, 4)).alias("postal_code"),
        "country",
        ("+44 20 7" + pl.col("__phone")).alias("phone"),
        ("info@" + slug + ".example").alias("email"),
        pl.when(pl.col("__web")).then("www." + slug + ".example").alias("website"),
        "salesperson",
        "currency",
        "credit_limit",
        "blocked",
    )


def _changed_value(field: DiffField, column: pl.Expr, side: str) -> pl.Expr:
    """A new canonical value; the two sides never pick the same one."""
    if field.kind == "number":
        step = 1.0 if side == "nav" else 2.0
        return (column.cast(pl.Float64) + step).cast(pl.Utf8)
    if field.kind == "bool":
        return pl.when(column == "true").then(pl.lit("false")).otherwise(pl.lit("true"))
    return column.fill_null("") + f" ({side} edit)"


def _apply_cells(frame: pl.DataFrame, cells: dict[int, np.ndarray], side: str) -> pl.DataFrame:
    """``frame`` with the cells ``{field index: row positions}`` changed for ``side``."""
    position = pl.int_range(pl.len(), dtype=pl.Int64)
    changes = []
    for field_index, rows in cells.items():
        field = FIELDS[field_index]
        hit = position.is_in(pl.Series(rows, dtype=pl.Int64))
        changes.append(pl.when(hit).then(_changed_value(field, pl.col(field.name), side))
                       .otherwise(pl.col(field.name)).alias(field.name))
    return frame.with_columns(changes) if changes else frame


def generate(size: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(nav, crm, base) complete frames in shuffled row order; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    base = _base(size, rng)
    conflicts, both, only = _shares(size)
    order = rng.permutation(size)
    conflict_rows = order[:conflicts]
    both_rows = order[conflicts:conflicts + both]
    nav_rows = order[conflicts + both:conflicts + both + only]
    crm_rows = order[conflicts + both + only:conflicts + both + 2 * only]
    nav_cells: dict[int, list[np.ndarray]] = {}
    crm_cells: dict[int, list[np.ndarray]] = {}

    def plant(target: dict[int, list[np.ndarray]], rows: np.ndarray, fields: np.ndarray) -> None:
        for field_index in np.unique(fields):
            target.setdefault(int(field_index), []).append(rows[fields == field_index])

    shared = np.asarray(_CONFLICT_FIELDS)[rng.integers(0, len(_CONFLICT_FIELDS), conflicts)]
    plant(nav_cells, conflict_rows, shared)
    plant(crm_cells, conflict_rows, shared)
    first = rng.integers(0, len(FIELDS), both)
    second = (first + rng.integers(1, len(FIELDS), both)) % len(FIELDS)
    plant(nav_cells, both_rows, first)
    plant(crm_cells, both_rows, second)
    for target, rows in ((nav_cells, nav_rows), (crm_cells, crm_rows)):
        for share in (1.0, 0.5, 0.25):
            chosen = rows[rng.random(len(rows)) < share]
            plant(target, chosen, rng.integers(0, len(FIELDS), len(chosen)))

    def merged(cells: dict[int, list[np.ndarray]]) -> dict[int, np.ndarray]:
        return {f: np.unique(np.concatenate(parts)) for f, parts in cells.items()}

    nav = _apply_cells(base, merged(nav_cells), "nav")
    crm = _apply_cells(base, merged(crm_cells), "crm")
    return (nav.sample(fraction=1.0, shuffle=True, seed=seed + 1),
            crm.sample(fraction=1.0, shuffle=True, seed=seed + 2),
            base.sample(fraction=1.0, shuffle=True, seed=seed + 3))


def _changed_only(side: pl.DataFrame, base: pl.DataFrame) -> pl.DataFrame:
    names = [f.name for f in FIELDS]
    return side.join(base, on=[KEY, *names], how="anti", nulls_equal=True)


def prepare(ctx: Context) -> None:
    """Write the complete and the changed-only frames as parquet under ``ctx.workdir``."""
    nav, crm, base = generate(ctx.size, ctx.seed)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("nav", nav), ("crm", crm), ("base", base),
                        ("nav_changed", _changed_only(nav, base)),
                        ("crm_changed", _changed_only(crm, base))):
        frame.write_parquet(ctx.workdir / f"{name}.parquet")


def _our_counts(nav: pl.DataFrame, crm: pl.DataFrame, base: pl.DataFrame) -> dict[str, int]:
    result = three_way_diff(nav, crm, base, FIELDS)
    counts = result.counts()
    counts["field_changes"] = result.field_changes.height
    counts["conflict_fields"] = int(result.field_changes.get_column("conflict").sum())
    return counts


def pandas_three_way(nav: Any, crm: Any, base: Any) -> dict[str, int]:
    """The same decisions with pandas merges (all fields bidirectional, conflicts held).

    A pair absent from a side counts as unchanged on that side; empty and missing are equal;
    case-insensitive fields compare lower-cased. Returns the same counts as our diff.
    """
    import pandas as pd

    names = [f.name for f in FIELDS]
    in_nav = nav[[KEY]].assign(_in_nav=True)
    in_crm = crm[[KEY]].assign(_in_crm=True)
    candidates = in_nav.merge(in_crm, on=KEY, how="outer")
    joined = (candidates
              .merge(nav.rename(columns={n: f"n_{n}" for n in names}), on=KEY, how="left")
              .merge(crm.rename(columns={n: f"c_{n}" for n in names}), on=KEY, how="left")
              .merge(base.rename(columns={n: f"b_{n}" for n in names}), on=KEY, how="left"))
    has_nav = joined["_in_nav"].eq(True).to_numpy()
    has_crm = joined["_in_crm"].eq(True).to_numpy()
    rows = len(joined)
    to_crm = np.zeros((rows, len(names)), dtype=bool)
    to_nav = np.zeros((rows, len(names)), dtype=bool)
    conflict = np.zeros((rows, len(names)), dtype=bool)
    changed_any = np.zeros((rows, len(names)), dtype=bool)
    for column, field in enumerate(FIELDS):
        b = joined[f"b_{field.name}"].fillna("")
        n = joined[f"n_{field.name}"].fillna("").where(has_nav, b)
        c = joined[f"c_{field.name}"].fillna("").where(has_crm, b)
        if not field.case_sensitive:
            b, n, c = b.str.lower(), n.str.lower(), c.str.lower()
        changed_nav = (n != b).to_numpy()
        changed_crm = (c != b).to_numpy()
        conflict[:, column] = changed_nav & changed_crm & (n != c).to_numpy()
        to_crm[:, column] = changed_nav & ~changed_crm
        to_nav[:, column] = changed_crm & ~changed_nav
        changed_any[:, column] = changed_nav | changed_crm
    held = conflict.any(axis=1)
    writes_crm = to_crm.any(axis=1) & ~held
    writes_nav = to_nav.any(axis=1) & ~held
    actions = pd.Series(np.select(
        [held, writes_crm & writes_nav, writes_crm, writes_nav],
        ["conflict", "update_both", "update_crm", "update_nav"], default="unchanged"))
    found = actions.value_counts().to_dict()
    counts = {a: int(found.get(a, 0)) for a in
              ("update_crm", "update_nav", "update_both", "unchanged", "conflict")}
    counts["unchanged"] += len(base) - rows
    counts["field_changes"] = int(changed_any.sum())
    counts["conflict_fields"] = int(conflict.sum())
    return counts


def _unavoidable_steps(nav: pl.DataFrame, crm: pl.DataFrame, base: pl.DataFrame, full: bool,
                       repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of steps any exact diff with our outputs must take, timed
    alone after the diff (what bounds its figure): ordering the records of every base pair by
    key (polars' own sort of the base keys), and, for complete side frames, finding each side
    row's base row by key and comparing every cell with it once (a polars string-key join,
    then one ``eq_missing`` per field against the base column gathered into the side's order).
    """
    names = [f.name for f in FIELDS]

    def align_and_compare() -> int:
        differing = 0
        for side in (nav, crm):
            rows = side.select(KEY).join(base.select(KEY).with_row_index("__row"), on=KEY,
                                         how="left", maintain_order="left").get_column("__row")
            for name in names:
                same = side.get_column(name).eq_missing(base.get_column(name).rechunk()
                                                        .gather(rows))
                differing += same.len() - int(same.sum())
        return differing

    steps: dict[str, Callable[[], object]] = {
        "sort_base_keys_alone_s": lambda: base.get_column(KEY).sort()}
    if full:
        steps["align_and_compare_alone_s"] = align_and_compare
    return {name: timed(step, repeats)[1].best_s for name, step in steps.items()}


def _datacompy_counts(nav: Any, crm: Any) -> dict[str, int]:
    import datacompy

    compare = datacompy.PandasCompare(nav, crm, join_columns=KEY)
    differing = compare.intersect_rows.shape[0] - compare.count_matching_rows()
    return {"pairs_differing": int(differing)}


def _read(workdir: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(workdir / f"{name}.parquet")


def measure(job: str, ctx: Context) -> list[Measurement]:
    """Time one job; its counts are checked against the planted ones by the runner."""
    full = job.endswith("_full")
    sides = ("nav", "crm") if full else ("nav_changed", "crm_changed")
    shape = "complete side frames" if full else "changed rows only + complete base"
    baseline = "pandas_full" if full else "pandas_changed"
    if job.startswith("ours"):
        nav, crm, base = (_read(ctx.workdir, sides[0]), _read(ctx.workdir, sides[1]),
                          _read(ctx.workdir, "base"))
        inputs_mb = proc_status_mb("VmRSS")
        _, timing = timed(lambda: three_way_diff(nav, crm, base, FIELDS), ctx.repeats)
        peak_of_the_diff_mb = proc_status_mb("VmHWM")
        floors = _unavoidable_steps(nav, crm, base, full, ctx.repeats)
        counts = _our_counts(nav, crm, base)
        counts["pairs_differing"] = ctx.size - counts["unchanged"]
        expected = expected_counts(ctx.size)
        expected["pairs_differing"] = ctx.size - expected["unchanged"]
        return [Measurement(job, f"ours: three_way_diff (polars), {shape}", "ours", baseline,
                            also_compare=("datacompy_full",) if full else (),
                            records=ctx.size, counts=counts, expected=expected,
                            figures={"rss_after_loading_inputs_mb": inputs_mb,
                                     "peak_rss_of_the_timed_runs_mb": peak_of_the_diff_mb,
                                     **floors},
                            target="<= 3 s, <= 1.5 GB, >= 10x pandas (same inputs)",
                            limits={"wall_s_max": 3.0, "peak_rss_mb_max": 1536.0,
                                    "ratio_min": 10.0},
                            notes="canonicalizes every field, decides per field, "
                                  "builds records + field_changes + new_base").with_timing(timing)]
    if job.startswith("datacompy") and importlib.util.find_spec("datacompy") is None:
        raise JobSkipped("datacompy is not installed; install it without its pins on polars "
                         "< 1.45 and pandas < 3.1: pip install --no-deps datacompy ordered-set")
    import pandas as pd

    nav_pd, crm_pd, base_pd = (pd.read_parquet(ctx.workdir / f"{sides[0]}.parquet"),
                               pd.read_parquet(ctx.workdir / f"{sides[1]}.parquet"),
                               pd.read_parquet(ctx.workdir / "base.parquet"))
    inputs_mb = proc_status_mb("VmRSS")
    if job.startswith("pandas"):
        counts, timing = timed(lambda: pandas_three_way(nav_pd, crm_pd, base_pd), ctx.repeats)
        return [Measurement(job, f"baseline: same three-way diff with pandas merges, {shape}",
                            "baseline", job, records=ctx.size, counts=counts,
                            figures={"rss_after_loading_inputs_mb": inputs_mb},
                            notes="raw string compare (inputs already canonical); counts only, "
                                  "no field_changes/new_base frames").with_timing(timing)]
    counts, timing = timed(lambda: _datacompy_counts(nav_pd, crm_pd), ctx.repeats)
    return [Measurement(job, "baseline: datacompy PandasCompare NAV vs CRM (two-way)",
                        "baseline", job, records=ctx.size, counts=counts,
                        figures={"rss_after_loading_inputs_mb": inputs_mb},
                        notes="two-way compare: finds differing pairs only, no base, no "
                              "direction, no conflicts (not the same work as ours)"
                        ).with_timing(timing)]
