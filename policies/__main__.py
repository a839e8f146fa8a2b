"""Entry point the Pulumi CLI runs for `--policy-pack policies`: serves the pack over gRPC."""

from crossguard.pack import PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    # Policies state their own level; a policy added without one blocks rather than warns.
    enforcement_level=EnforcementLevel.MANDATORY,
    description="Governance of everything the mlops platform creates (see README.md).",
)
