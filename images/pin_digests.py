"""Pin the released images by digest in the one version file (mlops_platform/components/versions.py).

    python images/pin_digests.py --tag 0.1.0 \
        model-server=sha256:<64 hex> platform=sha256:<64 hex>

Rewrites, in the version file, every string literal that references one of the images
(`"ghcr.io/mlops-platform/<name>:<tag>"`, with or without `@sha256:<digest>`) to
`"ghcr.io/mlops-platform/<name>:<tag>@sha256:<digest>"`, and changes nothing else in the file.
The release workflow (.github/workflows/release.yml) runs it with the digests it pushed and
proposes the result as a pull request. Only the standard library: the workflow runs it with the
runner's python3, before any environment is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERSION_FILE = REPO / "mlops_platform" / "components" / "versions.py"
REGISTRY = "ghcr.io/mlops-platform"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# A tag as the OCI distribution spec allows it.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class PinError(ValueError):
    pass


def _reference(registry: str, name: str) -> re.Pattern[str]:
    """A quoted reference to `<registry>/<name>`, any tag, optionally pinned already."""
    return re.compile(
        r"""(?P<quote>["'])"""
        + re.escape(f"{registry}/{name}")
        + r""":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})(?:@sha256:[0-9a-f]{64})?(?P=quote)"""
    )


def pin(text: str, source: str, tag: str, digests: dict[str, str], registry: str = REGISTRY) -> str:
    """`text` with each image's references pinned to `tag@digest`; `source` names the file."""
    if not TAG.fullmatch(tag):
        raise PinError(f"--tag {tag!r} is not a valid image tag")
    for name, digest in digests.items():
        if not DIGEST.fullmatch(digest):
            raise PinError(f"{name}: {digest!r} is not a digest (sha256:<64 lowercase hex>)")
        pattern = _reference(registry, name)
        text, count = pattern.subn(
            lambda m, name=name, digest=digest: (
                f"{m['quote']}{registry}/{name}:{tag}@{digest}{m['quote']}"
            ),
            text,
        )
        if count == 0:
            raise PinError(
                f"{source}: no reference to {registry}/{name} (expected a string literal like "
                f'"{registry}/{name}:{tag}" or "{registry}/{name}:{tag}@sha256:...")'
            )
    return text


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    digests: dict[str, str] = {}
    for pair in pairs:
        name, sep, digest = pair.partition("=")
        if not sep or not name or not digest:
            raise PinError(f"{pair!r}: expected <image name>=sha256:<digest>")
        if name in digests:
            raise PinError(f"{name}: given twice")
        digests[name] = digest
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pin_digests", description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=VERSION_FILE)
    parser.add_argument("--registry", default=REGISTRY)
    parser.add_argument("--tag", required=True, help="the released tag, e.g. 0.1.0")
    parser.add_argument("pairs", nargs="+", metavar="NAME=DIGEST")
    args = parser.parse_args(argv)
    try:
        text = args.file.read_text()
        pinned = pin(text, str(args.file), args.tag, parse_pairs(args.pairs), args.registry)
    except (OSError, PinError) as exc:
        print(f"pin_digests: {exc}", file=sys.stderr)
        return 1
    if pinned != text:
        args.file.write_text(pinned)
        print(f"pinned {', '.join(parse_pairs(args.pairs))} in {args.file}")
    else:
        print(f"{args.file}: already pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
