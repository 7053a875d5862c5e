"""The doctor's judgement without HTTP: requirements of the default mappings against facts
built by hand (what a real org or BC tenant might answer)."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nav_crm_ops.config import load_config, write_config
from nav_crm_ops.connectors.metadata import AttributeInfo, ServiceClock, TableInfo
from nav_crm_ops.demo import sandbox_workspace_config
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.sync.planner import Planner
from nav_crm_ops.sandbox.info import SandboxInfo
from nav_crm_ops.secrets import Secret
from nav_crm_ops.setup.crm_setup import StepKind, plan_setup
from nav_crm_ops.setup.doctor import (
    DEFAULT_OVERLAP,
    Area,
    clock_probe,
    company_probe,
    judge,
    mapping_origins,
)
from nav_crm_ops.setup.facts import BcFacts, CrmFacts, Facts, ProbeStatus, Service
from nav_crm_ops.setup.requirements import Access, requirements_for

MAPPINGS = MappingSet.load()


def _requirements(name: str):  # type: ignore[no-untyped-def]
    return requirements_for(MAPPINGS.get(name), MAPPINGS)


def _crm_facts(names: dict[str, list[str]], privileges: set[str] | None = None) -> CrmFacts:
    tables = {n: TableInfo(n, n.capitalize() if not n.startswith("nav_") else n,
                           f"{n}s", f"{n}id", "name") for n in names}
    attributes: dict[str, dict[str, AttributeInfo] | None] = {
        n: {c: AttributeInfo(c, "Lookup" if c.endswith("id") else "String", c)
            for c in columns} for n, columns in names.items()}
    return CrmFacts(user_id="u", tables_read=True, tables=tables, attributes=attributes,
                    privileges=frozenset(privileges) if privileges is not None else None)


def test_requirements_of_customer_statistics() -> None:
    req = _requirements("CUSTOMER STATISTICS")
    assert [t.logical_name for t in req.crm_tables] == ["nav_accountstatistics"]
    columns = {c.column: c for c in req.crm_columns}
    assert columns["nav_accountid"].role.value == "lookup"
    assert columns["nav_balance"].use.value == "write"
    assert {(p.access, p.table) for p in req.privileges} >= {
        (Access.CREATE, "nav_accountstatistics"), (Access.APPEND, "nav_accountstatistics"),
        (Access.APPEND_TO, "account")}
    assert [(e.api, e.entity_set) for e in req.bc_entities] == [
        ("navcrm/sync/v1.0", "customerStatistics")]


def test_the_custom_api_missing_says_install_the_extension() -> None:
    req = _requirements("CUSTOMER STATISTICS")
    facts = Facts(crm=_crm_facts({}), bc=BcFacts(apis={"navcrm/sync/v1.0": None},
                                                 api_urls={"navcrm/sync/v1.0": "https://x/"}))
    [report] = judge([req], facts, {})
    areas = {f.area for f in report.findings}
    assert Area.BC_API in areas and not report.ready
    bc = next(f for f in report.findings if f.area is Area.BC_API)
    assert "install the BC extension (bc-extension/README.md)" in bc.fix
    assert sum(f.area is Area.BC_API for f in report.findings) == 1  # no property noise


def test_a_column_of_the_wrong_kind_and_privilege_names() -> None:
    req = _requirements("CUSTOMER STATISTICS")
    names = {c.column for c in req.crm_columns}
    facts_crm = _crm_facts({"nav_accountstatistics": sorted(names), "account": ["accountid"]},
                           privileges=set())
    attrs = facts_crm.attributes["nav_accountstatistics"]
    assert attrs is not None
    attrs["nav_accountid"] = AttributeInfo("nav_accountid", "String", "nav_AccountId")
    report = judge([req], Facts(crm=facts_crm, bc=None), {})[0]
    problems = [f.problem for f in report.findings]
    assert any("nav_accountid is a String column" in p for p in problems)
    assert "the application user lacks the privilege prvCreatenav_accountstatistics" in problems
    assert "the application user lacks the privilege prvAppendToAccount" in problems
    assert "the ERP could not be checked" in problems


def test_company_and_clock_checks(tmp_path: Path) -> None:
    info = SandboxInfo(base_url="http://127.0.0.1:1", tenant="t", environment="e",
                       company_id="6a3b2c1d-0000-4000-8000-00000000c0de", company_name="C",
                       client_id="c", client_secret=Secret(""))
    write_config(sandbox_workspace_config(info, tmp_path), tmp_path)
    config = load_config(tmp_path)
    other = company_probe(config, BcFacts(companies={"0000": "Other"}))
    assert other is not None and other.status is ProbeStatus.FAILED
    assert "business_central.company_id" in other.fix and "Other (0000)" in other.message
    now = datetime.now(UTC)
    late = ServiceClock(server_time=now - timedelta(minutes=2), local_time=now)
    probe = clock_probe(Service.DATAVERSE, late, DEFAULT_OVERLAP)
    assert probe is not None and probe.status is ProbeStatus.FAILED
    assert "120 s behind" in probe.message and "NTP" in probe.fix
    assert mapping_origins(config)["CUSTOMER"] == "mappings/customer.yaml"


def test_the_overlap_is_the_planners() -> None:
    default = inspect.signature(Planner.__init__).parameters["overlap"].default
    assert default == DEFAULT_OVERLAP


def test_setup_plans_nothing_for_a_complete_org_and_options_when_missing() -> None:
    reqs = [requirements_for(m, MAPPINGS) for m in MAPPINGS]
    needed: dict[str, list[str]] = {}
    for req in reqs:
        for column in req.crm_columns:
            needed.setdefault(column.table, []).append(column.column)
    needed["nav_accountstatistics"].append("nav_lastupdated")  # in the solution, unmapped
    crm = _crm_facts(needed)
    crm.options = {"account": {"paymenttermscode": frozenset({1, 2, 3}),
                               "address1_freighttermscode": frozenset({1})}}
    plan = plan_setup(reqs, crm)
    assert [(s.kind, s.table, s.name, s.detail) for s in plan.steps] == [
        (StepKind.OPTION, "account", "paymenttermscode", "value 4 'Net 60'")]
