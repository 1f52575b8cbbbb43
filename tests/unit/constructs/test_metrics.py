"""Every ``metric_*`` method takes the standard CloudWatch metric options, the same way.

The constructs are the ones the shared syntheses built (the reference platform, and a prod with
an endpoint and a monitor), so these tests synthesize nothing of their own. Each public metric
method of each construct is found by name, so a new method is covered without a new test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cw

from cdk_mlops.constructs.batch_inference import BatchInference
from cdk_mlops.constructs.common import METRIC_OPTIONS
from cdk_mlops.constructs.data_store import VersionedDataStore
from cdk_mlops.constructs.model_endpoint import ModelEndpoint
from cdk_mlops.constructs.model_monitor import (
    Baselines,
    BatchTransformCapture,
    DataQualitySettings,
    ModelMonitor,
    MonitoringType,
    MonitorSchedule,
)
from cdk_mlops.constructs.retrain_trigger import RetrainTrigger
from cdk_mlops.constructs.training_pipeline import TrainingPipeline
from cdk_mlops.errors import ConfigurationError
from tests.conftest import Platform

CONSTRUCTS = (VersionedDataStore, TrainingPipeline, RetrainTrigger, ModelEndpoint, ModelMonitor, BatchInference)
#: A value of each option, none of them any method's default.
OPTIONS: dict[str, Any] = {
    "period": cdk.Duration.minutes(7),
    "statistic": "p99",
    "unit": cw.Unit.COUNT,
    "label": "as the team names it",
    "color": "#123456",
    "dimensions_map": {"Team": "risk"},
    "region": "us-west-2",
    "account": "210987654321",
}


def arguments(construct: Any, method: Callable[..., Any]) -> dict[str, Any]:
    """Values for a metric method's own required parameters (which decision, type, feature, metric)."""
    monitored = next(iter(construct.schedule_names)) if isinstance(construct, ModelMonitor) else None
    known = {"decision": "started", "monitoring_type": monitored, "feature": "age", "metric_name": "accuracy"}
    required = [
        p.name
        for p in inspect.signature(method).parameters.values()
        if p.default is p.empty and p.kind is not p.VAR_KEYWORD
    ]
    return {name: known[name] for name in required}


def metric_methods(platforms: list[Platform]) -> Iterator[tuple[str, Any, Callable[..., Any]]]:
    for platform in platforms:
        for node in platform.app.node.find_all():
            if isinstance(node, CONSTRUCTS):
                for name, method in inspect.getmembers(node, inspect.ismethod):
                    if name.startswith("metric"):
                        yield f"{type(node).__name__}.{name}", node, method


@pytest.fixture(scope="module")
def every_method(platform: Platform, private_prod: Platform) -> dict[str, tuple[Any, Callable[..., Any]]]:
    return {label: (node, method) for label, node, method in metric_methods([platform, private_prod])}


@pytest.fixture(scope="module")
def methods(every_method) -> dict[str, tuple[Any, Callable[..., Any]]]:
    """Every method, each with a metric to give: the shared monitor watches data and model quality."""
    monitor, _ = every_method["ModelMonitor.metric"]
    assert {MonitoringType.DATA_QUALITY, MonitoringType.MODEL_QUALITY} <= set(monitor.schedule_names)
    return dict(every_method)


def data_quality_monitor() -> ModelMonitor:
    """A monitor of data quality alone (of a batch job's captured data: no endpoint to build)."""
    stack = cdk.Stack(cdk.App(), "Team")
    store = VersionedDataStore(stack, "Store", datasets=["churn"])
    batch = BatchTransformCapture.from_capture_uri(
        batch_name="churn-nightly", capture_uri=store.s3_uri("batch-capture/churn-nightly/")
    )
    return ModelMonitor(
        stack,
        "Monitor",
        batch_transform=batch,
        batch_data_prefixes=["batch-output/churn-nightly/"],
        data_store=store,
        data_quality=DataQualitySettings(
            baselines=Baselines.from_prefix(store.s3_uri("ml/baseline/")), schedule=MonitorSchedule.daily()
        ),
    )


