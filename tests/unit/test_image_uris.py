"""Image URIs per region, offline, from the checked-in facts generated from the SageMaker SDK."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cdk_mlops import image_uris
from cdk_mlops.image_uris import UnknownImageError, image_uri, registry_accounts, repository_path, url_suffix

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_xgboost_uri_in_a_commercial_region():
    # THEN
    assert image_uri("xgboost", "eu-west-1") == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def test_sklearn_uri_carries_the_processor_and_python_tag():
    # THEN
    assert (
        image_uri("sklearn", "us-east-1")
        == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )


def test_model_monitor_uri_is_untagged():
    # THEN
    assert (
        image_uri("model-monitor", "us-east-1")
        == "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )


def test_clarify_has_one_processing_image_tagged_1_0():
    assert image_uri("clarify", "eu-west-1") == (
        "131013547314.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0"
    )


def test_china_regions_use_the_cn_suffix():
    # THEN
    assert url_suffix("cn-north-1") == "amazonaws.com.cn"
    assert image_uri("xgboost", "cn-north-1").startswith("450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    assert url_suffix("eu-west-1") == "amazonaws.com"


def test_other_versions_are_available():
    # THEN
    assert image_uri("xgboost", "eu-west-1", "3.0-5").endswith("/sagemaker-xgboost:3.0-5")
    assert repository_path("sklearn", "1.9-0") == "sagemaker-scikit-learn:1.9-0-cpu-py3"
    assert image_uris.default_version("sklearn") == "1.2-1"
    assert "1.7-1" in image_uris.versions("xgboost")


def test_unknown_framework_lists_the_known_ones():
    # THEN
    with pytest.raises(
        UnknownImageError, match=r"unknown framework 'pytorch'; use one of: sklearn, xgboost, model-monitor, clarify"
    ):
        image_uri("pytorch", "eu-west-1")


def test_unknown_version_lists_the_known_ones():
    # THEN
    with pytest.raises(UnknownImageError, match=r"unknown xgboost version '0.72'; use one of: '1.5-1', '1.7-1'"):
        image_uri("xgboost", "eu-west-1", "0.72")


def test_unknown_region_lists_the_regions():
    # THEN
    expected = r"no xgboost image is published in region 'mars-north-1'; use one of: af-south-1"
    with pytest.raises(UnknownImageError, match=expected):
        image_uri("xgboost", "mars-north-1")
    with pytest.raises(UnknownImageError, match=r"unknown region 'mars-north-1'"):
        url_suffix("mars-north-1")


def test_model_monitor_is_not_published_everywhere_sklearn_is():
    # THEN the error names the framework, not just the region
    assert "ap-south-2" in registry_accounts("sklearn")
    with pytest.raises(UnknownImageError, match="no model-monitor image is published in region 'ap-south-2'"):
        image_uri("model-monitor", "ap-south-2")


def test_registry_accounts_are_a_copy_for_a_cfn_mapping():
    # WHEN
    accounts = registry_accounts("xgboost")
    accounts["eu-west-1"] = "000000000000"
    # THEN
    assert registry_accounts("xgboost")["eu-west-1"] == "141502667606"
    assert all(len(a) == 12 and a.isdigit() for a in accounts.values())


def test_every_region_has_a_dns_suffix():
    # THEN
    for framework in image_uris.frameworks():
        for region in registry_accounts(framework):
            assert url_suffix(region)


def test_sagemaker_experiments_regions_are_the_sdks():
    # THEN the SDK's list decides, as it does for Pipeline(pipeline_experiment_config=...)
    assert image_uris.has_experiments("eu-west-1")
    assert image_uris.has_experiments("cn-north-1")
    # AND regions added after Experiments stopped expanding are not in it, though images are published there
    assert not image_uris.has_experiments("eu-central-2")
    assert "eu-central-2" in registry_accounts("xgboost")
    assert not image_uris.has_experiments("mars-north-1")
    assert "eu-central-2" not in image_uris.experiments_regions()


def test_regions_known_to_the_cdk_are_covered():
    # GIVEN the commercial regions in aws-cdk-lib's fact table
    region_info = pytest.importorskip("aws_cdk.region_info")
    commercial = {
        r.name
        for r in region_info.RegionInfo.regions
        if r.partition == "aws" and r.name in {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"}
    }
    # THEN the main regions have every image
    for framework in image_uris.frameworks():
        assert commercial <= set(registry_accounts(framework)), framework


# ------------------------------------------------------------------------------------------------
# The generator
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_image_uris", REPO_ROOT / "scripts" / "generate_image_uris.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_image_uris"] = module
    spec.loader.exec_module(module)
    return module


def test_generator_builds_tags_like_the_sdk(generator):
    # THEN
    assert generator.image_tag("1.2-1", {"processors": ["cpu"], "py_versions": ["py3"]}) == "1.2-1-cpu-py3"
    assert generator.image_tag("1.7-1", {"repository": "sagemaker-xgboost"}) == "1.7-1"
    assert generator.image_tag("", {}) == ""


def _write_sdk_config(root: Path, eu_account: str = "111111111111") -> Path:
    config_dir = root / "sagemaker" / "core" / "image_uri_config"
    config_dir.mkdir(parents=True)
    registries = {"eu-west-1": eu_account, "cn-north-1": "222222222222"}
    version = {
        "processors": ["cpu"],
        "py_versions": ["py3"],
        "registries": registries,
        "repository": "sagemaker-scikit-learn",
    }
    sklearn_versions = {v: version for v in ("1.0-1", "1.2-1", "1.9-0")}
    (config_dir / "sklearn.json").write_text(
        json.dumps({"training": {"versions": sklearn_versions}, "inference": {"versions": sklearn_versions}})
    )
    xgb = {"registries": registries, "repository": "sagemaker-xgboost"}
    xgb_versions = {v: xgb for v in ("1.5-1", "1.7-1", "3.0-5", "3.2-0")}
    (config_dir / "xgboost.json").write_text(
        json.dumps({"training": {"versions": xgb_versions}, "inference": {"versions": xgb_versions}})
    )
    monitor = {"versions": {"": {"registries": registries, "repository": "sagemaker-model-monitor-analyzer"}}}
    (config_dir / "model-monitor.json").write_text(json.dumps(monitor))
    clarify = {"versions": {"1.0": {"registries": registries, "repository": "sagemaker-clarify-processing"}}}
    (config_dir / "clarify.json").write_text(json.dumps({"processing": clarify}))
    utils = root / "sagemaker" / "mlops" / "workflow" / "_utils.py"
    utils.parent.mkdir(parents=True)
    utils.write_text(
        'OTHER = frozenset(["xx-east-1"])\n'
        "EUREKA_GA_REGIONS = frozenset(\n"
        '    [\n        "us-east-1",  # iad\n        "eu-west-1",  # dub\n    ]\n)\n'
    )
    return root


def test_generator_extracts_registries_tags_and_suffixes(generator, tmp_path):
    # GIVEN a minimal SDK layout
    site_packages = _write_sdk_config(tmp_path / "site-packages")
    output = tmp_path / "image_uris.json"
    # WHEN
    assert generator.main(["--site-packages", str(site_packages), "--output", str(output)]) == 0
    # THEN
    data = json.loads(output.read_text())
    assert data["frameworks"]["sklearn"]["tags"]["1.2-1"] == "1.2-1-cpu-py3"
    assert data["frameworks"]["xgboost"]["default_version"] == "1.7-1"
    assert data["frameworks"]["model-monitor"]["tags"] == {"": ""}
    assert data["frameworks"]["clarify"]["tags"] == {"1.0": "1.0"}
    assert data["frameworks"]["xgboost"]["registries"] == {"cn-north-1": "222222222222", "eu-west-1": "111111111111"}
    assert data["dns_suffixes"] == {"cn-north-1": "amazonaws.com.cn", "eu-west-1": "amazonaws.com"}
    assert data["experiments"]["regions"] == ["eu-west-1", "us-east-1"]
    assert data["experiments"]["source"].endswith("sagemaker/mlops/workflow/_utils.py EUREKA_GA_REGIONS")


def test_generator_needs_the_sdks_experiments_regions(generator, tmp_path):
    # GIVEN an SDK layout without sagemaker-mlops
    site_packages = _write_sdk_config(tmp_path / "site-packages")
    (site_packages / "sagemaker" / "mlops" / "workflow" / "_utils.py").unlink()
    # THEN
    with pytest.raises(SystemExit, match="install sagemaker-mlops there too"):
        generator.main(["--site-packages", str(site_packages), "--output", str(tmp_path / "out.json")])


def test_generator_refuses_registries_that_differ_between_training_and_hosting(generator, tmp_path):
    # GIVEN hosting images in another account than training images
    site_packages = _write_sdk_config(tmp_path / "site-packages")
    config = site_packages / "sagemaker" / "core" / "image_uri_config" / "xgboost.json"
    data = json.loads(config.read_text())
    data["inference"]["versions"]["1.5-1"] = {"registries": {"eu-west-1": "9" * 12}, "repository": "sagemaker-xgboost"}
    config.write_text(json.dumps(data))
    # THEN
    with pytest.raises(SystemExit, match="training and inference registries differ"):
        generator.main(["--site-packages", str(site_packages), "--output", str(tmp_path / "out.json")])


def test_checked_in_facts_name_their_source():
    # THEN
    data = json.loads((REPO_ROOT / "cdk_mlops" / "image_uris.json").read_text())
    assert data["source"].startswith(("sagemaker-core ", "sagemaker "))
    assert set(data["frameworks"]) == {"sklearn", "xgboost", "model-monitor", "clarify"}
    assert data["experiments"]["source"].startswith("sagemaker-mlops ")
