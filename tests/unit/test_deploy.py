"""`make deploy ENV=<name>` (infra/deploy.py): its dry run says, offline, exactly what a deploy does, and a deploy
does it in that order (checks, migrations, then Terraform), refusing when what would ship is not what was tested.
Nothing here reaches the network: commands are recorded, not run."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra import deploy, lock
from shared.adapters import migrations

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = migrations.discover()


def dry_run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = deploy.main(["staging", "--dry-run", *args], out=out)
    return code, out.getvalue()


@pytest.fixture(autouse=True)
def no_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to run a program fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a command was run: {args}")

    monkeypatch.setattr(deploy.subprocess, "run", refuse)


def test_the_dry_run_prints_each_step_in_order_and_runs_nothing() -> None:
    code, text = dry_run()
    assert code == 0, text
    steps = [
        "1. checks",
        "ok  requirements.lock",
        "2. package:",
        "requirements.txt  (from requirements.lock)",
        "3. migrate the database",
        "terraform -chdir=infra init -input=false -reconfigure -backend-config=environments/staging.backend.hcl",
        "terraform -chdir=infra output -json",
        "gcloud run jobs deploy halo-migrate --source=.local/deploy/staging/migrate",
        "gcloud run jobs execute halo-migrate --region=asia-southeast2 --project=halo-bestie-staging --wait",
        "4. terraform",
        "terraform -chdir=infra plan -input=false -var-file=environments/staging.tfvars -out=staging.tfplan",
        "terraform -chdir=infra apply -input=false staging.tfplan",
    ]
    positions = [text.find(step) for step in steps]
    assert all(position >= 0 for position in positions), [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "the steps are printed in the order a deploy runs them"
    assert "--command=python --args=-m,shared.adapters.migrations" in text
    for migration in MIGRATIONS:
        assert f"migrations/{migration.version:04d}_{migration.name}.sql" in text


def test_the_dry_run_names_every_packaged_file_and_the_digest() -> None:
    _, text = dry_run()
    files = deploy.package()
    assert f"{len(files)} files" in text
    assert f"source digest {deploy.digest(files)}" in text
    for file in files:
        assert re.search(rf"{file.sha256[:12]}\s+[\d,]+\s+{re.escape(file.name)}", text), file.name


def test_the_dry_run_lists_only_what_a_given_database_has_not_applied() -> None:
    applied = {m.version: m.checksum for m in MIGRATIONS[:-1]}
    out = io.StringIO()
    deploy.describe(deploy.plan("staging", applied=applied), out)
    last = MIGRATIONS[-1]
    assert f"pending on the database: {last.version:04d}_{last.name}.sql" in out.getvalue()

    up_to_date = io.StringIO()
    deploy.describe(deploy.plan("staging", applied={m.version: m.checksum for m in MIGRATIONS}), up_to_date)
    assert "pending on the database: nothing" in up_to_date.getvalue()


def test_a_migration_edited_after_it_was_applied_is_refused() -> None:
    applied = {m.version: m.checksum for m in MIGRATIONS}
    applied[1] = "0" * 64
    deploy_plan = deploy.plan("staging", applied=applied)
    assert any("0001_" in problem and "changed after it was applied" in problem for problem in deploy_plan.problems)
    with pytest.raises(deploy.DeployError, match="refusing to deploy"):
        deploy.execute(deploy_plan, run=lambda argv, capture: "")


def test_a_lock_that_disagrees_with_what_was_tested_stops_the_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "problems", lambda: ["grpcio: the tests run 1.0, requirements.lock deploys 2.0"])
    code, text = dry_run()
    assert code == 1
    assert "REFUSED  grpcio: the tests run 1.0" in text


def test_an_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(deploy.DeployError, match=r"environments: .*staging"):
        deploy.environment("qa")


def test_the_package_is_what_terraform_zips() -> None:
    functions_tf = (ROOT / "infra" / "functions.tf").read_text()
    globs = re.findall(r'fileset\(local\.repository_root, "([^"]+)"\)', functions_tf)
    assert sorted(globs) == ["main.py", "requirements.txt", "{functions,shared}/**"], "update deploy.package() too"
    assert '!strcontains(file, "__pycache__")' in functions_tf
    names = [file.name for file in deploy.package()]
    assert names == sorted(names)
    assert {"main.py", "requirements.txt", "functions/manifest.py", "shared/domain/safety_phrases.txt"} <= set(names)
    assert not [name for name in names if name.startswith(("tests/", "infra/", "emulators/")) or "__pycache__" in name]
    (requirements,) = [file for file in deploy.package() if file.name == "requirements.txt"]
    assert requirements.source == lock.LOCK, "the functions install the hashed lock, not the human pins"


def test_a_deploy_migrates_with_the_states_outputs_then_plans_and_applies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(deploy, "STAGE", tmp_path / ".local" / "deploy")
    outputs = {name: {"value": f"the-{name}"} for name in deploy.JOB_OUTPUTS}
    ran: list[list[str]] = []

    def run(argv: Sequence[str], capture: bool) -> str:
        ran.append(list(argv))
        return json.dumps(outputs) if argv[-2:] == ["output", "-json"] else ""

    deploy.execute(deploy.plan("staging"), run=run, confirm=lambda _question: True)

    assert [command[:4] for command in ran] == [
        ["terraform", "-chdir=infra", "init", "-input=false"],
        ["terraform", "-chdir=infra", "output", "-json"],
        ["gcloud", "run", "jobs", "deploy"],
        ["gcloud", "run", "jobs", "execute"],
        ["terraform", "-chdir=infra", "plan", "-input=false"],
        ["terraform", "-chdir=infra", "apply", "-input=false"],
    ]
    job = ran[2]
    assert "--service-account=the-runtime_service_account" in job
    assert "--vpc-connector=the-vpc_connector" in job
    assert any("HALO_CLOUD_SQL_INSTANCE=the-cloud_sql_instance" in arg for arg in job)
    stage = tmp_path / ".local" / "deploy" / "staging" / "migrate"
    assert (stage / "requirements.txt").read_text() == lock.LOCK.read_text()
    assert sorted(path.name for path in (stage / "migrations").glob("*.sql")) == sorted(
        f"{m.version:04d}_{m.name}.sql" for m in MIGRATIONS
    )
    assert (stage / "shared" / "adapters" / "migrations.py").exists()


def test_a_deploy_not_confirmed_migrates_but_does_not_apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(deploy, "STAGE", tmp_path / ".local" / "deploy")
    outputs = json.dumps({name: {"value": "x"} for name in deploy.JOB_OUTPUTS})
    ran: list[str] = []

    def run(argv: Sequence[str], capture: bool) -> str:
        ran.append(" ".join(argv[:4]))
        return outputs if capture else ""

    with pytest.raises(deploy.DeployError, match="not applied"):
        deploy.execute(deploy.plan("staging"), run=run, confirm=lambda _question: False)
    assert not [command for command in ran if " apply" in command]


def test_a_state_without_the_outputs_points_at_the_first_deployment() -> None:
    with pytest.raises(deploy.DeployError, match="First deployment"):
        deploy.execute(deploy.plan("staging"), run=lambda argv, capture: "{}" if capture else "")


@pytest.mark.parametrize("tfvars", sorted((ROOT / "infra" / "environments").glob("*.tfvars")), ids=lambda p: p.name)
def test_environment_files_set_declared_variables_and_no_secret(tfvars: Path) -> None:
    declared = set(re.findall(r'^variable "(\w+)"', (ROOT / "infra" / "variables.tf").read_text(), re.M))
    assigned = re.findall(r"^\s*(\w+)\s*=", tfvars.read_text(), re.M)
    assert set(assigned) <= declared, f"{tfvars.name} sets undeclared {sorted(set(assigned) - declared)}"
    assert {"project_id", "control_center_invoker"} <= set(assigned)
    assert not re.search(r"(secret|token|password|key)\w*\s*=\s*\"(?!latest\"|\d+\")", tfvars.read_text(), re.I)
    assert tfvars.with_suffix(".backend.hcl").exists(), "each environment names its state bucket"
