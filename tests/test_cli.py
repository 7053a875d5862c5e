"""The nav-crm-ops command line against the sandbox: init, mappings, preview, sync, logs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from nav_crm_ops.demo import SANDBOX_SECRET_ENV
from nav_crm_ops.sandbox import Sandbox

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py




@pytest.fixture
def workspace(fresh_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              cli: CliRunner) -> Path:
    monkeypatch.setenv(SANDBOX_SECRET_ENV, fresh_sandbox.info.client_secret.reveal())
    root = tmp_path / "ws"
    code, out, _ = cli("init", "--dir", str(root), "--sandbox",
                       fresh_sandbox.info.base_url)
    assert code == 0 and "nav_crm_ops.toml" in out
    assert fresh_sandbox.info.client_secret.reveal() not in (root / "nav_crm_ops.toml").read_text()
    return root


def test_init_refuses_to_overwrite_and_template_names_the_secret_variable(
        tmp_path: Path, cli: CliRunner) -> None:
    code, _, _ = cli("init", "--dir", str(tmp_path))
    assert code == 0
    text = (tmp_path / "nav_crm_ops.toml").read_text()
    assert "NAV_CRM_OPS_CLIENT_SECRET" in text
    code, _, err = cli("init", "--dir", str(tmp_path))
    assert code == 2 and "--force" in err
    code, _, err = cli("init", "--dir", str(tmp_path / "x"), "--sandbox",
                       "http://127.0.0.1:9")
    assert code == 2 and "no sandbox answers" in err


def test_init_writes_a_nav_2018_workspace(fresh_sandbox: Sandbox, tmp_path: Path,
                                          cli: CliRunner) -> None:
    """`init --profile nav2018`: a workspace whose ERP side is the OData v4 page services
    (Basic auth, the web service key named by an environment variable, never stored)."""
    from nav_crm_ops.config import ErpProfile, load_config
    from nav_crm_ops.demo import SANDBOX_NAV_KEY_ENV

    code, out, _ = cli("init", "--dir", str(tmp_path / "nav"), "--profile", "nav2018",
                       "--sandbox", fresh_sandbox.info.base_url)
    assert code == 0 and SANDBOX_NAV_KEY_ENV in out
    config = load_config(tmp_path / "nav")
    assert config.workspace.profile is ErpProfile.NAV2018 and config.business_central is None
    assert config.nav is not None and config.nav.odata_url == fresh_sandbox.info.nav_url
    assert (config.nav.auth.kind, config.nav.auth.client_id) == ("basic", "NAVCRM-SYNC")
    assert config.nav.auth.client_secret_env == SANDBOX_NAV_KEY_ENV
    assert config.dataverse.url == fresh_sandbox.info.dataverse_url
    code, _, _ = cli("init", "--dir", str(tmp_path / "tpl"), "--profile", "nav2018")
    template = load_config(tmp_path / "tpl")
    assert code == 0 and template.nav is not None and template.nav.auth.kind == "basic"


def test_mappings_list_show_validate(workspace: Path, cli: CliRunner) -> None:
    code, out, _ = cli("mappings", "list", "-w", str(workspace), "--json")
    assert code == 0
    names = [row["mapping"] for row in json.loads(out)]
    assert names[:3] == ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE"] and "CUSTOMER" in names
    code, out, _ = cli("mappings", "show", "customer", "-w", str(workspace))
    assert code == 0 and "accounts" in out and "salespersonCode" in out
    code, out, _ = cli("mappings", "validate", "-w", str(workspace))
    assert code == 0 and "12 mappings are valid" in out
    (workspace / "bad.yaml").write_text("- {name: CUSTOMER, direction: sideways}\n")
    toml = (workspace / "nav_crm_ops.toml").read_text()
    (workspace / "nav_crm_ops.toml").write_text(
        toml.replace("mapping_files = []", 'mapping_files = ["bad.yaml"]'))
    code, _, err = cli("mappings", "validate", "-w", str(workspace))
    assert code == 2 and "mapping CUSTOMER: direction 'sideways' is not one of" in err
    code, _, err = cli("mappings", "show", "NOPE", "-w", str(workspace))
    assert code == 2


def test_preview_saved_plan_sync_logs_and_exit_codes(workspace: Path, tmp_path: Path,
                                                     cli: CliRunner) -> None:
    plan = tmp_path / "currency.parquet"
    code, out, _ = cli("preview", "CURRENCY", "--out", str(plan), "-w", str(workspace))
    assert code == 0 and "insert_crm" in out and plan.exists()
    code, out, _ = cli("sync", "--plan", str(plan), "-w", str(workspace), "--json")
    assert code == 0 and json.loads(out)[0]["inserted"] == 7

    code, out, _ = cli("sync", "SALESPEOPLE", "CUSTOMER", "--no-progress",
                       "-w", str(workspace), "--json")
    rows = {row["mapping"]: row for row in json.loads(out)}
    assert code == 1, "failed records give exit code 1"
    assert rows["CUSTOMER"]["failed"] > 0 and rows["CUSTOMER"]["inserted"] > 0

    code, out, _ = cli("runs", "-w", str(workspace), "--json")
    assert code == 0 and {r["mapping"] for r in json.loads(out)} >= {"CURRENCY", "CUSTOMER"}
    code, out, _ = cli("errors", "CUSTOMER", "--groups", "-w", str(workspace), "--json")
    groups = json.loads(out)
    assert code == 0 and any("is not coupled to a CRM systemuser" in g["example"] for g in groups)
    code, out, _ = cli("errors", "CUSTOMER", "-w", str(workspace))
    assert code == 0 and "Atlantis" in out
    # records by number and name, the id after: "72000 Elkhorn Airport [2147bae2-…]"
    assert re.search(r" \d{5} [A-Z][^\[\n]+ \[[0-9a-f-]{36}\] \(permanent\)", out), out
    code, out, _ = cli("errors", "CUSTOMER", "--groups", "-w", str(workspace))
    assert code == 0 and "record(s) (" in out and "what to do: " in out

    code, out, _ = cli("retry", "CUSTOMER", "-w", str(workspace), "--json")
    assert code == 1 and json.loads(out)[0]["failed"] > 0
    code, out, _ = cli("unskip", "CUSTOMER", "-w", str(workspace))
    assert code == 0 and "restored" in out

    code, out, _ = cli("match", "CUSTOMER", "--dry-run", "-w", str(workspace), "--json")
    assert code == 0 and all(r["status"] in ("unmatched", "ambiguous") for r in json.loads(out))

    plan.write_bytes(plan.read_bytes()[:-40] + b"x" * 40)
    code, _, err = cli("sync", "--plan", str(plan), "-w", str(workspace))
    assert code == 2 and "plan file" in err
    code, _, err = cli("sync", "NOPE", "-w", str(workspace))
    assert code == 2 and "no mapping named 'NOPE'" in err
    code, _, err = cli("sync", "-w", str(workspace))
    assert code == 2 and "--all" in err


def test_couple_and_uncouple_by_id(workspace: Path, fresh_sandbox: Sandbox,
                                   cli: CliRunner) -> None:
    from nav_crm_ops import open_workspace

    with open_workspace(workspace) as ws:
        nav_id = ws.records("CURRENCY", "nav", search="EUR")["id"].item(0)
        crm_id = ws.records("CURRENCY", "crm", search="EUR")["id"].item(0)
    code, out, _ = cli("couple", "CURRENCY", nav_id, crm_id, "-w", str(workspace))
    assert code == 0 and "coupled" in out
    code, out, _ = cli("uncouple", "CURRENCY", "--crm-id", crm_id, "-w", str(workspace))
    assert code == 0 and "1 coupling(s) removed" in out
    code, _, err = cli("couple", "CURRENCY", nav_id, nav_id, "-w", str(workspace))
    assert code == 2 and "does not exist" in err


def test_the_client_secret_is_in_no_file_or_output_a_sync_writes(
        workspace: Path, fresh_sandbox: Sandbox, tmp_path: Path,
        cli: CliRunner) -> None:
    secret = fresh_sandbox.info.client_secret.reveal()
    outputs = []
    for argv in (("preview", "CURRENCY", "--out", str(workspace / "plan.parquet")),
                 ("sync", "--all", "--no-progress"), ("errors",), ("runs", "--json"),
                 ("errors", "--groups", "--json")):
        _, out, err = cli(*argv, "-w", str(workspace))
        outputs += [out, err]
    assert all(secret not in text for text in outputs)
    for path in workspace.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_preview_json_keeps_its_counts_and_adds_every_record(workspace: Path, tmp_path: Path,
                                                            cli: CliRunner) -> None:
    """Scripts reading plan_id / file / summary keep working; records come with them, and
    --out FILE.parquet still saves the plan to apply (the JSON names the file)."""
    plan = tmp_path / "currency.parquet"
    code, out, err = cli("preview", "CURRENCY", "--json", "--out", str(plan), "-w", str(workspace))
    document = json.loads(out)
    assert code == 0 and plan.exists() and document["file"] == str(plan)
    assert err == ""  # --json: no progress lines either
    summary = document["summary"]
    assert {"mapping", "action", "direction", "records", "included"} <= set(summary[0])
    assert sum(row["records"] for row in summary) == len(document["records"])
    for action, count in document["counts"].items():
        assert count == sum(r["records"] for r in summary if r["action"] == action)
        assert count == sum(1 for r in document["records"] if r["action"] == action)
    inserts = [r for r in document["records"] if r["action"] == "insert_crm"]
    assert "JPY" in {record["nav_key"] for record in inserts}
    assert all(record["changes"] for record in inserts)
    [isocode] = [c for c in inserts[0]["changes"] if c["field"] == "isocurrencycode"]
    assert isocode["target"] == "crm" and isocode["old_value"] is None
    assert isocode["new_value"] == inserts[0]["nav_key"]
    code, out, _ = cli("sync", "--plan", str(plan), "-w", str(workspace), "--json")
    assert code == 0 and json.loads(out)[0]["inserted"] == len(inserts)
