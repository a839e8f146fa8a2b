"""Every policy of the pack, in the order the engine reports them."""

from __future__ import annotations

from crossguard import aws, data, gcp, identity, kubernetes, ml, network, protection, supply_chain

PACK_NAME = "mlops-crossguard"
POLICIES = [
    *aws.POLICIES,
    *gcp.POLICIES,
    *kubernetes.POLICIES,
    *protection.POLICIES,
    *data.POLICIES,
    *network.POLICIES,
    *identity.POLICIES,
    *supply_chain.POLICIES,
    *ml.POLICIES,
]
