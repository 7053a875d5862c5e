"""The mappings of a workspace as one validated set: the packaged defaults merged with the
workspace's override files, checked together and ordered by their dependencies.

Why as a set: a mapping on its own cannot tell whether the mappings it depends on or looks
up through exist, nor whether the dependencies form a cycle; the set can, and it refuses to
exist otherwise, so the engine never meets a dangling reference mid-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from ...config import ErpProfile, WorkspaceConfig
from ...exceptions import ConfigError, MappingError
from .companies import company_scoped
from .entries import for_profile, overlay, read_entries
from .messages import pydantic_message
from .specs import FieldMapping
from .table import TableMapping

__all__ = ["BC_ONLINE", "RECOMMENDED_ORDER", "MappingSet"]

BC_ONLINE = ErpProfile.BC_ONLINE.value
"""The profile the default mappings are written for (no ``profiles`` section needed)."""

RECOMMENDED_ORDER: tuple[str, ...] = (
    "CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT", "RESOURCE-PRODUCT",
    "ITEM-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE", "POSTEDSALESINV-INV",
    "SALES ORDERS", "CUSTOMER STATISTICS",
)
"""The reference's first-run order; other mappings follow (dependencies permitting)."""


def _refuse_left_out(found: Iterable[Mapping[str, Any]], left_out: set[str], profile: str,
                     file: Path) -> None:
    """An override of a default this profile leaves out would be read as a whole mapping and
    fail on its missing parts: say what is going on instead (``replace: true`` entries are
    whole mappings of their own and stay allowed)."""
    for entry in found:
        name = str(entry["name"]).upper()
        if name in left_out and not entry.get("replace"):
            raise MappingError(
                f"{file}: mapping {entry['name']} changes a default mapping that profile "
                f"{profile} does not have yet (it reads Business Central API fields); remove "
                "the entry, or write the whole mapping in this ERP's field names with "
                "replace: true")


