"""Entry point of the component provider plugin (PulumiPlugin.yaml): host the components of
platform_components.py; the engine asks it for the schema and to construct them."""

from platform_components import COMPONENTS, PACKAGE, package_version
from pulumi.provider.experimental import component_provider_host

if __name__ == "__main__":
    component_provider_host(COMPONENTS, name=PACKAGE, version=package_version())
