"""One deploy command: `make deploy ENV=<name>` (this module: `python -m infra.deploy <name>`).

In order, for the environment whose variables are `infra/environments/<name>.tfvars` (and whose Terraform state
bucket is named in `infra/environments/<name>.backend.hcl`):

1. **Checks**, refusing to go on when one fails: requirements.lock is what the pins, the constraints and the
   tested virtualenv say (infra/lock.py), and infra/functions.auto.json is what the manifest generates.
2. **Package**: the files Terraform zips for the functions (main.py, functions/, shared/, and requirements.lock
   under the name requirements.txt), listed with a digest of their names and contents.
3. **Migrate** the environment's database: the package plus migrations/ is deployed as the Cloud Run job
   `halo-migrate` (on the VPC connector, as the functions' service account, the IAM database user) and executed;
   it applies what is pending (`python -m shared.adapters.migrations`). Migrations come first because they are
   additive: the running code works on the new schema, and the new code needs it.
4. **Terraform**: `plan` into a plan file, then, once confirmed (or with --yes), `apply` of exactly that plan.

`--dry-run` (`make deploy ENV=<name> DRY_RUN=1`, or `make deploy-plan`) runs nothing and needs no network: it prints
the checks' verdicts, the package's files and digest, the migration files (and, with --pending-from-db, which of them
the database reachable through the HALO_DB_* settings has not applied), and every command above with its arguments;
values only Terraform's state knows (the service account, the connector) are shown as `<terraform output NAME>`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from infra import generate, lock
from shared.adapters import migrations

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
ENVIRONMENTS = INFRA / "environments"
STAGE = ROOT / ".local" / "deploy"
JOB = "halo-migrate"
# What Terraform reads from its state for the migration job (infra/outputs.tf).
JOB_OUTPUTS = ("runtime_service_account", "vpc_connector", "cloud_sql_instance", "db_user", "db_name")


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class Environment:
    name: str
    project_id: str
    region: str

    @property
    def tfvars(self) -> str:
        """As Terraform reads it from infra/ (`terraform -chdir=infra`)."""
        return f"environments/{self.name}.tfvars"

    @property
    def backend(self) -> str:
        return f"environments/{self.name}.backend.hcl"

    @property
    def plan_file(self) -> str:
        return f"{self.name}.tfplan"


def environment(name: str) -> Environment:
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise DeployError(f"environment names are lowercase words: {name!r}")
    tfvars, backend = ENVIRONMENTS / f"{name}.tfvars", ENVIRONMENTS / f"{name}.backend.hcl"
    known = sorted(path.stem for path in ENVIRONMENTS.glob("*.tfvars"))
    for path in (tfvars, backend):
        if not path.exists():
            raise DeployError(f"{path.relative_to(ROOT)} does not exist (environments: {', '.join(known) or 'none'})")
    values = _assignments(tfvars.read_text())
    if "project_id" not in values:
        raise DeployError(f"{tfvars.relative_to(ROOT)} sets no project_id")
    return Environment(name, values["project_id"], values.get("region", "asia-southeast2"))


def _assignments(text: str) -> dict[str, str]:
    """The `name = "value"` lines of a .tfvars file (quoted string values only)."""
    return {match[1]: match[2] for match in re.finditer(r'^\s*(\w+)\s*=\s*"([^"]*)"', text, re.M)}


# -- what is shipped ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packaged:
    name: str  # the path inside the zip
    source: Path  # the file whose content it holds
    sha256: str
    size: int


def package() -> list[Packaged]:
    """The files infra/functions.tf zips (local.source_files), with requirements.lock's content as requirements.txt.
    tests/unit/test_deploy.py checks this list against the Terraform's."""
    names = {"main.py", "requirements.txt"}
    for folder in ("functions", "shared"):
        names |= {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.as_posix()
        }
    files = []
    for name in sorted(names):
        source = lock.LOCK if name == "requirements.txt" else ROOT / name
        content = source.read_bytes()
        files.append(Packaged(name, source, hashlib.sha256(content).hexdigest(), len(content)))
    return files


def digest(files: Sequence[Packaged]) -> str:
    """One SHA-256 over the package's names and contents (Terraform names the uploaded zip by the zip's own hash,
    which `terraform plan` shows; this one is stable across zip implementations)."""
    summary = "".join(f"{file.name}\0{file.sha256}\n" for file in files)
    return hashlib.sha256(summary.encode()).hexdigest()


# -- the migrations ------------------------------------------------------------------------------------------------


