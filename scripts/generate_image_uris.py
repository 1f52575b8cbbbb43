"""Generate ``cdk_mlops/image_uris.json`` from the SageMaker Python SDK's image-URI config files.

The SageMaker Python SDK ships one JSON file per framework (``image_uri_config/<framework>.json``)
that maps each region to the AWS account hosting the framework's ECR repository. The library
needs a handful of those facts at synth time, without the SDK (about 1 GB installed) and
without network access, so this script extracts them into a small checked-in JSON file.

Run it with an interpreter that has botocore (the repository's virtualenv does), pointing it
at an installed SDK; the SDK itself is never imported::

    python3 -m venv /tmp/sdkvenv
    /tmp/sdkvenv/bin/pip install --no-deps sagemaker-core   # SDK v3; v2 is `sagemaker`
    .venv/bin/python scripts/generate_image_uris.py --site-packages /tmp/sdkvenv/lib/python3.11/site-packages

Image tags follow the SDK's rule for these frameworks: ``<version>[-<processor>][-<py_version>]``,
where the processor and Python version are appended only when the version's config lists them
(``sklearn`` ``1.2-1`` becomes ``1.2-1-cpu-py3``, ``xgboost`` ``1.7-1`` stays ``1.7-1``). The
Model Monitor analyzer has a single, untagged version; Clarify a single version, ``1.0``. DNS
suffixes per region come from botocore's partition data, as the SDK's own endpoint resolution does.

The same file records the regions where SageMaker Experiments is available: SageMaker Pipelines
executions fail in other regions when the definition has a ``PipelineExperimentConfig``. The SDK
keeps that list as ``EUREKA_GA_REGIONS`` in ``sagemaker/mlops/workflow/_utils.py`` (the
``sagemaker-mlops`` distribution of SDK v3) and writes the config only in those regions; the
script reads the literal from the source file, without importing it. Install it next to the
core package (``pip install --no-deps sagemaker-core sagemaker-mlops``).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "cdk_mlops" / "image_uris.json"

# framework -> (config file, image scope, versions to extract, default version).
# Only versions published for both training and hosting are offered, so the image that
# trains a model can also serve it.
FRAMEWORKS: dict[str, tuple[str, str | None, tuple[str, ...], str]] = {
    "sklearn": ("sklearn.json", "training", ("1.0-1", "1.2-1", "1.9-0"), "1.2-1"),
    "xgboost": ("xgboost.json", "training", ("1.5-1", "1.7-1", "3.0-5", "3.2-0"), "1.7-1"),
    "model-monitor": ("model-monitor.json", None, ("",), ""),
    # SageMaker Clarify (bias and explainability monitoring): one processing image, tag 1.0.
    "clarify": ("clarify.json", "processing", ("1.0",), "1.0"),
}
# Scopes whose registries must equal the extracted scope's (hosting uses the inference image).
SAME_REGISTRIES_AS: dict[str, tuple[str, ...]] = {"sklearn": ("inference",), "xgboost": ("inference",)}
SDK_DISTRIBUTIONS = ("sagemaker-core", "sagemaker")
# Where the SDK lists the regions with SageMaker Experiments, and the distribution that ships it.
EXPERIMENTS_MODULE = Path("sagemaker") / "mlops" / "workflow" / "_utils.py"
EXPERIMENTS_CONSTANT = "EUREKA_GA_REGIONS"
EXPERIMENTS_DISTRIBUTIONS = ("sagemaker-mlops",)


def find_config_dir(site_packages: Path) -> Path:
    """The SDK's ``image_uri_config`` directory under an installed SDK's site-packages."""
    for candidate in (
        site_packages / "sagemaker" / "core" / "image_uri_config",  # SDK v3 (sagemaker-core)
        site_packages / "sagemaker" / "image_uri_config",  # SDK v2
    ):
        if (candidate / "xgboost.json").is_file():
            return candidate
    raise SystemExit(f"no SageMaker SDK image_uri_config directory under {site_packages}")


def sdk_version(site_packages: Path, names: Sequence[str] = SDK_DISTRIBUTIONS) -> str:
    """``<distribution> <version>`` of the first of ``names`` installed in ``site_packages``."""
    for dist in metadata.distributions(path=[str(site_packages)]):
        if dist.metadata["Name"] in names:
            return f"{dist.metadata['Name']} {dist.version}"
    return "unknown"


def experiments_regions(site_packages: Path) -> list[str]:
    """The SDK's regions with SageMaker Experiments (``EUREKA_GA_REGIONS``), read from its source."""
    source = site_packages / EXPERIMENTS_MODULE
    if not source.is_file():
        raise SystemExit(f"no {EXPERIMENTS_MODULE} under {site_packages}; install sagemaker-mlops there too")
    for node in ast.walk(ast.parse(source.read_text())):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == EXPERIMENTS_CONSTANT for t in node.targets)
            and isinstance(node.value, ast.Call)
            and len(node.value.args) == 1
        ):
            regions = ast.literal_eval(node.value.args[0])
            if regions and all(isinstance(r, str) for r in regions):
                return sorted(regions)
    raise SystemExit(f"{source}: no {EXPERIMENTS_CONSTANT} = frozenset([...]) of region names; extend the script")


