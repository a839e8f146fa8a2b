"""Entry point for `pulumi up` / `pulumi preview`: see mlops/program.py."""

from mlops.program import main

main()
