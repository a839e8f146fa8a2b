"""Reconcile the platform's Kubeflow Pipelines objects with a sync spec:
`python -m mlops_platform.pipelines.sync SPEC_DIR --host http://ml-pipeline.kubeflow.svc.cluster.local:8888`.

`pulumi up` usually runs outside the cluster, where the KFP API (a ClusterIP Service) is out of
reach, so the desired state travels as a ConfigMap (`spec.json` plus the compiled pipeline YAMLs,
rendered by `mlops_platform/components/pipelines/model.py`) and a Job in the cluster runs this program on it.
Everything goes through the kfp SDK (`kfp.Client`); what it converges, idempotently:

- the experiment, by display name (created when missing, unarchived when archived, never
  deleted: it holds run history);
- per pipeline: the pipeline by display name, and a version named `<pipeline>-<sha256[:12]>` of
  the compiled YAML, so an unchanged file adds nothing and a changed one adds exactly one version
  (old versions stay: past runs point at them);
- the recurring runs the platform owns, recognised by `MARKER` in their description, which also
  carries the key and a fingerprint of everything the run is made of (cron, parameters, pipeline
  version, experiment, ...). KFP has no update for recurring runs, so a changed one is created
  anew, then the old one deleted; one whose key left the spec is deleted. Recurring runs created
  by hand (no marker) are never touched.

The spec's format is defined here (`load_spec`) and produced by the pipelines component; this
module runs in the platform image and imports neither Pulumi nor the components.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPEC_FILE = "spec.json"
SPEC_VERSION = 1
# First words of the description of every recurring run this program owns.
MARKER = "managed-by: mlops-platform"
_DESCRIPTION = re.compile(
    rf"^{re.escape(MARKER)}; key: (?P<key>[a-z0-9-]+); fingerprint: (?P<fingerprint>[0-9a-f]{{16}})"
)
PAGE_SIZE = 100
LOG = logging.getLogger("mlops_platform.pipelines.sync")


class SpecError(ValueError):
    """The spec directory is not what the pipelines component renders."""


@dataclass(frozen=True)
class PipelineSpec:
    name: str  # KFP display name (the compiled `pipelineInfo.name`)
    file: str  # file name inside the spec directory
    description: str


@dataclass(frozen=True)
class RecurringRunSpec:
    key: str  # the schedule's key in the stack config; the recurring run's display name
    pipeline: str  # a `PipelineSpec.name`
    cron: str
    parameters: Mapping[str, Any]
    enabled: bool
    max_concurrency: int
    no_catchup: bool
    service_account: str


@dataclass(frozen=True)
class Spec:
    experiment: str
    experiment_description: str
    pipelines: tuple[PipelineSpec, ...]
    recurring_runs: tuple[RecurringRunSpec, ...]


@dataclass
class Changes:
    """What one run changed; empty when KFP already matched the spec. Each change is logged as
    it is made, so a run that fails half-way still says what it did."""

    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def create(self, what: str) -> None:
        self.created.append(what)
        LOG.info("created %s", what)

    def delete(self, what: str) -> None:
        self.deleted.append(what)
        LOG.info("deleted %s", what)

    def __bool__(self) -> bool:
        return bool(self.created or self.deleted)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def version_name(pipeline: str, text: str) -> str:
    """The pipeline version of a compiled YAML: same text, same name."""
    return f"{pipeline}-{content_hash(text)[:12]}"


def fingerprint(run: RecurringRunSpec, experiment: str, version: str) -> str:
    """16 hex digits of everything a recurring run is made of: equal means nothing to do."""
    material = {
        "experiment": experiment,
        "version": version,
        "cron": run.cron,
        "parameters": dict(run.parameters),
        "enabled": run.enabled,
        "max_concurrency": run.max_concurrency,
        "no_catchup": run.no_catchup,
        "service_account": run.service_account,
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def description(key: str, run_fingerprint: str, pipeline: str) -> str:
    return (
        f"{MARKER}; key: {key}; fingerprint: {run_fingerprint}. Pipeline {pipeline}, from "
        "the stack config (mlops:pipelines.schedules) by `pulumi up`: change it there, edits "
        "here are replaced."
    )


def owned(description_text: str | None) -> tuple[str, str] | None:
    """(key, fingerprint) of a recurring run this program created, else None."""
    match = _DESCRIPTION.match(description_text or "")
    return (match["key"], match["fingerprint"]) if match else None


# --- the spec ---------------------------------------------------------------------------------


def _require(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SpecError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def load_spec(directory: Path) -> Spec:
    """Read and check `spec.json` and the files it names before anything is changed."""
    path = directory / SPEC_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != SPEC_VERSION:
        raise SpecError(f"{path}: expected a spec object with version {SPEC_VERSION}")
    experiment = _require(data, "experiment", dict, "spec")
    pipelines = []
    for index, item in enumerate(_require(data, "pipelines", list, "spec")):
        where = f"spec.pipelines[{index}]"
        spec = PipelineSpec(
            name=_require(item, "name", str, where),
            file=_require(item, "file", str, where),
            description=_require(item, "description", str, where),
        )
        if "/" in spec.file or not (directory / spec.file).is_file():
            raise SpecError(f"{where}.file: no file {spec.file!r} in {directory}")
        pipelines.append(spec)
    names = {p.name for p in pipelines}
    if len(names) != len(pipelines):
        raise SpecError("spec.pipelines: pipeline names must be unique")
    runs = []
    for key, item in sorted(_require(data, "recurring_runs", dict, "spec").items()):
        where = f"spec.recurring_runs.{key}"
        run = RecurringRunSpec(
            key=key,
            pipeline=_require(item, "pipeline", str, where),
            cron=_require(item, "cron", str, where),
            parameters=_require(item, "parameters", dict, where),
            enabled=_require(item, "enabled", bool, where),
            max_concurrency=_require(item, "max_concurrency", int, where),
            no_catchup=_require(item, "no_catchup", bool, where),
            service_account=_require(item, "service_account", str, where),
        )
        if not re.fullmatch(r"[a-z0-9-]+", key):
            raise SpecError(f"{where}: keys are lowercase letters, digits and '-'")
        if run.pipeline not in names:
            raise SpecError(f"{where}.pipeline: {run.pipeline!r} is not in spec.pipelines")
        runs.append(run)
    return Spec(
        experiment=_require(experiment, "name", str, "spec.experiment"),
        experiment_description=_require(experiment, "description", str, "spec.experiment"),
        pipelines=tuple(pipelines),
        recurring_runs=tuple(runs),
    )


# --- reconciliation through kfp.Client --------------------------------------------------------


def _equals(key: str, value: str) -> str:
    # The filter proto the API server takes (backend/api/v2beta1/filter.proto); 1 is EQUALS.
    return json.dumps({"predicates": [{"operation": 1, "key": key, "stringValue": value}]})


def _pages(list_page: Callable[[str], Any], items: str) -> Iterator[Any]:
    """Every item of a paginated list call (`list_page(page_token)`)."""
    token = ""
    while True:
        response = list_page(token)
        yield from getattr(response, items) or []
        token = response.next_page_token or ""
        if not token:
            return


def _experiment_id(client: Any, spec: Spec, changes: Changes) -> str:
    found = list(
        _pages(
            lambda token: client.list_experiments(
                page_token=token,
                page_size=PAGE_SIZE,
                filter=_equals("display_name", spec.experiment),
            ),
            "experiments",
        )
    )
    if len(found) > 1:
        raise RuntimeError(f"{len(found)} experiments are named {spec.experiment!r}")
    if found:
        experiment = found[0]
        # KFP refuses new runs in an archived experiment; the platform's is declared available.
        if experiment.storage_state == "ARCHIVED":
            client.unarchive_experiment(experiment.experiment_id)
            changes.create(f"experiment {spec.experiment} (unarchived)")
        return experiment.experiment_id
    created = client.create_experiment(spec.experiment, description=spec.experiment_description)
    changes.create(f"experiment {spec.experiment}")
    return created.experiment_id


def _pipeline_version(
    client: Any, pipeline: PipelineSpec, directory: Path, changes: Changes
) -> tuple[str, str, str]:
    """(pipeline id, version id, version name) of the version holding the spec's YAML."""
    path = directory / pipeline.file
    version = version_name(pipeline.name, path.read_text())
    pipeline_id = client.get_pipeline_id(pipeline.name)
    if pipeline_id is None:
        # An empty pipeline first: `upload_pipeline` would add a version named after the
        # pipeline, and the content-hash version beside it would duplicate it.
        created = client.pipelines.pipeline_service_create_pipeline(
            client.api_models.V2beta1Pipeline(
                name=pipeline.name, display_name=pipeline.name, description=pipeline.description
            )
        )
        pipeline_id = created.pipeline_id
        changes.create(f"pipeline {pipeline.name}")
    # Listed whole, not filtered by the server: a pipeline gains a version per change only.
    found = [
        v
        for v in _pages(
            lambda token: client.list_pipeline_versions(
                pipeline_id, page_token=token, page_size=PAGE_SIZE
            ),
            "pipeline_versions",
        )
        if version in (v.display_name, v.name)
    ]
    if found:
        return pipeline_id, found[0].pipeline_version_id, version
    uploaded = client.upload_pipeline_version(
        str(path),
        pipeline_version_name=version,
        pipeline_id=pipeline_id,
        description=f"{MARKER}; sha256: {content_hash(path.read_text())}",
    )
    changes.create(f"pipeline version {version}")
    return pipeline_id, uploaded.pipeline_version_id, version


