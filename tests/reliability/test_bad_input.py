"""Bad input gets a clear message, a non-zero exit and writes nothing (through the CLI)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from nav_crm_ops import load_config, open_workspace, write_config
from nav_crm_ops.cli import EXIT_BAD_INPUT, EXIT_SERVICE
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.demo import SANDBOX_SECRET_ENV
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.sandbox import Sandbox

Person = Callable[[Workspace], Dataverse]
CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py


def text_of(cli: CliRunner, *argv: str) -> tuple[int, str]:
    code, out, err = cli(*argv)
    return code, out + err




def crm_accounts(sandbox: Sandbox) -> int:
    return int(sandbox.context.status()["counts"]["dataverse:account"])


def couplings(workspace: Path) -> int:
    state = workspace / "state.db"
    if not state.exists():
        return 0
    with sqlite3.connect(state) as db:
        return int(db.execute("SELECT count(*) FROM couplings").fetchone()[0])


def override(workspace: Path, text: str) -> None:
    (workspace / "mappings.yaml").write_text(text, encoding="utf-8")
    config = load_config(workspace)
    write_config(config.model_copy(update={"workspace": config.workspace.model_copy(
        update={"mapping_files": ("mappings.yaml",)})}), workspace)


@pytest.mark.parametrize(("mapping_file", "expected"), [
    ("- {name: CUSTOMER, direction: [", "not valid YAML"),
    ("- {name: NOPE, fields: [{nav: a, crm: b}]}", "mapping NOPE: direction is missing"),
    ("- {name: CUSTOMER, fields: [{name: ghost, remove: true}]}",
     "cannot remove field 'ghost': no such field"),
    ("- {name: CUSTOMER, nav: {filter: \"blocked eq ' \"}}", "is not valid OData"),
    ("- {name: CUSTOMER, update_conflict: sometimes}",
     "update_conflict 'sometimes' is not one of"),
    ("- {name: CUSTOMER, fields: [{name: telephone1, transformations: [{round: {digits: x}}]}]}",
     "mapping CUSTOMER, field telephone1"),
])
def test_bad_mapping_files_are_refused_before_anything_is_read(
        workspace_dir: Path, fresh_sandbox: Sandbox, cli: CliRunner,
        mapping_file: str, expected: str) -> None:
    override(workspace_dir, mapping_file)
    before = crm_accounts(fresh_sandbox)
    code, text = text_of(cli, "sync", "--all", "--no-progress", "-w", str(workspace_dir))
    assert code == EXIT_BAD_INPUT and expected in text, text
    assert crm_accounts(fresh_sandbox) == before and couplings(workspace_dir) == 0


def test_malformed_config_and_unknown_names(workspace_dir: Path,
                                            cli: CliRunner) -> None:
    code, text = text_of(cli, "sync", "NOPE", "-w", str(workspace_dir))
    assert code == EXIT_BAD_INPUT and "no mapping named 'NOPE'; known mappings:" in text
    code, text = text_of(cli, "mappings", "show", "CUSTOMER", "-w", str(workspace_dir / "none"))
    assert code == EXIT_BAD_INPUT and "run `nav-crm-ops init`" in text
    (workspace_dir / "nav_crm_ops.toml").write_text("[workspace\nname =", encoding="utf-8")
    code, text = text_of(cli, "sync", "--all", "-w", str(workspace_dir))
    assert code == EXIT_BAD_INPUT and "is not valid TOML" in text


def test_wrong_credentials_unreachable_host_and_wrong_company(
        workspace_dir: Path, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
        cli: CliRunner) -> None:
    before = crm_accounts(fresh_sandbox)
    monkeypatch.setenv(SANDBOX_SECRET_ENV, "not-the-secret")
    code, text = text_of(cli, "sync", "CURRENCY", "--no-progress", "-w", str(workspace_dir))
    assert code == EXIT_SERVICE and "wrong or expired secret" in text
    assert SANDBOX_SECRET_ENV in text
    assert "not-the-secret" not in text
    monkeypatch.setenv(SANDBOX_SECRET_ENV, fresh_sandbox.info.client_secret.reveal())

    config = load_config(workspace_dir)
    write_config(config.model_copy(update={"business_central": config.business_central.model_copy(
        update={"company_id": "00000000-0000-0000-0000-000000000001"})}), workspace_dir)
    code, text = text_of(cli, "sync", "CURRENCY", "--no-progress", "-w", str(workspace_dir))
    assert code == EXIT_SERVICE and "compan" in text.lower()

    port = fresh_sandbox.info.base_url.rsplit(":", 1)[1]
    unreachable = config.model_copy(update={"dataverse": config.dataverse.model_copy(
        update={"url": config.dataverse.url.replace(port, "9")})})
    write_config(unreachable, workspace_dir)
    code, text = text_of(cli, "sync", "CURRENCY", "--no-progress", "-w", str(workspace_dir))
    assert code == EXIT_SERVICE and ("connect" in text.lower() or "reach" in text.lower()), text
    assert crm_accounts(fresh_sandbox) == before and couplings(workspace_dir) == 0


def test_stale_and_foreign_plans_are_refused(workspace_dir: Path, tmp_path: Path,
                                             cli: CliRunner) -> None:
    plan = tmp_path / "plan.parquet"
    code, _ = text_of(cli, "preview", "CURRENCY", "--out", str(plan), "-w", str(workspace_dir))
    assert code == 0
    config = load_config(workspace_dir)
    other = tmp_path / "other"
    write_config(config.model_copy(update={"workspace": config.workspace.model_copy(
        update={"name": "another workspace"})}), other)
    code, text = text_of(cli, "sync", "--plan", str(plan), "-w", str(other))
    assert code == EXIT_BAD_INPUT and "this plan was made for another workspace" in text
    plan.write_bytes(b"not a parquet file")
    code, text = text_of(cli, "sync", "--plan", str(plan), "-w", str(workspace_dir))
    assert code == EXIT_BAD_INPUT and "re-run preview" in text
    assert couplings(workspace_dir) == 0


def test_search_values_with_quotes_and_operators_are_literals(workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        sneaky = ws.records("CUSTOMER", "crm", search="x' or name ne 'y")
        assert sneaky.height == 0
        both = ws.records("CUSTOMER", "nav", search="O'")
        assert all("o'" in " ".join(str(v) for v in row.values()).lower()
                   for row in both.iter_rows(named=True))


def test_unicode_and_control_characters_travel_or_fail_clearly(
        workspace_dir: Path, crm_person: Person) -> None:
    from nav_crm_ops import WriteOp

    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
        pair = ws.store.couplings_frame("CUSTOMER").filter(
            ws.store.couplings_frame("CUSTOMER")["nav_key"] == "10000")
        nav_id, crm_id = pair["nav_id"].item(), pair["crm_id"].item()
        name = "Ålborg Øst — 株式会社 \U0001f6b2"
        [ok] = crm_person(ws).write([WriteOp.update(
            "accounts", crm_id, {"name": name, "address1_line2": "line\u0007bell\ttab"})])
        assert ok.ok
        report = ws.sync("CUSTOMER")
        nav = ws.connections.business_central.read_by_ids("customers", "id", [nav_id])
        assert nav["displayName"].item() == name
        errors = ws.errors("CUSTOMER").filter(ws.errors("CUSTOMER")["source_id"] == crm_id)
        synced = nav["addressLine2"].item() == "line\u0007bell\ttab"
        assert synced or (report.failed and errors.height and errors["message"].item(0))


def test_a_value_of_the_wrong_type_for_the_other_side_fails_that_record_clearly(
        workspace_dir: Path, crm_person: Person) -> None:
    from nav_crm_ops import WriteOp

    override(workspace_dir, "- name: CUSTOMER\n  fields:\n"
             "    - {name: phone_as_limit, nav: creditLimit, crm: address1_line3,"
             " direction: from_crm}\n")
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
        pair = ws.store.couplings_frame("CUSTOMER").filter(
            ws.store.couplings_frame("CUSTOMER")["nav_key"] == "10000")
        nav_id, crm_id = pair["nav_id"].item(), pair["crm_id"].item()
        [ok] = crm_person(ws).write([WriteOp.update(
            "accounts", crm_id, {"address1_line3": "not a number", "telephone1": "+1 555 0100"})])
        assert ok.ok
        limit = ws.connections.business_central.read_by_ids("customers", "id", [nav_id])
        ws.sync("CUSTOMER")
        error = ws.errors("CUSTOMER").filter(ws.errors("CUSTOMER")["source_id"] == crm_id)
        newest = error.row(0, named=True)
        assert "'not a number'" in newest["message"] and "Edm.Decimal" in newest["message"]
        assert json.loads(newest["payload"])["creditLimit"] == "not a number"
        after = ws.connections.business_central.read_by_ids("customers", "id", [nav_id])
        assert after["creditLimit"].item() == limit["creditLimit"].item()


# -- issue #14, item 8: bad input that ended in a traceback or passed validation --------------

def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: equal before and after = nothing written."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def edit_toml(workspace: Path, section: str, key: str, value: object) -> None:
    import tomllib

    import tomli_w

    path = workspace / "nav_crm_ops.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.setdefault(section, {})[key] = value
    path.write_text(tomli_w.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("business_central", "company_id", "CRONUS",
     "business_central.company_id: 'CRONUS' is not a GUID"),
    ("business_central", "api_url", "ftp://example.com/api/v2.0/",
     "business_central.api_url: 'ftp://example.com/api/v2.0/' is not an http(s) URL"),
    ("dataverse", "url", "ftp://example.com/api/data/v9.2/",
     "dataverse.url: 'ftp://example.com/api/data/v9.2/' is not an http(s) URL"),
    ("dataverse", "ignore_own_changes", "yes",
     "dataverse.ignore_own_changes: Input should be a valid boolean (write true or false"),
    ("http", "timeout_s", 0, "http.timeout_s: Input should be greater than 0"),
    ("http", "timeout_s", "60", "http.timeout_s: Input should be a valid number"),
])
def test_config_values_that_crashed_or_passed_are_refused(
        workspace_dir: Path, fresh_sandbox: Sandbox, cli: CliRunner,
        section: str, key: str, value: object, expected: str) -> None:
    edit_toml(workspace_dir, section, key, value)
    before, accounts = files_of(workspace_dir), crm_accounts(fresh_sandbox)
    code, text = text_of(cli, "sync", "CURRENCY", "--no-progress", "-w", str(workspace_dir))
    assert code == EXIT_BAD_INPUT and expected in text and "nav_crm_ops.toml" in text, text
    assert "Traceback" not in text
    assert files_of(workspace_dir) == before and crm_accounts(fresh_sandbox) == accounts


@pytest.mark.parametrize(("mapping_file", "expected"), [
    ("- {name: CUSTOMER, fields: 5}", "mapping CUSTOMER: fields must be a list of field entries"),
    ("- {name: CUSTOMER, fields: [{name: telephone1, enabled: 'no'}]}",
     "mapping CUSTOMER, field telephone1: enabled: Input should be a valid boolean (write true"),
    ("- {name: CUSTOMER, fields: [5]}", "mapping CUSTOMER: fields must be a list of field entries"),
    ("- {name: NEWONE, direction: to_crm, fields: 5}",
     "mapping NEWONE: fields must be a list of field entries"),
    ("- {name: CUSTOMER, nav: {filter: \"displayName eq '" + "x" * 100_000 + "'\"}}",
     "mapping CUSTOMER: nav.filter: the filter is 100,017 characters long; the limit is 2,000"),
])
def test_mapping_overrides_that_crashed_are_refused(
        workspace_dir: Path, fresh_sandbox: Sandbox, cli: CliRunner,
        mapping_file: str, expected: str) -> None:
    override(workspace_dir, mapping_file)
    before, accounts = files_of(workspace_dir), crm_accounts(fresh_sandbox)
    code, text = text_of(cli, "sync", "--all", "--no-progress", "-w", str(workspace_dir))
    assert code == EXIT_BAD_INPUT and expected in text and "Traceback" not in text, text
    assert len(text) < 2_000, "the message must not repeat the whole filter"
    assert files_of(workspace_dir) == before and crm_accounts(fresh_sandbox) == accounts


def jobs_in(workspace: Path) -> int:
    state = workspace / "state.db"
    if not state.exists():
        return 0
    with sqlite3.connect(state) as db:
        return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])


@pytest.mark.parametrize("param", [
    "pwd=hunter2", "db_password=hunter2", "api_key=abc", "accessToken=abc", "key=abc",
    "secret_value=abc", "my_credentials=abc",
])
def test_job_parameters_named_like_secrets_are_refused(
        workspace_dir: Path, cli: CliRunner, param: str) -> None:
    before = files_of(workspace_dir)
    code, text = text_of(cli, "jobs", "add", "EXPORT", "--notebook", "jobs/sync_mapping.ipynb",
                     "--param", param, "-w", str(workspace_dir))
    name = param.split("=")[0]
    assert code == EXIT_BAD_INPUT and f"parameter {name!r} looks like a secret" in text, text
    assert "hunter2" not in text and "Traceback" not in text
    assert files_of(workspace_dir) == before and jobs_in(workspace_dir) == 0


def test_job_parameter_values_holding_a_configured_secret_are_refused(
        workspace_dir: Path, fresh_sandbox: Sandbox, cli: CliRunner) -> None:
    secret = fresh_sandbox.info.client_secret.reveal()
    ws = ("-w", str(workspace_dir))
    for value in (secret, f"the secret is {secret}", f'["{secret}"]'):
        before = files_of(workspace_dir)
        code, text = text_of(cli, "jobs", "add", "EXPORT", "--notebook",
                         "jobs/sync_mapping.ipynb", "--param", f"note={value}", *ws)
        assert code == EXIT_BAD_INPUT, text
        assert f"parameter 'note' holds the client secret of dataverse.auth " \
               f"({SANDBOX_SECRET_ENV})" in text, text
        assert secret not in text and "Traceback" not in text
        assert files_of(workspace_dir) == before and jobs_in(workspace_dir) == 0
    code, text = text_of(cli, "jobs", "add", "EXPORT", "--notebook", "jobs/sync_mapping.ipynb",
                     "--param", "note=harmless", *ws)
    assert code == 0 and jobs_in(workspace_dir) == 1, text
    state = files_of(workspace_dir)["state.db"]
    code, text = text_of(cli, "jobs", "set", "EXPORT", "--param", f"note={secret}", *ws)
    assert code == EXIT_BAD_INPUT and "holds the client secret" in text and secret not in text
    assert files_of(workspace_dir)["state.db"] == state
