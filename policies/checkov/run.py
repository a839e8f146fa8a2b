"""checkov's Kubernetes framework over rendered manifests, with the reviewed skips of checks.yaml.

    uv --directory policies/checkov run --locked python run.py DIR [--config checks.yaml]

DIR holds `mlops plan --render-manifests` output (one or more stacks' folders): one YAML file per
object, `NNN-<release>-<kind>-<namespace>-<name>.yaml` for the objects of a Helm release or a
kustomize tree, `NNN-<kind>-<namespace>-<name>.yaml` for the program's own.

checks.yaml has two lists, each entry with its reason:
- `skip`: checks disabled everywhere (passed to checkov as --skip-check);
- `exceptions`: checks that fail on named objects only: the objects of a release (`sources`) or
  single objects by checkov's resource id (`objects`, globs such as `Deployment.mlflow.mlflow`).

Exit status 0 when every failure is excepted and every exception still matches a failure (a stale
exception is an error, so the list only shrinks when charts improve); 1 otherwise; 2 on bad
input. checkov runs offline (--skip-download: no guideline or policy download).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
MIN_REASON = 20
_INDEX = re.compile(r"^\d+-")


class ConfigError(ValueError):
    pass


@dataclass
class Exception_:
    checks: list[str]
    sources: list[str]
    objects: list[str]
    reason: str
    used: set[str] = field(default_factory=set)

    def covers(self, check: str, source: str, resource: str) -> bool:
        return check in self.checks and (
            source in self.sources or any(fnmatch.fnmatchcase(resource, o) for o in self.objects)
        )


def load_config(path: Path) -> tuple[dict[str, str], list[Exception_]]:
    """(skipped check -> reason, exceptions); errors name the entry."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = set(document) - {"skip", "exceptions"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (skip, exceptions)")
    skip = document.get("skip") or {}
    for check, reason in skip.items():
        if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
            raise ConfigError(f"{path}: skip.{check} needs a reason (at least {MIN_REASON} chars)")
    exceptions = []
    for index, entry in enumerate(document.get("exceptions") or []):
        where = f"{path}: exceptions[{index}]"
        extra = set(entry) - {"checks", "sources", "objects", "reason"}
        if extra:
            raise ConfigError(f"{where}: unknown keys {sorted(extra)}")
        reason = entry.get("reason")
        if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
            raise ConfigError(f"{where}: needs a reason (at least {MIN_REASON} characters)")
        if not entry.get("checks") or not (entry.get("sources") or entry.get("objects")):
            raise ConfigError(f"{where}: needs checks and sources or objects")
        overlap = set(entry["checks"]) & set(skip)
        if overlap:
            raise ConfigError(f"{where}: {sorted(overlap)} are skipped everywhere already")
        exceptions.append(
            Exception_(
                list(entry["checks"]),
                list(entry.get("sources") or []),
                list(entry.get("objects") or []),
                reason,
            )
        )
    return skip, exceptions


def source_of(file_path: str, sources: set[str]) -> str:
    """The release a rendered file belongs to (its name after the index), or "" (program)."""
    stem = _INDEX.sub("", Path(file_path).name)
    matches = [s for s in sources if stem.startswith(f"{s}-")]
    return max(matches, key=len) if matches else ""


def run_checkov(directory: Path, skip: dict[str, str]) -> dict[str, Any]:
    command = [
        str(Path(sys.executable).parent / "checkov"),
        "--directory", str(directory),
        "--framework", "kubernetes",
        "--skip-download",
        "--quiet",
        "--compact",
        "--output", "json",
    ]  # fmt: skip
    if skip:
        command += ["--skip-check", ",".join(sorted(skip))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    # checkov exits 1 when a check failed; anything else without JSON is an error.
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise ConfigError(
            f"checkov failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
        ) from None
    if isinstance(report, list):  # one entry per framework
        report = next(r for r in report if r.get("check_type") == "kubernetes")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run.py")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--config", type=Path, default=HERE / "checks.yaml")
    parser.add_argument("--sources", help="comma-separated release names (default: from config)")
    args = parser.parse_args(argv)
    try:
        skip, exceptions = load_config(args.config)
        if not args.directory.is_dir():
            raise ConfigError(f"{args.directory}: not a folder of rendered manifests")
        report = run_checkov(args.directory, skip)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sources = {s for e in exceptions for s in e.sources}
    if args.sources:
        sources |= set(args.sources.split(","))
    failures = []
    for failed in (report.get("results") or {}).get("failed_checks", []):
        check, resource = failed["check_id"], failed["resource"]
        source = source_of(failed["file_path"], sources)
        covering = [e for e in exceptions if e.covers(check, source, resource)]
        for exception in covering:
            exception.used.add(check)
        if not covering:
            failures.append(f"{check} {resource} ({failed['file_path'].lstrip('/')}): "
                            f"{failed['check_name']}")  # fmt: skip
    stale = [
        f"exception for {check} on {e.sources or e.objects} matches no failure"
        for e in exceptions
        for check in e.checks
        if check not in e.used
    ]
    for line in sorted(failures) + stale:
        print(line)
    summary = report.get("summary", {})
    print(
        f"checkov {summary.get('checkov_version', '?')}: {summary.get('resource_count', 0)} "
        f"resources, {summary.get('passed', 0)} passed, {len(failures)} failed "
        f"(after {len(skip)} skipped checks and {len(exceptions)} exceptions), "
        f"{len(stale)} stale exception(s)"
    )
    return 1 if failures or stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
