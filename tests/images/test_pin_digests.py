"""images/pin_digests.py: the release workflow's rewrite of the image references in the version
file. Only the references change; the rest of the file is kept byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from images.pin_digests import PinError, parse_pairs, pin

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "images" / "pin_digests.py"
OLD = "sha256:" + "a" * 64
NEW_SERVER = "sha256:" + "1" * 64
NEW_PLATFORM = "sha256:" + "2" * 64
VERSIONS = f'''"""Every external version."""

MODEL_SERVER_IMAGE = "ghcr.io/mlops-platform/model-server:0.1.0"
PLATFORM_IMAGE = 'ghcr.io/mlops-platform/platform:0.0.9@{OLD}'
# A look-alike that must stay: another registry, and another repository.
MIRRORED = "registry.example.com/mlops-platform/model-server:0.1.0"
OTHER = "ghcr.io/mlops-platform/model-server-gpu:0.1.0"
MLFLOW_IMAGE = "ghcr.io/mlflow/mlflow:v3.17.0-full"
'''


def test_pins_each_reference_and_nothing_else() -> None:
    pinned = pin(
        VERSIONS, "versions.py", "0.2.0", {"model-server": NEW_SERVER, "platform": NEW_PLATFORM}
    )
    expected = VERSIONS.replace(
        '"ghcr.io/mlops-platform/model-server:0.1.0"',
        f'"ghcr.io/mlops-platform/model-server:0.2.0@{NEW_SERVER}"',
    ).replace(
        f"'ghcr.io/mlops-platform/platform:0.0.9@{OLD}'",
        f"'ghcr.io/mlops-platform/platform:0.2.0@{NEW_PLATFORM}'",
    )
    assert pinned == expected
    # Idempotent: pinning the same digests again changes nothing.
    again = pin(pinned, "versions.py", "0.2.0", {"model-server": NEW_SERVER})
    assert again == pinned


@pytest.mark.parametrize(
    ("tag", "digests", "message"),
    [
        ("0.2.0", {"model-server": "sha256:abc"}, "model-server: 'sha256:abc' is not a digest"),
        ("0.2.0", {"model-server": "sha256:" + "A" * 64}, "is not a digest"),
        (
            "0.2.0",
            {"notebook": NEW_SERVER},
            "versions.py: no reference to ghcr.io/mlops-platform/notebook",
        ),
        ("0.2.0 ", {"model-server": NEW_SERVER}, "is not a valid image tag"),
    ],
)
def test_bad_input_is_refused_with_the_field_named(
    tag: str, digests: dict[str, str], message: str
) -> None:
    with pytest.raises(PinError, match=message.replace("(", r"\(")):
        pin(VERSIONS, "versions.py", tag, digests)


def test_pairs_are_name_equals_digest() -> None:
    assert parse_pairs([f"platform={NEW_PLATFORM}"]) == {"platform": NEW_PLATFORM}
    with pytest.raises(PinError, match="expected <image name>=sha256:<digest>"):
        parse_pairs([NEW_PLATFORM])
    with pytest.raises(PinError, match="platform: given twice"):
        parse_pairs([f"platform={NEW_PLATFORM}", f"platform={NEW_SERVER}"])


def test_command_line_rewrites_a_copy_of_the_real_version_file(tmp_path: Path) -> None:
    """As the workflow runs it (runner's python3, stdlib only) on a copy of the real version
    file, which holds the two references: exactly those lines change."""
    real = (REPO / "mlops_platform" / "components" / "versions.py").read_text()
    for reference in (
        'MODEL_SERVER_IMAGE = "ghcr.io/mlops-platform/model-server:0.1.0"\n',
        'PLATFORM_IMAGE = "ghcr.io/mlops-platform/platform:0.1.0"\n',
    ):
        assert real.count(reference) == 1, reference
    target = tmp_path / "versions.py"
    target.write_text(real)
    args = [sys.executable, str(SCRIPT), "--file", str(target), "--tag", "0.1.0"]
    pairs = [f"model-server={NEW_SERVER}", f"platform={NEW_PLATFORM}"]
    result = subprocess.run([*args, *pairs], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert target.read_text() == real.replace(
        'model-server:0.1.0"', f'model-server:0.1.0@{NEW_SERVER}"'
    ).replace('platform:0.1.0"', f'platform:0.1.0@{NEW_PLATFORM}"')
    missing = subprocess.run([*args, f"notebook={NEW_SERVER}"], capture_output=True, text=True)
    assert missing.returncode == 1
    assert f"{target}: no reference to ghcr.io/mlops-platform/notebook" in missing.stderr
