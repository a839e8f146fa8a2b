"""Run Pulumi programs with no engine and no cloud: every registration is recorded.

`pulumi.runtime.Mocks` alone only sees a resource's type, name and inputs. The plan and the
tests also need the parent, `protect`, `retainOnDelete`, dependencies and which inputs are
secret, so the monitor below keeps the whole registration request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2

SECRET_MASK = "[secret]"
# What `pulumi preview` shows for a value only the provider will know.
UNKNOWN_MASK = "(known after apply)"


STACK_REFERENCE = "pulumi:pulumi:StackReference"


@dataclass
class Exports:
    """A stack's outputs as `pulumi.export` set them: plain values, and which are secret."""

    values: dict[str, Any] = field(default_factory=dict)
    secret_names: set[str] = field(default_factory=set)


@dataclass
class Recorded:
    """One resource as the engine would receive it."""

    type: str
    name: str
    urn: str
    parent: str | None
    inputs: dict[str, Any]
    custom: bool
    protect: bool = False
    retain_on_delete: bool = False
    depends_on: list[str] = field(default_factory=list)
    provider: str | None = None
    secret_inputs: set[str] = field(default_factory=set)
    ignore_changes: list[str] = field(default_factory=list)
    masked_inputs: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)  # full URNs it was known by before
    layer: str = (
        ""  # the platform layer whose program registered it (mlops_platform.plan.run_layers)
    )

    @property
    def parent_name(self) -> str | None:
        return self.parent.rsplit("::", 1)[-1] if self.parent else None

    @property
    def parent_type(self) -> str | None:
        if not self.parent:
            return None
        return self.parent.split("::")[2].split("$")[-1]


def _fake_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Plausible provider-computed outputs, so programs that read them keep going."""
    digest = hashlib.sha1(f"{typ}/{name}".encode()).hexdigest()[:12]
    out: dict[str, Any] = {}
    if typ.startswith("aws:"):
        resource = typ.split("/")[-1].split(":")[0]
        out["arn"] = f"arn:aws:{resource}:us-east-1:123456789012:{name}"
        out.setdefault("id", f"{name}-{digest}")
    if typ == "aws:s3/bucketV2:BucketV2" or typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{name}-{digest}"
        out.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
    if typ == "aws:kms/key:Key":
        out.update(keyId=digest, arn=f"arn:aws:kms:us-east-1:123456789012:key/{digest}")
    if typ == "aws:eks/cluster:Cluster":
        out.update(
            endpoint=f"https://{digest}.gr7.us-east-1.eks.amazonaws.com",
            certificateAuthority={"data": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"},
            identities=[
                {"oidcs": [{"issuer": f"https://oidc.eks.us-east-1.amazonaws.com/id/{digest}"}]}
            ],
            vpcConfig={**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{digest}"},
        )
    if typ == "aws:rds/instance:Instance":
        address = f"{inputs.get('identifier', name)}.{digest}.us-east-1.rds.amazonaws.com"
        out.update(address=address, endpoint=f"{address}:5432", port=5432)
    if typ == "gcp:sql/databaseInstance:DatabaseInstance":
        out["privateIpAddress"] = "10.20.0.3"
    if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
        group = inputs.get("replicationGroupId", name)
        out["primaryEndpointAddress"] = f"master.{group}.{digest}.use1.cache.amazonaws.com"
    if typ == "gcp:redis/instance:Instance":
        out.update(
            host="10.20.1.4",
            port=6378,
            authString="mock-" + digest,
            serverCaCerts=[{"cert": "-----BEGIN CERTIFICATE-----\nmock\n", "serialNumber": "1"}],
        )
    if typ == "aws:ec2/launchTemplate:LaunchTemplate":
        out.update(latestVersion=1, defaultVersion=1)
    if typ == "aws:eks/nodeGroup:NodeGroup":
        # the Auto Scaling group EKS creates for a managed node group (autoscaler tags go there)
        out["resources"] = [{"autoscalingGroups": [{"name": f"eks-{name}-{digest}"}]}]
    if typ.startswith("gcp:"):
        out.setdefault("selfLink", f"https://www.googleapis.com/compute/v1/{name}")
    if typ == "gcp:container/cluster:Cluster":
        out.update(
            endpoint="10.0.0.2",
            masterAuth={"clusterCaCertificate": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"},
        )
    if typ == "gcp:serviceaccount/account:Account":
        account_id = inputs.get("accountId", name)
        out["email"] = f"{account_id}@project.iam.gserviceaccount.com"
        out["name"] = f"projects/project/serviceAccounts/{out['email']}"
    if typ == "random:index/randomPassword:RandomPassword":
        out["result"] = "mock-" + digest
    return out


_CALL_RESULTS: dict[str, dict[str, Any]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": {
        "names": ["us-east-1a", "us-east-1b", "us-east-1c"],
        "zoneIds": ["use1-az1", "use1-az2", "use1-az4"],
    },
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": "123456789012",
        "arn": "arn:aws:iam::123456789012:user/mock",
        "userId": "mock",
    },
    "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com"},
    "aws:index/getRegion:getRegion": {"name": "us-east-1", "region": "us-east-1"},
    "gcp:compute/getZones:getZones": {"names": ["europe-west4-a", "europe-west4-b"]},
}


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs back as outputs, with provider-computed fields filled in.

    `stacks` are the outputs of the stacks a program may reference (`pulumi.StackReference`),
    by `org/project/stack`, as `Exports` recorded from running their programs."""

    def __init__(self, stacks: dict[str, Exports] | None = None):
        self.stacks = stacks or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ == STACK_REFERENCE:
            name = args.inputs.get("name") or args.name
            if name not in self.stacks:
                raise KeyError(
                    f"stack reference {name!r}: no such stack planned before this one "
                    f"(have: {', '.join(sorted(self.stacks)) or 'none'})"
                )
            exports = self.stacks[name]
            return name, {
                "name": name,
                "outputs": exports.values,
                "secretOutputNames": sorted(exports.secret_names),
            }
        outputs = dict(args.inputs)
        outputs.update(_fake_outputs(args.typ, args.name, args.inputs))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps({"Version": "2012-10-17", **args.args})}
        return _CALL_RESULTS.get(args.token, {})


