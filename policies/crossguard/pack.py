"""Every policy of the pack, in the order the engine reports them."""

from __future__ import annotations

from crossguard import aws, gcp, kubernetes, protection

PACK_NAME = "mlops-crossguard"
POLICIES = [*aws.POLICIES, *gcp.POLICIES, *kubernetes.POLICIES, *protection.POLICIES]