def pending_migrations(applied: Mapping[int, str] | None) -> tuple[list[migrations.Migration], list[str]]:
    """(the files not applied yet, problems): with `applied` unknown (None), every file; a file applied with another
    checksum is a problem, as the migrator itself would refuse it."""
    found = migrations.discover()
    if applied is None:
        return found, []
    problems = [
        f"migrations/{m.version:04d}_{m.name}.sql changed after it was applied"
        for m in found
        if m.version in applied and applied[m.version] != m.checksum
    ]
    return [m for m in found if m.version not in applied], problems


def applied_from_settings() -> dict[int, str]:
    """schema_migrations of the database the HALO_DB_* settings reach (e.g. through the Cloud SQL Auth Proxy);
    read only."""
    from shared.adapters.postgres.database import Database, connector_for
    from shared.config import get_settings

    database = Database(connector_for(get_settings()), max_idle=1)
    try:
        exists = database.read_one("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        if not exists or not exists["present"]:
            return {}
        rows = database.run_alone("SELECT version, checksum FROM schema_migrations")
        return {int(row["version"]): str(row["checksum"]) for row in rows}
    finally:
        database.close()


# -- the plan ------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    env: Environment
    problems: list[str]
    files: list[Packaged]
    pending: list[migrations.Migration]
    applied_known: bool
    outputs: Mapping[str, str] = field(default_factory=dict)

    def stage(self) -> Path:
        return STAGE / self.env.name / "migrate"

    def output(self, name: str) -> str:
        return self.outputs.get(name) or f"<terraform output {name}>"

    def init(self) -> list[str]:
        return [
            "terraform",
            "-chdir=infra",
            "init",
            "-input=false",
            "-reconfigure",
            f"-backend-config={self.env.backend}",
        ]

    def read_outputs(self) -> list[str]:
        return ["terraform", "-chdir=infra", "output", "-json"]

    def migrate(self) -> list[list[str]]:
        where = [f"--region={self.env.region}", f"--project={self.env.project_id}"]
        settings = {
            "GOOGLE_CLOUD_PROJECT": self.env.project_id,
            "HALO_CLOUD_SQL_INSTANCE": self.output("cloud_sql_instance"),
            "HALO_DB_NAME": self.output("db_name"),
            "HALO_DB_USER": self.output("db_user"),
        }
        return [
            ["gcloud", "run", "jobs", "deploy", JOB, f"--source={os.path.relpath(self.stage(), ROOT)}", *where,
             f"--service-account={self.output('runtime_service_account')}",
             f"--vpc-connector={self.output('vpc_connector')}", "--vpc-egress=private-ranges-only",
             "--set-env-vars=" + ",".join(f"{key}={value}" for key, value in settings.items()),
             "--command=python", "--args=-m,shared.adapters.migrations", "--max-retries=0", "--task-timeout=10m"],
            ["gcloud", "run", "jobs", "execute", JOB, *where, "--wait"],
        ]  # fmt: skip

    def terraform(self) -> list[list[str]]:
        return [
            ["terraform", "-chdir=infra", "plan", "-input=false", f"-var-file={self.env.tfvars}",
             f"-out={self.env.plan_file}"],
            ["terraform", "-chdir=infra", "apply", "-input=false", self.env.plan_file],
        ]  # fmt: skip


def plan(name: str, *, applied: Mapping[int, str] | None = None) -> Plan:
    env = environment(name)
    problems = lock.problems()
    if generate.OUTPUT.read_text() != generate.render():
        problems.append("infra/functions.auto.json is stale: run `make infra`")
    pending, migration_problems = pending_migrations(applied)
    return Plan(env, problems + migration_problems, package(), pending, applied is not None)


def describe(deploy: Plan, out: TextIO) -> None:
    """What `make deploy` does for this plan, in order; nothing is run."""
    env = deploy.env
    write = out.write
    write(f"make deploy ENV={env.name}: dry run, nothing is run\n")
    write(f"environment  {env.name}: project {env.project_id}, region {env.region}\n")
    write(f"variables    infra/{env.tfvars}; state: infra/{env.backend}\n\n")
    write("1. checks\n")
    for problem in deploy.problems:
        write(f"   REFUSED  {problem}\n")
    if not deploy.problems:
        write("   ok  requirements.lock = requirements.txt + constraints.txt = the tested virtualenv\n")
        write("   ok  infra/functions.auto.json is current\n")
    total = sum(file.size for file in deploy.files)
    write(f"\n2. package: {len(deploy.files)} files, {total:,} bytes, source digest {digest(deploy.files)}\n")
    for file in deploy.files:
        origin = f"  (from {file.source.relative_to(ROOT)})" if file.source.name != Path(file.name).name else ""
        write(f"   {file.sha256[:12]}  {file.size:>8,}  {file.name}{origin}\n")
    write("\n3. migrate the database\n")
    write(f"   $ {_shell(deploy.init())}\n   $ {_shell(deploy.read_outputs())}\n")
    write(f"   stage {os.path.relpath(deploy.stage(), ROOT)}/: the package above plus migrations/\n")
    for command in deploy.migrate():
        write(f"   $ {_shell(command)}\n")
    if deploy.applied_known:
        listed = ", ".join(f"{m.version:04d}_{m.name}.sql" for m in deploy.pending) or "nothing"
        write(f"   pending on the database: {listed}\n")
    else:
        write("   the job applies, in order, those of these not in schema_migrations yet (--pending-from-db: which):\n")
        for migration in deploy.pending:
            write(f"     migrations/{migration.version:04d}_{migration.name}.sql  {migration.checksum[:12]}\n")
    write("\n4. terraform\n")
    plan_command, apply_command = deploy.terraform()
    write(f"   $ {_shell(plan_command)}\n")
    write("   (asks for confirmation unless --yes / YES=1)\n")
    write(f"   $ {_shell(apply_command)}\n")


def _shell(argv: Sequence[str]) -> str:
    return " ".join(arg if re.fullmatch(r"[\w@%+=:,./<>-]+", arg) and "<" not in arg else repr(arg) for arg in argv)


# -- running it ----------------------------------------------------------------------------------------------------

Run = Callable[[Sequence[str], bool], str]


def run_command(argv: Sequence[str], capture: bool) -> str:
    """Runs from the repository root; output goes to the terminal unless captured. A failure stops the deploy."""
    print(f"$ {_shell(argv)}", flush=True)
    result = subprocess.run(list(argv), cwd=ROOT, check=False, text=True, capture_output=capture)
    if result.returncode != 0:
        raise DeployError(f"{argv[0]} failed ({result.returncode}): {(result.stderr or '').strip()[-2000:]}")
    return result.stdout if capture else ""


def stage_migration_source(deploy: Plan) -> Path:
    """The package and migrations/ in a folder of their own: what the migration job's image is built from."""
    stage = deploy.stage()
    shutil.rmtree(stage, ignore_errors=True)
    for file in deploy.files:
        target = stage / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file.source, target)
    shutil.copytree(migrations.MIGRATIONS_DIR, stage / "migrations")
    return stage


