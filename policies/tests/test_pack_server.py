"""The pack as the Pulumi CLI runs it: `__main__.py` serving the analyzer protocol over gRPC.

This is the path `pulumi preview --policy-pack policies` takes (the CLI starts the program,
reads the port from its first line of output and calls the analyzer), minus the CLI itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from crossguard.pack import PACK_NAME, POLICIES
from google.protobuf import struct_pb2
from harness import _engine_value, entry, load_plan, stack_args, urn
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, plugin_pb2
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE
from test_platform_complies import KNOWN_ADVISORY

PACK_DIR = Path(__file__).parents[1]
PLAN = load_plan("prod")


@pytest.fixture(scope="module")
def analyzer():
    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def test_pack_describes_every_policy(analyzer):
    info = analyzer.GetAnalyzerInfo(plugin_pb2.PluginInfo())
    assert info.name == PACK_NAME
    assert [policy.name for policy in info.policies] == [policy.name for policy in POLICIES]
    levels = {p.name: analyzer_pb2.EnforcementLevel.Name(p.enforcementLevel) for p in info.policies}
    assert levels["s3-bucket-companions"] == "MANDATORY"
    assert levels["aws-required-tags"] == "MANDATORY"
    assert levels["k8s-no-latest-image"] == "ADVISORY"


def test_analyze_reports_a_resource_violation(analyzer):
    block = entry(PLAN, "mlops-artifacts-public-access-block")
    request = analyzer_pb2.AnalyzeRequest(
        type=block["type"],
        name=block["name"],
        urn=urn(PLAN, block),
        properties=struct({**block["inputs"], "ignorePublicAcls": False}),
    )
    response = analyzer.Analyze(request)
    assert [(d.policyName, d.message) for d in response.diagnostics] == [
        (
            "s3-public-access-block-all-true",
            "S3 public access blocks set blockPublicAcls, blockPublicPolicy, ignorePublicAcls "
            "and restrictPublicBuckets all to true.\n"
            "BucketPublicAccessBlock 'mlops-artifacts-public-access-block': ignorePublicAcls "
            "must be true, got false",
        )
    ]
    clean = analyzer_pb2.AnalyzeRequest(
        type=block["type"],
        name=block["name"],
        urn=urn(PLAN, block),
        properties=struct(block["inputs"]),
    )
    assert list(analyzer.Analyze(clean).diagnostics) == []


def test_analyze_stack_uses_property_dependencies_and_config(analyzer):
    bucket = entry(PLAN, "mlops-artifacts")
    bucket_urn = urn(PLAN, bucket)
    companions = [
        entry(PLAN, f"mlops-artifacts-{suffix}")
        for suffix in ("encryption", "public-access-block", "versioning", "policy")
    ]
    resources = [
        analyzer_pb2.AnalyzerResource(
            type=bucket["type"],
            name=bucket["name"],
            urn=bucket_urn,
            properties=struct(bucket["inputs"]),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=False),
        )
    ]
    for companion in companions:
        resources.append(
            analyzer_pb2.AnalyzerResource(
                type=companion["type"],
                name=companion["name"],
                urn=urn(PLAN, companion),
                # The bucket id is unknown in a first preview: only the dependency says which.
                properties=struct({**companion["inputs"], "bucket": UNKNOWN_STRING_VALUE}),
                dependencies=[bucket_urn],
                propertyDependencies={
                    "bucket": analyzer_pb2.AnalyzerPropertyDependencies(urns=[bucket_urn])
                },
            )
        )
    request = analyzer_pb2.AnalyzeStackRequest(resources=resources)
    assert list(analyzer.AnalyzeStack(request).diagnostics) == []

    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                "stateful-resources-protected": analyzer_pb2.PolicyConfig(
                    enforcementLevel=analyzer_pb2.MANDATORY,
                    properties=struct({"requireProtect": True}),
                )
            }
        )
    )
    without_versioning = analyzer_pb2.AnalyzeStackRequest(
        resources=[r for r in resources if r.name != "mlops-artifacts-versioning"]
    )
    diagnostics = analyzer.AnalyzeStack(without_versioning).diagnostics
    assert sorted((d.policyName, d.message.split("\n")[1], d.urn) for d in diagnostics) == [
        (
            "s3-bucket-companions",
            "Bucket 'mlops-artifacts': versioning is not enabled (no BucketVersioning with "
            "versioningConfiguration.status Enabled targets it)",
            bucket_urn,
        ),
        (
            "stateful-resources-protected",
            "Bucket 'mlops-artifacts': resource option protect must be true on this stack "
            "(stateful resource)",
            bucket_urn,
        ),
    ]


def _engine_inputs(inputs: dict) -> dict:
    """Plan inputs as the engine sends them (values known only after apply are unknown)."""
    return _engine_value(inputs)


@pytest.mark.parametrize("stack", ["dev", "prod", "prod-gcp"])
def test_shipped_stack_through_the_analyzer(analyzer, stack):
    """The whole plan through the real analyzer with the stack's config file, as a preview
    with `--policy-pack-config policies/config/<stack>.json` runs it: no mandatory finding, and
    advisory ones only from the documented exceptions."""
    plan = load_plan(stack)
    config = json.loads((PACK_DIR / "config" / f"{stack}.json").read_text())
    policy_config = {}
    levels_by_name = {p.name: p.enforcement_level.value for p in POLICIES}
    for name, settings in config.items():
        settings = dict(settings)
        # The CLI sends the policy's own level when the file sets none.
        level = settings.pop("enforcementLevel", levels_by_name[name])
        policy_config[name] = analyzer_pb2.PolicyConfig(
            enforcementLevel=analyzer_pb2.EnforcementLevel.Value(level.upper()),
            properties=struct(settings),
        )
    try:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config))
        args = stack_args(plan)
        providers = {
            r["type"].split(":")[-1]: r
            for r in plan["resources"]
            if r["type"].startswith("pulumi:providers:")
        }
        by_urn = {urn(plan, r): r for r in plan["resources"]}
        diagnostics = []
        stack_resources = []
        for resource in args.resources:
            planned = by_urn[resource.urn]
            if planned["type"].startswith(("mlops:", "pulumi:providers:")):
                continue
            provider = providers.get(planned["type"].split(":")[0])
            provider_message = (
                analyzer_pb2.AnalyzerProviderResource(
                    type=provider["type"],
                    properties=struct(_engine_inputs(provider["inputs"])),
                    urn=urn(plan, provider),
                    name=provider["name"],
                )
                if provider
                else None
            )
            properties = struct(_engine_inputs(planned["inputs"]))
            options = analyzer_pb2.AnalyzerResourceOptions(protect=planned["protect"])
            diagnostics += analyzer.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=planned["type"],
                    name=planned["name"],
                    urn=resource.urn,
                    properties=properties,
                    options=options,
                    provider=provider_message,
                )
            ).diagnostics
            stack_resources.append(
                analyzer_pb2.AnalyzerResource(
                    type=planned["type"],
                    name=planned["name"],
                    urn=resource.urn,
                    properties=properties,
                    options=options,
                    provider=provider_message,
                    dependencies=[d.urn for d in resource.dependencies],
                    propertyDependencies={
                        key: analyzer_pb2.AnalyzerPropertyDependencies(urns=[d.urn for d in deps])
                        for key, deps in resource.property_dependencies.items()
                    },
                )
            )
        diagnostics += analyzer.AnalyzeStack(
            analyzer_pb2.AnalyzeStackRequest(resources=stack_resources)
        ).diagnostics
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={}))
    levels = {
        (d.policyName, analyzer_pb2.EnforcementLevel.Name(d.enforcementLevel)) for d in diagnostics
    }
    assert {name for name, level in levels if level == "MANDATORY"} == set()
    assert {name for name, _ in levels} <= KNOWN_ADVISORY