def _mask_leaves(value: Any) -> Any:
    """Hide every value of a secret but keep its shape (a Secret's keys are not secret)."""
    if isinstance(value, dict):
        return {k: _mask_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_leaves(v) for v in value]
    return SECRET_MASK


def _unwrap_secrets(value: Any, path: str, secret_paths: set[str], mask: bool = False) -> Any:
    """Plain value of a serialized input; records the paths of secrets (masked if `mask`)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            secret_paths.add(path)
            inner = _unwrap_secrets(value.get("value"), path, set())
            return _mask_leaves(inner) if mask else inner
        return {
            k: _unwrap_secrets(v, f"{path}.{k}" if path else k, secret_paths, mask)
            for k, v in value.items()
            if not k.startswith("__")  # engine-internal bookkeeping such as __defaults
        }
    if isinstance(value, list):
        return [_unwrap_secrets(v, f"{path}[{i}]", secret_paths, mask) for i, v in enumerate(value)]
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return UNKNOWN_MASK
    if isinstance(value, float) and value.is_integer():
        # The wire format (protobuf Struct) has only doubles: `runAsUser: 10001` arrives as
        # 10001.0. The provider sends it to the API server as the JSON number 10001, so the
        # record keeps the integer the program wrote.
        return int(value)
    return value


@dataclass
class RegisteredOutputs:
    """What a component passed to `register_outputs`: values (secrets masked) and the paths of
    the secret ones."""

    values: dict[str, Any]
    secret_paths: set[str]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that also records parent, options and secret inputs of every resource."""

    def __init__(self, mocks: pulumi.runtime.Mocks | None = None):
        super().__init__(mocks or RecordingMocks())
        self.recorded: list[Recorded] = []
        self.exports = Exports()
        # Each component's `register_outputs`, by URN: what `mlops docs` lists.
        self.registered_outputs: dict[str, RegisteredOutputs] = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw = rpc.deserialize_properties(request.object, keep_internal=True)
        secret_paths: set[str] = set()
        inputs = _unwrap_secrets(raw, "", secret_paths)
        masked = _unwrap_secrets(raw, "", set(), mask=True)
        self.recorded.append(
            Recorded(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent or None,
                inputs=inputs,
                custom=bool(request.custom),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                depends_on=list(request.dependencies),
                provider=request.provider or None,
                secret_inputs=secret_paths,
                masked_inputs=masked,
                ignore_changes=list(request.ignoreChanges),
                aliases=[*request.aliasURNs, *(a.urn for a in request.aliases if a.urn)],
            )
        )
        return response

    def RegisterResourceOutputs(self, request):
        raw = rpc.deserialize_properties(request.outputs, keep_internal=True)
        secret_paths: set[str] = set()
        values = _unwrap_secrets(raw, "", secret_paths, mask=True)
        self.registered_outputs[request.urn] = RegisteredOutputs(values, secret_paths)
        return super().RegisterResourceOutputs(request)

    def GetDeploymentInfo(self, request):
        # Without alias specs the SDK sends every alias as a full URN (recorded above), as it
        # does to engines that predate them.
        info = super().GetDeploymentInfo(request)
        features = [
            f
            for f in info.supportedFeatures
            if f != resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS
        ]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.recorded if r.type == typ]

    def named(self, name: str) -> Recorded:
        matches = [r for r in self.recorded if r.name == name]
        if len(matches) != 1:
            known = ", ".join(sorted(r.name for r in self.recorded))
            raise KeyError(
                f"expected one resource named {name!r}, found {len(matches)}; have: {known}"
            )
        return matches[0]


