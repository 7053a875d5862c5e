"""PreviewPanel: look at what a sync would do, choose the records, then apply exactly those.

Why: people want to look before they sync. The panel runs ``ws.preview`` (with progress and
Cancel), shows counts by action and direction with a chart, a record table filterable by
action, field and text — both sides of each record named by number and name — the field diff
of the selected record (old -> new, which side changed, conflicts with both values and the
policy's choice), resolves a held conflict record by record ("Keep BC value" / "Keep CRM
value", each saying what it writes: ``ws.conflict_choices`` / ``ws.resolve_conflict``), lets
people exclude or include records (``plan.exclude`` / ``plan.include`` return new plans),
save the plan, and apply the included records with ``ws.apply``. All sync logic stays in the
engine. Above it, :class:`.approvals.ApprovalsSection` lists the plans approval-mode jobs saved;
one is shown here read-only to review (the job applies the saved file, not this panel).

Usage in a notebook::

    from nav_crm_ops import open_workspace
    from nav_crm_ops.widgets import PreviewPanel
    panel = PreviewPanel(open_workspace("."))
    panel.widget
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import ipywidgets as widgets
import polars as pl

from ..engine.conflicts import ConflictChoice
from ..engine.labels import label_expr
from ..engine.plan import PLAN_ACTIONS, Plan
from ..engine.progress import CancelToken, Progress
from ..engine.report import SyncReport
from ..engine.vocabulary import FLAGGED, Resolution, Side, shown_change
from .approvals import (
    ApprovalsSection,
    ApprovalsWorkspace,
    review_banner_html,
    review_only_text,
)
from .charts import ACTION_MEANINGS, Meaning, bar_chart_html
from .dashboard_links import next_steps_html
from .errors import ActionButton, ErrorArea, guarded
from .panel import Panel
from .progress import ProgressPanel
from .protocols import PreviewWorkspace, mapping_names
from .table import ALL, DataTable

if TYPE_CHECKING:
    from ..store.approvals import Approval

__all__ = ["PreviewPanel", "field_diff_html"]

ROW_KEY = "row_key"
_SEPARATOR = "|"
_RESOLUTION_WORDS = {
    "none": "no conflict",
    "nav_wins": "policy: NAV/BC wins",
    "crm_wins": "policy: CRM wins",
    "held": "held: a person must decide (record not written)",
    "same_value": "both sides changed to the same value",
    "blocked_by_direction": "not written: the mapping's direction does not allow it",
}
_WRITES: dict[str, str] = {Side.CRM: "write CRM", Side.NAV: "write NAV/BC"}
"""How the diff names the side a change is written to."""


def row_key(mapping: str, record_id: str) -> str:
    """The table key of one plan record (record ids are unique within a mapping only)."""
    return f"{mapping}{_SEPARATOR}{record_id}"


def field_diff_html(changes: pl.DataFrame, *, only_changes: bool = True,
                    resolved: str = "") -> str:
    """The field diff of one record as an HTML table; conflicts highlighted with both values
    and the resolution the conflict policy chose (or ``resolved``: how a person resolved a
    held one)."""
    rows = changes
    if only_changes:
        rows = rows.filter(shown_change() | (pl.col("resolution").cast(pl.Utf8)
                                             == Resolution.BLOCKED_BY_DIRECTION))
    if rows.height == 0:
        return "<i>no field changes to write for this record</i>"
    body = []
    for change in rows.iter_rows(named=True):
        conflict = bool(change["conflict"])
        side = change["changed_side"] or ""
        old = _old_value(change)
        resolution = str(change["resolution"] or "none")
        style = "background:#fdecea;font-weight:bold" if conflict else ""
        values = (f"NAV/BC: {_cell(change['nav_value'])}<br>CRM: {_cell(change['crm_value'])}"
                  if conflict else f"{_cell(old)} → {_cell(change['new_value'])}")
        target = _WRITES.get(str(change["target"]), "—")
        label = "CONFLICT · " if conflict else ""
        body.append(
            f"<tr style='{style}'><td>{html.escape(change['field'])}</td>"
            f"<td>{_cell(change['base_value'])}</td><td>{values}</td>"
            f"<td>{html.escape({'nav': 'NAV/BC', 'crm': 'CRM', 'both': 'both'}.get(side, side))}"
            f"</td><td>{target}</td>"
            f"<td>{html.escape(label + _RESOLUTION_WORDS.get(resolution, resolution))}"
            f"{_resolution_tail(change, conflict, resolution, resolved)}</td></tr>")
    return ("<table class='nav-crm-ops-diff'><thead><tr><th>field</th><th>last synced</th>"
            "<th>old → new</th><th>changed on</th><th>writes</th><th>resolution</th></tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>")


def _resolution_tail(change: dict[str, Any], conflict: bool, resolution: str,
                     resolved: str) -> str:
    """What a conflict's resolution writes (never "→ empty" for a held one: nothing is
    written until a person chooses)."""
    if not conflict:
        return ""
    if resolution == Resolution.HELD:
        return (f" — {html.escape(resolved)}" if resolved
                else " — choose 'Keep BC value' or 'Keep CRM value' below")
    target = _WRITES.get(str(change["target"]))
    return f" → {target}: {_cell(change['new_value'])}" if target else ""


def _old_value(change: dict[str, Any]) -> Any:
    """The value a write replaces: the target side's current value; the last synced value
    when the change is written nowhere (``target`` ``none``)."""
    target = str(change["target"])
    if target in (Side.NAV, Side.CRM):
        return change[Side(target).column("value")]
    return change["base_value"]


def _cell(value: Any) -> str:
    return "<i>empty</i>" if value is None or value == "" else html.escape(str(value))


def _side_label(side: Side, columns: Sequence[str]) -> pl.Expr:
    """One side's record as people name it (number and name); "(new)" for a record the plan
    creates there, "(none)" where an uncoupled record has no partner yet; the id only when
    nothing else is known."""
    named = label_expr(side.column("key"), side.column("name"))
    other = label_expr(side.other.column("key"), side.other.column("name"))
    created = pl.col("action").cast(pl.Utf8) == f"insert_{side.value}"
    uncoupled = pl.lit(value=False)
    if all(c in columns for c in ("nav_coupled_to", "crm_coupled_to")):
        uncoupled = pl.col("nav_coupled_to").is_null() & pl.col("crm_coupled_to").is_null()
    return (pl.when(named.is_not_null()).then(named)
            .when(created).then(pl.lit("(new)"))
            .when(uncoupled & other.is_not_null()).then(pl.lit("(none)"))
            .otherwise(pl.col(side.column("id")).cast(pl.Utf8)))


def _choices_html(choices: Sequence[ConflictChoice]) -> str:
    """What each way of resolving a held conflict writes, field by field."""
    items = "".join(f"<li>{html.escape(choice.text())}</li>" for choice in choices)
    return ("<div class='nav-crm-ops-resolve' style='background:#fff8e1;padding:6px'>"
            "<b>Held conflict: nothing is written until you choose.</b>"
            f"<ul>{items}</ul></div>")


def _row_style(row: dict[str, Any]) -> str:
    if row.get("included") == "false":
        return "color:#9e9e9e;text-decoration:line-through"
    if row.get("action") in FLAGGED:
        return "background:#fdecea"
    return ""


class PreviewPanel(Panel):
    """See the module docstring. Child widgets are attributes so tests drive them as people
    would: ``mapping_picker.value``, ``preview_button.click()``, ``table.select(keys)``,
    ``exclude_button.click()``, ``apply_button.click()``; ``progress.wait()`` waits for the
    background work."""

    def __init__(self, workspace: PreviewWorkspace, *, plans_dir: str | Path | None = None,
                 page_size: int = 25) -> None:
        self.workspace = workspace
        self.plan: Plan | None = None
        self.report: SyncReport | None = None
        self.saved_path: Path | None = None
        self.errors = ErrorArea()
        self.progress = ProgressPanel(self.errors)
        root = getattr(getattr(workspace, "config", None), "root", None)
        self.plans_dir = Path(plans_dir) if plans_dir is not None else (
            Path(root) / "plans" if root is not None else Path.cwd() / "plans")
        self._build_review(page_size)
        self._build_actions()
        self.reviewing: Approval | None = None
        self.approvals = ApprovalsSection(cast(ApprovalsWorkspace, workspace),
                                          self.show_approval_plan)
        self._connect()
        self.widget = self._layout()

    def _build_review(self, page_size: int) -> None:
        """The mapping picker, the summary, the record table with its filters, the diff."""
        names = mapping_names(self.workspace)
        self.mapping_picker = widgets.SelectMultiple(options=names, value=(),
                                                     description="Mappings", rows=len(names))
        self.preview_button = ActionButton(description="Preview", button_style="primary",
                                           icon="search")
        self.summary = widgets.HTML(value="")
        self.review_banner = widgets.HTML(value="")
        self.field_filter = widgets.Dropdown(options=[ALL], value=ALL, description="Field")
        self.table = DataTable(
            key_column=ROW_KEY, label_columns=("mapping", "action", "nav_record", "crm_record"),
            choice_columns=("mapping", "action", "direction", "included"),
            search_columns=("record_id", "nav_id", "crm_id", "nav_record", "crm_record",
                            "message", "fields"),
            columns=("mapping", "action", "direction", "nav_record", "crm_record", "fields",
                     "message", "included"),
            page_size=page_size, row_style=_row_style, errors=self.errors)
        self.show_all_fields = widgets.Checkbox(value=False,
                                                description="show unchanged fields too")
        self.diff = widgets.HTML(value="<i>select a record to see its field diff</i>")
        self.choices: tuple[ConflictChoice, ...] = ()
        self.resolved: dict[str, str] = {}
        self.keep_nav_button = ActionButton(description="Keep BC value", icon="arrow-right",
                                            button_style="warning")
        self.keep_crm_button = ActionButton(description="Keep CRM value", icon="arrow-left",
                                            button_style="warning")
        self.resolve_box = widgets.HBox([self.keep_nav_button, self.keep_crm_button],
                                        layout=widgets.Layout(display="none"))

    def _build_actions(self) -> None:
        """Include/exclude, save/load the plan file, apply the included records."""
        self.include_button = ActionButton(description="Include selected", icon="check")
        self.exclude_button = ActionButton(description="Exclude selected", icon="times")
        self.include_shown_button = ActionButton(description="Include all shown")
        self.exclude_shown_button = ActionButton(description="Exclude all shown")
        self.plan_path = widgets.Text(value="", placeholder=str(self.plans_dir / "plan.parquet"),
                                      description="Plan file")
        self.save_button = ActionButton(description="Save plan", icon="save")
        self.load_button = ActionButton(description="Load plan", icon="folder-open")
        self.apply_button = ActionButton(description="Apply included records",
                                         button_style="danger", icon="play", disabled=True,
                                         layout=widgets.Layout(width="auto"))
        self.result = widgets.HTML(value="")

    def _connect(self) -> None:
        """Wire every control to its action; failures show in the error area (``guarded``)."""
        self.preview_button.on_click(guarded(self.errors, "start the preview")(
            lambda _: self.run_preview()))
        self.field_filter.observe(guarded(self.errors, "filter by field")(
            lambda _: self._apply_field_filter()), names="value")
        self.table.on_select(guarded(self.errors, "show the field diff")(
            lambda _: self._show_diff()))
        self.show_all_fields.observe(guarded(self.errors, "show the field diff")(
            lambda _: self._show_diff()), names="value")
        self.keep_nav_button.on_click(guarded(self.errors, "resolve the conflict")(
            lambda _: self.resolve_conflict(Side.NAV)))
        self.keep_crm_button.on_click(guarded(self.errors, "resolve the conflict")(
            lambda _: self.resolve_conflict(Side.CRM)))
        self.include_button.on_click(guarded(self.errors, "include the selected records")(
            lambda _: self.set_included(self.table.selected_keys, True)))
        self.exclude_button.on_click(guarded(self.errors, "exclude the selected records")(
            lambda _: self.set_included(self.table.selected_keys, False)))
        self.include_shown_button.on_click(guarded(self.errors, "include the shown records")(
            lambda _: self.set_included(self._shown_keys(), True)))
        self.exclude_shown_button.on_click(guarded(self.errors, "exclude the shown records")(
            lambda _: self.set_included(self._shown_keys(), False)))
        self.save_button.on_click(guarded(self.errors, "save the plan")(
            lambda _: self.save_plan()))
        self.load_button.on_click(guarded(self.errors, "load the plan")(
            lambda _: self.load_plan()))
        self.apply_button.on_click(guarded(self.errors, "start applying the plan")(
            lambda _: self.run_apply()))

    def _layout(self) -> widgets.VBox:
        """Top to bottom in the order people work: preview, review, choose, save, apply."""
        return widgets.VBox([
            widgets.HTML("<h3>Preview changes</h3>"),
            self.approvals.widget,
            widgets.HBox([self.mapping_picker, self.preview_button]),
            self.progress.widget,
            self.errors.widget,
            self.review_banner,
            self.summary,
            widgets.HBox([self.field_filter]),
            self.table.widget,
            widgets.HBox([self.include_button, self.exclude_button, self.include_shown_button,
                          self.exclude_shown_button]),
            self.show_all_fields,
            self.diff,
            self.resolve_box,
            widgets.HBox([self.plan_path, self.save_button, self.load_button]),
            self.apply_button,
            self.result,
        ])

    # -- preview ---------------------------------------------------------------------------------
    def show_mapping(self, name: str | None) -> None:
        """Preselect mapping ``name`` (as a link to this dashboard asks: any case); a name the
        workspace does not have selects nothing."""
        wanted = {str(o).upper(): o for o in self.mapping_picker.options}.get(
            (name or "").strip().upper())
        if wanted is not None:
            self.mapping_picker.value = (wanted,)

    @property
    def selected_mappings(self) -> list[str] | None:
        """The chosen mappings (None: all of them)."""
        return list(self.mapping_picker.value) or None

    def run_preview(self) -> None:
        """Start ``ws.preview`` for the chosen mappings in the background."""
        chosen = self.selected_mappings
        label = ", ".join(chosen) if chosen else "all mappings"

        def work(progress: Progress, cancel: CancelToken) -> Plan:
            return self.workspace.preview(chosen, progress=progress, cancel=cancel)

        self.apply_button.disabled = True
        self.result.value = ""
        self.progress.start(f"preview {label}", work, self.show_plan,
                            mappings=self.workspace.mappings.dependency_order(chosen))

    def show_plan(self, plan: Plan) -> None:
        """Show a plan (from a preview or a file): summary, table, field filter."""
        self.plan = plan
        self.report = None
        self.saved_path = None
        self.reviewing = None
        self.review_banner.value = ""
        for button in self._editing_buttons:
            button.disabled = False
        self.resolved = {}
        self.choices = ()
        self.resolve_box.layout.display = "none"
        fields = sorted(plan.shown_changes().get_column("field").unique().to_list())
        self.field_filter.options = [ALL, *fields]
        self.field_filter.value = ALL
        self.table.set_frame(self._records_frame(plan))
        self._show_summary()
        self.diff.value = "<i>select a record to see its field diff</i>"
        self.apply_button.disabled = not bool(plan.records.get_column("included").any())
        if not self.plan_path.value:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
            self.plan_path.value = str(self.plans_dir / f"plan-{stamp}.parquet")

    @property
    def _editing_buttons(self) -> tuple[widgets.Button, ...]:
        return (self.include_button, self.exclude_button, self.include_shown_button,
                self.exclude_shown_button, self.apply_button)

    def show_approval_plan(self, plan: Plan, approval: Approval) -> None:
        """Show the plan of ``approval`` to inspect, read-only: the job applies the saved file,
        so excluding records, resolving conflicts or applying it here would bypass the
        approval (the section above decides)."""
        self.show_plan(plan)
        self.reviewing = approval
        for button in self._editing_buttons:
            button.disabled = True
        self.plan_path.value = ""
        self.review_banner.value = review_banner_html(approval)

    def _refuse_in_review(self) -> bool:
        """True (and says why) while a plan waiting for approval is shown."""
        if self.reviewing is not None:
            self.errors.show_warning(review_only_text(self.reviewing))
        return self.reviewing is not None

    def _records_frame(self, plan: Plan | pl.DataFrame, *, with_fields: bool = True
                       ) -> pl.DataFrame:
        """The table's rows: plan records with both sides named, the changed fields, and
        "resolved: …" as the message of conflicts resolved here."""
        records = plan if isinstance(plan, pl.DataFrame) else plan.records
        if with_fields and isinstance(plan, Plan):
            changed = (plan.shown_changes()
                       .group_by("mapping", "record_id", maintain_order=True)
                       .agg(pl.col("field").str.join(", ").alias("fields")))
            records = records.join(changed, on=["mapping", "record_id"], how="left",
                                   maintain_order="left")
        resolved = pl.concat_str("mapping", pl.lit(_SEPARATOR), "record_id").replace_strict(
            self.resolved, default=None, return_dtype=pl.Utf8)
        return (records
                .with_columns(pl.coalesce(resolved, pl.col("message")).alias("message"))
                .with_columns(pl.concat_str("mapping", pl.lit(_SEPARATOR), "record_id")
                              .alias(ROW_KEY),
                              _side_label(Side.NAV, records.columns).alias("nav_record"),
                              _side_label(Side.CRM, records.columns).alias("crm_record"),
                              pl.col("included").cast(pl.Utf8).alias("included"),
                              pl.col("action").cast(pl.Utf8),
                              pl.col("direction").cast(pl.Utf8)))

    def _show_summary(self) -> None:
        plan = self.plan
        if plan is None:
            return
        summary = (plan.records.group_by("action", "direction")
                   .agg(pl.len().alias("records"), pl.col("included").sum().alias("included"))
                   .sort("action", "direction"))
        rows = "".join(
            f"<tr><td>{html.escape(str(a))}</td><td>{html.escape(str(d))}</td>"
            f"<td style='text-align:right'>{n}</td><td style='text-align:right'>{i}</td>"
            f"<td>{html.escape(PLAN_ACTIONS.get(str(a), ''))}</td></tr>"
            for a, d, n, i in summary.iter_rows())
        chart = bar_chart_html([(f"{a} ({d})", float(i),
                                 ACTION_MEANINGS.get(str(a), Meaning.MEASURE))
                                for a, d, _, i in summary.iter_rows()],
                               title="included records by action (direction)")
        included = int(plan.records.get_column("included").sum())
        self.summary.value = (
            f"<p>{plan.records.height} records in {len(plan.metadata.mappings)} mapping(s), "
            f"{included} included, {plan.field_changes.height} field values compared.</p>"
            "<div style='display:flex;gap:24px'><table><thead><tr><th>action</th>"
            "<th>direction</th><th>records</th><th>included</th><th>meaning</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{chart}</div>")

    def _apply_field_filter(self) -> None:
        plan = self.plan
        field = self.field_filter.value
        if plan is None or field == ALL:
            self.table.set_filter("field", None)
            return
        keys = (plan.shown_changes()
                .filter(pl.col("field") == field)
                .select(pl.concat_str("mapping", pl.lit(_SEPARATOR), "record_id"))
                .to_series().to_list())
        self.table.set_filter("field", pl.col(ROW_KEY).is_in(keys))

    # -- selection, diff, include/exclude -----------------------------------------------------------
    def _show_diff(self) -> None:
        plan = self.plan
        keys = self.table.selected_keys
        if plan is None or not keys:
            self.diff.value = "<i>select a record to see its field diff</i>"
            self.choices = ()
            self.resolve_box.layout.display = "none"
            return
        mapping, record_id = str(keys[0]).split(_SEPARATOR, 1)
        record = plan.records.filter((pl.col("mapping") == mapping)
                                     & (pl.col("record_id") == record_id)).row(0, named=True)
        changes = plan.field_changes.filter((pl.col("mapping") == mapping)
                                            & (pl.col("record_id") == record_id))
        names = self._records_frame(plan.records.filter(
            (pl.col("mapping") == mapping) & (pl.col("record_id") == record_id)),
            with_fields=False).row(0, named=True)
        message = self.resolved.get(str(keys[0])) or record["message"]
        heading = (f"<p><b>{html.escape(mapping)}</b> NAV/BC "
                   f"<span title='id {html.escape(str(record['nav_id']), quote=True)}'>"
                   f"{_cell(names['nav_record'])}</span> ↔ CRM "
                   f"<span title='id {html.escape(str(record['crm_id']), quote=True)}'>"
                   f"{_cell(names['crm_record'])}</span>: "
                   f"<b>{html.escape(str(record['action']))}</b>"
                   f" {html.escape(PLAN_ACTIONS.get(str(record['action']), ''))}"
                   f"{'' if record['included'] else ' <b>(excluded)</b>'}</p>"
                   + (f"<pre class='nav-crm-ops-message' style='white-space:pre-wrap'>"
                      f"{html.escape(message)}</pre>" if message else ""))
        more = f"<p><i>{len(keys) - 1} more selected</i></p>" if len(keys) > 1 else ""
        self._offer_choices(record, mapping, record_id, str(keys[0]))
        self.diff.value = heading + field_diff_html(
            changes, only_changes=not self.show_all_fields.value,
            resolved=self.resolved.get(str(keys[0]), "")) + more + (
            _choices_html(self.choices) if self.choices else "")

    def _offer_choices(self, record: dict[str, Any], mapping: str, record_id: str,
                       key: str) -> None:
        """The Keep BC / Keep CRM buttons for a held conflict not resolved yet."""
        plan = self.plan
        held = (str(record["action"]) == "conflict" and key not in self.resolved
                and self.reviewing is None)
        self.choices = (self.workspace.conflict_choices(plan, mapping, record_id)
                        if held and plan is not None else ())
        kept = {choice.keep for choice in self.choices}
        self.keep_nav_button.disabled = Side.NAV not in kept
        self.keep_crm_button.disabled = Side.CRM not in kept
        self.resolve_box.layout.display = "flex" if self.choices else "none"

    def resolve_conflict(self, keep: Side) -> None:
        """Resolve the selected held conflict keeping ``keep``'s values (background); the
        record leaves the plan (it is written now) and its outcome is shown."""
        choice = next((c for c in self.choices if c.keep is keep), None)
        if choice is None or self.plan is None:
            self.errors.show_info("Select a held conflict (action 'conflict') first.")
            return

        def work(progress: Progress, _cancel: CancelToken) -> SyncReport:
            return self.workspace.resolve_conflict(choice, progress=progress)

        def done(report: SyncReport) -> None:
            self.report = report
            key = row_key(choice.mapping, choice.record_id)
            self.resolved[key] = (f"resolved: {choice.title.lower()} — "
                                  f"{report.outcome_label()}")
            if self.plan is not None:
                self.plan = self.plan.exclude([choice.record_id], mapping=choice.mapping)
                self.table.set_frame(self._records_frame(self.plan), keep_page=True)
                self.table.select_present([key])
                self._show_summary()
            self._show_diff()
            self.result.value = (f"<h4>Conflict {html.escape(choice.record)}: "
                                 f"{html.escape(choice.title.lower())}</h4>"
                                 f"<p>{html.escape(choice.text())}</p>{report._repr_html_()}")

        self.progress.start(f"{choice.title.lower()} for {choice.record}", work, done)

    def _shown_keys(self) -> list[str]:
        return [str(k) for k in self.table.view.get_column(ROW_KEY).to_list()]

    def set_included(self, keys: Sequence[str], included: bool) -> None:
        """Include or exclude records by table key (``mapping|record_id``)."""
        plan = self.plan
        if plan is None:
            self.errors.show_info("Run a preview first.")
            return
        if self._refuse_in_review():
            return
        if not keys:
            self.errors.show_info("Select one or more records in the table first.")
            return
        by_mapping: dict[str, list[str]] = {}
        for key in keys:
            mapping, record_id = str(key).split(_SEPARATOR, 1)
            by_mapping.setdefault(mapping, []).append(record_id)
        for mapping, ids in by_mapping.items():
            plan = plan.include(ids, mapping=mapping) if included else \
                plan.exclude(ids, mapping=mapping)
        self.plan = plan
        selected = self.table.selected_keys
        self.table.set_frame(self._records_frame(plan), keep_page=True)
        self.table.select_present(selected)
        self._show_summary()
        self.apply_button.disabled = not bool(plan.records.get_column("included").any())
        self.errors.show_info(f"{len(keys)} record(s) {'included' if included else 'excluded'}; "
                              f"{int(plan.records.get_column('included').sum())} of "
                              f"{plan.records.height} will be applied.")

    # -- save, load, apply -------------------------------------------------------------------------
    def save_plan(self) -> Path | None:
        """Save the current plan (with its include/exclude choices) to the plan file."""
        if self.plan is None:
            self.errors.show_info("Run a preview first; there is no plan to save.")
            return None
        path = Path(self.plan_path.value.strip() or self.plans_dir / "plan.parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.saved_path = self.workspace.save_plan(self.plan, path)
        self.errors.show_info(f"Plan saved to {self.saved_path}.")
        return self.saved_path

    def load_plan(self) -> None:
        """Load the plan file named in ``plan_path`` (refused if edited since it was saved, or
        made by another workspace)."""
        path = Path(self.plan_path.value.strip())
        self.show_plan(self.workspace.load_plan(path))
        self.plan_path.value = str(path)
        self.errors.show_info(f"Plan loaded from {path}.")

    def run_apply(self) -> None:
        """Apply the included records of the current plan in the background."""
        plan = self.plan
        if plan is None:
            self.errors.show_info("Run a preview first; there is nothing to apply.")
            return
        if self._refuse_in_review():
            return

        def work(progress: Progress, cancel: CancelToken) -> SyncReport:
            return self.workspace.apply(plan, progress=progress, cancel=cancel,
                                        job_name="preview notebook")

        self.apply_button.disabled = True
        self.progress.start(f"apply plan {plan.metadata.plan_id}", work, self._show_report)

    def _show_report(self, report: SyncReport) -> None:
        self.report = report
        self.result.value = f"<h4>Result</h4>{report._repr_html_()}{next_steps_html(report)}"
