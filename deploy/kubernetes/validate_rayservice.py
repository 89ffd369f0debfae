"""Validate deploy/kubernetes/rayservice.yaml against KubeRay's RayService CRD, without a cluster.

    python deploy/kubernetes/validate_rayservice.py CRD.yaml [MANIFEST.yaml]

``CRD.yaml`` is KubeRay's ``ray.io_rayservices.yaml`` (in the operator's repository at
``ray-operator/config/crd/bases/``, or in the kuberay-operator Helm chart's ``crds/``). The
manifest's ``apiVersion`` picks the CRD version; its ``openAPIV3Schema`` becomes a JSON
Schema as the Kubernetes API server reads it (structural schemas):

* ``nullable: true`` also admits null; ``x-kubernetes-int-or-string`` admits an integer or
  a string;
* an object with ``properties`` and without ``x-kubernetes-preserve-unknown-fields`` takes
  no other fields (the API server drops them, and ``kubectl apply`` with strict field
  validation, its default, refuses them): a misspelt field is an error here too.

What this cannot check (only a cluster can): admission webhooks, KubeRay's own validation
of the spec in its controller, quantities' syntax beyond int-or-string, and that the images,
Secrets and claims named exist. Exit status 0 when the manifest is valid, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

MANIFEST = Path(__file__).resolve().with_name("rayservice.yaml")
KUBERNETES_KEYWORDS = ("x-kubernetes-", "nullable")


def crd_schema(crd: Dict[str, Any], api_version: str) -> Dict[str, Any]:
    """The ``openAPIV3Schema`` of the CRD version named by ``api_version`` (``group/version``)."""
    group, _, version = api_version.partition("/")
    if crd.get("spec", {}).get("group") != group:
        raise ValueError(f"the CRD is for group {crd.get('spec', {}).get('group')!r}, the manifest's is {group!r}")
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            if not entry.get("served", False):
                raise ValueError(f"the CRD does not serve version {version!r}")
            return entry["schema"]["openAPIV3Schema"]
    raise ValueError(f"the CRD has no version {version!r}: {[v['name'] for v in crd['spec']['versions']]}")


def to_json_schema(node: Any) -> Any:
    """A Kubernetes structural schema as a JSON Schema (see the module docstring)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: to_json_schema(value) for key, value in node.items()
              if not key.startswith(KUBERNETES_KEYWORDS)}
    if node.get("x-kubernetes-int-or-string"):
        schema = {key: value for key, value in schema.items() if key != "type"}
        schema = {"anyOf": [{"type": "integer"}, {"type": "string"}], **schema}
    if node.get("type") == "object" and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
    if node.get("nullable") and "type" in schema:
        schema = {"anyOf": [{"type": "null"}, schema]}
    return schema


def problems(manifest: Dict[str, Any], crd: Dict[str, Any]) -> List[str]:
    """Every way ``manifest`` fails the CRD's schema, as ``path: message`` lines."""
    import jsonschema

    if manifest.get("kind") != crd["spec"]["names"]["kind"]:
        return [f"kind: {manifest.get('kind')!r} is not the CRD's {crd['spec']['names']['kind']!r}"]
    schema = to_json_schema(crd_schema(crd, manifest["apiVersion"]))
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
                  for error in validator.iter_errors(manifest))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crd", type=Path, help="KubeRay's ray.io_rayservices.yaml")
    parser.add_argument("manifest", type=Path, nargs="?", default=MANIFEST)
    args = parser.parse_args(argv)
    crd = yaml.safe_load(args.crd.read_text())
    manifest = yaml.safe_load(args.manifest.read_text())
    found = problems(manifest, crd)
    for line in found:
        print(line)
    version = crd.get("metadata", {}).get("annotations", {}).get("controller-gen.kubebuilder.io/version", "?")
    print(f"{args.manifest.name}: {'valid' if not found else f'{len(found)} problems'} against "
          f"{args.crd.name} ({manifest.get('apiVersion')}, controller-gen {version})")
    return 0 if not found else 1


if __name__ == "__main__":
    sys.exit(main())
