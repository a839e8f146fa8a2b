"""Entry point of `pulumi up` / `pulumi preview` for every layer (deploy/<layer>/Pulumi.yaml sets
`main` to this folder): the layer is the project's, see mlops/program.py."""

from mlops.program import main

main()