def test_the_shared_syntheses_hold_every_construct_with_metrics(every_method) -> None:
    # Otherwise the tests below would pass by checking nothing.
    declared = {f"{c.__name__}.{name}" for c in CONSTRUCTS for name in dir(c) if name.startswith("metric")}
    assert set(every_method) == declared
    assert len(declared) >= 20
    assert set(OPTIONS) <= METRIC_OPTIONS


def test_every_metric_method_takes_every_standard_option(methods) -> None:
    wrong: list[str] = []
    for label, (construct, method) in sorted(methods.items()):
        metric = method(**arguments(construct, method), **OPTIONS)
        stack = cdk.Stack.of(construct)
        taken = {
            "period": metric.period.to_minutes() == 7,
            "statistic": metric.statistic == "p99",
            "unit": metric.unit == cw.Unit.COUNT,
            "label": metric.label == OPTIONS["label"],
            "color": metric.color == OPTIONS["color"],
            "region": metric.region == "us-west-2",
            "account": metric.account == "210987654321",
            # The team's dimension is added to the construct's own, which are kept.
            "dimensions_map": metric.dimensions.get("Team") == "risk" and len(stack.resolve(metric.dimensions)) > 1,
        }
        wrong += [f"{label}: {option}" for option, ok in taken.items() if not ok]
    assert wrong == []


def test_a_keyword_that_is_no_metric_option_is_refused_by_name(methods) -> None:
    for label, (construct, method) in sorted(methods.items()):
        with pytest.raises(ConfigurationError) as caught:
            method(**arguments(construct, method), perod=cdk.Duration.minutes(1))
        message = str(caught.value)
        assert "'perod' is not a metric option; accepted (cloudwatch.MetricOptions): account, color," in message, label
        assert message.startswith(f"[{construct.node.path}] metric"), label


def test_without_options_the_documented_defaults_hold(methods) -> None:
    # The defaults each docstring states: Sum over 5 minutes for counts, Average over a day for S3 storage.
    _store, bucket_size = methods["VersionedDataStore.metric_bucket_size_bytes"]
    assert (bucket_size().statistic, bucket_size().period.to_days()) == ("Average", 1)
    _pipeline, failed = methods["TrainingPipeline.metric_executions_failed"]
    assert (failed().statistic, failed().period.to_minutes()) == ("Sum", 5)
    trigger, dead = methods["RetrainTrigger.metric_dead_letter_messages"]
    assert (dead().statistic, dead().period.to_minutes()) == ("Maximum", 5)
    assert cdk.Stack.of(trigger).resolve(dead().dimensions) == cdk.Stack.of(trigger).resolve(
        trigger.dead_letter_queue.metric_approximate_number_of_messages_visible().dimensions
    )
    _endpoint, latency = methods["ModelEndpoint.metric_model_latency"]
    assert (latency().statistic, latency().period.to_minutes()) == ("p90", 5)


def test_a_metric_of_a_type_the_monitor_does_not_watch_is_refused_naming_what_it_watches() -> None:
    monitor = data_quality_monitor()
    with pytest.raises(ConfigurationError) as caught:
        monitor.metric_model_quality("accuracy")
    assert str(caught.value) == (
        f"[{monitor.node.path}] metric: this monitor has no ModelQuality schedule, so it has no such metric; it "
        "monitors MonitoringType.DATA_QUALITY (add model_quality= settings to monitor it)"
    )
    for method in (monitor.metric_violations, monitor.metric_completed_executions, monitor.metric_failed_executions):
        with pytest.raises(ConfigurationError, match=f"{method.__name__}: this monitor has no ModelBias schedule"):
            method(MonitoringType.MODEL_BIAS)
