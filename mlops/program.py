"""The Pulumi program: validate the stack config once, then compose the components.

`__main__.py` (what `pulumi up` runs) and `mlops plan` (the same program under mocks) both call
`main()`; there is no other entry point and no logic outside the components.
"""

from __future__ import annotations

import pulumi

from mlops import config


def main() -> None:
    try:
        platform = config.from_pulumi_runtime()
    except config.ConfigError as exc:
        # RunError is reported by the engine as a clean message, without a Python stack trace,
        # and nothing has been registered yet.
        raise pulumi.RunError(str(exc)) from None
    compose(platform)


def compose(platform: config.PlatformConfig) -> None:
    """Create every component of the platform from validated config and export its outputs."""
    pulumi.export("cloud", platform.cloud.type)
