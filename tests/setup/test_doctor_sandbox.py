"""``nav-crm-ops doctor`` and ``setup crm`` against the sandbox over real loopback HTTP, run
as a person runs them (the ``cli`` fixture of tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nav_crm_ops.config import write_config
from nav_crm_ops.demo import SANDBOX_SECRET_ENV, sandbox_workspace_config
from nav_crm_ops.sandbox import Sandbox

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py


def _override(workspace: Path, text: str) -> None:
    (workspace / "overrides.yaml").write_text(text)
    toml = workspace / "nav_crm_ops.toml"
    toml.write_text(toml.read_text().replace("mapping_files = []",
                                             'mapping_files = ["overrides.yaml"]'))


def test_doctor_on_the_demo_workspace_lists_every_mapping_ready(
        workspace_dir: Path, cli: CliRunner, fresh_sandbox: Sandbox) -> None:
    code, out, err = cli("doctor", "-w", str(workspace_dir))
    assert code == 0, out + err
    assert "12 of 12 mappings ready" in out and "✗" not in out
    assert "✓ CUSTOMER STATISTICS: ready" in out
    assert "company 'CRONUS International Ltd.'" in out and "clock" in out
    assert fresh_sandbox.info.client_secret.reveal() not in out + err
    code, out, _ = cli("doctor", "-w", str(workspace_dir), "--json")
    report = json.loads(out)
    assert code == 0 and report["ready"] is True
    assert {m["mapping"] for m in report["mappings"] if m["ready"]} >= {"CUSTOMER", "CONTACT"}
    assert {c["check"] for c in report["checks"]} >= {"authentication", "company", "clock"}


def test_a_misspelt_crm_field_is_named_with_its_mapping_and_file(
        workspace_dir: Path, cli: CliRunner) -> None:
    _override(workspace_dir, "- name: CUSTOMER\n  fields:\n"
                             "    - {name: telephone1, crm: telephon1}\n")
    code, _, _ = cli("mappings", "validate", "-w", str(workspace_dir))
    assert code == 0  # the typo passes validation: only the service knows its columns
    code, out, _ = cli("doctor", "-w", str(workspace_dir))
    assert code == 1
    assert "✗ CUSTOMER: not ready" in out
    assert "account.telephon1 does not exist" in out
    assert "fix the field name 'telephon1' in overrides.yaml (did you mean telephone1?)" in out
    assert "✓ CONTACT: ready" in out


def test_a_misspelt_bc_field_is_named(workspace_dir: Path, cli: CliRunner) -> None:
    _override(workspace_dir, "- name: CUSTOMER\n  fields:\n"
                             "    - {name: telephone1, nav: phoneNumbr}\n")
    code, out, _ = cli("doctor", "-w", str(workspace_dir), "--json")
    assert code == 1
    customer = next(m for m in json.loads(out)["mappings"] if m["mapping"] == "CUSTOMER")
    assert not customer["ready"]
    [finding] = customer["findings"]
    assert "BC customers has no property 'phoneNumbr'" in finding["problem"]
    assert "did you mean phoneNumber?" in finding["fix"]


def test_a_revoked_privilege_is_named(workspace_dir: Path, cli: CliRunner,
                                      fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.set_privileges(["prvWriteAccount"])
    try:
        code, out, _ = cli("doctor", "-w", str(workspace_dir))
    finally:
        fresh_sandbox.set_privileges(())
    assert code == 1
    assert "the application user lacks the privilege prvWriteAccount" in out
    assert "give the application user the privilege prvWriteAccount" in out
    assert "✗ CUSTOMER: not ready" in out and "✓ CURRENCY: ready" in out


def test_bad_input_and_unreachable_services(workspace_dir: Path, tmp_path: Path,
                                            cli: CliRunner,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = cli("doctor", "-w", str(tmp_path / "nowhere"))
    assert code == 2 and "nav-crm-ops init" in err
    code, _, err = cli("setup", "crm", "-w", str(tmp_path / "nowhere"))
    assert code == 2
    monkeypatch.setenv(SANDBOX_SECRET_ENV, "wrong-secret")
    code, out, err = cli("doctor", "-w", str(workspace_dir))
    assert code == 3, out + err
    assert "✗ dataverse authentication" in out and "wrong-secret" not in out + err
    assert "✗ CUSTOMER: not checked (Dataverse could not be checked" in out


@pytest.fixture
def bare_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox whose Dataverse lacks the integration solution."""
    with Sandbox(data_dir=tmp_path_factory.mktemp("bare"), seed="cronus", port=0,
                 crm_solution=False) as sb:
        yield sb


def test_setup_crm_creates_the_solution_once(bare_sandbox: Sandbox, tmp_path: Path,
                                             cli: CliRunner,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SANDBOX_SECRET_ENV, bare_sandbox.info.client_secret.reveal())
    root = tmp_path / "ws"
    write_config(sandbox_workspace_config(bare_sandbox.info, root), root)
    ws = ("-w", str(root))
    code, out, _ = cli("doctor", *ws)
    assert code == 1
    assert "Dataverse table nav_accountstatistics does not exist" in out
    for column in ("salesorder.nav_bcordernumber", "salesorder.nav_submittedtobackoffice",
                   "invoice.nav_bcinvoicenumber"):
        assert f"Dataverse column {column} does not exist" in out
    assert out.count("run `nav-crm-ops setup crm`") == 4

    code, out, _ = cli("setup", "crm", "--dry-run", *ws)
    assert code == 0 and "dry run: nothing created" in out
    assert "create table nav_accountstatistics" in out
    assert "create lookup nav_accountstatistics.nav_accountid" in out
    assert "create column invoice.nav_bcinvoicenumber" in out
    code, out, _ = cli("doctor", *ws)
    assert code == 1  # the dry run created nothing

    code, out, _ = cli("setup", "crm", "--json", *ws)
    steps = json.loads(out)["steps"]
    assert code == 0 and len(steps) == 5 and {s["status"] for s in steps} == {"created"}
    code, out, _ = cli("doctor", *ws)
    assert code == 0 and "12 of 12 mappings ready" in out
    code, out, _ = cli("setup", "crm", *ws)
    assert code == 0 and "nothing to create" in out

    code, out, _ = cli("sync", "--all", "--no-progress", "--json", *ws)
    runs = {r["mapping"]: r for r in json.loads(out)}
    assert runs["CUSTOMER STATISTICS"]["status"] == "finished"
    assert runs["CUSTOMER STATISTICS"]["inserted"] > 0
    assert runs["SALES ORDERS"]["status"] == "finished"
    assert runs["POSTEDSALESINV-INV"]["status"] == "finished"


def test_a_company_the_app_cannot_see_is_named(workspace_dir: Path, cli: CliRunner,
                                               fresh_sandbox: Sandbox) -> None:
    toml = workspace_dir / "nav_crm_ops.toml"
    wrong = "6a3b2c1d-0000-4000-8000-00000000c0de"
    toml.write_text(toml.read_text().replace(fresh_sandbox.info.company_id, wrong))
    code, out, _ = cli("doctor", "-w", str(workspace_dir))
    assert code == 1
    assert f"✗ business_central company: company id {wrong} is not among the companies" in out
    assert "CRONUS International Ltd." in out and "business_central.company_id" in out