def image_tag(version: str, config: Mapping[str, Any]) -> str:
    """The image tag the SDK builds for ``version`` with no instance type given."""
    processors: Sequence[str] = config.get("processors") or ()
    py_versions: Sequence[str] = config.get("py_versions") or ()
    processor = "cpu" if "cpu" in processors else (processors[0] if processors else "")
    py_version = py_versions[0] if len(py_versions) == 1 else ""
    return "-".join(part for part in (version, processor, py_version) if part)


def dns_suffixes(regions: Sequence[str]) -> dict[str, str]:
    """Region -> DNS suffix (``amazonaws.com``, ``amazonaws.com.cn``, ...) from botocore's partitions."""
    import botocore.session

    loader = botocore.session.get_session().get_component("data_loader")
    partitions = loader.load_data("partitions")["partitions"]
    suffixes: dict[str, str] = {}
    for region in regions:
        for partition in partitions:
            if region in partition.get("regions", {}) or re.match(partition["regionRegex"], region):
                suffixes[region] = partition["outputs"]["dnsSuffix"]
                break
        else:
            raise SystemExit(f"botocore knows no partition for region {region!r}")
    return suffixes


def extract(config_dir: Path) -> dict[str, Any]:
    frameworks: dict[str, Any] = {}
    for name, (file_name, scope, versions, default) in FRAMEWORKS.items():
        raw = json.loads((config_dir / file_name).read_text())
        scoped = raw[scope] if scope else raw
        registries: dict[str, str] | None = None
        repository: str | None = None
        tags: dict[str, str] = {}
        for version in versions:
            config = scoped["versions"][version]
            for other in SAME_REGISTRIES_AS.get(name, ()):
                if raw[other]["versions"][version]["registries"] != config["registries"]:
                    raise SystemExit(f"{name} {version}: {scope} and {other} registries differ; extend the format")
            if registries is None:
                registries, repository = dict(config["registries"]), config["repository"]
            elif config["registries"] != registries or config["repository"] != repository:
                raise SystemExit(f"{name} {version}: registries differ between versions; extend the format")
            tags[version] = image_tag(version, config)
        if registries is None or repository is None:
            raise SystemExit(f"{name}: no versions to extract")
        frameworks[name] = {
            "repository": repository,
            "default_version": default,
            "tags": tags,
            "registries": dict(sorted(registries.items())),
        }
    regions = sorted({r for f in frameworks.values() for r in f["registries"]})
    return {"frameworks": frameworks, "dns_suffixes": dns_suffixes(regions)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-packages", type=Path, required=True, help="site-packages of an installed SDK")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    data = {
        "_comment": "Generated by scripts/generate_image_uris.py; do not edit by hand.",
        "source": sdk_version(args.site_packages),
        **extract(find_config_dir(args.site_packages)),
        "experiments": {
            "source": f"{sdk_version(args.site_packages, EXPERIMENTS_DISTRIBUTIONS)} "
            f"{EXPERIMENTS_MODULE.as_posix()} {EXPERIMENTS_CONSTANT}",
            "regions": experiments_regions(args.site_packages),
        },
    }
    args.output.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    counts = ", ".join(f"{n}: {len(f['registries'])} regions" for n, f in data["frameworks"].items())
    counts += f", experiments: {len(data['experiments']['regions'])} regions"
    print(f"wrote {args.output} from {data['source']} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
