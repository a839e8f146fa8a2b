"""The resource layer's pure helpers: whole-reference replacement and values merging."""

from __future__ import annotations

from mlops_platform.components.images import resources
from mlops_platform.components.images.model import ImagePolicy

D1 = "sha256:" + "1" * 64
MIRROR = "mirror.example.com/m"


def test_only_whole_known_references_are_replaced():
    replace = resources._replacer(ImagePolicy(mirror=MIRROR), ["ghcr.io/a/b:1", "postgres:17"])
    moved = f"{MIRROR}/ghcr.io/a/b:1"
    assert replace("image: ghcr.io/a/b:1\n") == f"image: {moved}\n"
    assert replace("ghcr.io/a/b:1.2") == "ghcr.io/a/b:1.2"  # another tag
    assert replace(f"ghcr.io/a/b:1@{D1}") == f"ghcr.io/a/b:1@{D1}"  # pinned as written: not ours
    assert replace("x/ghcr.io/a/b:1") == "x/ghcr.io/a/b:1"  # inside a longer path
    assert replace("postgres:17") == f"{MIRROR}/docker.io/library/postgres:17"
    assert replace("my-postgres:17") == "my-postgres:17"
    assert resources._replacer(ImagePolicy(), ["ghcr.io/a/b:1"])("ghcr.io/a/b:1") == "ghcr.io/a/b:1"


def test_values_merge_keeps_what_the_release_set():
    values = {"image": {"repository": "x", "pullPolicy": "Always"}, "replicas": 2}
    overlay = {"image": {"repository": "m/x"}, "global": {"hub": "m"}}
    assert resources._merge_values(values, overlay) == {
        "image": {"repository": "m/x", "pullPolicy": "Always"},
        "replicas": 2,
        "global": {"hub": "m"},
    }
    assert resources._merge_values(None, overlay) == overlay