def execute(deploy: Plan, *, run: Run = run_command, confirm: Callable[[str], bool] | None = None) -> None:
    if deploy.problems:
        raise DeployError("refusing to deploy:\n" + "\n".join(deploy.problems))
    run(deploy.init(), False)
    outputs: dict[str, Any] = json.loads(run(deploy.read_outputs(), True) or "{}")
    missing = [name for name in JOB_OUTPUTS if name not in outputs]
    if missing:
        raise DeployError(
            f"the state of {deploy.env.name} has no output {', '.join(missing)}: a project's first deployment is done "
            "by hand once (docs/operations.md, 'First deployment of a project'), or infra/ predates these outputs: "
            f"`terraform -chdir=infra apply -var-file={deploy.env.tfvars} -refresh-only` first"
        )
    deploy.outputs = {name: str(outputs[name]["value"]) for name in JOB_OUTPUTS}
    stage_migration_source(deploy)
    for command in deploy.migrate():
        run(command, False)
    plan_command, apply_command = deploy.terraform()
    run(plan_command, False)
    ask = confirm or _ask
    if not ask(f"Apply {deploy.env.plan_file} to {deploy.env.name} ({deploy.env.project_id})?"):
        raise DeployError("not applied: the database is migrated (which the running code tolerates), the code is not")
    run(apply_command, False)


def _ask(question: str) -> bool:
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__.split("\n", 1)[0])
    parser.add_argument("env", help="an environment of infra/environments/ (staging, prod, ...)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done; run nothing")
    parser.add_argument("--pending-from-db", action="store_true",
                        help="with --dry-run: read schema_migrations through the HALO_DB_* settings")  # fmt: skip
    parser.add_argument("--yes", action="store_true", help="apply the plan without asking")
    args = parser.parse_args(argv)
    try:
        applied = applied_from_settings() if args.dry_run and args.pending_from_db else None
        deploy = plan(args.env, applied=applied)
        if args.dry_run:
            describe(deploy, out)
            return 1 if deploy.problems else 0
        execute(deploy, confirm=(lambda _question: True) if args.yes else None)
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