def _owned_recurring_runs(client: Any) -> list[tuple[str, str, Any]]:
    """(key, fingerprint, recurring run) of every recurring run this program created."""
    found = []
    for run in _pages(
        lambda token: client.list_recurring_runs(page_token=token, page_size=PAGE_SIZE),
        "recurring_runs",
    ):
        mark = owned(run.description)
        if mark is not None:
            found.append((*mark, run))
    return found


def sync(client: Any, spec: Spec, directory: Path) -> Changes:
    """Make KFP match `spec`; a second call with the same spec changes nothing."""
    changes = Changes()
    experiment_id = _experiment_id(client, spec, changes)
    versions = {p.name: _pipeline_version(client, p, directory, changes) for p in spec.pipelines}

    existing: dict[str, list[tuple[str, Any]]] = {}
    for key, found_print, run in _owned_recurring_runs(client):
        existing.setdefault(key, []).append((found_print, run))
    wanted = {run.key: run for run in spec.recurring_runs}

    for key, run in wanted.items():
        pipeline_id, version_id, version = versions[run.pipeline]
        wanted_print = fingerprint(run, spec.experiment, version)
        current = existing.pop(key, [])
        keep = [r for p, r in current if p == wanted_print][:1]
        if not keep:
            # Create the new one before deleting the old: a failure leaves the old schedule.
            client.create_recurring_run(
                experiment_id=experiment_id,
                job_name=key,
                description=description(key, wanted_print, run.pipeline),
                cron_expression=run.cron,
                max_concurrency=run.max_concurrency,
                no_catchup=run.no_catchup,
                params=dict(run.parameters),
                pipeline_id=pipeline_id,
                version_id=version_id,
                enabled=run.enabled,
                service_account=run.service_account,
            )
            changes.create(f"recurring run {key} ({run.cron}, {version})")
        for _, stale in current:
            if keep and stale is keep[0]:
                continue
            client.delete_recurring_run(stale.recurring_run_id)
            changes.delete(f"recurring run {key} ({stale.recurring_run_id})")
    for key, runs in sorted(existing.items()):  # keys no longer in the stack config
        for _, stale in runs:
            client.delete_recurring_run(stale.recurring_run_id)
            changes.delete(f"recurring run {key} ({stale.recurring_run_id})")
    return changes