ORGANIZATION = "organization"  # what the self-managed backends call every stack's organization


def install(
    project: str = "mlops",
    stack: str = "test",
    preview: bool = True,
    stacks: dict[str, Exports] | None = None,
) -> RecordingMonitor:
    """Point the Pulumi runtime at a fresh recording monitor and return it."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    monitor = RecordingMonitor(RecordingMocks(stacks))
    pulumi.runtime.set_mocks(
        monitor.mocks,
        project=project,
        stack=stack,
        preview=preview,
        monitor=monitor,
        organization=ORGANIZATION,
    )
    return monitor


def _collect_exports() -> Exports:
    """The root stack's outputs once the program has run (`pulumi.export`)."""
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.sync_await import _sync_await

    exports = Exports()
    root = get_root_resource()
    for name, value in (getattr(root, "outputs", None) or {}).items():
        output = pulumi.Output.from_input(value)
        resolved = _sync_await(output.future(with_unknowns=True))
        paths: set[str] = set()
        plain = _unwrap_secrets(resolved, "", paths)
        exports.values[name] = plain
        if _sync_await(output.is_secret()) or paths:
            exports.secret_names.add(name)
    return exports


def run(
    program,
    *,
    project: str = "mlops",
    stack: str = "test",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    stacks: dict[str, Exports] | None = None,
) -> RecordingMonitor:
    """Run `program()` as `pulumi preview` would, under mocks, and return what it registered.

    `config` maps full keys (`mlops:cloud`) to strings, as the engine passes them; an exception
    raised by the program propagates. `stacks`: the outputs of the stacks it may reference;
    what it exports is in `monitor.exports`.
    """
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    monitor = install(project=project, stack=stack, stacks=stacks)
    pulumi.runtime.set_all_config(config or {}, secret_keys or [])
    _sync_await(run_pulumi_func(program))
    monitor.exports = _collect_exports()
    return monitor


def merged(monitors: list[RecordingMonitor]) -> RecordingMonitor:
    """One monitor holding what several programs registered (the layers of one environment),
    for tests that look at the whole platform."""
    combined = RecordingMonitor()
    for monitor in monitors:
        combined.recorded += monitor.recorded
        combined.registered_outputs |= monitor.registered_outputs
    return combined