class MappingSet:
    """All mappings of a workspace, validated together."""

    def __init__(self, mappings: Iterable[TableMapping]) -> None:
        self._mappings: dict[str, TableMapping] = {}
        for mapping in mappings:
            key = mapping.name.upper()
            if key in self._mappings:
                raise MappingError(f"mapping {mapping.name} is defined twice")
            self._mappings[key] = mapping
        self._check_references()
        self.dependency_order()

    # -- loading -------------------------------------------------------------------------------
    @staticmethod
    def default_entries() -> list[dict[str, Any]]:
        """The raw YAML entries of the packaged defaults."""
        folder = resources.files("nav_crm_ops.mappings")
        entries: list[dict[str, Any]] = []
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                entries += read_entries(item.read_text(encoding="utf-8"), f"mappings/{item.name}")
        return entries

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]], origin: str = "mappings", *,
                     profile: str = BC_ONLINE) -> MappingSet:
        """Validated mappings of raw entries (as ``profile`` uses them)."""
        built = []
        for entry in entries:
            try:
                built.append(TableMapping.model_validate(for_profile(entry, profile)))
            except PydanticValidationError as exc:
                raise MappingError(pydantic_message(exc, entry, origin)) from None
        return cls(built)

    @classmethod
    def load(cls, override_files: Sequence[str | Path] = (), *, defaults: bool = True,
             profile: str = BC_ONLINE, crm_company: str = "") -> MappingSet:
        """Packaged defaults (unless ``defaults=False``) merged with the override files, each
        entry as the ERP ``profile`` uses it (its ``profiles`` section merged over it). On
        another profile than Business Central online, a default mapping without a section for
        that profile is left out: it is not written for that ERP's field names (every default
        has a ``nav2018`` section today; a mapping added later may not). ``crm_company``, the
        ``bcbi_company`` row id of a multi-company workspace, narrows the CRM rows of
        company-scoped tables to that company (:mod:`.companies`)."""
        entries: dict[str, dict[str, Any]] = {}
        left_out: set[str] = set()
        if defaults:
            for entry in cls.default_entries():
                name = str(entry["name"]).upper()
                if profile != BC_ONLINE and profile not in (entry.get("profiles") or {}):
                    left_out.add(name)
                    continue
                entries[name] = for_profile(entry, profile)
        for path in override_files:
            file = Path(path)
            if not file.exists():
                raise MappingError(f"mapping file {file} does not exist (check mapping_files)")
            found = read_entries(file.read_text(encoding="utf-8"), str(file))
            _refuse_left_out(found, left_out, profile, file)
            entries = overlay(entries, [for_profile(e, profile) for e in found])
        if crm_company:
            return cls.from_entries(company_scoped(entries.values(), crm_company))
        return cls.from_entries(entries.values())

    @classmethod
    def for_workspace(cls, config: WorkspaceConfig) -> MappingSet:
        """Defaults merged with the workspace's ``mapping_files`` (relative to the workspace),
        in the field names of the workspace's ERP profile, narrowed to the workspace's company
        in Dataverse when it shares the org with other companies (``[dataverse]
        multi_company``)."""
        crm = config.dataverse
        if crm.multi_company and not crm.company_row_id:
            raise ConfigError(
                "dataverse.multi_company is true but dataverse.company_row_id is empty: run "
                "`nav-crm-ops setup crm` (it finds or creates this company's bcbi_company row "
                "in Dataverse and writes its id there)")
        return cls.load([config.resolve_path(f) for f in config.workspace.mapping_files],
                        profile=config.workspace.profile.value,
                        crm_company=crm.company_row_id if crm.multi_company else "")

    @classmethod
    def from_yaml(cls, text: str) -> MappingSet:
        return cls.from_entries(read_entries(text, "YAML text"))

    def to_yaml(self) -> str:
        """Every mapping as YAML that :meth:`from_yaml` reads back to an equal set."""
        data = {"mappings": [self.get(name).model_dump(mode="json", exclude_defaults=True)
                             for name in self.dependency_order()]}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    # -- access -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [m.name for m in self._mappings.values()]

    def __iter__(self) -> Iterator[TableMapping]:
        """Mappings in :meth:`dependency_order`."""
        return iter([self.get(name) for name in self.dependency_order()])

    def __len__(self) -> int:
        return len(self._mappings)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self._mappings

    def get(self, name: str) -> TableMapping:
        """The mapping named ``name`` (case-insensitive)."""
        mapping = self._mappings.get(name.upper())
        if mapping is None:
            raise MappingError(f"no mapping named {name!r}; known mappings: {self.names}")
        return mapping

    def dependency_order(self, names: Iterable[str] | None = None) -> list[str]:
        """Mapping names, dependencies first, else in :data:`RECOMMENDED_ORDER` then by name.

        With ``names`` only those mappings are returned (their dependencies are not added).
        """
        wanted = [self.get(n).name for n in names] if names is not None else self.names
        rank = {name: i for i, name in enumerate(RECOMMENDED_ORDER)}

        def sort_key(name: str) -> tuple[int, str]:
            return (rank.get(name.upper(), len(rank)), name.upper())

        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = [*path[path.index(name):], name]
                raise MappingError(f"mapping dependency cycle: {' -> '.join(cycle)}; remove one "
                                   "of these depends_on entries")
            state[name] = 1
            deps = [self.get(d).name for d in self._mappings[name.upper()].depends_on]
            for dep in sorted(deps, key=sort_key):
                visit(dep, [*path, name])
            state[name] = 2
            order.append(name)

        for name in sorted(self.names, key=sort_key):
            visit(name, [])
        keep = {n.upper() for n in wanted}
        return [n for n in order if n.upper() in keep]

    def _check_references(self) -> None:
        """Every name a mapping refers to (dependencies, lookups) must be a mapping of the set,
        so a run never finds out halfway."""
        for mapping in self._mappings.values():
            self._check_coupled_in(mapping)
            self._check_depends_on(mapping)
            fields = mapping.fields + (mapping.line_mapping.fields if mapping.lines else ())
            for fld in fields:
                self._check_lookup(mapping, fld)

    @staticmethod
    def _check_coupled_in(mapping: TableMapping) -> None:
        """``nav.coupled_in`` reads another mapping's couplings, which must be synchronized
        first: it has to be a dependency too."""
        scope = mapping.nav.coupled_in
        if scope is not None and scope.upper() not in {d.upper() for d in mapping.depends_on}:
            raise MappingError(
                f"mapping {mapping.name}: nav.coupled_in names {scope!r}, which must also be "
                f"in depends_on (it is {list(mapping.depends_on)})")

    def _check_depends_on(self, mapping: TableMapping) -> None:
        for dep in mapping.depends_on:
            if dep.upper() not in self._mappings:
                raise MappingError(
                    f"mapping {mapping.name}: depends_on names unknown mapping {dep!r}; "
                    f"known mappings: {self.names}"
                )

    def _check_lookup(self, mapping: TableMapping, fld: FieldMapping) -> None:
        """A lookup's mappings must exist and its ``nav_key`` identify their records."""
        if fld.lookup is None:
            return
        where = f"mapping {mapping.name}, field {fld.name}"
        for name in fld.lookup.mappings:
            target = self._mappings.get(name.upper())
            if target is None:
                raise MappingError(
                    f"{where}: lookup names unknown mapping {name!r}; "
                    f"known mappings: {self.names}"
                )
            valid = [k for k in (target.nav.key, target.nav.natural_key) if k]
            if fld.lookup.nav_key is not None and fld.lookup.nav_key not in valid:
                raise MappingError(
                    f"{where}: lookup nav_key {fld.lookup.nav_key!r} does not identify "
                    f"a {target.name} record; valid: {valid}"
                )

    def lookup_nav_key(self, fld: FieldMapping) -> str:
        """The NAV field of the referenced mapping that the lookup field holds."""
        if fld.lookup is None:
            raise MappingError(f"field {fld.name} is not a lookup")
        if fld.lookup.nav_key:
            return fld.lookup.nav_key
        target = self.get(fld.lookup.mapping)
        return target.nav.natural_key or target.nav.key