def connect(host: str, timeout_seconds: float, interval_seconds: float = 5.0) -> Any:
    """A `kfp.Client` once the API server answers its health check (it may still be starting:
    the Job waits for the install, not for MySQL's schema)."""
    import kfp
    import kfp_server_api
    import urllib3

    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            client = kfp.Client(host=host)
            health = client.get_kfp_healthz(sleep_duration=1)
            if health.multi_user:
                raise RuntimeError(
                    f"the KFP API at {host} runs in multi-user mode; the platform installs "
                    "standalone KFP (single user)"
                )
            return client
        except (
            kfp_server_api.ApiException,
            urllib3.exceptions.HTTPError,
            TimeoutError,
            OSError,
        ) as exc:
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"the KFP API at {host} did not answer within {timeout_seconds:.0f} s: {exc}"
                ) from None
            LOG.info("waiting for the KFP API at %s: %s", host, exc)
            time.sleep(interval_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec_dir", type=Path, help=f"folder with {SPEC_FILE} and the YAMLs")
    parser.add_argument("--host", required=True, help="KFP API, e.g. http://ml-pipeline:8888")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the API")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    # kfp.Client prints links and warns about its own version on every call: not our news.
    logging.getLogger("kfp").setLevel(logging.WARNING)
    import kfp_server_api

    try:
        spec = load_spec(args.spec_dir)
        for pipeline in spec.pipelines:  # a broken file must fail before anything changes
            list(yaml.safe_load_all((args.spec_dir / pipeline.file).read_text()))
        client = connect(args.host, args.timeout)
        changes = sync(client, spec, args.spec_dir)
    # ValueError: SpecError, and the SDK's own (two pipelines or experiments of one name)
    except (ValueError, RuntimeError, yaml.YAMLError) as exc:
        print(f"kfp sync failed: {exc}", file=sys.stderr)
        return 1
    except kfp_server_api.ApiException as exc:  # the API refused a call: say what it said
        body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
        print(
            f"kfp sync failed: the KFP API answered {exc.status} {exc.reason}: {body}",
            file=sys.stderr,
        )
        return 1
    if not changes:
        print("KFP already matches the spec: nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
