"""The pack's environment is the deliberate one: protobuf 5.29 for pulumi-policy, and no kfp."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).parents[1] / "uv.lock"


def locked_versions() -> dict[str, str]:
    return {p["name"]: p["version"] for p in tomllib.loads(LOCK.read_text())["package"]}


def test_lock_pins_policy_sdk_with_protobuf_5_29_and_no_kfp():
    locked = locked_versions()
    assert locked["pulumi-policy"] == "1.21.0"
    assert locked["pulumi"] == "3.272.0"
    assert locked["protobuf"].startswith("5.29.")
    assert "kfp" not in locked


def test_installed_environment_matches_the_lock():
    locked = locked_versions()
    for name in ("pulumi-policy", "pulumi", "protobuf", "grpcio"):
        assert metadata.version(name) == locked[name], name
