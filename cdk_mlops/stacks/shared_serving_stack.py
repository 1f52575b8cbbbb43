"""The shared serving stacks: the catalogue's models served in mode ``shared``, on shared endpoints' instances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.catalogue import CatalogueModel
from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_endpoint import ComponentSettings, SharedModelEndpoint


def shared_endpoint_name(config: EnvironmentConfig, index: int = 0) -> str:
    """A shared endpoint: ``<project>-<environment>-models``, or ``...-models-<NN>`` with several.

    ``index`` is :func:`cdk_mlops.catalogue.shared_endpoint_index` of its models (0 to
    ``shared_endpoints`` - 1).
    """
    base = f"{config.project}-{config.name}-models"
    return base if config.shared_endpoints == 1 else f"{base}-{index:02d}"


def shared_serving_stack_id(config: EnvironmentConfig, index: int = 0) -> str:
    """The construct id of a shared serving stack: ``SharedServing``, or ``SharedServing<NN>`` with several."""
    return "SharedServing" if config.shared_endpoints == 1 else f"SharedServing{index:02d}"


class SharedServingStack(cdk.Stack):
    """Serves ``shared`` catalogue models with an approved version on one :class:`SharedModelEndpoint`.

    Each model is an inference component named ``<endpoint>-<model>``, with the CPU, memory and
    copies of its ``serving`` key; the endpoint's instances (``ml.m5.xlarge``, 0 to 4) follow the
    copies, so an idle fleet costs nothing. Adding or changing a shared model redeploys its shared
    stack, not the model's own. An environment has ``shared_endpoints`` of these (1 by default),
    each holding the models whose names hash to it.

    Args:
        config: The environment.
        models: The catalogue's models served in mode ``shared``, with a version, of this endpoint.
        data_store: The environment's data store (the models' artifacts).
        alarm_topic: Notified when a model scales out from zero. Default: - none.
        index: The endpoint's index (:func:`shared_endpoint_name`). Default: - 0.

    Attributes:
        endpoint: The shared endpoint; ``endpoint.models`` holds each model by name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        models: Sequence[CatalogueModel],
        data_store: IDataStore,
        alarm_topic: sns.ITopic | None = None,
        index: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        name = shared_endpoint_name(config, index)
        self.endpoint = SharedModelEndpoint(
            self,
            "Endpoint",
            endpoint_name=name,
            data_store=data_store,
            alarm_topic=alarm_topic,
            removal_policy=config.removal_policy,
        )
        # The registered packages run the training image; the role may pull only its repository.
        image = sagemaker_image_uri(self, "xgboost")
        for model in models:
            served = model.served
            if served is None:
                continue
            self.endpoint.add_model(
                model.name,
                model_name=model.name,
                model_package_arn=served.model_package_arn,
                image_uri=image,
                settings=ComponentSettings(
                    cpu_cores=served.cpu_cores,
                    memory_mb=served.memory_mb,
                    min_copies=served.min_copies,
                    max_copies=served.max_copies,
                    initial_copies=max(served.min_copies, 1),
                ),
            )
        cdk.CfnOutput(self, "EndpointName", value=name, description="Invoke its models here")
