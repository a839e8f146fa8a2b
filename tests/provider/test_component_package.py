"""The component package's checks (package_checks.py), in a fresh interpreter.

The component provider host imports `pulumi.provider.server`, which registers its own copy of
the `google.rpc.Status` proto; googleapis-common-protos (imported by kfp in the pipeline tests)
registers the same symbol from another file, and whichever is imported second fails with
"duplicate symbol 'google.rpc.Status'". The plugin runs in its own process (its own uv
environment, without kfp), so its checks do too.
"""

import re
import subprocess
import sys
from pathlib import Path

CHECKS = Path(__file__).with_name("package_checks.py")
REPO = Path(__file__).resolve().parents[2]


def test_component_package_checks_pass_in_their_own_process():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CHECKS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    # Checks ran and none failed or errored (a collection mistake would run nothing).
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\b[1-9][0-9]* passed\b", summary), summary
    assert not re.search(r"\b(failed|error|errors|skipped)\b", summary), summary
