"""Entry point of `pulumi up` / `pulumi preview` for every layer (deploy/<layer>/Pulumi.yaml sets
`main` to this folder): the layer is the project's, see mlops_platform/program.py."""

from mlops_platform.program import main

main()
