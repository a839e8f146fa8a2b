"""CHANGELOG.md: Keep a Changelog headings, the project's version released in it, and every
upgrade note announced by a changelog entry."""

import re
import tomllib

from mlops_platform.plan import project_root

ROOT = project_root()
RELEASE = re.compile(r"^## \[(\d+)\.(\d+)\.(\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def _changelog() -> str:
    return (ROOT / "CHANGELOG.md").read_text()


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_unreleased_comes_first_then_releases_newest_first():
    text = _changelog()
    sections = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert sections[0] == "Unreleased", sections
    releases = [tuple(map(int, m[:3])) for m in RELEASE.findall(text)]
    assert len(releases) == len(sections) - 1, "a release heading is not `## [X.Y.Z] - date`"
    assert releases == sorted(releases, reverse=True), releases


def test_the_project_version_is_a_released_section():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    released = {".".join(m[:3]) for m in RELEASE.findall(_changelog())}
    assert version in released, (
        f"pyproject.toml says {version}; CHANGELOG.md has no `## [{version}] - <date>` section"
    )


def test_every_upgrade_note_is_linked_from_the_changelog():
    upgrading = (ROOT / "UPGRADING.md").read_text()
    notes = re.findall(r"^## (.+)$", upgrading, re.M)
    assert notes
    text = _changelog()
    unlinked = [note for note in notes if f"UPGRADING.md#{_anchor(note)}" not in text]
    assert not unlinked, f"upgrade notes no changelog entry links to: {unlinked}"


def test_anchor_matches_githubs():
    assert _anchor("Pluggable backends are `type:` blocks") == "pluggable-backends-are-type-blocks"
    assert _anchor("The gp3 StorageClass (EKS)") == "the-gp3-storageclass-eks"
