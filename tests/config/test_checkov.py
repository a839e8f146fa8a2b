"""checkov's Kubernetes framework over every stack's `mlops plan --render-manifests` output, with
the reviewed skips and exceptions of policies/checkov/checks.yaml (checkov runs in its own uv
project: its pins must not constrain the platform's or the policy pack's)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlops_platform import render
from mlops_platform.plan import (
    build_plan,
    kubernetes_objects,
    project_root,
    stack_file_path,
    write_manifests,
)

ROOT = project_root()
CHECKOV = ROOT / "policies" / "checkov"
STACKS = ("local", "dev", "staging", "prod", "prod-gcp")


def _uv() -> str:
    local = ROOT / ".tools" / "bin" / "uv"
    found = str(local) if local.is_file() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to run checkov in its own environment (make venv)")
    return found


def _checkov(directory: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_uv(), "--directory", str(CHECKOV), "run", "--locked", "--quiet", "python", "run.py",
         str(directory), *extra],
        capture_output=True, text=True, check=False, env={**os.environ, "VIRTUAL_ENV": ""},
    )  # fmt: skip


def _manifests(stack: str, directory: Path) -> list[Path]:
    """What `mlops plan --stack <stack> --render-manifests <directory>` writes."""
    plan = build_plan(stack, stack_file_path(stack))
    report = render.check(plan.resources, kubernetes_objects(plan))
    assert report.problems == []
    return write_manifests(plan, directory, report.sources[1:])


@pytest.fixture(scope="module")
def every_stack(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("manifests")
    for stack in STACKS:
        assert _manifests(stack, folder / stack)
    return folder


def test_every_stack_passes_checkov_with_only_the_reviewed_skips(every_stack: Path) -> None:
    done = _checkov(every_stack)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " 0 failed " in summary and "0 stale exception(s)" in summary, summary


def test_a_hardening_regression_in_our_own_workload_fails(every_stack: Path, tmp_path: Path):
    """The prod model server's objects, its Deployment with one field changed per folder
    (one checkov run over all folders): checkov fails on exactly that check in each."""
    served = sorted((every_stack / "prod").glob("*-serving-churn*.yaml"))
    [deployment] = [p for p in served if "-deployment-" in p.name]
    cases = {
        "CKV_K8S_16": ("privileged", True),
        "CKV_K8S_20": ("allowPrivilegeEscalation", True),
        "CKV_K8S_25": ("capabilities", {"drop": ["ALL"], "add": ["NET_RAW"]}),
    }
    for check, (field, value) in cases.items():
        folder = tmp_path / check
        folder.mkdir()
        for path in served:
            shutil.copy(path, folder / path.name)
        changed = yaml.safe_load(deployment.read_text())
        changed["spec"]["template"]["spec"]["containers"][0]["securityContext"][field] = value
        (folder / deployment.name).write_text(yaml.safe_dump(changed))
    done = _checkov(tmp_path)
    assert done.returncode == 1, done.stdout
    failing = sorted(
        line.split(": ", 1)[0] for line in done.stdout.splitlines() if line.startswith("CKV")
    )
    assert failing == sorted(
        f"{check} Deployment.serving.churn ({check}/{deployment.name})" for check in cases
    ), done.stdout


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("skip: {CKV_K8S_11: short}\n", "skip.CKV_K8S_11 needs a reason (at least 20 chars)"),
        (
            "exceptions: [{checks: [CKV_K8S_8], sources: [x]}]\n",
            "exceptions[0]: needs a reason (at least 20 characters)",
        ),
        (
            "exceptions: [{checks: [CKV_K8S_8], reason: a reason long enough here}]\n",
            "exceptions[0]: needs checks and sources or objects",
        ),
        (
            "skip: {CKV_K8S_8: a reason long enough here}\n"
            "exceptions: [{checks: [CKV_K8S_8], sources: [x], reason: a reason long enough}]\n",
            "exceptions[0]: ['CKV_K8S_8'] are skipped everywhere already",
        ),
    ],
)
def test_a_skip_or_exception_without_reason_or_target_is_refused(tmp_path, config, message):
    path = tmp_path / "checks.yaml"
    path.write_text(config)
    done = _checkov(tmp_path, "--config", str(path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {path}: {message}"
